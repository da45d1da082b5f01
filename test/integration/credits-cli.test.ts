/**
 * Credits, statements and reconciliation as a user drives them: calls seeded through the proxy with
 * the official openai SDK against the local fake upstream, then `bin/tollgate.js --data-dir …`
 * spawned (it talks to the running engine's control API). The engine's clock is injected so a
 * period can pass its grace time within the test; calls keep their real timestamps.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { startRig, eventually, tempDir, type Rig } from '../fixtures/engine.ts';
import { periodOf } from '../../shared/statements.ts';
import { nanoToUsd, usdToNano } from '../../shared/money.ts';
import type { Alert, CreditMovement, CreditsStatus, EngineEvent, Statement, StatementSummary } from '../../shared/api.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
let rig: Rig;
let clock: number | null = null;
const events: EngineEvent[] = [];

function tollgate(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'bin/tollgate.js'), '--data-dir', rig.dataDir, ...args], { encoding: 'utf8' }, (e, out, err) => {
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, out, err });
    });
  });
}

const sdk = (project: string) => new OpenAI({ apiKey: 'sk-test', baseURL: rig.url + '/openai/v1', maxRetries: 0, defaultHeaders: { 'x-tollgate-project': project } });
async function chat(project: string, n = 1): Promise<void> {
  for (let i = 0; i < n; i++) await sdk(project).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello there' }] });
}
async function ledgerCost(project: string, from: number, to: number): Promise<bigint> {
  rig.engine.flushQuietly();
  const r = rig.engine.ledger.db.prepare(`SELECT COALESCE(SUM(cost_nano), 0) AS c FROM calls WHERE project = ? AND ts >= ? AND ts < ? AND status NOT IN ('blocked', 'pending')`).safeIntegers(true).get(project, from, to) as { c: bigint };
  return r.c;
}

before(async () => {
  rig = await startRig(['openai'], { now: () => clock ?? Date.now() });
  rig.engine.subscribe((e) => events.push(e));
});
after(async () => {
  await rig?.close();
});

test('credits add / list / rm: balance drawn by metered calls, promo first, runway, bad input exits 2', async () => {
  const today = new Date().toISOString().slice(0, 10);
  const paid = await tollgate('credits', 'add', '--provider', 'openai', '--amount', '50', '--expires', '2027-11-30', '--json');
  assert.equal(paid.code, 0, paid.err);
  const promo = await tollgate('credits', 'add', '--provider', 'openai', '--amount', '0.000001', '--expires', '2027-11-30', '--promo', '--note', 'welcome', '--json');
  assert.equal(promo.code, 0, promo.err);
  const promoId = (JSON.parse(promo.out) as { id: string }).id;
  await chat('acme', 3);
  const st = JSON.parse((await tollgate('credits', 'list', '--json')).out) as CreditsStatus;
  const p = st.providers.find((x) => x.provider === 'openai')!;
  const spent = await ledgerCost('acme', 0, Date.now() + 1);
  assert.ok(spent > usdToNano('0.000001'), 'the calls cost more than the promo credit');
  const byId = new Map(p.grants.map((g) => [g.id, g]));
  assert.equal(byId.get(promoId)!.remaining, '0', 'promotional credit burned first');
  assert.equal(byId.get(promoId)!.state, 'used');
  assert.equal(usdToNano(p.balance), usdToNano('50.000001') - spent, 'balance = grants − metered spend, to the nano');
  assert.equal(p.uncovered, '0');
  assert.equal(usdToNano(p.burn7d), spent);
  // at this pace the credits outlast their expiry: the runway ends when they expire, the rest expires unused
  assert.equal(p.runsOutAt, Date.parse('2027-12-01T00:00:00Z'));
  assert.equal(p.expiringUnused.length, 1);
  assert.match(p.summary, /At this week's pace your openai credits last/);
  // movements: one per grant a call drew from, promo first, the split call on both; they sum to the spend
  const mv = JSON.parse((await tollgate('credits', 'movements', '--json')).out) as CreditMovement[];
  assert.equal(mv[0]!.grantId, promoId);
  assert.equal(mv.reduce((x, m) => x + usdToNano(m.amount), 0n), spent);
  assert.equal(mv.filter((m) => m.grantId === promoId).reduce((x, m) => x + usdToNano(m.amount), 0n), usdToNano('0.000001'));
  const split = mv.find((m) => m.grantId === promoId && mv.some((o) => o.callId === m.callId && o.grantId !== promoId));
  assert.ok(split, 'the call that emptied the promo credit drew the rest from the paid one');
  assert.match((await tollgate('credits', 'movements')).out, /gpt-4o-mini/);
  const ov = await rig.engine.api.overview({});
  assert.equal(ov.credits?.[0]?.balance, p.balance, 'the Overview carries balance and runway');
  assert.equal(ov.credits?.[0]?.runwayDays, p.runwayDays);
  const text = await tollgate('credits', 'list');
  assert.match(text.out, /openai: balance \$50\.00 · burn \$0\.0000\d+\/day/);
  assert.match(text.out, /welcome/);
  // the promo credit, used up at once, alerted once (balance 10 %), through the engine's event stream
  const alert = await eventually(() => events.find((e): e is { type: 'alert'; alert: Alert } => e.type === 'alert' && e.alert.kind === 'credit' && e.alert.capId === promoId), 'a credit alert');
  assert.equal(alert.alert.periodKey, 'balance');
  assert.equal(alert.alert.threshold, 10);
  await chat('acme');
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(events.filter((e) => e.type === 'alert' && e.alert.capId === promoId).length, 1, 'once per grant and threshold');
  for (const args of [
    ['credits', 'add', '--provider', 'openai', '--amount', 'lots', '--expires', '2027-01-01'],
    ['credits', 'add', '--provider', 'openai', '--amount', '5', '--expires', '2027-02-30'],
    ['credits', 'add', '--provider', 'openai', '--amount', '5', '--expires', '2026-01-01', '--effective', today],
    ['credits', 'add', '--provider', 'openai', '--amount', '5', '--expires', '2027-01-01', '--priority', '101'],
  ]) {
    const r = await tollgate(...args);
    assert.equal(r.code, 2, `${args.join(' ')} → ${r.code} ${r.err}`);
    assert.match(r.err, /^tollgate: /);
  }
  assert.equal((await tollgate('credits', 'rm', promoId)).code, 0);
  assert.equal((await tollgate('credits', 'rm', promoId)).code, 2);
});

test('statement: open with running totals; closes after the grace time with a hash; a late call lands in the next open period as an adjustment, the closed bytes never change', async () => {
  await chat('globex', 2);
  rig.engine.flushQuietly();
  const ts = rig.engine.ledger.calls({ project: 'globex', limit: 1 })[0]!.ts;
  const day = periodOf('day', ts);
  const next = periodOf('day', day.end);
  const open = await tollgate('statement', '--project', 'globex', '--period', day.key, '--json');
  assert.equal(open.code, 0, open.err);
  const s0 = JSON.parse(open.out) as Statement;
  assert.equal(s0.status, 'open');
  assert.equal(s0.calls, 2);
  assert.equal(usdToNano(s0.cost), await ledgerCost('globex', day.start, day.end), 'the statement equals the ledger for its period');

  // 48 h after the day ended: the statement closes on first use
  clock = day.end + 48 * 3_600_000 + 1;
  const dir = tempDir();
  const csvFile = path.join(dir, 'closed.csv');
  const closed = await tollgate('statement', '--project', 'globex', '--period', day.key, '--markup', '15', '--format', 'csv', '--out', csvFile);
  assert.equal(closed.code, 0, closed.err);
  assert.match(closed.err, /closed statement of globex .* sha256 [0-9a-f]{64}/);
  const bytes = fs.readFileSync(csvFile);
  const html1 = (await tollgate('statement', '--project', 'globex', '--period', day.key, '--format', 'html')).out;
  const json1 = JSON.parse((await tollgate('statement', '--project', 'globex', '--period', day.key, '--json')).out) as Statement;
  assert.equal(json1.status, 'closed');
  assert.match(json1.hash!, /^[0-9a-f]{64}$/);
  assert.equal(json1.lines[0]!.markupPct, '15');

  // a late call for that day (as a sync from another device would bring: a real timestamp in the closed day)
  await chat('globex');
  rig.engine.flushQuietly();
  const late = rig.engine.ledger.calls({ project: 'globex', limit: 1 })[0]!;
  assert.ok(late.ts >= day.start && late.ts < day.end, 'the late call belongs to the closed day');
  rig.engine.flushQuietly();

  const again = await tollgate('statement', '--project', 'globex', '--period', day.key, '--format', 'csv', '--out', csvFile);
  assert.equal(again.code, 0);
  assert.deepEqual(fs.readFileSync(csvFile), bytes, 'a closed statement renders to the same bytes');
  assert.equal((await tollgate('statement', '--project', 'globex', '--period', day.key, '--format', 'html')).out, html1);
  assert.equal((JSON.parse((await tollgate('statement', '--project', 'globex', '--period', day.key, '--json')).out) as Statement).hash, json1.hash);
  // changing the terms of a closed statement is refused
  const refused = await tollgate('statement', '--project', 'globex', '--period', day.key, '--markup', '20');
  assert.equal(refused.code, 2);
  assert.match(refused.err, /closed statements never change/);

  const nxt = JSON.parse((await tollgate('statement', '--project', 'globex', '--period', next.key, '--json')).out) as Statement;
  assert.equal(nxt.status, 'open');
  const adj = nxt.lines.filter((l) => l.kind === 'adjustment');
  assert.ok(adj.length > 0, 'the late call is a prior-period adjustment');
  assert.ok(adj.every((l) => l.originalPeriod === day.key));
  assert.equal(nxt.calls, 1);
  assert.equal(usdToNano(nxt.cost), late.costNano);
  const html = (await tollgate('statement', '--project', 'globex', '--period', next.key, '--format', 'html')).out;
  assert.match(html, new RegExp(`prior-period adjustment for ${day.key}`));

  // the next day closes with the adjustment; the day after carries nothing more
  clock = next.end + 48 * 3_600_000 + 1;
  const nxtClosed = JSON.parse((await tollgate('statement', '--project', 'globex', '--period', next.key, '--json')).out) as Statement;
  assert.equal(nxtClosed.status, 'closed');
  assert.equal(nxtClosed.calls, 1);
  const third = JSON.parse((await tollgate('statement', '--project', 'globex', '--period', periodOf('day', next.end).key, '--json')).out) as Statement;
  assert.equal(third.calls, 0, 'an adjustment lands once');

  const list = JSON.parse((await tollgate('statements', 'list', '--project', 'globex', '--json')).out) as StatementSummary[];
  const closedRows = list.filter((r) => r.status === 'closed').map((r) => [r.period, r.hash]);
  assert.deepEqual(closedRows, [[next.key, nxtClosed.hash], [day.key, json1.hash]]);
  assert.equal((await tollgate('statement', '--project', 'globex', '--period', '2026-W99')).code, 2);
  assert.equal((await tollgate('statement', '--project', 'globex', '--period', day.key, '--format', 'pdf')).code, 2);
  clock = null;
});

test('statement --grace: a project\'s periods stay open for its own grace time, remembered; bad values exit 2', async () => {
  await chat('initech');
  rig.engine.flushQuietly();
  const ts = rig.engine.ledger.calls({ project: 'initech', limit: 1 })[0]!.ts;
  const day = periodOf('day', ts);
  for (const bad of ['-1', '1.5', '2161', 'soon']) {
    const r = await tollgate('statement', '--project', 'initech', '--period', day.key, '--grace', bad);
    assert.equal(r.code, 2, `--grace ${bad}: ${r.err}`);
    assert.match(r.err, /grace/);
  }
  const set = await tollgate('statement', '--project', 'initech', '--period', day.key, '--grace', '72', '--json');
  assert.equal(set.code, 0, set.err);
  assert.equal((JSON.parse(set.out) as Statement).status, 'open');
  const month = periodOf('month', ts);
  const listed = (JSON.parse((await tollgate('statements', 'list', '--project', 'initech', '--json')).out) as StatementSummary[]).find((r) => r.period === month.key);
  assert.equal(listed?.closesAt, new Date(month.end + 72 * 3_600_000).toISOString());
  // 49 h after the day: past the default 48 h, still open for initech (remembered, no flag needed)
  clock = day.end + 49 * 3_600_000;
  assert.equal((JSON.parse((await tollgate('statement', '--project', 'initech', '--period', day.key, '--json')).out) as Statement).status, 'open');
  clock = day.end + 72 * 3_600_000;
  const closed = JSON.parse((await tollgate('statement', '--project', 'initech', '--period', day.key, '--json')).out) as Statement;
  assert.equal(closed.status, 'closed');
  assert.equal(closed.calls, 1);
  // back to the default for the project
  assert.equal((await tollgate('statement', '--project', 'initech', '--period', periodOf('day', day.end).key, '--grace', '48')).code, 0);
  assert.equal(rig.engine.ledger.setting('statementGrace:initech'), null);
  clock = null;
});

test('reconcile: an OpenAI cost export with a mismatched day and lines billed but not metered', async () => {
  await chat('acme', 2);
  rig.engine.flushQuietly();
  const today = new Date().toISOString().slice(0, 10);
  const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
  const all = rig.engine.ledger.spend({ provider: 'openai', from: Date.parse(today), to: Date.parse(today) + 86_400_000 }).cost;
  const t = (d: string) => Math.floor(Date.parse(d) / 1000);
  const csv = [
    'start_time,end_time,start_time_iso,end_time_iso,organization_id,organization_name,project_id,project_name,line_item,amount_value,amount_currency',
    `${t(today)},${t(today) + 86400},${today}T00:00:00+00:00,,org-1,Org,proj_1,Default,"gpt-4o-mini-2024-07-18, input",${nanoToUsd(all)},usd`,
    `${t(today)},${t(today) + 86400},${today}T00:00:00+00:00,,org-1,Org,proj_1,Default,"gpt-4o-mini-2024-07-18, output",0.50,usd`,
    `${t(today)},${t(today) + 86400},${today}T00:00:00+00:00,,org-1,Org,proj_1,Default,"gpt-4.1-2025-04-14, input",0.42,usd`,
    `${t(yesterday)},${t(yesterday) + 86400},${yesterday}T00:00:00+00:00,,org-1,Org,proj_1,Default,"gpt-4o-mini-2024-07-18, input",3.10,usd`,
  ].join('\n') + '\n';
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'costs.csv'), csv);
  const r = await tollgate('reconcile', '--provider', 'openai', path.join(dir, 'costs.csv'), '--json');
  assert.equal(r.code, 1, 'something does not match');
  const res = JSON.parse(r.out) as { rows: { day: string; model: string; status: string }[]; unmetered: string };
  const row = (day: string, model: string) => res.rows.find((x) => x.day === day && x.model === model)?.status;
  assert.equal(row(today, 'gpt-4o-mini'), 'mismatch', 'a mismatched day: the provider billed $0.50 more');
  assert.equal(row(today, 'gpt-4-1'), 'unmetered');
  assert.equal(row(yesterday, 'gpt-4o-mini'), 'unmetered');
  assert.equal(res.unmetered, '3.52');
  const human = await tollgate('reconcile', '--provider', 'openai', path.join(dir, 'costs.csv'));
  assert.match(human.out, /billed by the provider but not metered/);
  assert.match(human.out, /Billed by the provider but not metered: \$3\.52/);
  const bad = await tollgate('reconcile', '--provider', 'anthropic', path.join(dir, 'costs.csv'));
  assert.equal(bad.code, 2);
  assert.match(bad.err, /expected the columns of the Anthropic usage export/);
  assert.match(bad.err, /Nothing was imported/);
});
