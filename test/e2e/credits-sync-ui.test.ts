/**
 * The Credits view shows grants synced from another device (issue 13 on the sync of issue 12):
 * a real `tollgate-ledger serve`, two real engines joined to it, calls through the official openai
 * SDK, a grant added on the laptop with the CLI; the desktop's Credits view (Chromium, open the
 * whole time) shows it after a sync without being reloaded, with the laptop's balance to the cent;
 * removed in the desktop's view, it is gone on the laptop after a sync. Then OpenRouter's activity
 * export reconciled in the same view, joined per generation id.
 * Screenshots: test-results/screenshots/credits-sync-<step>.png
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startRig, tempDir, type Rig } from '../fixtures/engine.ts';
import { ledgerCli, startLedger, type LedgerBackend, type LedgerProcess } from '../fixtures/ledger-service.ts';
import { formatUsd } from '../../renderer/src/format.ts';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const DIST = join(ROOT, 'dist/renderer');
const SHOTS = join(ROOT, 'test-results/screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let b: LedgerBackend;
let svc: LedgerProcess;
let laptop: Rig, desktop: Rig;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

function tollgate(rig: Rig, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((res) => {
    execFile(process.execPath, [join(ROOT, 'bin/tollgate.js'), '--data-dir', rig.dataDir, ...args], { encoding: 'utf8' }, (e, out, err) => {
      res({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, out, err });
    });
  });
}

async function calls(rig: Rig, n: number): Promise<void> {
  const client = new OpenAI({ apiKey: 'sk-test', baseURL: rig.url + '/openai/v1', maxRetries: 0 });
  for (let i = 0; i < n; i++) await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `hi ${i}` }] });
}

async function sync(rig: Rig): Promise<void> {
  for (let i = 0; i < 2; i++) await rig.engine.api.syncNow({});
}

/** The built UI must be at least as new as the Credits view (a stale build is rebuilt). */
function builtFresh(): boolean {
  if (!existsSync(join(DIST, 'index.html'))) return false;
  const built = Math.min(...readdirSync(join(DIST, 'assets')).map((f) => statSync(join(DIST, 'assets', f)).mtimeMs));
  return built >= statSync(join(ROOT, 'renderer/src/views/Credits.tsx')).mtimeMs;
}

before(async () => {
  if (!builtFresh()) execFileSync('npx', ['vite', 'build', '--config', 'renderer/vite.config.ts', '--logLevel', 'warn'], { cwd: ROOT, stdio: 'inherit' });
  mkdirSync(SHOTS, { recursive: true });
  b = { dataDir: tempDir('tollgate-ledger-') };
  svc = await startLedger(b);
  laptop = await startRig(['openai'], { syncIntervalMs: 600_000 });
  desktop = await startRig(['openai', 'openrouter'], { syncIntervalMs: 600_000, uiDir: DIST });
  for (const [rig, name] of [[laptop, 'laptop'], [desktop, 'desktop']] as const) {
    const code = (JSON.parse((await ledgerCli(b, ['enroll', '--json'])).stdout) as { code: string }).code;
    await rig.engine.api.syncJoin({ url: svc.url, code, name });
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  const ctx = await browser.newContext({ colorScheme: 'light', locale: 'en-US', viewport: { width: 1360, height: 900 }, reducedMotion: 'reduce' });
  page = await ctx.newPage();
  page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`);
  });
});

after(async () => {
  await browser?.close();
  await laptop?.close();
  await desktop?.close();
  await svc?.stop();
});

test('a grant added on the laptop appears in the desktop\'s open Credits view after a sync, with the same balance; removed there, gone on the laptop', async () => {
  await calls(laptop, 2);
  await calls(desktop, 3);
  await sync(laptop);
  await sync(desktop);
  await page.goto(`${desktop.url}/#token=${desktop.engine.token}`);
  await page.getByTestId('view-overview').waitFor();
  await page.getByTestId('nav-credits').click();
  await page.getByTestId('view-credits').waitFor();
  await page.getByTestId('credits-empty').waitFor();

  const added = await tollgate(laptop, 'credits', 'add', '--provider', 'openai', '--amount', '5', '--expires', '2027-11-30', '--note', 'bought on the laptop', '--json');
  assert.equal(added.code, 0, added.err);
  const id = (JSON.parse(added.out) as { id: string }).id;
  await sync(laptop);
  await sync(desktop);
  await sync(laptop);
  // no reload, no navigation: the view refreshes when the engine says the data changed
  await page.getByTestId(`grant-${id}`).waitFor({ timeout: 15_000 });
  const onLaptop = (await laptop.engine.api.credits({})).providers[0]!;
  const onDesktop = (await desktop.engine.api.credits({})).providers[0]!;
  assert.equal(onDesktop.balance, onLaptop.balance, 'the same balance on both devices, to the nano');
  assert.equal(onDesktop.grants[0]!.drawn, onLaptop.grants[0]!.drawn);
  assert.equal(await page.getByTestId('credits-balance-openai').innerText(), formatUsd(onLaptop.balance, 'en-US'));
  assert.match(await page.getByTestId(`grant-${id}`).innerText(), /bought on the laptop/);
  await page.getByTestId(`grant-${id}`).scrollIntoViewIfNeeded();
  await page.mouse.move(1350, 890);
  await page.screenshot({ path: join(SHOTS, 'credits-sync-1-synced-grant.png'), fullPage: true });

  await page.getByTestId(`grant-remove-${id}`).click();
  await page.getByTestId(`grant-remove-confirm-${id}`).click();
  await page.getByTestId('credits-empty').waitFor();
  await sync(desktop);
  await sync(laptop);
  assert.deepEqual((await laptop.engine.api.credits({})).providers, [], 'removed on the desktop: gone on the laptop');
  const list = await tollgate(laptop, 'credits', 'list');
  assert.match(list.out, /No credits recorded/);
  assert.deepEqual(pageErrors, []);
});

test('OpenRouter reconciliation in the view: joined per generation id, the unmatched generations listed', async () => {
  // the calls of test/fixtures/reconcile/openrouter-generations.csv (see test/integration/reconcile-openrouter.test.ts)
  const client = new OpenAI({ apiKey: 'sk-or-test', baseURL: `${desktop.url}/openrouter/api/v1`, maxRetries: 0 });
  const ids: string[] = [];
  for (let i = 0; i < 4; i++) {
    desktop.fakes.openrouter!.next({ usage: { prompt_tokens: 1000 + i, completion_tokens: 500 } });
    if (i === 2) {
      const s = await client.chat.completions.create({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'stream' }], stream: true });
      let id = '';
      for await (const c of s) id ||= c.id;
      ids.push(id);
    } else ids.push((await client.chat.completions.create({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: `hi ${i}` }] })).id);
  }
  const day = new Date().toISOString().slice(0, 10);
  const csv = readFileSync(join(ROOT, 'test/fixtures/reconcile/openrouter-generations.csv'), 'utf8').replaceAll('2025-11-30', day);
  await page.getByTestId('reconcile-provider').selectOption('openrouter');
  await page.getByTestId('reconcile-file').setInputFiles({ name: 'openrouter_activity.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
  await page.getByTestId('reconcile-generations').waitFor();
  assert.match(await page.getByTestId('reconcile-generations').innerText(), /2 matched · 1 cost differs · 1 billed by the provider but not metered · 1 metered but not billed/);
  assert.match(await page.getByTestId(`reconcile-gen-${ids[1]}`).innerText(), /cost differs/);
  assert.match(await page.getByTestId(`reconcile-gen-${ids[3]}`).innerText(), /metered, not billed/);
  assert.match(await page.getByTestId('reconcile-gen-gen-1750000099-77a1c0ffee5eed0ba5e1').innerText(), /billed, not metered/);
  assert.match(await page.getByTestId(`reconcile-row-${day}-gpt-4o-mini`).innerText(), /not billed/);
  await page.getByTestId('reconcile-card').scrollIntoViewIfNeeded();
  await page.mouse.move(1350, 890);
  await page.screenshot({ path: join(SHOTS, 'credits-sync-2-openrouter-generations.png'), fullPage: true });
  assert.deepEqual(pageErrors, []);
});
