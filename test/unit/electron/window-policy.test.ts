import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  appEntryUrl,
  contentSecurityPolicy,
  isAppUrl,
  secureWebPreferences,
  shouldAllowNavigation,
  shouldGrantPermission,
  shouldOpenWindow,
} from '../../../electron/window-policy.ts';
import type { AppLocation } from '../../../electron/window-policy.ts';

const indexHtml = path.resolve('/opt/Tollgate/resources/app.asar/dist/renderer/index.html');
const fileLoc: AppLocation = { kind: 'file', indexHtml };
const devLoc: AppLocation = { kind: 'dev', url: 'http://127.0.0.1:5173/' };
const appUrl = pathToFileURL(indexHtml).href;

test('webPreferences: isolated, sandboxed, no Node in the page', () => {
  const p = secureWebPreferences('/x/preload.cjs');
  assert.equal(p.preload, '/x/preload.cjs');
  assert.equal(p.contextIsolation, true);
  assert.equal(p.sandbox, true);
  assert.equal(p.nodeIntegration, false);
  assert.equal(p.nodeIntegrationInWorker, false);
  assert.equal(p.nodeIntegrationInSubFrames, false);
  assert.equal(p.webSecurity, true);
  assert.equal(p.allowRunningInsecureContent, false);
  assert.equal(p.webviewTag, false);
  assert.equal(p.experimentalFeatures, false);
});

test('navigation: only the app page itself (any hash/query)', () => {
  assert.equal(appEntryUrl(fileLoc), appUrl);
  for (const ok of [appUrl, `${appUrl}#/budgets?cap=cap_1`, `${appUrl}?x=1`]) assert.equal(shouldAllowNavigation(ok, fileLoc), true, ok);
  const denied = [
    'https://example.com/',
    'http://127.0.0.1:4141/_tollgate/',
    pathToFileURL(path.resolve('/etc/passwd')).href,
    pathToFileURL(path.join(path.dirname(indexHtml), 'other.html')).href,
    `${pathToFileURL(path.dirname(indexHtml)).href}/../renderer/../../secret.html`,
    'file://evil-host/opt/Tollgate/resources/app.asar/dist/renderer/index.html',
    'javascript:alert(1)',
    'data:text/html,<script>alert(1)</script>',
    'blob:file:///abc',
    'about:blank',
    'not a url',
    '',
  ];
  for (const bad of denied) assert.equal(shouldAllowNavigation(bad, fileLoc), false, bad);
});

test('navigation in dev: the exact dev-server origin only', () => {
  assert.equal(shouldAllowNavigation('http://127.0.0.1:5173/#/calls', devLoc), true);
  assert.equal(shouldAllowNavigation('http://127.0.0.1:5174/', devLoc), false);
  assert.equal(shouldAllowNavigation('http://localhost:5173/', devLoc), false);
  assert.equal(shouldAllowNavigation(appUrl, devLoc), false);
  assert.equal(isAppUrl('http://127.0.0.1:5173/src/main.tsx', devLoc), true);
});

test('window.open: never a new window; https links go to the browser', () => {
  assert.deepEqual(shouldOpenWindow('https://openai.com/api/pricing'), { action: 'deny', openExternal: true });
  for (const url of ['http://example.com', 'file:///etc/passwd', 'javascript:alert(1)', 'smb://host/share', 'https://user:pw@example.com/', appUrl, '']) {
    assert.deepEqual(shouldOpenWindow(url), { action: 'deny', openExternal: false }, url);
  }
});

test('permissions are all refused', () => {
  for (const p of ['media', 'geolocation', 'notifications', 'clipboard-read', 'openExternal']) assert.equal(shouldGrantPermission(p), false);
});

test('CSP: no remote code, no network in production', () => {
  const csp = contentSecurityPolicy();
  const directives = new Map(csp.split('; ').map((d) => [d.split(' ')[0], d.slice(d.indexOf(' ') + 1)]));
  assert.equal(directives.get('default-src'), "'none'");
  assert.equal(directives.get('script-src'), "'self'");
  assert.equal(directives.get('connect-src'), "'self'");
  assert.equal(directives.get('object-src'), "'none'");
  assert.equal(directives.get('frame-ancestors'), "'none'");
  assert.equal(directives.get('base-uri'), "'none'");
  assert.ok(!csp.includes('unsafe-eval'));
  assert.ok(!/script-src[^;]*unsafe-inline/.test(csp));
  assert.ok(!/https?:/.test(csp), 'no remote origins');

  const dev = contentSecurityPolicy({ devServerUrl: 'http://127.0.0.1:5173' });
  assert.match(dev, /connect-src 'self' http:\/\/127\.0\.0\.1:5173 ws:\/\/127\.0\.0\.1:5173/);
  assert.ok(!dev.includes('unsafe-eval'));
});
