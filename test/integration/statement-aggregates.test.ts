/**
 * The aggregates the ledger writer keeps with each call (migration 6): statement_lines (per project
 * × day × line) and spend_days (per UTC day × provider). Whatever path a call took into the ledger
 * (the writer thread, a pull from another device, a re-price, a crash recovery, a ledger written
 * before migration 6 and backfilled), a statement made from the aggregates equals the statement
 * made from the calls themselves, byte for byte, and the day spend equals the calls' sums.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { Engine } from '../../electron/engine/engine.ts';
import { Ledger, type CallRow } from '../../electron/engine/ledger.ts';
import { MIGRATIONS } from '../../electron/engine/migrations.ts';
import { tempDir } from '../fixtures/engine.ts';
import { buildStatement, hashInput, parsePeriod, renderCsv, renderJson, type StatementCall } from '../../shared/statements.ts';
import { nanoToUsd } from '../../shared/money.ts';

const MONTH = parsePeriod('2026-10');
const HOUR = 3_600_000;
const DAY = 86_400_000;

function row(id: string, ts: number, o: { project?: string | null; model?: string; inTok?: number; outTok?: number; unpriced?: boolean; quantity?: string; workflow?: string | null; provider?: string } = {}): CallRow {
  const inTok = o.inTok ?? 1000, outTok = o.outTok ?? 100;
  const inCost = (BigInt(inTok) * 150n) / 1000n, outCost = (BigInt(outTok) * 600n) / 1000n;
  const unpriced = o.unpriced ?? false;
  return {
    id, ts, provider: o.provider ?? 'openai', model: o.model ?? 'gpt-4o-mini', endpoint: 'chat.completions', project: o.project === undefined ? 'acme' : o.project, workflow: o.workflow ?? null, run: null, node: null,
    keyId: null, keyFingerprint: null, keyName: null, status: 'ok', httpStatus: 200, stream: false, durationMs: 1, ttfbMs: 1, usage: { inputTokens: inTok, outputTokens: outTok },
    items: unpriced ? [] : [
      { label: 'Input tokens', quantity: o.quantity ?? String(inTok), unit: 'token', per: 1_000_000, unitPrice: '0.15', cost: nanoToUsd(inCost), source: 't' },
      { label: 'Output tokens', quantity: String(outTok), unit: 'token', per: 1_000_000, unitPrice: '0.6', cost: nanoToUsd(outCost), source: 't' },
    ],
    costNano: unpriced ? 0n : inCost + outCost, reservedNano: 0n, quoteMaxNano: null, quoteExpectedNano: null, estimated: false,
    unpriced, unpricedReason: unpriced ? 'test' : null, priceSource: null, error: null, blockedBy: null, prompt: null,
  };
}

/** The statement of a project and period made from its calls, as the engine made it before migration 6. */
function fromCalls(l: Ledger, project: string, key: string, markup: string | null) {
  const p = parsePeriod(key);
  const calls: StatementCall[] = l.statementCalls(project, p.start, p.end).map((x) => x.call);
  return buildStatement({ project, period: p, status: 'open', closedAt: null, calls, adjustments: [], terms: { markupPct: markup, fee: null } });
}

function assertDaysEqualCalls(l: Ledger): void {
  const days = l.db.prepare('SELECT day, provider, calls, cost_nano, unpriced FROM spend_days WHERE calls != 0 OR cost_nano != 0 ORDER BY day, provider').safeIntegers(true).all();
  const calls = l.db.prepare(`SELECT (ts / ${DAY}) * ${DAY} AS day, provider, COUNT(*) AS calls, SUM(cost_nano) AS cost_nano, SUM(unpriced) AS unpriced FROM calls
    WHERE status NOT IN ('blocked', 'pending') GROUP BY 1, 2 ORDER BY 1, 2`).safeIntegers(true).all();
  assert.deepEqual(days, calls, 'spend_days = the calls per day and provider');
}

async function assertStatementsEqualCalls(e: Engine, keys: string[], projects = ['acme', 'globex']): Promise<void> {
  for (const key of keys) {
    for (const project of projects) {
      const got = (await e.api.statement({ project, period: key, markup: '12.5' })).statement;
      const want = fromCalls(e.ledger, project, key, '12.5');
      assert.equal(renderJson(got), renderJson(want), `${project} ${key}: from the aggregates = from the calls`);
    }
  }
}

test('property: statements from the writer-kept lines equal statements from the calls, through the writer, sync pulls, re-pricing and crash recovery', async () => {
  const arbCall = fc.record({
    t: fc.integer({ min: 0, max: 31 * 24 * HOUR - 1 }),
    project: fc.constantFrom('acme', 'globex', null),
    model: fc.constantFrom('gpt-4o-mini', 'gpt-4o', 'gpt-\u0000odd'),
    inTok: fc.integer({ min: 0, max: 50_000 }),
    outTok: fc.integer({ min: 0, max: 5_000 }),
    unpriced: fc.boolean(),
    frac: fc.constantFrom(null, '0.5', '1.25', '0.000000001'),
    path: fc.constantFrom('writer', 'pulled', 'interrupted'),
  });
  await fc.assert(fc.asyncProperty(fc.array(arbCall, { minLength: 1, maxLength: 40 }), fc.array(fc.nat(), { maxLength: 10 }), async (calls, repriceIdx) => {
    const dir = tempDir('tollgate-agg-');
    const now = MONTH.end - HOUR; // the month is open
    const e = new Engine({ dataDir: dir, port: 0, quiet: true, offline: true, now: () => now });
    try {
      const rows = calls.map((c, i) => {
        const r = row(`c${String(i).padStart(4, '0')}`, MONTH.start + c.t, { project: c.project, model: c.model, inTok: c.inTok, outTok: c.outTok, unpriced: c.unpriced, quantity: c.frac ?? undefined });
        return { c, r };
      });
      for (const { c, r } of rows) {
        if (c.path === 'writer') e.ledger.recordEnd(r);
        else if (c.path === 'pulled') e.ledger.insertPulled([{ row: r, device: 'laptop', deviceId: 'dev-2' }]);
        else {
          // journaled as pending, then the process "died": the next start books it as interrupted
          e.ledger.recordStart({ ...r, status: 'pending', quoteExpectedNano: c.unpriced ? null : 1234n });
        }
      }
      e.ledger.flush(true);
      e.ledger.recoverInterrupted();
      // the same pulled call again changes nothing
      const pulled = rows.find((x) => x.c.path === 'pulled');
      if (pulled) assert.equal(e.ledger.insertPulled([{ row: pulled.r, device: 'laptop', deviceId: 'dev-2' }]), 0);
      await assertStatementsEqualCalls(e, ['2026-10', '2026-W44', '2026-10-31']);
      // re-price some unpriced calls (as `prices reprice` does)
      const unpriced = e.ledger.db.prepare("SELECT id FROM calls WHERE unpriced = 1 AND status != 'pending'").pluck().all() as string[];
      const chosen = [...new Set(repriceIdx.filter(() => unpriced.length).map((i) => unpriced[i % unpriced.length]!))];
      e.ledger.repriceCalls(chosen.map((id) => {
        const r = e.ledger.call(id)!;
        return { row: r, costNano: 777n, items: [{ label: 'Input tokens', quantity: '7', unit: 'token', per: 1_000_000, unitPrice: '111', cost: '0.000000777', source: 'reprice' }], priceSource: 'reprice', estimated: false };
      }));
      await assertStatementsEqualCalls(e, ['2026-10', '2026-W44', '2026-10-31']);
      assertDaysEqualCalls(e.ledger);
      // no line is left that no call contributes to
      assert.equal(e.ledger.db.prepare('SELECT COUNT(*) FROM statement_lines WHERE n <= 0').pluck().get(), 0);
    } finally {
      e.closeQuietly();
    }
  }), { numRuns: 30 });
});

/** A ledger as Tollgate wrote it before migration 6: schema 5, calls with their rollups and totals, one call left pending by a crash. */
function legacyLedger(rows: CallRow[], pending: CallRow[]): string {
  const dir = tempDir('tollgate-legacy-');
  const db = new Database(path.join(dir, 'ledger.sqlite'));
  db.pragma('journal_mode = WAL');
  for (let i = 0; i < 5; i++) db.exec(MIGRATIONS[i]!);
  db.pragma('user_version = 5');
  const ins = db.prepare(`INSERT INTO calls (id, ts, provider, model, endpoint, project, workflow, node, status, usage, items, cost_nano, unpriced, quote_expected_nano) VALUES (?, ?, ?, ?, 'chat.completions', ?, ?, NULL, ?, ?, ?, ?, ?, ?)`);
  const roll = db.prepare(`INSERT INTO rollups (bucket, provider, model, project, key_fp, workflow, calls, cost_nano, unpriced) VALUES (?, ?, ?, ?, '', ?, 1, ?, ?)
    ON CONFLICT DO UPDATE SET calls = calls + 1, cost_nano = cost_nano + excluded.cost_nano, unpriced = unpriced + excluded.unpriced`);
  db.transaction(() => {
    for (const r of rows) {
      ins.run(r.id, r.ts, r.provider, r.model, r.project, r.workflow, 'ok', JSON.stringify(r.usage), JSON.stringify(r.items), r.costNano, r.unpriced ? 1 : 0, null);
      roll.run(Math.floor(r.ts / HOUR) * HOUR, r.provider, r.model, r.project ?? '', r.workflow ?? '', r.costNano, r.unpriced ? 1 : 0);
    }
    for (const r of pending) ins.run(r.id, r.ts, r.provider, r.model, r.project, r.workflow, 'pending', '{}', '[]', 0, 0, 5000);
    db.exec('UPDATE totals SET calls = (SELECT SUM(calls) FROM rollups), cost_nano = (SELECT SUM(cost_nano) FROM rollups), unpriced = (SELECT SUM(unpriced) FROM rollups) WHERE id = 1');
  })();
  db.close();
  return dir;
}

test('a ledger written before migration 6: spend_days from the rollups, statement lines backfilled once from the calls (in a statement, a re-price or the background), the crashed call counted once', async () => {
  const rows: CallRow[] = [];
  for (let i = 0; i < 300; i++) {
    rows.push(row(`old${String(i).padStart(4, '0')}`, MONTH.start + i * 2.5 * HOUR + i, { project: ['acme', 'globex', null][i % 3]!, model: ['gpt-4o-mini', 'gpt-4o'][i % 2]!, inTok: 100 + i, unpriced: i % 7 === 0, workflow: i % 4 ? 'wf' : null, provider: i % 5 ? 'openai' : 'anthropic' }));
  }
  const crashed = row('old-crashed', MONTH.start + 3 * HOUR + 5, { project: 'acme' });
  const dir = legacyLedger(rows, [crashed]);
  const now = MONTH.end - HOUR;
  const e = new Engine({ dataDir: dir, port: 0, quiet: true, offline: true, now: () => now }); // migrates; recovers the crashed call (the lock holder)
  try {
    assert.equal(e.ledger.schemaVersion, MIGRATIONS.length);
    assert.equal(e.ledger.call('old-crashed')!.status, 'interrupted');
    assertDaysEqualCalls(e.ledger);
    const todo = Number(e.ledger.db.prepare('SELECT COUNT(*) FROM statement_backfill').pluck().get());
    assert.ok(todo > 100, `${todo} project-hours to backfill`);
    // new calls after the migration, into hours still to backfill too
    for (let i = 0; i < 20; i++) e.ledger.recordEnd(row(`new${i}`, MONTH.start + i * 2.5 * HOUR + 7, { project: i % 2 ? 'acme' : 'globex', inTok: 5000 + i }));
    e.ledger.flush(true);
    // re-pricing an unpriced call of an hour not backfilled yet: that hour is backfilled first, from the call as it was
    const old = e.ledger.call('old0007')!;
    assert.ok(old.unpriced && old.project === 'globex');
    assert.equal(e.ledger.repriceCalls([{ row: old, costNano: 999n, items: [{ label: 'Input tokens', quantity: '3', unit: 'token', per: 1, unitPrice: '0.000000333', cost: '0.000000999', source: 'reprice' }], priceSource: 'r', estimated: false }]).count, 1);
    // the background warming does a few, a statement does the rest of its period
    for (let i = 0; i < 10; i++) assert.equal(e.billing.warmStep(), true);
    await assertStatementsEqualCalls(e, ['2026-W44', '2026-10', '2026-10-31']);
    assert.equal(Number(e.ledger.db.prepare("SELECT COUNT(*) FROM statement_backfill WHERE hour >= ? AND hour < ?").pluck().get(MONTH.start, MONTH.end)), 0);
    while (e.billing.warmStep()) { /* backfill the rest, then the id hashes */ }
    await assertStatementsEqualCalls(e, ['2026-10']);
    assertDaysEqualCalls(e.ledger);
  } finally {
    e.closeQuietly();
  }
});

test('closing a statement: its hash is over each hour\'s sorted call ids (cached or read), the same whether the id cache was warm or cold', async () => {
  const hashes: string[] = [];
  for (const warm of [false, true]) {
    const dir = tempDir('tollgate-close-');
    let now = MONTH.end - HOUR;
    const e = new Engine({ dataDir: dir, port: 0, quiet: true, offline: true, now: () => now });
    try {
      for (let i = 0; i < 200; i++) e.ledger.recordEnd(row(`c${String(i).padStart(4, '0')}`, MONTH.start + ((i * 7919) % 200) * 0.1 * HOUR + 3 * 24 * HOUR, { inTok: i }));
      e.ledger.flush(true);
      if (warm) while (e.billing.warmStep()) { /* the id hashes of past hours */ }
      assert.equal(Number(e.ledger.db.prepare('SELECT COUNT(*) FROM statement_ids').pluck().get()) > 0, warm);
      now = MONTH.end + 49 * HOUR;
      const closed = (await e.api.statement({ project: 'acme', period: '2026-10', format: 'csv' }));
      // the hash input as defined: per hour "hour:YYYY-MM-DDTHH:COUNT:sha256(sorted ids)"
      const byHour = new Map<number, string[]>();
      for (const { call } of e.ledger.statementCalls('acme', MONTH.start, MONTH.end)) {
        const h = Math.floor(call.ts / HOUR) * HOUR;
        byHour.set(h, [...(byHour.get(h) ?? []), call.id]);
      }
      const entries = [...byHour].map(([h, ids]) => `hour:${new Date(h).toISOString().slice(0, 13)}:${ids.length}:${crypto.createHash('sha256').update(ids.sort().join('\n')).digest('hex')}`);
      const s = closed.statement;
      assert.equal(s.status, 'closed');
      assert.equal(s.hash, crypto.createHash('sha256').update(hashInput({ ...s, hash: null }, entries)).digest('hex'));
      assert.equal(closed.content, renderCsv(s));
      hashes.push(s.hash!);
    } finally {
      e.closeQuietly();
    }
  }
  assert.equal(hashes[0], hashes[1]);
});

test('balances on a ledger with spend_days: a late call for a past day and a re-price change them at once', async () => {
  const dir = tempDir('tollgate-days-');
  const now = Date.UTC(2026, 10, 20, 12);
  const e = new Engine({ dataDir: dir, port: 0, quiet: true, offline: true, now: () => now });
  try {
    await e.api.addCredit({ provider: 'openai', amount: '1', expires: '2027-11-30', effective: '2026-11-01' });
    e.ledger.recordEnd({ ...row('a', Date.UTC(2026, 10, 5, 10)), costNano: 100_000_000n, items: [] });
    e.ledger.recordEnd({ ...row('b', Date.UTC(2026, 10, 20, 9), { unpriced: true }) });
    e.ledger.flush(true);
    assert.equal((await e.api.credits({})).providers[0]!.balance, '0.9');
    e.ledger.insertPulled([{ row: { ...row('c', Date.UTC(2026, 10, 6, 1)), costNano: 50_000_000n, items: [] }, device: 'laptop', deviceId: 'd2' }]);
    assert.equal((await e.api.credits({})).providers[0]!.balance, '0.85');
    e.ledger.repriceCalls([{ row: e.ledger.call('b')!, costNano: 250_000_000n, items: [], priceSource: 'r', estimated: false }]);
    assert.equal((await e.api.credits({})).providers[0]!.balance, '0.6');
    assertDaysEqualCalls(e.ledger);
  } finally {
    e.closeQuietly();
  }
});
