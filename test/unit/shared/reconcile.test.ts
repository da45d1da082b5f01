/** Reconciliation: provider exports with their real column headers, per day × model, tolerance, unmetered lines. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { detectFormat, normalizeModel, parseExport, reconcile, withinTolerance, type LedgerAmount } from '../../../shared/reconcile.ts';
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
