/**
 * A batch's actual cost from its results (shared/quote.ts priceBatchResults): requests summed per
 * model and per long-context tier (decided on each request's own input) and priced once per line
 * item at the batch rate; anything it cannot price is unpriced with the reason, never $0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bundledCatalog } from '../../../shared/catalog.ts';
import { priceBatchResults } from '../../../shared/quote.ts';
import { nanoToUsd } from '../../../shared/money.ts';

const catalog = bundledCatalog();
const at = new Date('2026-12-01T00:00:00Z');

test('long-context tiers apply per request, not to the batch\'s sum', () => {
  const r = priceBatchResults(catalog, 'gemini', [
    { model: 'gemini-2.5-pro', usage: { inputTokens: 100_000, outputTokens: 1000, serviceTier: 'batch' } },
    { model: 'gemini-2.5-pro', usage: { inputTokens: 300_000, outputTokens: 1000, serviceTier: 'batch' } },
    { model: 'gemini-2.5-pro', usage: { inputTokens: 50_000, outputTokens: 3, serviceTier: 'batch' } },
  ], at);
  // at 50 %: ≤200K 150,000 × $0.625/M + 1,003 × $5/M; >200K 300,000 × $1.25/M + 1,000 × $7.50/M
  // = 0.09375 + 0.005015 + 0.375 + 0.0075
  assert.equal(nanoToUsd(r.cost!), '0.481265');
  assert.equal(r.model, 'gemini-2.5-pro');
  assert.deepEqual(r.usage, { requests: 3, inputTokens: 450_000, outputTokens: 2003, serviceTier: 'batch' });
  assert.deepEqual(r.items.map((i) => i.quantity), ['150000', '1003', '300000', '1000']);
});

test('every request is priced at the batch rate, whatever tier its line reports; sums are priced once per line item', () => {
  // gemini-2.5-flash at 50 %: $0.15/M input = 150 nano a token
  const lines = [1, 2, 3].map((n) => ({ model: 'gemini-2.5-flash', usage: { inputTokens: n, serviceTier: n === 2 ? 'priority' : undefined } }));
  const r = priceBatchResults(catalog, 'gemini', lines, at);
  assert.equal(r.cost, 900n);
  assert.equal(r.items.length, 1);
  assert.equal(r.items[0]!.quantity, '6');
  assert.equal(r.usage.serviceTier, 'batch');
});

test('several models: each priced on its own, the model is null; an unknown model or absurd usage is unpriced with the reason', () => {
  const r = priceBatchResults(catalog, 'anthropic', [
    { model: 'claude-sonnet-4-5', usage: { inputTokens: 1000, outputTokens: 100, serviceTier: 'batch' } },
    { model: 'claude-haiku-4-5', usage: { inputTokens: 1000, outputTokens: 100, serviceTier: 'batch' } },
  ], at);
  // sonnet: 1000 × $1.50/M + 100 × $7.50/M = 0.00225; haiku: 1000 × $0.50/M + 100 × $2.50/M = 0.00075
  assert.equal(nanoToUsd(r.cost!), '0.003');
  assert.equal(r.model, null);
  assert.match(r.items[0]!.label, /^claude-sonnet-4-5, 1 request: /);
  const unknown = priceBatchResults(catalog, 'anthropic', [{ model: 'claude-nonesuch', usage: { inputTokens: 1 } }], at);
  assert.equal(unknown.cost, null);
  assert.match(unknown.reason ?? '', /unknown model in the batch results: anthropic:claude-nonesuch/);
  // unpriced, the usage of every request is still summed (re-priced later, all of it is priced)
  const later = priceBatchResults(catalog, 'anthropic', [1, 2, 3].map((n) => ({ model: 'claude-nonesuch', usage: { inputTokens: n, outputTokens: 10 } })), at);
  assert.equal(later.cost, null);
  assert.deepEqual(later.usage, { requests: 3, inputTokens: 6, outputTokens: 30, serviceTier: 'batch' });
  const absurd = priceBatchResults(catalog, 'anthropic', [{ model: 'claude-sonnet-4-5', usage: { inputTokens: 1e12 } }], at);
  assert.equal(absurd.cost, null);
  assert.match(absurd.reason ?? '', /implausible/);
  const none = priceBatchResults(catalog, 'anthropic', [{ model: null, usage: { inputTokens: 1 } }], at);
  assert.match(none.reason ?? '', /names no model/);
  assert.equal(priceBatchResults(catalog, 'anthropic', [{ model: null, usage: { inputTokens: 1 } }], at, 'claude-sonnet-4-5').cost, 1500n);
});

test('a batch with no billed request costs $0, said', () => {
  const r = priceBatchResults(catalog, 'openai', [], at);
  assert.equal(r.cost, 0n);
  assert.match(r.source ?? '', /no request in the batch was billed/);
});
