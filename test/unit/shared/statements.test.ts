/** Statements: periods, line math (markup rounded half-even once per line), exact sums, renderings. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { billedNano, buildStatement, centsText, hashInput, isClosed, nextPeriod, parsePeriod, periodOf, renderCsv, renderHtml, renderJson, type StatementCall } from '../../../shared/statements.ts';
import { divHalfEven, nanoToUsd, usdToNano } from '../../../shared/money.ts';
import type { LineItem } from '../../../shared/api.ts';

test('periods: ISO weeks, months, days (UTC); next period; grace', () => {
  const w = parsePeriod('2026-W48');
  assert.equal(new Date(w.start).toISOString(), '2026-11-23T00:00:00.000Z');
  assert.equal(new Date(w.end).toISOString(), '2026-11-30T00:00:00.000Z');
  assert.equal(periodOf('week', Date.parse('2027-01-01T12:00:00Z')).key, '2026-W53');
  assert.equal(periodOf('week', Date.parse('2024-12-30T12:00:00Z')).key, '2025-W01');
  assert.equal(nextPeriod(parsePeriod('2026-12')).key, '2027-01');
  assert.equal(nextPeriod(parsePeriod('2026-11-30')).key, '2026-12-01');
  assert.throws(() => parsePeriod('2026-W54'), /not an ISO week/);
  assert.throws(() => parsePeriod('2026-13'), /not a month/);
  assert.throws(() => parsePeriod('2026-02-30'), /not a calendar date/);
  assert.throws(() => parsePeriod('last week'), /use a day \(2026-11-30\), an ISO week \(2026-W48\) or a month/);
  const m = parsePeriod('2026-11');
  assert.equal(isClosed(m, m.end + 47 * 3_600_000), false);
  assert.equal(isClosed(m, m.end + 48 * 3_600_000), true);
});

const item = (label: string, quantity: string, unitPrice: string, per: number, cost: string): LineItem => ({ label, quantity, unit: 'token', per, unitPrice, cost, source: 'test' });
const P = parsePeriod('2026-11');

test('markup on a statement of 1,000 lines: each line rounded half-even once, total = sum of rounded lines (not the rounded sum)', () => {
  const calls: StatementCall[] = [];
  for (let i = 0; i < 1000; i++) {
    // 1,000 distinct models: 1,000 lines, each costing $0.005 + i nano
    const cost = nanoToUsd(5_000_000n + BigInt(i));
    calls.push({ id: `c${i}`, ts: P.start + i, provider: 'openai', model: `m${String(i).padStart(4, '0')}`, workflow: null, node: null, costNano: usdToNano(cost), unpriced: false, items: [item('Input tokens', '1000', '0.000005', 1, cost)] });
  }
  const s = buildStatement({ project: 'acme', period: P, status: 'open', closedAt: null, calls, adjustments: [], terms: { markupPct: '15', fee: '5' } });
  assert.equal(s.lines.length, 1001);
  let sum = 0n;
  for (const l of s.lines) {
    const cost = usdToNano(l.cost);
    const expected = l.kind === 'fee' ? usdToNano('5') : divHalfEven(cost * 115n, 100n * 10_000_000n) * 10_000_000n;
    assert.equal(usdToNano(l.billed), expected, l.model);
    sum += usdToNano(l.billed);
  }
  assert.equal(s.total, centsText(sum));
  // each line: 0.005+ * 1.15 = 0.00575.. → $0.01; 1000 lines → $10.00, plus the fee. Rounding the sum once would give $5.75.
  assert.equal(s.total, '15.00');
  assert.equal(s.cost, nanoToUsd(5_000_000n * 1000n + 499_500n));
});

test('half-even: exactly half a cent rounds to the even cent', () => {
  assert.equal(billedNano(usdToNano('0.125'), null), usdToNano('0.12'));
  assert.equal(billedNano(usdToNano('0.135'), null), usdToNano('0.14'));
  assert.equal(billedNano(usdToNano('0.1'), '12.5'), usdToNano('0.11')); // 0.1125 → 0.11
});

test('lines group by model, workflow and node with quantities summed in the provider\'s units; unitemized and unpriced calls are their own lines', () => {
  const calls: StatementCall[] = [
    { id: 'a', ts: P.start, provider: 'openai', model: 'gpt-4o-mini', workflow: 'wf', node: 'n1', costNano: usdToNano('0.00075'), unpriced: false, items: [item('Input tokens', '1000', '0.15', 1_000_000, '0.00015'), item('Output tokens', '1000', '0.6', 1_000_000, '0.0006')] },
    { id: 'b', ts: P.start + 1, provider: 'openai', model: 'gpt-4o-mini', workflow: 'wf', node: 'n1', costNano: usdToNano('0.0003'), unpriced: false, items: [item('Input tokens', '2000', '0.15', 1_000_000, '0.0003')] },
    { id: 'c', ts: P.start + 2, provider: 'openai', model: 'gpt-4o-mini', workflow: 'wf', node: 'n2', costNano: usdToNano('0.00015'), unpriced: false, items: [item('Input tokens', '1000', '0.15', 1_000_000, '0.00015')] },
    { id: 'd', ts: P.start + 3, provider: 'openai', model: 'x', workflow: null, node: null, costNano: 0n, unpriced: true, items: [] },
    { id: 'e', ts: P.start + 4, provider: 'openai', model: 'y', workflow: null, node: null, costNano: usdToNano('0.02'), unpriced: false, items: [] },
  ];
  const s = buildStatement({ project: 'acme', period: P, status: 'open', closedAt: null, calls, adjustments: [], terms: { markupPct: null, fee: null } });
  const n1in = s.lines.find((l) => l.node === 'n1' && l.label === 'Input tokens')!;
  assert.equal(n1in.quantity, '3000');
  assert.equal(n1in.cost, '0.00045');
  assert.equal(n1in.calls, 2);
  assert.ok(s.lines.find((l) => l.node === 'n2'));
  assert.equal(s.lines.find((l) => l.model === 'x')!.label, 'Unpriced calls (not billed)');
  assert.equal(s.lines.find((l) => l.model === 'y')!.label, 'Calls (not itemized)');
  assert.equal(s.unpricedCalls, 1);
  assert.equal(s.cost, '0.0212');
});

const arbCall = fc.record({
  t: fc.integer({ min: 0, max: 29 * 86_400_000 }),
  model: fc.constantFrom('a', 'b', 'c'),
  node: fc.constantFrom(null, 'n1', 'n2'),
  inTok: fc.integer({ min: 0, max: 2_000_000 }),
  outTok: fc.integer({ min: 0, max: 200_000 }),
  unpriced: fc.boolean(),
});

test('property: a statement\'s costs sum exactly to the ledger for its period; billed total = sum of the lines; renderings agree', () => {
  fc.assert(fc.property(fc.array(arbCall, { maxLength: 60 }), fc.constantFrom(null, '15', '12.5', '0.1'), (raw, markup) => {
    const calls: StatementCall[] = raw.map((r, i) => {
      if (r.unpriced) return { id: `c${i}`, ts: P.start + r.t, provider: 'openai', model: r.model, workflow: null, node: r.node, costNano: 0n, unpriced: true, items: [] };
      const inCost = divHalfEven(BigInt(r.inTok) * 150n, 1_000_000n); // $0.15 / 1M in nano
      const outCost = divHalfEven(BigInt(r.outTok) * 600n, 1_000_000n);
      return {
        id: `c${i}`, ts: P.start + r.t, provider: 'openai', model: r.model, workflow: null, node: r.node, costNano: inCost + outCost, unpriced: false,
        items: [item('Input tokens', String(r.inTok), '0.15', 1_000_000, nanoToUsd(inCost)), item('Output tokens', String(r.outTok), '0.6', 1_000_000, nanoToUsd(outCost))],
      };
    });
    const ledger = calls.reduce((s, c) => s + c.costNano, 0n);
    const ids: string[] = [];
    const s = buildStatement({ project: 'p', period: P, status: 'open', closedAt: null, calls, adjustments: [], terms: { markupPct: markup, fee: null } }, ids);
    assert.equal(usdToNano(s.cost), ledger);
    assert.equal(s.lines.reduce((x, l) => x + usdToNano(l.cost), 0n), ledger);
    assert.equal(s.lines.reduce((x, l) => x + usdToNano(l.billed), 0n), usdToNano(s.total));
    assert.equal(s.calls, calls.length);
    assert.equal(ids.length, calls.length);
    // the same calls in another order: the same statement, the same hash input
    const ids2: string[] = [];
    const s2 = buildStatement({ project: 'p', period: P, status: 'open', closedAt: null, calls: [...calls].reverse(), adjustments: [], terms: { markupPct: markup, fee: null } }, ids2);
    assert.equal(renderJson(s2), renderJson(s));
    assert.equal(hashInput(s2, ids2), hashInput(s, ids));
    const csvTotal = renderCsv(s).trim().split('\r\n').at(-1)!.split(',').at(-1);
    assert.equal(csvTotal, s.total);
    assert.ok(renderHtml(s).includes(`data-total>$${s.total.replace(/\B(?=(\d{3})+(?!\d))/g, ',')}<`));
  }), { numRuns: 200 });
});

test('CSV cells that a spreadsheet would run are neutralized; HTML escapes names', () => {
  const calls: StatementCall[] = [{ id: 'a', ts: P.start, provider: 'openai', model: '=HYPERLINK("x")', workflow: '<script>', node: null, costNano: usdToNano('1'), unpriced: false, items: [] }];
  const s = buildStatement({ project: 'p', period: P, status: 'open', closedAt: null, calls, adjustments: [], terms: { markupPct: null, fee: null } });
  assert.ok(renderCsv(s).includes(`"'=HYPERLINK(""x"")"`));
  assert.ok(!renderHtml(s).includes('<script>'));
});
