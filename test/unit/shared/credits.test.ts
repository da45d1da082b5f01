/** Credits: burn order, movements, balances from spend totals, runway and alerts (worked examples + properties). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  balancesAt, burnOrder, callOrder, dateStart, deriveMovements, dueCreditAlerts, expiryFromDate, projectRunway, DAY_MS,
  type CallCost, type CreditGrant,
} from '../../../shared/credits.ts';
import { usdToNano } from '../../../shared/money.ts';

const USD = (s: string) => usdToNano(s);
const T0 = dateStart('2026-11-01');

function grant(id: string, over: Partial<CreditGrant> = {}): CreditGrant {
  return { id, provider: 'openai', amountNano: USD('10'), effective: T0, expires: expiryFromDate('2027-10-31'), priority: 50, promo: false, note: null, createdAt: 0, ...over };
}
const call = (id: string, ts: number, cost: string, provider = 'openai'): CallCost => ({ id, ts, provider, costNano: USD(cost) });

test('two grants, different priorities and expiries: drawn in the documented order, with a call split across both', () => {
  // b has the better priority (lower number) but expires later than a: priority decides first
  const a = grant('a', { amountNano: USD('5'), priority: 50, expires: expiryFromDate('2026-12-31') });
  const b = grant('b', { amountNano: USD('3'), priority: 10, expires: expiryFromDate('2027-06-30') });
  const calls = [call('c1', T0 + 1000, '2'), call('c2', T0 + 2000, '2.5'), call('c3', T0 + 3000, '4')];
  const m = [...deriveMovements([a, b], calls)];
  assert.deepEqual(m.map((x) => [x.callId, x.grantId, x.amountNano]), [
    ['c1', 'b', USD('2')],
    ['c2', 'b', USD('1')], // partial draw across both grants
    ['c2', 'a', USD('1.5')],
    ['c3', 'a', USD('3.5')],
    ['c3', null, USD('0.5')], // not covered by credits
  ]);
  // same priority: the sooner expiry burns first
  const a2 = { ...a, priority: 10 };
  assert.equal([...deriveMovements([a2, b], [call('x', T0 + 1, '1')])][0]!.grantId, 'a');
});

test('an expired grant is never drawn, even with balance left; a grant not yet effective neither', () => {
  const old = grant('old', { expires: expiryFromDate('2026-11-10') });
  const later = grant('later', { effective: dateStart('2026-12-01') });
  const m = [...deriveMovements([old, later], [call('c2', dateStart('2026-11-10') + 5, '1'), call('c1', dateStart('2026-11-11'), '1')])];
  // c2 is on the expiry day (still usable), c1 the day after (not)
  assert.deepEqual(m.map((x) => [x.callId, x.grantId]), [['c2', 'old'], ['c1', null]]);
  const b = balancesAt([old, later], dateStart('2026-11-20'), () => USD('1'));
  assert.equal(b[0]!.grants.find((g) => g.grant.id === 'old')!.state, 'expired');
  assert.equal(b[0]!.grants.find((g) => g.grant.id === 'later')!.state, 'pending');
});

test('a correction (negative cost) gives back as negative movements: the uncovered part first, then the grants last drawn first; later calls draw it again', () => {
  const a = grant('a', { amountNano: USD('3'), priority: 10 });
  const b = grant('b', { amountNano: USD('2'), priority: 20 });
  // a batch's estimate (6) drains both grants and 1 is uncovered; its correction (-6) gives it all back; the actual (1.5) draws from a again
  const calls = [call('est', T0 + 1000, '6'), call('corr', T0 + 2000, '-6'), call('actual', T0 + 2000 + 1, '1.5')];
  const m = [...deriveMovements([a, b], calls)];
  assert.deepEqual(m.map((x) => [x.callId, x.grantId, x.amountNano]), [
    ['est', 'a', USD('3')],
    ['est', 'b', USD('2')],
    ['est', null, USD('1')],
    ['corr', null, USD('-1')],
    ['corr', 'b', USD('-2')],
    ['corr', 'a', USD('-3')],
    ['actual', 'a', USD('1.5')],
  ]);
  // the movements sum to the net spend, and each grant's draw equals the totals-based balance
  assert.equal(m.reduce((s, x) => s + x.amountNano, 0n), USD('1.5'));
  const spend = (_p: string, from: number, to: number) => calls.filter((c) => c.ts >= from && c.ts < to).reduce((s, c) => s + c.costNano, 0n);
  const bal = balancesAt([a, b], T0 + DAY_MS, spend)[0]!;
  assert.equal(bal.grants.find((g) => g.grant.id === 'a')!.drawnNano, USD('1.5'));
  assert.equal(bal.grants.find((g) => g.grant.id === 'b')!.drawnNano, 0n);
  // a give-back of a draw made before this derivation started (a window): no grant drew it here, so no grant is named
  assert.deepEqual([...deriveMovements([a, b], [call('corr', T0 + 2000, '-0.5')])].map((x) => [x.grantId, x.amountNano]), [[null, USD('-0.5')]]);
  // a partial correction gives back from the grant drawn last only
  const p = [...deriveMovements([a, b], [call('est', T0 + 1, '4'), call('corr', T0 + 2, '-1.5')])];
  assert.deepEqual(p.slice(2).map((x) => [x.grantId, x.amountNano]), [['b', USD('-1')], ['a', USD('-0.5')]]);
});

test('promotional before paid when priority and expiry are equal; then oldest, then id', () => {
  const paid = grant('a-paid');
  const promo = grant('z-promo', { promo: true });
  assert.equal([...deriveMovements([paid, promo], [call('c', T0 + 1, '1')])][0]!.grantId, 'z-promo');
  const older = grant('z', { effective: T0 - DAY_MS });
  assert.equal([grant('a'), older].sort(burnOrder)[0]!.id, 'z');
  assert.equal([grant('b'), grant('a')].sort(burnOrder)[0]!.id, 'a');
});

test('a top-up with an earlier effective date re-derives later balances', () => {
  const g1 = grant('g1', { amountNano: USD('1') });
  const spend = (_p: string, from: number, to: number) => (from <= T0 + DAY_MS && T0 + DAY_MS < to ? USD('3') : 0n);
  const now = T0 + 5 * DAY_MS;
  assert.equal(balancesAt([g1], now, spend)[0]!.uncoveredNano, USD('2'));
  const topUp = grant('g2', { amountNano: USD('5'), effective: T0, createdAt: now });
  const after = balancesAt([g1, topUp], now, spend)[0]!;
  assert.equal(after.uncoveredNano, 0n);
  assert.equal(after.balanceNano, USD('3'));
});

test('runway at this week\'s pace, and what expires unused', () => {
  const g = grant('g', { amountNano: USD('100'), expires: T0 + 30 * DAY_MS });
  const now = T0 + DAY_MS;
  const bal = balancesAt([g], now, () => 0n)[0]!;
  const r = projectRunway(bal, USD('70'), now); // $10 a day
  assert.equal(r.runsOutAt, now + 10 * DAY_MS);
  assert.equal(r.runwayDays, 10);
  assert.deepEqual(r.expiringUnused, []);
  const slow = projectRunway(bal, USD('7'), now); // $1 a day for 29 days: $71 left at expiry
  assert.deepEqual(slow.expiringUnused, [{ grantId: 'g', expires: g.expires, amountNano: USD('71') }]);
  assert.equal(projectRunway(bal, 0n, now).runsOutAt, null);
  const alerts = dueCreditAlerts(bal, r, now, (n) => String(n));
  assert.deepEqual(alerts.map((a) => `${a.kind}:${a.threshold}`), ['expiry:30']);
  const low = balancesAt([g], now, () => USD('90'))[0]!; // 10 left of 100
  const fired = dueCreditAlerts(low, projectRunway(low, USD('70'), now), now, String).map((a) => `${a.kind}:${a.threshold}`);
  assert.deepEqual(fired, ['balance:10', 'balance:20', 'balance:50', 'expiry:30', 'runway:7']);
});

const arbGrants = fc.array(fc.record({
  amount: fc.bigInt({ min: 1n, max: 50_000_000_000n }),
  eff: fc.integer({ min: 0, max: 20 }),
  len: fc.integer({ min: 1, max: 30 }),
  priority: fc.integer({ min: 0, max: 100 }),
  promo: fc.boolean(),
  provider: fc.constantFrom('openai', 'anthropic'),
}), { maxLength: 6 }).map((gs) => gs.map((g, i): CreditGrant => ({
  id: `g${i}`, provider: g.provider, amountNano: g.amount, effective: T0 + g.eff * DAY_MS, expires: T0 + (g.eff + g.len) * DAY_MS,
  priority: g.priority, promo: g.promo, note: null, createdAt: i,
})));
const arbCalls = fc.array(fc.record({
  t: fc.integer({ min: 0, max: 40 * DAY_MS }),
  cost: fc.bigInt({ min: 0n, max: 5_000_000_000n }),
  provider: fc.constantFrom('openai', 'anthropic'),
}), { maxLength: 80 }).map((cs) => cs.map((c, i): CallCost => ({ id: `c${String(i).padStart(3, '0')}`, ts: T0 + c.t, provider: c.provider, costNano: c.cost })).sort(callOrder));

test('property: movements sum to the covered call costs; no grant over-drawn; uncovered only when no usable grant is left', () => {
  fc.assert(fc.property(arbGrants, arbCalls, (grants, calls) => {
    const ms = [...deriveMovements(grants, calls)];
    const withGrants = new Set(grants.map((g) => g.provider));
    const total = calls.filter((c) => c.costNano > 0n && withGrants.has(c.provider)).reduce((s, c) => s + c.costNano, 0n);
    assert.equal(ms.reduce((s, m) => s + m.amountNano, 0n), total, 'every nano of every call of a provider with credits is a movement (covered or not)');
    const drawn = new Map<string, bigint>();
    for (const m of ms) {
      assert.ok(m.amountNano > 0n);
      if (m.grantId) drawn.set(m.grantId, (drawn.get(m.grantId) ?? 0n) + m.amountNano);
    }
    for (const g of grants) assert.ok((drawn.get(g.id) ?? 0n) <= g.amountNano, 'balances never negative');
    for (const m of ms) {
      const g = grants.find((x) => x.id === m.grantId);
      if (g) assert.ok(m.ts >= g.effective && m.ts < g.expires, 'never drawn outside its dates');
    }
  }), { numRuns: 300 });
});

test('property: balances from spend totals equal the per-call derivation, whatever order the calls arrived in', () => {
  fc.assert(fc.property(arbGrants, arbCalls, fc.integer({ min: 0, max: 45 }), (grants, calls, nowDay) => {
    const now = T0 + nowDay * DAY_MS;
    const shuffled = [...calls].reverse(); // arrival order differs; the derivation sorts by (ts, id)
    const before = calls.filter((c) => c.ts < now);
    const ms = [...deriveMovements(grants, [...shuffled].filter((c) => c.ts < now).sort(callOrder))];
    const spend = (p: string, from: number, to: number) => shuffled.filter((c) => c.provider === p && c.ts >= from && c.ts < to && c.costNano > 0n).reduce((s, c) => s + c.costNano, 0n);
    for (const pb of balancesAt(grants, now, spend)) {
      for (const gb of pb.grants) {
        const drawn = ms.filter((m) => m.grantId === gb.grant.id).reduce((s, m) => s + m.amountNano, 0n);
        assert.equal(gb.drawnNano, drawn, `grant ${gb.grant.id}`);
        assert.ok(gb.remainingNano >= 0n);
      }
      const first = Math.min(...grants.filter((g) => g.provider === pb.provider).map((g) => g.effective));
      const uncovered = ms.filter((m) => m.grantId === null && m.ts >= first && before.find((c) => c.id === m.callId)!.provider === pb.provider).reduce((s, m) => s + m.amountNano, 0n);
      assert.equal(pb.uncoveredNano, uncovered);
    }
  }), { numRuns: 300 });
});

test('property: movements from the balances at a day boundary on equal those derived from the first call (how the engine lists recent movements)', () => {
  fc.assert(fc.property(arbGrants, arbCalls, fc.integer({ min: 0, max: 40 }), (grants, calls, startDay) => {
    const start = T0 + startDay * DAY_MS;
    const all = [...deriveMovements(grants, calls)].filter((m) => m.ts >= start);
    const spend = (p: string, from: number, to: number) => calls.filter((c) => c.provider === p && c.ts >= from && c.ts < to && c.costNano > 0n).reduce((s, c) => s + c.costNano, 0n);
    const at = new Map(balancesAt(grants, start, spend).flatMap((p) => p.grants.map((g) => [g.grant.id, g] as const)));
    const opening = grants.map((g) => ({ ...g, amountNano: at.get(g.id)!.state === 'expired' ? 0n : at.get(g.id)!.remainingNano }));
    const windowed = [...deriveMovements(opening, calls.filter((c) => c.ts >= start))];
    assert.deepEqual(windowed, all);
  }), { numRuns: 300 });
});
