/**
 * Property: over a real ledger (calls written by the ledger's own writer, as local and synced calls
 * are), statements sum exactly to the ledger for their period, whatever order the calls arrived
 * in, before and after later arrivals and the background work (id hashes); balances from the
 * per-day spend (spend_days) equal the per-call derivation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Engine } from '../../electron/engine/engine.ts';
import type { CallRow } from '../../electron/engine/ledger.ts';
import { tempDir } from '../fixtures/engine.ts';
import { parsePeriod } from '../../shared/statements.ts';
import { callOrder, deriveMovements, type CreditGrant } from '../../shared/credits.ts';
import { nanoToUsd, usdToNano } from '../../shared/money.ts';

const MONTH = parsePeriod('2026-10');
const HOUR = 3_600_000;

function row(id: string, ts: number, project: string, model: string, inTok: number, outTok: number, unpriced: boolean): CallRow {
  const inCost = (BigInt(inTok) * 150n) / 1000n, outCost = (BigInt(outTok) * 600n) / 1000n;
  return {
    id, ts, provider: 'openai', model, endpoint: 'chat.completions', project, workflow: inTok % 2 ? 'wf' : null, run: null, node: inTok % 3 ? 'n1' : null,
    keyId: null, keyFingerprint: null, keyName: null, status: 'ok', httpStatus: 200, stream: false, durationMs: 1, ttfbMs: 1, usage: {},
    items: unpriced ? [] : [
      { label: 'Input tokens', quantity: String(inTok), unit: 'token', per: 1_000_000, unitPrice: '0.15', cost: nanoToUsd(inCost), source: 't' },
      { label: 'Output tokens', quantity: String(outTok), unit: 'token', per: 1_000_000, unitPrice: '0.6', cost: nanoToUsd(outCost), source: 't' },
    ],
    costNano: unpriced ? 0n : inCost + outCost, reservedNano: 0n, quoteMaxNano: null, quoteExpectedNano: null, estimated: false,
    unpriced, unpricedReason: unpriced ? 'test' : null, priceSource: null, error: null, blockedBy: null, prompt: null,
  };
}

const arbCall = fc.record({
  t: fc.integer({ min: 0, max: 31 * 24 * HOUR - 1 }),
  project: fc.constantFrom('acme', 'globex'),
  model: fc.constantFrom('gpt-4o-mini', 'gpt-4o'),
  inTok: fc.integer({ min: 0, max: 50_000 }),
  outTok: fc.integer({ min: 0, max: 5_000 }),
  unpriced: fc.boolean(),
});

test('property: statements (open, cached, after late arrivals) equal the ledger for their period; balances equal the per-call derivation', async () => {
  await fc.assert(fc.asyncProperty(fc.array(arbCall, { minLength: 1, maxLength: 40 }), fc.array(arbCall, { maxLength: 15 }), fc.constantFrom('2026-10', '2026-W41', '2026-10-07'), async (first, later, periodKey) => {
    const dir = tempDir('tollgate-prop-');
    const p = parsePeriod(periodKey);
    let now = p.end - HOUR; // the period is open (it closes 48 h after its end)
    const e = new Engine({ dataDir: dir, port: 0, quiet: true, offline: true, now: () => now });
    try {
      let n = 0;
      const write = (cs: typeof first) => {
        // arrival order is not time order
        for (const c of [...cs].reverse()) e.ledger.recordEnd(row(`c${String(n++).padStart(4, '0')}`, MONTH.start + c.t, c.project, c.model, c.inTok, c.outTok, c.unpriced));
        e.ledger.flush(true);
      };
      const ledger = (project: string) => (e.ledger.db.prepare('SELECT COALESCE(SUM(cost_nano), 0) AS c, COUNT(*) AS n FROM calls WHERE project = ? AND ts >= ? AND ts < ?')
        .safeIntegers(true).get(project, p.start, p.end) as { c: bigint; n: bigint });
      const check = async () => {
        for (const project of ['acme', 'globex']) {
          const s = (await e.api.statement({ project, period: periodKey, markup: '12.5' })).statement;
          const l = ledger(project);
          assert.equal(usdToNano(s.cost), l.c, `${project} ${periodKey}: cost = ledger`);
          assert.equal(BigInt(s.calls), l.n);
          assert.equal(s.lines.reduce((x, y) => x + usdToNano(y.billed), 0n), usdToNano(s.total));
        }
      };
      write(first);
      await check(); // cold
      await check(); // again
      write(later); // late and out-of-order arrivals
      await check();
      write(later.map((c) => ({ ...c, t: (c.t + 7 * HOUR) % (31 * 24 * HOUR) })));
      let steps = 0;
      while (e.billing.warmStep()) steps++; // the serving engine's background warming
      assert.ok(steps < 1000);
      await check();
      // balances from the per-day spend = the per-call derivation
      const grants: CreditGrant[] = [
        { id: 'g1', provider: 'openai', amountNano: usdToNano('0.01'), effective: MONTH.start, expires: MONTH.start + 10 * 24 * HOUR, priority: 50, promo: true, note: null, createdAt: 0 },
        { id: 'g2', provider: 'openai', amountNano: usdToNano('0.02'), effective: MONTH.start + 5 * 24 * HOUR, expires: MONTH.end + 100 * 24 * HOUR, priority: 40, promo: false, note: null, createdAt: 0 },
      ];
      const ins = e.ledger.db.prepare('INSERT INTO credit_grants (id, provider, amount_nano, effective_ts, expires_ts, priority, promo, note, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 0)');
      for (const g of grants) ins.run(g.id, g.provider, g.amountNano, g.effective, g.expires, g.priority, g.promo ? 1 : 0);
      now = MONTH.end + 3 * 24 * HOUR + 5;
      const calls = (e.ledger.db.prepare("SELECT id, ts, provider, cost_nano FROM calls WHERE status NOT IN ('blocked', 'pending')").safeIntegers(true).all() as { id: string; ts: bigint; provider: string; cost_nano: bigint }[])
        .map((r) => ({ id: r.id, ts: Number(r.ts), provider: r.provider, costNano: r.cost_nano })).sort(callOrder);
      const ms = [...deriveMovements(grants, calls)];
      const st = await e.api.credits({});
      for (const g of st.providers[0]!.grants) {
        assert.equal(usdToNano(g.drawn), ms.filter((m) => m.grantId === g.id).reduce((x, m) => x + m.amountNano, 0n), g.id);
      }
      // a call synced later for a past day changes the balance at once
      write([{ t: 2 * 24 * HOUR, project: 'acme', model: 'gpt-4o', inTok: 40_000, outTok: 5_000, unpriced: false }]);
      const after = (await e.api.credits({})).providers[0]!;
      const all = (e.ledger.db.prepare("SELECT id, ts, provider, cost_nano FROM calls").safeIntegers(true).all() as { id: string; ts: bigint; provider: string; cost_nano: bigint }[])
        .map((r) => ({ id: r.id, ts: Number(r.ts), provider: r.provider, costNano: r.cost_nano })).sort(callOrder);
      const ms2 = [...deriveMovements(grants, all)];
      for (const g of after.grants) assert.equal(usdToNano(g.drawn), ms2.filter((m) => m.grantId === g.id).reduce((x, m) => x + m.amountNano, 0n), `${g.id} after a late call`);
    } finally {
      e.closeQuietly();
    }
  }), { numRuns: 25 });
});
