/**
 * Settings → Sync in the real UI (Chromium via Playwright) against real engines and a real
 * `tollgate-ledger serve`: join with a one-time code through the form, see every device, see
 * another device's calls in Calls with their device, and the "spend may be incomplete" banner
 * when a device has been silent for more than 24 h.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { chromium, type Browser } from 'playwright-core';
import { startRig, eventually, tempDir, type Rig } from '../fixtures/engine.ts';
import { ledgerCli, startLedger, type LedgerBackend, type LedgerProcess } from '../fixtures/ledger-service.ts';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const DIST = join(ROOT, 'dist/renderer');
const WAIT = { timeout: 15_000 };

function newestMtime(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return t;
}

let b: LedgerBackend;
let svc: LedgerProcess;
let ui: Rig;
let other: Rig;
let browser: Browser;

const code = async () => (JSON.parse((await ledgerCli(b, ['enroll', '--json'])).stdout) as { code: string }).code;

before(async () => {
  const index = join(DIST, 'index.html');
  if (!existsSync(index) || statSync(index).mtimeMs < Math.max(newestMtime(join(ROOT, 'renderer/src')), newestMtime(join(ROOT, 'shared')))) {
    execFileSync('npx', ['vite', 'build', '--config', 'renderer/vite.config.ts', '--logLevel', 'warn'], { cwd: ROOT, stdio: 'inherit' });
  }
  b = { dataDir: tempDir('tollgate-ledger-') };
  svc = await startLedger(b);
  ui = await startRig(['openai'], { uiDir: DIST, syncIntervalMs: 200 });
  other = await startRig(['openai'], { syncIntervalMs: 200 });
  await other.engine.api.syncJoin({ url: svc.url, code: await code(), name: 'ci-box' });
  other.fakes.openai!.next({ usage: { prompt_tokens: 1000, completion_tokens: 500 } });
  await new OpenAI({ apiKey: 'sk-x', baseURL: `${other.url}/openai/v1`, maxRetries: 0 }).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
});

after(async () => {
  await browser?.close();
  await ui?.close();
  await other?.close();
  await svc?.stop();
});

test('Settings → Sync: join with a code, the devices, a pulled call in Calls with its device', async () => {
  const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${ui.url}/#token=${ui.engine.token}`);
  await page.getByTestId('nav-settings').click();
  await page.getByTestId('settings-sync').waitFor(WAIT);
  await page.getByTestId('sync-url').fill(svc.url);
  await page.getByTestId('sync-code').fill('WRONG-CODE-0000');
  await page.getByTestId('sync-name').fill('laptop');
  await page.getByTestId('sync-join').click();
  await page.getByTestId('settings-sync').getByText(/invalid_code|not valid|unknown/i).first().waitFor(WAIT);
  await page.getByTestId('sync-code').fill(await code());
  await page.getByTestId('sync-join').click();
  await page.getByTestId('sync-status').waitFor(WAIT);
  assert.equal(await page.getByTestId('sync-device').innerText(), 'laptop');
  await eventually(async () => /ci-box/.test(await page.getByTestId('sync-devices').innerText()) && /laptop \(this device\)/.test(await page.getByTestId('sync-devices').innerText()), 'both devices listed', 15_000);
  await page.screenshot({ path: join(ROOT, 'test-results/screenshots/sync-settings.png'), fullPage: true }).catch(() => {});
  // the other device's call arrives here with its device name
  await eventually(async () => (await ui.engine.api.calls({})).some((c) => c.device === 'ci-box'), 'the pulled call', 15_000);
  await page.getByTestId('nav-calls').click();
  await page.getByTestId('calls-row').first().waitFor(WAIT);
  assert.equal(await page.getByTestId('calls-device').first().innerText(), 'ci-box');
  assert.equal(await page.getByTestId('sync-silent-banner').count(), 0, 'no banner while every device syncs');
  assert.deepEqual(errors, []);
  await page.close();
});

test('a device silent for more than 24 h: a banner says spend may be incomplete', async () => {
  // an engine whose clock is 25 h ahead sees the others' last contact (service clock) as 25 h old
  const ahead = await startRig(['openai'], { uiDir: DIST, syncIntervalMs: 200, now: () => Date.now() + 25 * 3_600_000 });
  try {
    await ahead.engine.api.syncJoin({ url: svc.url, code: await code(), name: 'skewed' });
    await ahead.engine.api.syncStatus({ refresh: true });
    const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
    await page.goto(`${ahead.url}/#token=${ahead.engine.token}`);
    const banner = page.getByTestId('sync-silent-banner');
    await banner.waitFor(WAIT);
    const text = await banner.innerText();
    assert.match(text, /Spend may be incomplete/);
    assert.match(text, /ci-box/);
    assert.doesNotMatch(text, /skewed/, 'never this device');
    await page.close();
  } finally {
    await ahead.close();
  }
});
