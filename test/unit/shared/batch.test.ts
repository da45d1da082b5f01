import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bundledCatalog } from '../../../shared/catalog.ts';
import { analyzeRequest, estimateBatch, BATCH_ESTIMATE_MAX_REQUESTS } from '../../../shared/quote.ts';
import { priceTokens } from '../../../shared/pricing.ts';
import { nanoToUsd } from '../../../shared/money.ts';

const catalog = bundledCatalog();

test('Anthropic message batch: estimated request by request at 50 % (claude-sonnet-4-5: $1.50 / $7.50 per M)', () => {
  const params = { model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'Summarise the attached policy in one line.' }] };
  const body = { requests: [{ custom_id: 'a', params }, { custom_id: 'b', params: { ...params, max_tokens: 2000 } }] };
  const est = estimateBatch(catalog, 'anthropic', body);
  const inTok = analyzeRequest('anthropic', params).inputTokens;
  assert.equal(inTok, 16); // 10 text tokens + 3 per message + 3
  // request a: 16 × $1.50/M + 100 × $7.50/M = 0.000024 + 0.00075; request b: 16 × 1.5/M + 500 (expected, capped) × 7.5/M = 0.000024 + 0.00375
  assert.equal(nanoToUsd(est.cost!), '0.004548');
  assert.equal(est.requests, 2);
  assert.equal(est.model, 'claude-sonnet-4-5');
  assert.match(est.source ?? '', /estimate from 2 submitted requests: .*batch at 50 %/);
});

test('Gemini batchGenerateContent with inline requests; a file-based batch or an oversized one is not estimated', () => {
  const req = { contents: [{ parts: [{ text: 'Classify: refund request' }] }], generationConfig: { maxOutputTokens: 50 } };
  const est = estimateBatch(catalog, 'gemini', { batch: { display_name: 'n', input_config: { requests: { requests: [{ request: req }, { request: req }, { request: req }] } } } },
    '/v1beta/models/gemini-2.5-flash:batchGenerateContent');
  const one = priceTokens({ inputTokens: analyzeRequest('gemini', req, '/v1beta/models/gemini-2.5-flash:generateContent').inputTokens, outputTokens: 50, serviceTier: 'batch' }, catalog.resolve('gemini', 'gemini-2.5-flash').token!, true);
  assert.equal(est.cost, one.cost * 3n);
  assert.match(estimateBatch(catalog, 'gemini', { batch: { input_config: { file_name: 'files/abc' } } }, '/v1beta/models/gemini-2.5-flash:batchGenerateContent').reason ?? '', /from a file/);
  const many = { requests: Array.from({ length: BATCH_ESTIMATE_MAX_REQUESTS + 1 }, (_, i) => ({ custom_id: String(i), params: { model: 'claude-sonnet-4-5', max_tokens: 10, messages: [] } })) };
  assert.match(estimateBatch(catalog, 'anthropic', many).reason ?? '', /more than Tollgate estimates/);
  assert.match(estimateBatch(catalog, 'anthropic', { requests: [{ params: { model: 'claude-nonexistent-9', max_tokens: 1, messages: [] } }] }).reason ?? '', /unknown model/);
});

test('batch rate is 50 % for every provider; flex and priority stay OpenAI-only', () => {
  const u = { inputTokens: 1_000_000, outputTokens: 1_000_000 };
  const std = priceTokens(u, catalog.resolve('anthropic', 'claude-sonnet-4-5').token!).cost;
  assert.equal(priceTokens({ ...u, serviceTier: 'batch' }, catalog.resolve('anthropic', 'claude-sonnet-4-5').token!).cost * 2n, std);
  // Anthropic reports service_tier "priority" for its commitment product: not priced as OpenAI's priority
  assert.equal(priceTokens({ ...u, serviceTier: 'priority' }, catalog.resolve('anthropic', 'claude-sonnet-4-5').token!).cost, std);
});
