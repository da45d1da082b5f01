/**
 * A newcomer's first run: `npm start` on a checkout that has never built its UI, on a machine
 * without Electron's binary. It must build the UI, start the headless engine, hand the browser a
 * signed-in page, and that page must reach the Overview in Chromium.
 *
 * The checkout is a copy of this one's files (tracked and new, never dist/), sharing node_modules.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { tempDir } from '../fixtures/engine.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SHOTS = path.join(ROOT, 'test-results/screenshots');
const CHROMIUM = process.env.TOLLGATE_CHROMIUM ?? '/usr/bin/chromium';

function electronBinary(): boolean {
  try {
    const p = createRequire(import.meta.url)('electron') as unknown;
    return typeof p === 'string' && fs.existsSync(p);
  } catch {
    return false;
  }
}

function copyCheckout(): string {
  const dest = tempDir('tollgate-checkout-');
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
  for (const f of files) {
    if (f.startsWith('dist/') || f === 'node_modules' || !fs.existsSync(path.join(ROOT, f))) continue;
    fs.mkdirSync(path.dirname(path.join(dest, f)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, f), path.join(dest, f));
  }
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dest, 'node_modules'));
  return dest;
}

test('npm start on a fresh checkout without Electron builds the UI and opens the Overview, signed in', async () => {
  const checkout = copyCheckout();
  assert.ok(!fs.existsSync(path.join(checkout, 'dist/renderer/index.html')), 'the checkout starts without a built UI');
  const work = tempDir('tollgate-start-');
  const browserLog = path.join(work, 'browser.log');
  const fakeBrowser = path.join(work, 'browser.sh');
  fs.writeFileSync(fakeBrowser, `#!/bin/sh\nprintf '%s\\n' "$@" >> ${JSON.stringify(browserLog)}\n`, { mode: 0o755 });
  const env: NodeJS.ProcessEnv = { ...process.env, TOLLGATE_DATA_DIR: path.join(work, 'data'), BROWSER: fakeBrowser };
  // Where Electron's binary is installed, npm start would (rightly) launch the desktop app.
  if (electronBinary()) env.TOLLGATE_HEADLESS = '1';
  delete env.npm_config_prefix;
  const child = spawn('npm', ['start', '--', '--port', '0'], { cwd: checkout, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d; });
  child.stderr.on('data', (d: Buffer) => { out += d; });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const deadline = Date.now() + 240_000;
    while (!(fs.existsSync(browserLog) && /UI, signed in/.test(out))) {
      if (child.exitCode !== null) assert.fail(`npm start exited ${child.exitCode}:\n${out}`);
      if (Date.now() > deadline) assert.fail(`npm start did not open the UI in 240 s:\n${out}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(out, /No desktop app here: Electron's binary is not installed|TOLLGATE_HEADLESS=1/);
    assert.match(out, /Building the UI/);
    assert.ok(fs.existsSync(path.join(checkout, 'dist/renderer/index.html')), 'npm start built the UI');
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 860 } })).newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const opened = fs.readFileSync(browserLog, 'utf8').trim().split('\n')[0]!;
    await page.goto(pathToFileURL(opened).href);
    await page.waitForURL(/^http:\/\/127\.0\.0\.1:\d+\//, { timeout: 30_000 });
    await page.getByTestId('view-overview').waitFor({ timeout: 60_000 });
    assert.doesNotMatch(page.url(), /token=/, 'the token leaves the address bar once read');
    fs.mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, 'npm-start-overview.png'), fullPage: true });
    const text = await page.textContent('body');
    assert.doesNotMatch(text ?? '', /"error"|Not Found|401|Unauthorized/i);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    try {
      process.kill(-child.pid!, 'SIGTERM');
    } catch { /* already gone */ }
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
  }
});
