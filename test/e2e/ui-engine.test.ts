/**
 * UI end-to-end against the REAL engine (no mock bridge).
 *
 * - builds the renderer if dist/renderer/index.html is missing
 * - starts a rig (real engine on a temp data dir + the local openai fake) that serves the UI at /
 * - opens `${rig.url}/#token=...` in Chromium (light theme) and drives the real HTTP + SSE bridge
 * - calls go through the official openai SDK pointed at the proxy
 * - screenshots: test-results/screenshots/engine-<step>.png
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startRig, eventually, type Rig } from '../fixtures/engine.ts';
import { formatUsd } from '../../renderer/src/format.ts';

// Functions passed to page.waitForFunction run in the browser; the root tsconfig has no DOM lib.
declare const document: {
  querySelector(selector: string): { textContent: string | null } | null;
};

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const DIST = join(ROOT, 'dist/renderer');
const SHOTS = join(ROOT, 'test-results/screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const LOCALE = 'en-US';
const MODEL = 'gpt-4o-mini';

let rig: Rig;
let browser: Browser;
let ctx: BrowserContext;
let page: Page;
const pageErrors: string[] = [];

const sdk = (apiKey = 'sk-test') => new OpenAI({ apiKey, baseURL: rig.url + '/openai/v1', maxRetries: 0 });
const chat = (client: OpenAI) => client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] });

async function statusOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (e) {
    if (e instanceof OpenAI.APIError && typeof e.status === 'number') return e.status;
    throw e;
  }
}

async function gotoView(view: string): Promise<void> {
  await page.getByTestId(`nav-${view}`).click();
  await page.getByTestId(`view-${view}`).waitFor();
}

async function shot(step: string): Promise<void> {
  await page.mouse.move(1350, 890); // no hover artefacts
  await page.screenshot({ path: join(SHOTS, `engine-${step}.png`), fullPage: true });
}

before(async () => {
  if (!existsSync(join(DIST, 'index.html'))) {
    execFileSync('npx', ['vite', 'build', '--config', 'renderer/vite.config.ts', '--logLevel', 'warn'], { cwd: ROOT, stdio: 'inherit' });
  }
  mkdirSync(SHOTS, { recursive: true });
  rig = await startRig(['openai'], { uiDir: DIST });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  ctx = await browser.newContext({ colorScheme: 'light', locale: LOCALE, viewport: { width: 1360, height: 900 }, reducedMotion: 'reduce' });
  page = await ctx.newPage();
  page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') pageErrors.push(`console: ${msg.text()} @ ${msg.location().url}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) pageErrors.push(`http ${r.status()}: ${r.request().method()} ${r.url()}`);
  });
  await page.goto(`${rig.url}/#token=${rig.engine.token}`);
  await page.getByTestId('view-overview').waitFor();
  // the SSE stream is up before we make calls, so live updates are what we test
  await page.waitForFunction(() => document.querySelector('[data-testid="connection"]')?.textContent?.includes('Live'), undefined, { timeout: 5000 });
});

after(async () => {
  await ctx?.close();
  await browser?.close();
  await rig?.close();
});

describe('UI against the real engine (light theme)', () => {
  let capId = '';

  test('1. an SDK call shows up live on Overview and in Calls with itemized lines', async (t) => {
    await gotoView('overview');
    rig.fakes.openai!.next({ usage: { prompt_tokens: 1000, completion_tokens: 500 } });
    const t0 = Date.now();
    const res = await chat(sdk());
    assert.equal(res.usage?.prompt_tokens, 1000);
    const t1 = Date.now();
    // 1000 × $0.15/M + 500 × $0.60/M = $0.00045, rendered with its significant sub-cent digits
    assert.equal(formatUsd('0.00045', LOCALE), '$0.00045');
    await page.waitForFunction(() => document.querySelector('[data-testid="spend-today"]')?.textContent === '$0.00045', undefined, { timeout: 3000 });
    t.diagnostic(`SDK call ${t1 - t0} ms; Overview updated ${Date.now() - t1} ms after the response (no reload)`);
    await shot('1-overview');

    await gotoView('calls');
    const row = page.getByTestId('calls-row').filter({ hasText: MODEL });
    await row.first().waitFor({ timeout: 3000 });
    assert.equal(await page.getByTestId('calls-row').count(), 1);
    await row.first().click();
    await page.getByTestId('call-detail').waitFor();
    assert.equal(await page.getByTestId('detail-cost').innerText(), '$0.00045');
    const items = await page.getByTestId('detail-items').innerText();
    assert.match(items, /Input tokens\s+1,000\s+\$0\.15 \/ 1M tokens\s+\$0\.00015/);
    assert.match(items, /Output tokens\s+500\s+\$0\.60 \/ 1M tokens\s+\$0\.0003\b/);
    assert.match(items, /Total\s+\$0\.00045/);
    await shot('1-calls');
    await page.keyboard.press('Escape');
    await page.getByTestId('call-detail').waitFor({ state: 'detached' });
  });

  test('2. a hard global cap created in Budgets blocks the next call with 402 and shows on Overview', async () => {
    await gotoView('budgets');
    await page.getByTestId('cap-scope').selectOption('global');
    await page.getByTestId('cap-period').selectOption('month');
    await page.getByTestId('cap-limit').fill('0.0001');
    await page.getByTestId('cap-hard').check();
    await page.getByTestId('cap-save').click();
    const bar = page.locator('[data-testid="caps-list"] [data-testid^="cap-bar-"]');
    await bar.first().waitFor({ timeout: 3000 });
    capId = ((await bar.first().getAttribute('data-testid')) ?? '').replace(/^cap-bar-/, '');
    const caps = await rig.engine.api.caps({});
    assert.equal(caps.length, 1);
    assert.equal(caps[0]!.cap.id, capId);
    assert.equal(caps[0]!.cap.scope, 'global');
    assert.equal(caps[0]!.cap.period, 'month');
    assert.equal(caps[0]!.cap.hard, true);
    assert.equal(caps[0]!.cap.limit, '0.0001');

    // $0.00045 already spent ≥ $0.0001: the next call is refused before it reaches the upstream
    const upstreamBefore = rig.fakes.openai!.requests.length;
    assert.equal(await statusOf(chat(sdk())), 402);
    assert.equal(rig.fakes.openai!.requests.length, upstreamBefore, 'blocked call never reached the upstream');

    await gotoView('overview');
    await page.getByTestId(`cap-bar-${capId}`).waitFor({ timeout: 3000 });
    assert.match(await page.getByTestId(`cap-bar-${capId}`).innerText(), /\$0\.00045[\s\S]*of \$0\.0001/);
    await shot('2-cap');

    // remove the cap again through the UI so the key step can make a successful call
    await gotoView('budgets');
    await page.getByTestId(`cap-delete-${capId}`).click();
    await page.getByTestId(`cap-delete-confirm-${capId}`).click();
    await page.getByTestId(`cap-bar-${capId}`).waitFor({ state: 'detached' });
    await eventually(async () => (await rig.engine.api.caps({})).length === 0, 'cap removed');
  });

  test('3. Compare: 10000 chat calls × 1200 in / 400 out on openai:gpt-4o-mini = $4.20', async () => {
    await gotoView('compare');
    await page.getByTestId('workload-kind-chat').click();
    await page.getByTestId('wl-calls').fill('10000');
    await page.getByTestId('wl-input').fill('1200');
    await page.getByTestId('wl-output').fill('400');
    await page.getByTestId('compare-search').fill(MODEL);
    const box = page.getByTestId(`compare-model-openai:${MODEL}`);
    await box.waitFor();
    if (!(await box.isChecked())) await box.check();
    const row = page.getByTestId('compare-row').filter({ has: page.getByText(`openai:${MODEL}`, { exact: true }) });
    await row.waitFor({ timeout: 3000 });
    const total = row.locator('td.num').first();
    await eventually(async () => (await total.innerText()) === '$4.20', 'compare total $4.20');

    // the same number the CLI (`tollgate compare`, which calls the engine's compare) prints
    const api = await rig.engine.api.compare({ workload: { kind: 'chat', calls: 10000, inputTokens: 1200, outputTokens: 400 }, models: [`openai:${MODEL}`] });
    assert.equal(formatUsd(api.rows[0]!.cost, LOCALE), '$4.20');
    assert.equal(api.rows[0]!.cost?.replace(/0+$/, ''), '4.2');
    await shot('3-compare');
  });

  test('4. Quote: min / expected / max match the engine API', async () => {
    const body = { model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 100 };
    await gotoView('quote');
    await page.getByTestId('quote-mode-request').click();
    await page.getByTestId('quote-provider').selectOption('openai');
    await page.getByTestId('quote-body').fill(JSON.stringify(body));
    await page.getByTestId('quote-submit').click();
    await page.getByTestId('quote-total-max').waitFor({ timeout: 3000 });

    const q = await rig.engine.api.quote({ kind: 'request', provider: 'openai', body });
    for (const k of ['min', 'expected', 'max'] as const) {
      const shown = await page.getByTestId(`quote-total-${k}`).innerText();
      assert.equal(shown, formatUsd(q[k], LOCALE), `${k}: UI ${shown} vs API ${q[k]}`);
      assert.equal(await page.getByTestId(`quote-total-${k}`).getAttribute('title'), `$${q[k]} exactly`);
    }
    assert.notEqual(q.max, '0');
    await shot('4-quote');
  });

  test('5. Keys: a tgk_ key created in the UI works, and is refused with 401 once revoked', async () => {
    await gotoView('keys');
    await page.getByTestId('key-name').fill('e2e engine key');
    await page.getByTestId('key-provider').selectOption('openai');
    await page.getByTestId('key-project').fill('e2e');
    await page.getByTestId('key-secret').fill('sk-real-xyz');
    await page.getByTestId('key-create').click();
    await page.getByTestId('key-token-value').waitFor({ timeout: 3000 });
    const token = (await page.getByTestId('key-token-value').innerText()).trim();
    assert.match(token, /^tgk_[A-Za-z0-9_-]{16,}$/);
    await shot('5-key-created');

    const n = rig.fakes.openai!.requests.length;
    const ok = await chat(sdk(token));
    assert.ok(ok.choices.length > 0);
    const upstream = rig.fakes.openai!.requests[n]!;
    assert.equal(upstream.headers['authorization'], 'Bearer sk-real-xyz', 'the real key is swapped in upstream');

    await page.getByRole('button', { name: 'Done, I copied it' }).click();
    const row = page.getByTestId('key-row').filter({ hasText: 'e2e engine key' });
    await row.locator('[data-testid^="key-revoke-"]').first().click();
    const confirm = row.locator('[data-testid^="key-revoke-confirm-"]');
    await confirm.waitFor();
    await confirm.click();
    await row.getByText(/revoked/).waitFor({ timeout: 3000 });
    await shot('5-key-revoked');

    assert.equal(await statusOf(chat(sdk(token))), 401);
    assert.equal(rig.fakes.openai!.requests.length, n + 1, 'revoked key never reached the upstream');
  });

  test('no page errors during the run', () => {
    assert.deepEqual(pageErrors, []);
  });
});
