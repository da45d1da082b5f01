/** Reconciliation: provider exports with their real column headers, per day × model, tolerance, unmetered lines. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { detectFormat, generationWithin, normalizeModel, parseExport, reconcile, reconcileGenerations, withinTolerance, type LedgerAmount } from '../../../shared/reconcile.ts';
import { usdToNano } from '../../../shared/money.ts';
import type { Usage } from '../../../shared/usage.ts';

const FIX = path.resolve(import.meta.dirname, '../../fixtures/reconcile');
const read = (f: string) => fs.readFileSync(path.join(FIX, f), 'utf8');
const noPrice = () => null;
const L = (day: string, model: string, cost: string, calls = 1): LedgerAmount => ({ day, model, costNano: usdToNano(cost), calls });

test('OpenAI cost export: per day × model; a mismatched day and a model billed but never metered', () => {
  const parsed = parseExport('openai', read('openai-costs.csv'), noPrice);
  assert.equal(parsed.format, 'openai-cost');
  assert.deepEqual(parsed.amounts.map((a) => [a.day, a.model, a.costNano]), [
    ['2025-11-30', 'gpt-4o-mini', usdToNano('0.75')],
    ['2025-12-01', 'gpt-4o', usdToNano('1.25')],
    ['2025-12-01', 'gpt-4o-mini', usdToNano('0.3')],
  ]);
  const r = reconcile('openai', parsed, [
    L('2025-11-30', 'gpt-4o-mini', '0.7460', 10), // within 1 %
    L('2025-12-01', 'gpt-4o-mini', '0.2', 4), // off by $0.10: a mismatched day
    L('2025-11-29', 'gpt-4o-mini', '9', 3), // outside the export's days: ignored
  ]);
  const by = (day: string, model: string) => r.rows.find((x) => x.day === day && x.model === model)!;
  assert.equal(by('2025-11-30', 'gpt-4o-mini').status, 'match');
  assert.equal(by('2025-12-01', 'gpt-4o-mini').status, 'mismatch');
  assert.equal(by('2025-12-01', 'gpt-4o-mini').difference, '-0.1');
  assert.equal(by('2025-12-01', 'gpt-4o').status, 'unmetered');
  assert.equal(r.unmetered, '1.25', 'billed by the provider but not metered');
  assert.equal(r.mismatches, 2);
  assert.equal(r.providerTotal, '2.3');
  assert.equal(r.tollgateTotal, '0.946');
  assert.deepEqual(r.daily.map((d) => d.day), ['2025-11-30', '2025-12-01']);
});

test('usage exports are priced by the caller from the provider\'s token counts (OpenAI, Anthropic)', () => {
  const seen: [string, Usage][] = [];
  const price = (m: string, u: Usage) => (seen.push([m, u]), 42n);
  const o = parseExport('openai', read('openai-usage.csv'), price);
  assert.equal(o.format, 'openai-usage');
  assert.equal(o.pricedByTollgate, true);
  assert.deepEqual(seen[0], ['gpt-4o-mini', { inputTokens: 1000000, outputTokens: 1000000 }]);
  const a = parseExport('anthropic', read('anthropic-usage.csv'), price);
  assert.equal(a.format, 'anthropic-usage');
  assert.deepEqual(seen[1], ['claude-sonnet-4-5', { inputTokens: 1000000, outputTokens: 100000 }]);
  assert.equal(a.amounts[0]!.costNano, 42n);
});

test('Anthropic cost export (display names) and OpenRouter activity export', () => {
  const a = parseExport('anthropic', read('anthropic-cost.csv'), noPrice);
  assert.equal(a.format, 'anthropic-cost');
  assert.deepEqual(a.amounts.map((x) => [x.model, x.costNano]), [['claude-sonnet-4-5', usdToNano('4.5')]]);
  const r = reconcile('anthropic', a, [L('2025-11-30', 'claude-sonnet-4-5-20250929', '4.5')]);
  assert.equal(r.rows[0]!.status, 'match');
  const o = parseExport('openrouter', read('openrouter-activity.csv'), noPrice);
  assert.equal(o.format, 'openrouter-activity');
  assert.deepEqual(o.amounts.map((x) => [x.day, x.model, x.costNano, x.rows]), [['2025-11-30', 'gpt-4o-mini', usdToNano('0.002'), 2]]);
  assert.equal(reconcile('openrouter', o, [L('2025-11-30', 'openai/gpt-4o-mini', '0.002', 2)]).rows[0]!.status, 'match');
});

test('unknown columns: a clear error naming the expected columns; nothing imported', () => {
  assert.throws(() => parseExport('openai', 'date,cost,model\n2025-11-30,1,gpt-4o\n', noPrice), (e: Error) => {
    assert.match(e.message, /not an export of openai that Tollgate can read: expected the columns of the OpenAI cost export: start_time, amount_value, amount_currency, line_item; or OpenAI usage export: start_time, model, input_tokens, output_tokens/);
    assert.match(e.message, /This file has: date, cost, model/);
    assert.match(e.message, /Nothing was imported/);
    return true;
  });
  // an Anthropic file given as OpenAI
  assert.throws(() => parseExport('openai', read('anthropic-cost.csv'), noPrice), /expected the columns of the OpenAI cost export/);
  assert.throws(() => parseExport('openai', '', noPrice), /empty/);
  assert.throws(() => parseExport('openai', read('openai-costs.csv').replace('0.150000000000000000', 'abc'), noPrice), /line 2: amount_value "abc" is not an amount/);
  assert.equal(detectFormat('anthropic', ['usage_date_utc', 'model', 'token_type', 'cost_usd', 'extra']), 'anthropic-cost');
});

test('tolerance is max(1 %, $0.01)', () => {
  assert.equal(withinTolerance(usdToNano('0.019'), usdToNano('0.01')), true); // $0.009 off: within a cent
  assert.equal(withinTolerance(usdToNano('0.021'), usdToNano('0.01')), false);
  assert.equal(withinTolerance(usdToNano('101'), usdToNano('100')), true); // 1 %
  assert.equal(withinTolerance(usdToNano('101.01'), usdToNano('100')), false);
  assert.equal(normalizeModel('openai/GPT-4o-mini-2024-07-18'), 'gpt-4o-mini');
});

test('OpenRouter per generation: joined by id whatever the day, model-less exports take the call\'s model, tolerance per generation', () => {
  const head = 'generation_id,created_at,cost_total,tokens_prompt,tokens_completion';
  const o = parseExport('openrouter', [head,
    'gen-1,2025-11-30 23:59:59.900,0.001000,10,10',
    'gen-2,2025-11-30 12:00:00.000,0.001000,10,10',
    'gen-3,2025-11-30 12:00:01.000,0.000010,10,10',
  ].join('\n'), noPrice);
  assert.deepEqual(o.generations!.map((g) => [g.id, g.day, g.model, g.costNano]), [
    ['gen-1', '2025-11-30', '*', usdToNano('0.001')], ['gen-2', '2025-11-30', '*', usdToNano('0.001')], ['gen-3', '2025-11-30', '*', usdToNano('0.00001')],
  ]);
  const G = (callId: string, upstreamId: string | null, day: string, cost: string) => ({ callId, upstreamId, day, model: 'openai/gpt-4o-mini', costNano: usdToNano(cost) });
  const r = reconcileGenerations('openrouter', o, [
    G('c1', 'gen-1', '2025-12-01', '0.00100001'), // recorded just after midnight by this machine: still joined by id; within 1 %
    G('c2', 'gen-2', '2025-11-30', '0.0010000'),
    G('c3', 'gen-3', '2025-11-30', '0.000012'), // 20 % off, $0.000002: cost differs (a day's $0.01 tolerance would hide it)
    G('c4', null, '2025-11-30', '0.0005'), // no generation id: metered, not billed
    G('c5', null, '2025-11-29', '0.0005'), // outside the export's days: not compared
  ]);
  assert.deepEqual(r.generations!.counts, { matched: 2, costDiffers: 1, billedNotMetered: 0, meteredNotBilled: 1 });
  assert.deepEqual(r.generations!.unmatched.map((g) => [g.generationId, g.callId, g.status]), [['gen-3', 'c3', 'cost differs'], [null, 'c4', 'metered, not billed']]);
  assert.deepEqual(r.rows.map((x) => [x.day, x.model, x.calls, x.status]), [['2025-11-30', 'gpt-4o-mini', 4, 'not billed']]);
  assert.ok(generationWithin(usdToNano('0.00100001'), usdToNano('0.001')));
  assert.ok(!generationWithin(usdToNano('0.000012'), usdToNano('0.00001')));
  assert.ok(generationWithin(usdToNano('0.000001'), 0n), 'a micro-dollar either way is rounding');
});
