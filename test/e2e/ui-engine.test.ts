/**
 * UI end-to-end against the REAL engine: there is no mock bridge. Every number the page shows
 * comes from `startEngine` (temp data dir, fake upstreams on 127.0.0.1), seeded through its
 * proxy with the official `openai` and `@anthropic-ai/sdk` SDKs, over the real HTTP + SSE bridge.
 *
 * - builds the renderer when dist/renderer is missing or older than renderer/src
 * - opens `${rig.url}/#token=...` in Chromium and drives every view
 * - screenshots of every view, light and dark: /tmp/ui-shots/<view>-<theme>.png
 *   (and test-results/screenshots/engine-<step>.png for the behaviour steps)
 * - waits for conditions only (no fixed sleeps): it runs on a loaded 2-core machine
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startRig, eventually, tempDir, type Rig } from '../fixtures/engine.ts';
import { Ledger, type CallRow } from '../../electron/engine/ledger.ts';
import { newCallId } from '../../electron/engine/ids.ts';
import { formatUsd } from '../../renderer/src/format.ts';
import { COMMANDS } from '../../renderer/src/snippets.ts';

// Functions passed to page.waitForFunction run in the browser; the root tsconfig has no DOM lib.
interface PageElement {
  textContent: string | null;
}
declare const document: {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): ArrayLike<PageElement> & Iterable<PageElement>;
};

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const DIST = join(ROOT, 'dist/renderer');
const SHOTS = join(ROOT, 'test-results/screenshots');
const VIEW_SHOTS = process.env.UI_SHOTS_DIR ?? '/tmp/ui-shots';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const LOCALE = 'en-US';
const MODEL = 'gpt-4o-mini';
const CLAUDE = 'claude-haiku-4-5';
const UNPRICED = 'acme-finetune-v2';
const WAIT = { timeout: 15_000 };

const VIEWS = ['overview', 'calls', 'compare', 'quote', 'budgets', 'keys', 'prices', 'settings'] as const;
type View = (typeof VIEWS)[number];

let rig: Rig;
let browser: Browser;
let ctx: BrowserContext;
let page: Page;
const pageErrors: string[] = [];
/** 4xx answers the tests provoke on purpose (an invalid quote): not page errors */
const expectedHttpErrors: RegExp[] = [];

const sdk = (apiKey = 'sk-test', project?: string) =>
  new OpenAI({ apiKey, baseURL: rig.url + '/openai/v1', maxRetries: 0, ...(project ? { defaultHeaders: { 'x-tollgate-project': project } } : {}) });
const chat = (client: OpenAI, model = MODEL) => client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] });
const claude = () => new Anthropic({ apiKey: 'sk-ant-test', baseURL: rig.url + '/anthropic', maxRetries: 0 });

async function statusOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 200;
  } catch (e) {
    if (e instanceof OpenAI.APIError && typeof e.status === 'number') return e.status;
    throw e;
  }
}

function watch(p: Page): void {
  p.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
  p.on('console', (msg) => {
    if (msg.type() === 'error' && !expectedHttpErrors.some((re) => re.test(msg.location().url))) pageErrors.push(`console: ${msg.text()} @ ${msg.location().url}`);
  });
  p.on('response', (r) => {
    if (r.status() >= 400 && !expectedHttpErrors.some((re) => re.test(r.url()))) pageErrors.push(`http ${r.status()}: ${r.request().method()} ${r.url()}`);
  });
}

async function gotoView(view: View, p = page): Promise<void> {
  await p.getByTestId(`nav-${view}`).click();
  await p.getByTestId(`view-${view}`).waitFor(WAIT);
}

async function shot(step: string): Promise<void> {
  await page.mouse.move(1350, 890); // no hover artefacts
  await page.screenshot({ path: join(SHOTS, `engine-${step}.png`), fullPage: true });
}

/** Wait until the element's text satisfies `test` (the engine answers asynchronously). */
async function textEventually(p: Page, testId: string, test: (t: string) => boolean, what: string): Promise<string> {
  let last = '';
  await eventually(async () => {
    last = await p.getByTestId(testId).first().innerText();
    return test(last);
  }, `${what} (last: ${JSON.stringify(last)})`, 15_000);
  return last;
}

function newestMtime(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return t;
}

before(async () => {
  const index = join(DIST, 'index.html');
  const stale = !existsSync(index) || statSync(index).mtimeMs < Math.max(newestMtime(join(ROOT, 'renderer/src')), newestMtime(join(ROOT, 'shared')));
  if (stale) execFileSync('npx', ['vite', 'build', '--config', 'renderer/vite.config.ts', '--logLevel', 'warn'], { cwd: ROOT, stdio: 'inherit' });
  mkdirSync(SHOTS, { recursive: true });
  mkdirSync(VIEW_SHOTS, { recursive: true });
  rig = await startRig(['openai', 'anthropic'], { uiDir: DIST });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  ctx = await browser.newContext({ colorScheme: 'light', locale: LOCALE, viewport: { width: 1360, height: 900 }, reducedMotion: 'reduce', acceptDownloads: true });
  page = await ctx.newPage();
  watch(page);
  await page.goto(`${rig.url}/#token=${rig.engine.token}`);
  await page.getByTestId('view-overview').waitFor(WAIT);
  // the SSE stream is up before we make calls, so live updates are what we test
  await page.waitForFunction(() => document.querySelector('[data-testid="connection"]')?.textContent?.includes('Live'), undefined, WAIT);
});

after(async () => {
  await ctx?.close();
  await browser?.close();
  await rig?.close();
});

describe('UI against the real engine', () => {
  test('an SDK call shows up live on Overview, and in Calls as "1,000 in / 500 out" with itemized lines', async (t) => {
    await gotoView('overview');
    rig.fakes.openai!.next({ usage: { prompt_tokens: 1000, completion_tokens: 500 } });
    const t1 = Date.now();
    const res = await chat(sdk());
    assert.equal(res.usage?.prompt_tokens, 1000);
    // 1000 × $0.15/M + 500 × $0.60/M = $0.00045, rendered with its significant sub-cent digits
    await page.waitForFunction(() => document.querySelector('[data-testid="spend-today"]')?.textContent === '$0.00045', undefined, WAIT);
    t.diagnostic(`Overview updated ${Date.now() - t1} ms after the response (no reload)`);
    await shot('1-overview');

    await gotoView('calls');
    const row = page.getByTestId('calls-row').filter({ hasText: MODEL });
    await row.first().waitFor(WAIT);
    assert.equal(await page.getByTestId('calls-row').count(), 1);
    // the engine's canonical usage, read in words (the old mock-shaped reader showed "inputTokens 1000, …")
    assert.match(await row.first().innerText(), /1,000 in \/ 500 out/);
    await row.first().click();
    await page.getByTestId('call-detail').waitFor();
    assert.equal(await page.getByTestId('detail-cost').innerText(), '$0.00045');
    const items = await page.getByTestId('detail-items').innerText();
    assert.match(items, /Input tokens\s+1,000\s+\$0\.15 \/ 1M tokens\s+\$0\.00015/);
    assert.match(items, /Output tokens\s+500\s+\$0\.60 \/ 1M tokens\s+\$0\.0003\b/);
    assert.match(items, /Total\s+\$0\.00045/);
    const usage = await page.getByTestId('detail-usage').innerText();
    assert.match(usage, /Input tokens \(not cached\)\s+1,000/);
    assert.match(usage, /Output tokens\s+500/);
    assert.doesNotMatch(usage, /inputTokens|outputTokens/);
    await shot('1-calls');
    await page.keyboard.press('Escape');
    await page.getByTestId('call-detail').waitFor({ state: 'detached' });
  });

  test('Budgets: invalid input is refused in plain words by the field and sends nothing', async () => {
    await gotoView('budgets');
    await page.getByTestId('cap-scope').selectOption('project');
    await page.getByTestId('cap-limit').fill('-5');
    await page.getByTestId('cap-thresholds').fill('50,abc');
    await page.getByTestId('cap-save').click();
    const limitErr = await page.getByTestId('cap-limit-error').innerText();
    const thrErr = await page.getByTestId('cap-thresholds-error').innerText();
    const scopeErr = await page.getByTestId('cap-scope-value-error').innerText();
    for (const e of [limitErr, thrErr, scopeErr]) {
      assert.doesNotMatch(e, /E_[A-Z]|scopeValue|decimal string|\balerts\b/, `plain words: ${e}`);
    }
    assert.match(limitErr, /^The limit /);
    assert.match(thrErr, /"abc" is not a whole percent/);
    await page.getByTestId('cap-limit').fill('0');
    await page.getByTestId('cap-thresholds').fill('50,80');
    await page.getByTestId('cap-scope').selectOption('global');
    await page.getByTestId('cap-save').click();
    assert.match(await page.getByTestId('cap-limit-error').innerText(), /The limit must be greater than zero/);
    assert.equal((await rig.engine.api.caps({})).length, 0, 'nothing was sent to the engine');
  });

  test('Budgets and Overview: sub-cent caps and alerts keep their significant digits ("$0.00045 of $0.0005", never "$0.00 of $0.00")', async () => {
    await page.getByTestId('cap-limit').fill('0.0005');
    await page.getByTestId('cap-thresholds').fill('50,80');
    await page.getByTestId('cap-alert-only').check();
    await page.getByTestId('cap-save').click();
    const bar = page.locator('[data-testid="caps-list"] [data-testid^="cap-bar-"]');
    await bar.first().waitFor(WAIT);
    const capId = ((await bar.first().getAttribute('data-testid')) ?? '').replace(/^cap-bar-/, '');
    assert.match(await bar.first().innerText(), /\$0\.00045\s+of \$0\.0005\s+90%/);
    const caps = await rig.engine.api.caps({});
    assert.equal(caps.length, 1);
    assert.equal(caps[0]!.cap.hard, false);

    // one more call crosses both thresholds: the alert history shows amounts with their digits
    rig.fakes.openai!.next({ usage: { prompt_tokens: 1000, completion_tokens: 500 } });
    await chat(sdk());
    const alerts = await eventually(async () => {
      const a = await rig.engine.api.alerts({});
      return a.length >= 1 ? a : null;
    }, 'alerts booked');
    await page.getByTestId('alert-row').first().waitFor(WAIT);
    const alertText = await page.getByTestId('alert-row').first().innerText();
    assert.ok(alertText.includes(formatUsd(alerts[0]!.spent, LOCALE)), `${alertText} shows ${alerts[0]!.spent}`);
    assert.ok(alertText.includes('$0.0005'), alertText);
    assert.doesNotMatch(alertText, /\$0\.00\b|\$0\.01\b/);
    await shot('2-budgets-subcent');

    await gotoView('overview');
    await textEventually(page, `cap-bar-${capId}`, (t) => /\$0\.0009\s+of \$0\.0005/.test(t), 'overview cap bar');
    await gotoView('budgets');
    await page.getByTestId(`cap-delete-${capId}`).click();
    await page.getByTestId(`cap-delete-confirm-${capId}`).click();
    await page.getByTestId(`cap-bar-${capId}`).waitFor({ state: 'detached' });
  });

  test('a hard global cap created in Budgets blocks the next call with 402 and shows on Overview', async () => {
    await page.getByTestId('cap-scope').selectOption('global');
    await page.getByTestId('cap-period').selectOption('month');
    await page.getByTestId('cap-limit').fill('0.0001');
    await page.getByTestId('cap-thresholds').fill('50,80,100');
    await page.getByTestId('cap-hard').check();
    await page.getByTestId('cap-save').click();
    const bar = page.locator('[data-testid="caps-list"] [data-testid^="cap-bar-"]');
    await bar.first().waitFor(WAIT);
    const capId = ((await bar.first().getAttribute('data-testid')) ?? '').replace(/^cap-bar-/, '');
    const caps = await rig.engine.api.caps({});
    assert.equal(caps.length, 1);
    assert.equal(caps[0]!.cap.hard, true);
    assert.equal(caps[0]!.cap.limit, '0.0001');

    const upstreamBefore = rig.fakes.openai!.requests.length;
    assert.equal(await statusOf(chat(sdk())), 402);
    assert.equal(rig.fakes.openai!.requests.length, upstreamBefore, 'blocked call never reached the upstream');

    await gotoView('overview');
    await textEventually(page, `cap-bar-${capId}`, (t) => /\$0\.0009[\s\S]*of \$0\.0001/.test(t), 'hard cap on overview');
    await shot('2-cap');

    await gotoView('budgets');
    await page.getByTestId(`cap-delete-${capId}`).click();
    await page.getByTestId(`cap-delete-confirm-${capId}`).click();
    await page.getByTestId(`cap-bar-${capId}`).waitFor({ state: 'detached' });
    await eventually(async () => (await rig.engine.api.caps({})).length === 0, 'cap removed');
  });

  test('the Pause switch reads "off" while calls flow, and "on" refuses calls', async () => {
    await gotoView('budgets');
    const sw = page.getByRole('switch', { name: 'Pause all calls' });
    assert.equal(await sw.getAttribute('aria-checked'), 'false');
    assert.equal(await page.getByTestId('pause-state').innerText(), 'off');
    assert.equal(await statusOf(chat(sdk())), 200, 'calls flow while the switch is off');
    await sw.click();
    await page.getByTestId('paused-banner').waitFor(WAIT);
    assert.equal(await sw.getAttribute('aria-checked'), 'true');
    assert.equal(await page.getByTestId('pause-state').innerText(), 'on');
    assert.equal(await statusOf(chat(sdk())), 402);
    await sw.click();
    await page.getByTestId('paused-banner').waitFor({ state: 'detached' });
    assert.equal(await statusOf(chat(sdk())), 200);
  });

  test('Projects & keys: a key made in the UI works, shows its spend and last use, and a revoked key\'s 401 reads "auth error" in Calls', async () => {
    await gotoView('keys');
    await page.getByTestId('key-name').fill('e2e engine key');
    await page.getByTestId('key-provider').selectOption('openai');
    await page.getByTestId('key-project').fill('e2e');
    await page.getByTestId('key-secret').fill('sk-real-xyz');
    await page.getByTestId('key-create').click();
    await page.getByTestId('key-token-value').waitFor(WAIT);
    const token = (await page.getByTestId('key-token-value').innerText()).trim();
    assert.match(token, /^tgk_[A-Za-z0-9_-]{16,}$/);

    const n = rig.fakes.openai!.requests.length;
    rig.fakes.openai!.next({ usage: { prompt_tokens: 1000, completion_tokens: 500 } });
    const ok = await chat(sdk(token));
    assert.ok(ok.choices.length > 0);
    assert.equal(rig.fakes.openai!.requests[n]!.headers['authorization'], 'Bearer sk-real-xyz', 'the real key is swapped in upstream');
    await page.getByRole('button', { name: 'Done, I copied it' }).click();

    const row = page.getByTestId('key-row').filter({ hasText: 'e2e engine key' });
    await textEventually(page, 'key-spent', (t) => t.includes('$0.00045') && t.includes('1 call'), 'key spend');
    assert.doesNotMatch(await row.getByTestId('key-last-used').innerText(), /never/);
    const project = page.getByTestId('project-row').filter({ hasText: 'e2e' });
    await project.first().waitFor(WAIT);
    assert.match(await project.first().innerText(), /e2e\s+1\s+\$0\.00045/);
    await shot('5-keys');

    await row.locator('[data-testid^="key-revoke-"]').first().click();
    const confirm = row.locator('[data-testid^="key-revoke-confirm-"]');
    await confirm.waitFor();
    await confirm.click();
    await row.getByText(/revoked/).waitFor(WAIT);
    assert.equal(await statusOf(chat(sdk(token))), 401);
    assert.equal(rig.fakes.openai!.requests.length, n + 1, 'revoked key never reached the upstream');

    await gotoView('calls');
    const refused = page.getByTestId('calls-row').filter({ hasText: 'auth error' });
    await refused.first().waitFor(WAIT);
    assert.equal(await page.getByTestId('calls-row').filter({ hasText: /\bblocked\b/ }).filter({ hasText: 'e2e' }).count(), 0, 'a 401 is not "blocked"');
  });

  test('Calls: substring filters and a date range are applied by the engine; CSV download; unpriced reads "unpriced", never $0.00', async () => {
    // more traffic: an Anthropic call and a model the catalog does not know, in project acme-support
    await claude().messages.create({ model: CLAUDE, max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });
    await chat(sdk('sk-test', 'acme-support'), UNPRICED);
    await eventually(async () => (await rig.engine.api.calls({ modelContains: UNPRICED })).length === 1, 'unpriced call booked');

    await gotoView('calls');
    await page.getByTestId('calls-row').filter({ hasText: UNPRICED }).first().waitFor(WAIT);
    const unpricedRow = page.getByTestId('calls-row').filter({ hasText: UNPRICED }).first();
    assert.match(await unpricedRow.innerText(), /unpriced/);
    assert.doesNotMatch(await unpricedRow.innerText(), /\$0\.00\b/);
    await unpricedRow.click();
    assert.equal(await page.getByTestId('detail-cost').innerText(), 'unpriced');
    await page.keyboard.press('Escape');

    const rowsText = () => page.getByTestId('calls-row').allInnerTexts();
    await page.getByTestId('filter-model').fill('4O-MI'); // substring, any case
    await eventually(async () => {
      const r = await rowsText();
      return r.length > 0 && r.every((x) => x.includes(MODEL));
    }, 'model contains "4o-mi"', 15_000);
    assert.equal((await rowsText()).length, (await rig.engine.api.calls({ modelContains: '4o-mi', limit: 1000 })).length);
    await page.getByTestId('filter-model').fill('');
    await page.getByTestId('filter-project').fill('support');
    await eventually(async () => {
      const r = await rowsText();
      return r.length === 1 && r[0]!.includes('acme-support');
    }, 'project contains "support"', 15_000);
    await page.getByTestId('filter-project').fill('');
    await page.getByTestId('filter-status').selectOption('blocked');
    await eventually(async () => {
      const r = await rowsText();
      return r.length === (await rig.engine.api.calls({ status: 'blocked' })).length && r.every((x) => /blocked|auth error/.test(x));
    }, 'status filter', 15_000);
    await page.getByTestId('filter-status').selectOption('');

    const today = new Intl.DateTimeFormat('en-CA', { timeZone: (await rig.engine.api.settings({})).timeZone }).format(Date.now());
    const tomorrow = new Date(Date.parse(today + 'T12:00:00Z') + 86_400_000).toISOString().slice(0, 10);
    await page.getByTestId('filter-from').fill(tomorrow);
    await page.getByTestId('calls-empty').waitFor(WAIT);
    await page.getByTestId('filter-from').fill(today);
    await page.getByTestId('filter-to').fill(today);
    const all = await rig.engine.api.calls({ limit: 1000 });
    await eventually(async () => (await rowsText()).length === all.length, `today's ${all.length} calls`, 15_000);
    await shot('6-calls-filtered');

    const [download] = await Promise.all([page.waitForEvent('download', WAIT), page.getByTestId('calls-csv').click()]);
    const csv = readFileSync((await download.path())!, 'utf8').trim().split(/\r\n/);
    assert.equal(csv[0], 'id,time_utc,provider,model,endpoint,project,key,status,http_status,input_tokens,output_tokens,cost_usd,unpriced,estimated,duration_ms,device');
    assert.equal(csv.length - 1, all.length, 'one line per call in the range');
    const first = all.find((c) => c.model === MODEL && c.status === 'ok' && c.cost === '0.00045')!;
    assert.ok(csv.some((l) => l.startsWith(first.id + ',') && l.includes(',1000,500,0.00045,false,')), 'a call with its usage and exact cost');
    assert.ok(csv.some((l) => l.includes(`,${UNPRICED},`) && l.includes(',,true,')), 'an unpriced call has no cost, not 0');
    assert.ok(csv.some((l) => l.includes(',auth error,401,')), 'the revoked key\'s call');
    await page.getByTestId('filter-from').fill('');
    await page.getByTestId('filter-to').fill('');
  });

  test('Calls → Runs: a workflow run\'s calls are summed per run and node', async () => {
    const run = new OpenAI({ apiKey: 'sk-test', baseURL: rig.url + '/openai/v1', maxRetries: 0, defaultHeaders: { 'x-tollgate-workflow': 'thumbs', 'x-tollgate-run': 'run-42' } });
    for (const node of ['prompt', 'caption']) {
      rig.fakes.openai!.next({ usage: { prompt_tokens: 1000, completion_tokens: 500 } });
      await run.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] }, { headers: { 'x-tollgate-node': node } });
    }
    await gotoView('calls');
    await page.getByTestId('calls-tab-runs').click();
    const row = page.getByTestId('runs-row').filter({ hasText: 'run-42' });
    await row.waitFor(WAIT);
    assert.match(await row.innerText(), /thumbs[\s\S]*run-42[\s\S]*2[\s\S]*\$0\.0009\b/);
    await page.getByTestId('calls-tab-calls').click();
  });

  test('Compare: defaults to the models in the ledger, keeps picks across views, and prices 10,000 × 1,200/400 on gpt-4o-mini at $4.20', async () => {
    await gotoView('compare');
    await page.getByTestId('workload-kind-chat').click();
    // no search: the user's own models are picked already (most spent first), not retired ones
    const mine = page.getByTestId(`compare-model-openai:${MODEL}`);
    await mine.waitFor(WAIT);
    assert.equal(await mine.isChecked(), true);
    assert.equal(await page.getByTestId(`compare-model-anthropic:${CLAUDE}`).isChecked(), true);
    assert.equal(await page.getByTestId('compare-model-openai:ada').isChecked(), false);
    assert.equal(await page.getByTestId('compare-model-openai:davinci').isChecked(), false);

    await page.getByTestId('wl-calls').fill('10000');
    await page.getByTestId('wl-input').fill('1200');
    await page.getByTestId('wl-output').fill('400');
    const row = page.getByTestId('compare-row').filter({ has: page.getByText(`openai:${MODEL}`, { exact: true }) });
    await row.waitFor(WAIT);
    await eventually(async () => (await row.locator('td.num').first().innerText()) === '$4.20', 'compare total $4.20', 15_000);
    const api = await rig.engine.api.compare({ workload: { kind: 'chat', calls: 10000, inputTokens: 1200, outputTokens: 400 }, models: [`openai:${MODEL}`] });
    assert.equal(formatUsd(api.rows[0]!.cost, LOCALE), '$4.20');

    // a pick survives a visit to another view
    await page.getByTestId('compare-search').fill('gpt-4.1-nano');
    const nano = page.getByTestId('compare-model-openai:gpt-4.1-nano');
    await nano.check();
    await gotoView('prices');
    await gotoView('compare');
    await page.getByTestId('compare-search').fill('gpt-4.1-nano');
    assert.equal(await page.getByTestId('compare-model-openai:gpt-4.1-nano').isChecked(), true);
    await page.getByTestId('compare-search').fill('');
    await shot('3-compare');

    // replay: a true per-call figure beside an "actual" row with what those calls cost
    await page.getByTestId('workload-kind-replay').click();
    const actual = page.getByTestId('compare-actual');
    await actual.waitFor(WAIT);
    const rep = await rig.engine.api.compare({ workload: { kind: 'replay', period: 'month' }, models: [`openai:${MODEL}`] });
    assert.ok(rep.replay && rep.replay.calls >= 5, `replayed ${rep.replay?.calls} calls`);
    assert.match(await actual.innerText(), new RegExp(`Actual[\\s\\S]*${formatUsd(rep.replay!.actual, LOCALE).replace(/[$.]/g, '\\$&')}[\\s\\S]*${formatUsd(rep.replay!.actualPerCall, LOCALE).replace(/[$.]/g, '\\$&')}`));
    const perCall = rep.rows[0]!.perUnit!;
    const replayRow = page.getByTestId('compare-row').filter({ has: page.getByText(`openai:${MODEL}`, { exact: true }) });
    await eventually(async () => (await replayRow.locator('td.num').nth(1).innerText()) === formatUsd(perCall, LOCALE), 'per-call figure', 15_000);
    assert.ok(Number(perCall) < Number(rep.rows[0]!.cost), 'per call is less than the whole replay');
    await shot('3-compare-replay');
  });

  test('Compare: rows whose names repeat say which provider they are', async () => {
    await page.getByTestId('workload-kind-chat').click();
    const rows = (await rig.engine.api.prices({ limit: 10_000 })).filter((r) => r.kind === 'token');
    const byName = new Map<string, typeof rows>();
    for (const r of rows) byName.set(r.name, [...(byName.get(r.name) ?? []), r]);
    const pair = [...byName.values()].find((g) => new Set(g.map((r) => r.provider)).size >= 2 && g.some((r) => r.provider === 'openai'))!;
    assert.ok(pair, 'the catalog has one name under two providers');
    const two = [pair.find((r) => r.provider === 'openai')!, pair.find((r) => r.provider !== 'openai')!];
    for (const r of two) {
      await page.getByTestId('compare-search').fill(r.model);
      const box = page.getByTestId(`compare-model-${r.provider}:${r.model}`);
      if (!(await box.isChecked())) await box.check();
    }
    await page.getByTestId('compare-search').fill('');
    for (const r of two) {
      const row = page.getByTestId('compare-row').filter({ has: page.getByText(`${r.provider}:${r.model}`, { exact: true }) });
      await row.waitFor(WAIT);
      assert.ok((await row.innerText()).includes(`${r.name} · ${r.provider}`), `${r.provider}:${r.model} is labelled with its provider`);
    }
    await shot('3-compare-same-names');
  });

  test('Quote: pre-filled with an example whose min / expected / max match the engine; errors in plain words', async () => {
    await gotoView('quote');
    const body = JSON.parse(await page.getByTestId('quote-body').inputValue()) as unknown;
    await page.getByTestId('quote-submit').click();
    await page.getByTestId('quote-total-max').waitFor(WAIT);
    const q = await rig.engine.api.quote({ kind: 'request', provider: 'openai', body });
    for (const k of ['min', 'expected', 'max'] as const) {
      assert.equal(await page.getByTestId(`quote-total-${k}`).innerText(), formatUsd(q[k], LOCALE));
      assert.equal(await page.getByTestId(`quote-total-${k}`).getAttribute('title'), `$${q[k]} exactly`);
    }
    await shot('4-quote');

    expectedHttpErrors.push(/\/_tollgate\/rpc\/quote$/);
    await page.getByTestId('quote-body').fill('{"messages": []}');
    await page.getByTestId('quote-submit').click();
    const alert = page.locator('[data-testid="quote-input"] [role="alert"]');
    await alert.waitFor(WAIT);
    const text = await alert.innerText();
    assert.doesNotMatch(text, /E_[A-Z]/, text);
    assert.match(text, /model/i);
    await page.getByTestId('quote-mode-workflow').click();
    assert.match(await page.locator('[data-testid="quote-input"] textarea').inputValue(), /nodes:/, 'the workflow example is there too');
  });

  test('Prices: the true total, a provider filter, pages, plain labels; the unpriced model can get a price', async () => {
    await gotoView('prices');
    const all = await rig.engine.api.prices({ limit: 10_000 });
    assert.ok(all.length > 500);
    await textEventually(page, 'prices-count', (t) => t.startsWith(`${all.length.toLocaleString('en-US')} models`), 'true total');
    assert.equal(await page.getByTestId('price-row').count(), 50);
    await page.getByTestId('prices-next').click();
    await textEventually(page, 'prices-page', (t) => t.startsWith('Page 2 of'), 'page 2');
    const table = await page.getByTestId('prices-catalog').innerText();
    assert.doesNotMatch(table, /input_mtok|output_mtok|_mtok|_kcount/);
    // which token price data is in use, and how to load newer data
    assert.match(await page.getByTestId('price-data').innerText(), /Token prices: bundled genai-prices data 0\.1\.8 \+ tollgate-genai-supplement@[\d.-]+\. Load newer data \(genai-prices' data\.json, downloaded\) with npx tollgate prices update --from data\.json/);

    await page.getByTestId('prices-provider').selectOption('anthropic');
    const anthropic = all.filter((r) => r.provider === 'anthropic').length;
    await textEventually(page, 'prices-count', (t) => t.startsWith(`${anthropic} model`), 'anthropic total');
    const providers = await page.locator('[data-testid="price-row"] td:first-child').allInnerTexts();
    assert.ok(providers.length === anthropic && providers.every((p) => p === 'anthropic'));
    assert.match(await page.getByTestId('price-row').first().innerText(), /Input\s+\$[\d.]+ \/ 1M tokens/);
    await shot('7-prices');

    await page.getByTestId('prices-tab-unpriced').click();
    const u = page.getByTestId('unpriced-row').filter({ hasText: UNPRICED });
    await u.waitFor(WAIT);
    await u.getByTestId('unpriced-set-price').click();
    await page.getByTestId('override-form').waitFor(WAIT);
    assert.equal(await page.getByTestId('override-model').inputValue(), UNPRICED);
    await page.getByTestId('override-prices').fill('input_mtok=0.5\noutput_mtok=1.5');
    await page.getByTestId('override-save').click();
    await page.getByTestId('override-row').filter({ hasText: UNPRICED }).waitFor(WAIT);
    // the earlier unpriced calls of that model are offered for pricing, and the engine prices them
    const before = (await rig.engine.api.unpriced({})).find((x) => x.model === UNPRICED)!;
    assert.ok(before.calls >= 1);
    const offer = page.getByTestId('reprice-offer');
    await offer.waitFor(WAIT);
    assert.match(await offer.innerText(), new RegExp(`${before.calls} earlier calls? of openai:${UNPRICED} (is|are) unpriced`));
    await page.getByTestId('reprice').click();
    const result = await textEventually(page, 'reprice-result', (t) => t.startsWith('Re-priced'), 're-priced');
    const cost = (await rig.engine.api.report({ by: 'model', period: 'all' })).groups.find((g) => g.key.endsWith(UNPRICED))!.cost;
    assert.equal(result, `Re-priced ${before.calls} ${before.calls === 1 ? 'call' : 'calls'}: ${formatUsd(cost, LOCALE)} booked.`);
    assert.equal((await rig.engine.api.unpriced({})).find((x) => x.model === UNPRICED), undefined);
    await shot('7-prices-repriced');
  });

  test('Overview: the month-end projection agrees with the burn rate beside it and says what it is based on', async () => {
    await gotoView('overview');
    const ov = await rig.engine.api.overview({});
    const burn = formatUsd(ov.burnRatePerHour, LOCALE);
    await textEventually(page, 'burn-rate', (t) => t === burn, 'burn rate');
    const basis = await textEventually(page, 'projection-basis', (t) => t.includes(`${burn}/h`), 'projection basis');
    assert.match(basis, /so far \+ \$[\d.,]+\/h × [\d,]+ h left in the month/);
    // the engine's projection is exactly "so far + rate × hours left"
    const nano = (usd: string) => BigInt(Math.round(Number(usd) * 1e9));
    const expected = nano(ov.projection.monthSoFar) + (nano(ov.projection.ratePerHour) * BigInt(Math.round(ov.projection.hoursLeft * 3_600_000))) / 3_600_000n;
    assert.ok(Math.abs(Number(nano(ov.projectedMonth) - expected)) <= 1, `${ov.projectedMonth} = ${ov.projection.monthSoFar} + ${ov.projection.ratePerHour} × ${ov.projection.hoursLeft}`);
    // the projection moves with the clock (hours left): compare with a fresh engine answer each try
    await eventually(async () => (await page.getByTestId('projected-month').innerText()) === formatUsd((await rig.engine.api.overview({})).projectedMonth, LOCALE), 'projection shown', 15_000);
  });

  test('each view has its own URL: the hash names it, Back returns, a bookmark opens it', async () => {
    await gotoView('calls');
    assert.match(page.url(), /#\/calls$/);
    await gotoView('prices');
    assert.match(page.url(), /#\/prices$/);
    await page.goBack();
    await page.getByTestId('view-calls').waitFor(WAIT);
    await page.goForward();
    await page.getByTestId('view-prices').waitFor(WAIT);
    assert.doesNotMatch(page.url(), /token=/, 'the token is not in the address bar');
    // a bookmark (same tab session): the view opens directly
    await page.goto(`${rig.url}/#/budgets`);
    await page.getByTestId('view-budgets').waitFor(WAIT);
    await page.reload();
    await page.getByTestId('view-budgets').waitFor(WAIT);
    await page.waitForFunction(() => document.querySelector('[data-testid="connection"]')?.textContent?.includes('Live'), undefined, WAIT);
  });

  test('Settings shows only real CLI commands (npx tollgate …), from one place', async () => {
    await gotoView('settings');
    const start = await page.getByTestId('settings-start-commands').locator('code').innerText();
    const exp = await page.getByTestId('settings-export-commands').locator('code').innerText();
    assert.equal(start, COMMANDS.serve);
    assert.equal(exp, [COMMANDS.exportCsv, COMMANDS.exportJsonl, COMMANDS.reportByProject].join('\n'));
    for (const cmd of Object.values(COMMANDS)) assert.match(cmd, /^npx tollgate /);
    const all = await page.getByTestId('view-settings').innerText();
    assert.doesNotMatch(all, /tollgate start|--format json\b/);
  });

  for (const theme of ['light', 'dark'] as const) {
    test(`every view, ${theme}: renders from the engine, no tray talk in a browser, screenshot`, async () => {
      const c = await browser.newContext({ colorScheme: theme, locale: LOCALE, viewport: { width: 1360, height: 900 }, reducedMotion: 'reduce' });
      const p = await c.newPage();
      watch(p);
      try {
        await p.goto(`${rig.url}/#token=${rig.engine.token}`);
        await p.getByTestId('spend-today').waitFor(WAIT);
        for (const view of VIEWS) {
          await gotoView(view, p);
          await ready(p, view);
          const text = await p.getByTestId(`view-${view}`).innerText();
          assert.doesNotMatch(text, /\btray\b/i, `${view} mentions the tray outside the desktop app`);
          assert.doesNotMatch(text, /\bE_[A-Z_]{3,}/, `${view} shows an error code`);
          await p.mouse.move(1350, 890);
          // full page, cut at 2,400 px (the catalog page is long) so the shot stays legible
          const height = Math.min(2400, await p.evaluate(() => (globalThis as unknown as { document: { documentElement: { scrollHeight: number } } }).document.documentElement.scrollHeight));
          await p.screenshot({ path: join(VIEW_SHOTS, `${view}-${theme}.png`), fullPage: true, clip: { x: 0, y: 0, width: 1360, height } });
        }
      } finally {
        await c.close();
      }
    });
  }

  test('without a token the page says how to open it, with a real command', async () => {
    const c = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    const p = await c.newPage();
    await p.goto(`${rig.url}/`);
    await p.getByTestId('no-token').waitFor(WAIT);
    assert.match(await p.getByTestId('no-token').innerText(), /npx tollgate open/);
    await p.screenshot({ path: join(VIEW_SHOTS, 'no-token-light.png') });
    await c.close();
  });

  test('no page errors during the run', () => {
    assert.deepEqual(pageErrors, []);
  });
});

/** A fixture ledger: `n` finished calls written through the engine's own Ledger (as the proxy books them). */
function seededDataDir(n: number): string {
  const dir = tempDir('tollgate-ui-big-');
  const L = new Ledger(dir, { writerThread: false });
  const now = Date.now();
  for (let i = 0; i < n; i++) {
    const row: CallRow = {
      id: newCallId(), ts: now - (n - i) * 1000, provider: i % 3 ? 'openai' : 'anthropic', model: i % 3 ? MODEL : CLAUDE, endpoint: i % 3 ? 'chat.completions' : 'messages',
      project: `project-${i % 4}`, workflow: null, run: null, node: null, keyId: null, keyFingerprint: null, keyName: null, status: 'ok', httpStatus: 200,
      stream: false, durationMs: 120, ttfbMs: 60, usage: { inputTokens: 1000, outputTokens: 500 }, items: [], costNano: 450_000n, reservedNano: 0n,
      quoteMaxNano: null, quoteExpectedNano: null, estimated: false, unpriced: false, unpricedReason: null, priceSource: null, error: null, blockedBy: null, prompt: null,
    };
    L.recordEnd(row);
  }
  L.flush(true);
  L.close();
  return dir;
}

describe('special states, each on its own real engine', () => {
  test('an empty ledger teaches how to route a first call, with this engine\'s proxy URL', async () => {
    const empty = await startRig(['openai'], { uiDir: DIST });
    const c = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    try {
      const p = await c.newPage();
      watch(p);
      await p.goto(`${empty.url}/#token=${empty.engine.token}`);
      await p.getByTestId('empty-overview').waitFor(WAIT);
      assert.ok((await p.getByTestId('empty-snippet').innerText()).includes(`baseURL: '${empty.url}/openai/v1'`));
      await p.screenshot({ path: join(VIEW_SHOTS, 'overview-empty-light.png'), fullPage: true });
    } finally {
      await c.close();
      await empty.close();
    }
  });

  test('a wrong token shows the not-authorised page', async () => {
    const c = await browser.newContext();
    try {
      const p = await c.newPage();
      expectedHttpErrors.push(/\/_tollgate\//); // the engine refuses the wrong token: that is the point
      await p.goto(`${rig.url}/#token=wrong-token`);
      await p.getByTestId('no-token').waitFor(WAIT);
    } finally {
      await c.close();
      expectedHttpErrors.pop();
    }
  });

  test('Calls copes with thousands of rows: keyset pages as you scroll, only visible rows in the DOM', async () => {
    const big = await startRig(['openai'], { uiDir: DIST, dataDir: seededDataDir(3000) });
    const c = await browser.newContext({ viewport: { width: 1360, height: 900 } });
    try {
      const p = await c.newPage();
      watch(p);
      await p.goto(`${big.url}/#token=${big.engine.token}`);
      await p.getByTestId('spend-today').waitFor(WAIT);
      await gotoView('calls', p);
      await p.getByTestId('calls-row').first().waitFor(WAIT);
      const loaded = async () => Number((await p.getByTestId('calls-count').innerText()).replace(/[^\d]/g, ''));
      assert.equal(await loaded(), 200, 'the first page');
      await eventually(async () => {
        await p.getByTestId('calls-scroll').evaluate((el) => el.scrollTo({ top: el.scrollHeight }));
        return (await loaded()) >= 1000;
      }, 'scrolling loads older pages', 30_000);
      const domRows = await p.getByTestId('calls-row').count();
      assert.ok(domRows < 120, `only visible rows are in the DOM (${domRows})`);
      // a filter is applied by the engine over all 3,000, not over what was loaded
      await p.getByTestId('filter-project').fill('project-3');
      await eventually(async () => {
        const rows = await p.getByTestId('calls-row').allInnerTexts();
        return rows.length > 0 && rows.every((r) => r.includes('project-3'));
      }, 'project filter', 15_000);
    } finally {
      await c.close();
      await big.close();
    }
  });

  test('200 % zoom stays readable: no horizontal scroll on Overview and Budgets', async () => {
    const c = await browser.newContext({ viewport: { width: 680, height: 450 }, deviceScaleFactor: 2 });
    try {
      const p = await c.newPage();
      watch(p);
      await p.goto(`${rig.url}/#token=${rig.engine.token}`);
      await p.getByTestId('spend-today').waitFor(WAIT);
      const overflow = () => p.evaluate(() => {
        const d = (globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }).document.documentElement;
        return d.scrollWidth - d.clientWidth;
      });
      assert.ok((await overflow()) <= 1, `no horizontal scroll on Overview (${await overflow()} px)`);
      await p.screenshot({ path: join(VIEW_SHOTS, 'overview-zoom200-light.png') });
      await gotoView('budgets', p);
      await p.getByTestId('pause-switch').waitFor(WAIT);
      assert.ok((await overflow()) <= 1, `no horizontal scroll on Budgets (${await overflow()} px)`);
      await p.screenshot({ path: join(VIEW_SHOTS, 'budgets-zoom200-light.png') });
    } finally {
      await c.close();
    }
  });

  test('no page errors in these states', () => {
    assert.deepEqual(pageErrors, []);
  });
});

/** What each view must show once its data is in. */
async function ready(p: Page, view: View): Promise<void> {
  switch (view) {
    case 'overview':
      await p.getByTestId('projection-basis').waitFor(WAIT);
      await p.locator('[data-testid="spend-chart"] .recharts-bar-rectangle').first().waitFor(WAIT);
      break;
    case 'calls':
      await p.getByTestId('calls-row').first().waitFor(WAIT);
      break;
    case 'compare':
      await p.getByTestId('compare-row').first().waitFor(WAIT);
      break;
    case 'quote':
      await p.getByTestId('quote-submit').click();
      await p.getByTestId('quote-total-max').waitFor(WAIT);
      break;
    case 'budgets':
      await p.getByTestId('alert-row').first().waitFor(WAIT);
      break;
    case 'keys':
      await p.getByTestId('project-row').first().waitFor(WAIT);
      await p.getByTestId('key-row').first().waitFor(WAIT);
      break;
    case 'prices':
      await p.getByTestId('price-row').nth(5).waitFor(WAIT);
      break;
    case 'settings':
      await p.getByTestId('settings-proxy-url').waitFor(WAIT);
      break;
  }
}
