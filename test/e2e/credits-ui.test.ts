/**
 * The Credits and Statements views against the REAL engine: calls through the proxy with the
 * official openai SDK, grants added in the form, a provider export reconciled, a statement shown,
 * closed (the engine's clock is moved past the grace time) and its printable HTML rendered in
 * Chromium, with the numbers on the page checked against the JSON.
 * Screenshots: test-results/screenshots/credits-<step>.png
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startRig, type Rig } from '../fixtures/engine.ts';
import { periodOf } from '../../shared/statements.ts';
import { formatUsd } from '../../renderer/src/format.ts';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const DIST = join(ROOT, 'dist/renderer');
const SHOTS = join(ROOT, 'test-results/screenshots');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let rig: Rig;
let browser: Browser;
let ctx: BrowserContext;
let page: Page;
let clock: number | null = null;
const pageErrors: string[] = [];

const chat = (project: string) => new OpenAI({ apiKey: 'sk-test', baseURL: rig.url + '/openai/v1', maxRetries: 0, defaultHeaders: { 'x-tollgate-project': project } })
  .chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });

async function gotoView(view: string): Promise<void> {
  await page.getByTestId(`nav-${view}`).click();
  await page.getByTestId(`view-${view}`).waitFor();
}
async function shot(step: string, p: Page = page): Promise<void> {
  await p.mouse.move(1350, 890);
  await p.screenshot({ path: join(SHOTS, `credits-${step}.png`), fullPage: true });
}

/** The built UI must contain these views (a stale build from before them is rebuilt). */
function builtWithCredits(): boolean {
  if (!existsSync(join(DIST, 'index.html'))) return false;
  return readdirSync(join(DIST, 'assets')).some((f) => f.endsWith('.js') && readFileSync(join(DIST, 'assets', f), 'utf8').includes('credit-form'));
}

before(async () => {
  if (!builtWithCredits()) execFileSync('npx', ['vite', 'build', '--config', 'renderer/vite.config.ts', '--logLevel', 'warn'], { cwd: ROOT, stdio: 'inherit' });
  mkdirSync(SHOTS, { recursive: true });
  rig = await startRig(['openai'], { uiDir: DIST, now: () => clock ?? Date.now() });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  ctx = await browser.newContext({ colorScheme: 'light', locale: 'en-US', viewport: { width: 1360, height: 900 }, reducedMotion: 'reduce' });
  page = await ctx.newPage();
  page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`);
  });
  for (let i = 0; i < 3; i++) await chat('acme');
  await page.goto(`${rig.url}/#token=${rig.engine.token}`);
  await page.getByTestId('view-overview').waitFor();
});

after(async () => {
  await ctx?.close();
  await browser?.close();
  await rig?.close();
});

describe('Credits and Statements views against the real engine', () => {
  test('1. grants added in the form are drawn by the metered calls, promo first', async () => {
    await gotoView('credits');
    await page.getByTestId('credits-empty').waitFor();
    await page.getByTestId('credit-amount').fill('5');
    await page.getByTestId('credit-expires').fill('2027-11-30');
    await page.getByTestId('credit-note').fill('invoice 118');
    await page.getByTestId('credit-add').click();
    await page.getByTestId('credits-openai').waitFor();
    await page.getByTestId('credit-amount').fill('0.00001');
    await page.getByTestId('credit-promo').check();
    await page.getByTestId('credit-add').click();
    await page.locator('[data-testid^="grant-cr_"]').nth(1).waitFor();
    const st = await rig.engine.api.credits({});
    const p = st.providers[0]!;
    assert.equal(p.grants.length, 2);
    const promo = p.grants.find((g) => g.promo)!;
    assert.equal(promo.drawn, '0.00001', 'the three calls (about $0.00001 each in the fake) use the promo credit up first');
    assert.equal(promo.state, 'used');
    assert.equal(await page.getByTestId('credits-balance-openai').innerText(), formatUsd(p.balance, 'en-US'));
    assert.match(await page.getByTestId('credits-summary-openai').innerText(), /credits last/);
    // bad input is shown, not thrown
    await page.getByTestId('credit-amount').fill('lots');
    await page.getByTestId('credit-add').click();
    await page.getByTestId('credit-form').getByTestId('error').waitFor();
    assert.match(await page.getByTestId('credit-form').getByTestId('error').innerText(), /amount/i);
    await shot('1-credits');
    // the Overview shows what is left
    await gotoView('overview');
    await page.getByTestId('overview-credits').waitFor();
    assert.equal(await page.getByTestId('overview-credits-openai').innerText(), formatUsd(p.balance, 'en-US'));
    await page.getByTestId('overview-credits').scrollIntoViewIfNeeded();
    await shot('1-overview');
    await gotoView('credits');
  });

  test('2. reconciliation: a provider export with a mismatched day and an unmetered line, with the daily difference chart', async () => {
    const today = new Date().toISOString().slice(0, 10);
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    const t = (d: string) => Math.floor(Date.parse(d) / 1000);
    const head = 'start_time,end_time,start_time_iso,end_time_iso,organization_id,organization_name,project_id,project_name,line_item,amount_value,amount_currency';
    const csv = [head,
      `${t(today)},${t(today) + 86400},${today}T00:00:00+00:00,,org-1,Org,proj_1,Default,"gpt-4o-mini-2024-07-18, input",0.25,usd`,
      `${t(yesterday)},${t(yesterday) + 86400},${yesterday}T00:00:00+00:00,,org-1,Org,proj_1,Default,"gpt-4.1-2025-04-14, input",1.40,usd`,
    ].join('\n');
    await page.getByTestId('reconcile-file').setInputFiles({ name: 'costs.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await page.getByTestId('reconcile-result').waitFor();
    assert.match(await page.getByTestId(`reconcile-row-${today}-gpt-4o-mini`).innerText(), /mismatch/);
    assert.match(await page.getByTestId(`reconcile-row-${yesterday}-gpt-4-1`).innerText(), /billed by the provider but not metered/);
    assert.match(await page.getByTestId('reconcile-unmetered').innerText(), /\$1\.40/);
    await page.getByTestId('reconcile-chart').locator('.recharts-bar-rectangle').first().waitFor();
    await page.getByTestId('reconcile-card').scrollIntoViewIfNeeded();
    await shot('2-reconcile');
    // an export with unknown columns: a clear error, nothing imported
    await page.getByTestId('reconcile-file').setInputFiles({ name: 'x.csv', mimeType: 'text/csv', buffer: Buffer.from('date,cost\n2026-11-30,1\n') });
    await page.getByTestId('reconcile-card').getByTestId('error').waitFor();
    assert.match(await page.getByTestId('reconcile-card').getByTestId('error').innerText(), /expected the columns of the OpenAI cost export/);
  });

  test('3. statements: open with running totals, then closed with a hash; the printable page shows the JSON\'s numbers', async () => {
    await gotoView('statements');
    const month = new Date().toISOString().slice(0, 7);
    await page.getByTestId(`statement-row-acme-${month}`).waitFor();
    await page.getByTestId(`statement-open-acme-${month}`).click();
    await page.getByTestId('statement-view').waitFor();
    const openJson = (await rig.engine.api.statement({ project: 'acme', period: month })).statement;
    assert.equal(await page.getByTestId('statement-total').innerText(), `$${openJson.total}`);
    assert.equal(await page.getByTestId('statement-hash').count(), 0, 'an open statement has no hash');
    await shot('3-statement-open');

    // the day's statement, 48 h after the day ended: closed on first use, with markup and a fee
    const ts = rig.engine.ledger.calls({ project: 'acme', limit: 1 })[0]!.ts;
    const day = periodOf('day', ts);
    clock = day.end + 48 * 3_600_000 + 1;
    await page.getByTestId('statement-project').fill('acme');
    await page.getByTestId('statement-period').fill(day.key);
    await page.getByTestId('statement-markup').fill('15');
    await page.getByTestId('statement-fee').fill('5');
    await page.getByTestId('statement-show').click();
    await page.getByTestId('statement-hash').waitFor();
    const closed = (await rig.engine.api.statement({ project: 'acme', period: day.key })).statement;
    assert.equal(closed.status, 'closed');
    assert.match(await page.getByTestId('statement-hash').innerText(), new RegExp(closed.hash!));
    assert.equal(await page.getByTestId('statement-total').innerText(), `$${closed.total}`);
    const billed = await page.getByTestId('statement-line-billed').allInnerTexts();
    assert.deepEqual(billed, closed.lines.map((l) => `$${l.billed}`));
    await page.getByTestId('statements-list').getByText(day.key).waitFor();
    await shot('3-statement-closed');

    // the printable page, as a client sees it
    const html = (await rig.engine.api.statement({ project: 'acme', period: day.key, format: 'html' })).content;
    const printable = await ctx.newPage();
    await printable.setContent(html);
    const total = await printable.locator('[data-total]').innerText();
    assert.equal(total, `$${closed.total}`);
    assert.deepEqual(await printable.locator('[data-billed]').allInnerTexts(), closed.lines.map((l) => `$${l.billed}`));
    await shot('4-printable', printable);
    await printable.close();
    clock = null;
    assert.deepEqual(pageErrors.filter((e) => !/status of 400/.test(e)), []);
  });
});
