/** The genai-prices data format check, and the bundled supplement's prices (see SOURCES.md). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { findProvider } from '@pydantic/genai-prices';
import { Catalog, GENAI_PROVIDERS, bundledCatalog } from '../../../shared/catalog.ts';
import { GenaiDataError, parseGenaiData } from '../../../shared/genai-data.ts';
import { priceCall } from '../../../shared/pricing.ts';

const at = (d: string) => new Date(d + 'T12:00:00Z');

test('the bundled genai-prices data passes the same check a loaded file must pass', () => {
  const all = GENAI_PROVIDERS.map((id) => findProvider({ providerId: id })!).filter(Boolean);
  assert.ok(all.length >= 20);
  assert.equal(parseGenaiData(JSON.parse(JSON.stringify(all))).length, all.length);
});

test('a malformed file is refused naming provider, model and field', () => {
  const bad = [{ id: 'openai', name: 'OpenAI', api_pattern: 'x', models: [{ id: 'gpt-x', match: { equals: 'gpt-x' }, prices: { output_mtok: 'cheap' } }] }];
  assert.throws(() => parseGenaiData(bad), (e: unknown) => {
    assert.ok(e instanceof GenaiDataError);
    assert.match(e.message, /\[0\] \(openai\)\.models\[0\] \(gpt-x\)\.prices/);
    return true;
  });
  assert.throws(() => parseGenaiData([bad[0], bad[0]].map((p) => ({ ...p, models: [] }))), /listed twice/);
  assert.throws(() => parseGenaiData({}), /array of providers/);
});

test('Claude Haiku 5.5 (supplement): its >100K tier applies to the whole call', () => {
  const r = bundledCatalog().resolve('anthropic', 'claude-haiku-5-5', at('2026-11-01'));
  assert.match(r.token?.sourceLabel ?? '', /^tollgate-genai-supplement@/);
  assert.equal(r.token?.source.url, 'https://platform.claude.com/docs/en/models/haiku-5-5/overview');
  // a 90,000-token prompt (80,000 + 10,000 cache reads) + 1,000 out, under the tier: 80,000 × 0.10 + 10,000 × 0.01 + 1,000 × 0.50 per M
  assert.equal(priceCall({ inputTokens: 80_000, cacheReadTokens: 10_000, outputTokens: 1_000 }, r).cost, 8_600_000n);
  // a 120,000-token prompt (100,000 + 20,000 cache reads) + 1,000 out, over it: 100,000 × 0.50 + 20,000 × 0.05 + 1,000 × 2.50 per M
  assert.equal(priceCall({ inputTokens: 100_000, cacheReadTokens: 20_000, outputTokens: 1_000 }, r).cost, 53_500_000n);
});

test('Claude Sonnet 5.5 (supplement): cache reads $0.20/M before 2026-10-07, $0.10/M from then; Sonnet 5 unchanged', () => {
  const c = bundledCatalog();
  const u = { cacheReadTokens: 1_000_000 };
  assert.equal(priceCall(u, c.resolve('anthropic', 'claude-sonnet-5-5', at('2026-10-06'))).cost, 200_000_000n);
  assert.equal(priceCall(u, c.resolve('anthropic', 'claude-sonnet-5-5', at('2026-10-07'))).cost, 100_000_000n);
  assert.equal(priceCall(u, c.resolve('anthropic', 'claude-sonnet-5-5-20260928', at('2026-12-01'))).cost, 100_000_000n);
  assert.equal(priceCall(u, c.resolve('anthropic', 'claude-sonnet-5', at('2026-12-01'))).cost, 200_000_000n);
});

test('a loaded file wins over the supplement for the ids it lists; its providers replace the bundled ones, others stay', () => {
  const file = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '../../fixtures/price-data/genai-prices-newer.json'), 'utf8'));
  const c = new Catalog({ genai: { providers: parseGenaiData(file), label: 'genai-prices-data#sha256:test' } });
  assert.equal(c.resolve('anthropic', 'claude-haiku-5-5').token?.sourceLabel, 'genai-prices-data#sha256:test');
  assert.equal(c.resolve('x-ai', 'grok-4.1-fast').token?.sourceLabel, 'genai-prices-data#sha256:test');
  assert.equal(c.resolve('openai', 'gpt-4o-mini').token?.sourceLabel, 'genai-prices@0.1.8');
  assert.equal(c.resolve('openrouter', 'openai/gpt-4o-mini').token, null, 'the file\'s openrouter replaces the bundled one');
  assert.match(bundledCatalog().resolve('x-ai', 'grok-4.1-fast').token?.sourceLabel ?? '', /^tollgate-genai-supplement@/, 'bundled: from the supplement');
  assert.equal(c.withUserData([], []).resolve('x-ai', 'grok-4.1-fast').token?.sourceLabel, 'genai-prices-data#sha256:test', 'user data keeps the loaded file');
});

test('ids users send that the bundled data lacks resolve from the supplement: xAI grok-4.1-fast, OpenRouter x-ai/grok-4 (128K tier), x-ai/grok-4.1-fast, anthropic/claude-sonnet-5.5', () => {
  const c = bundledCatalog();
  const u = { inputTokens: 100_000, cacheReadTokens: 20_000, outputTokens: 2_000 };
  // 100,000 × $0.20 + 20,000 × $0.05 + 2,000 × $0.50 per M = $0.022
  assert.equal(priceCall(u, c.resolve('xai', 'grok-4.1-fast', at('2026-12-01'))).cost, 22_000_000n);
  assert.equal(priceCall(u, c.resolve('openrouter', 'x-ai/grok-4.1-fast', at('2026-12-01'))).cost, 22_000_000n);
  // 120,000 input tokens in all: under 128K → 100,000 × $3 + 20,000 × $0.75 + 2,000 × $15 per M = $0.345
  assert.equal(priceCall(u, c.resolve('openrouter', 'x-ai/grok-4', at('2026-12-01'))).cost, 345_000_000n);
  // 130,000 + 2,000 out: past 128K the whole call at $6 / $30 → 130,000 × 6 + 2,000 × 30 per M = $0.84 (cache reads stay $0.75)
  assert.equal(priceCall({ inputTokens: 130_000, outputTokens: 2_000 }, c.resolve('openrouter', 'x-ai/grok-4', at('2026-12-01'))).cost, 840_000_000n);
  // Sonnet 5.5 on OpenRouter: Anthropic's prices, cache reads $0.10/M from 2026-10-07
  assert.equal(priceCall({ inputTokens: 1_000_000, cacheReadTokens: 1_000_000, outputTokens: 100_000 }, c.resolve('openrouter', 'anthropic/claude-sonnet-5.5', at('2026-12-01'))).cost, 3_100_000_000n);
  for (const [p, m] of [['xai', 'grok-4.1-fast'], ['openrouter', 'x-ai/grok-4'], ['openrouter', 'anthropic/claude-sonnet-5.5']] as const) {
    assert.ok(c.resolve(p, m).token?.source.url?.startsWith('https://'), `${p}:${m} has a source URL`);
  }
});
