/** The genai-prices data format check, and the bundled supplement's prices (see SOURCES.md). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { findProvider } from '@pydantic/genai-prices';
import { Catalog, GENAI_PROVIDERS, bundledCatalog } from '../../../shared/catalog.ts';
import { GenaiDataError, parseGenaiData } from '../../../shared/genai-data.ts';
import { priceCall } from '../../../shared/pricing.ts';
import { fromOpenAIChat } from '../../../shared/usage.ts';

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

test('deepseek-flash (supplement): off-peak $0.15 / $0.003 cache hit / $0.60 per M, peak twice that 01:00-04:00 and 06:00-10:00 UTC on weekdays, not on Chinese holidays', () => {
  const c = bundledCatalog();
  // a DeepSeek response's usage as the API documents it: hits and misses, reasoning inside completion_tokens
  const u = fromOpenAIChat({ prompt_tokens: 120_000, completion_tokens: 3_000, total_tokens: 123_000, prompt_cache_hit_tokens: 100_000, prompt_cache_miss_tokens: 20_000, completion_tokens_details: { reasoning_tokens: 1_000 } });
  assert.deepEqual(u, { inputTokens: 20_000, cacheReadTokens: 100_000, outputTokens: 2_000, reasoningTokens: 1_000 });
  const cost = (iso: string) => priceCall(u, c.resolve('deepseek', 'deepseek-flash', new Date(iso)));
  // off-peak: 20,000 × $0.15 + 100,000 × $0.003 + (2,000 + 1,000) × $0.60 per M = 0.003 + 0.0003 + 0.0018
  const OFF = 5_100_000n;
  // peak: 20,000 × $0.30 + 100,000 × $0.006 + 3,000 × $1.20 per M = 0.006 + 0.0006 + 0.0036
  const PEAK = 10_200_000n;
  const cases: [string, bigint, string][] = [
    ['2026-12-01T00:59:59Z', OFF, 'Tuesday, before the first window'],
    ['2026-12-01T01:00:00Z', PEAK, 'Tuesday 09:00 Beijing: peak starts'],
    ['2026-12-01T03:59:59Z', PEAK, 'Tuesday, end of the first window'],
    ['2026-12-01T04:00:00Z', OFF, 'Tuesday, lunch (12:00-14:00 Beijing)'],
    ['2026-12-01T06:00:00Z', PEAK, 'Tuesday 14:00 Beijing'],
    ['2026-12-01T09:59:59Z', PEAK, 'Tuesday, end of the second window'],
    ['2026-12-01T10:00:00Z', OFF, 'Tuesday 18:00 Beijing: off-peak'],
    ['2026-12-05T02:00:00Z', OFF, 'Saturday: off-peak all day'],
    ['2026-12-06T07:00:00Z', OFF, 'Sunday: off-peak all day'],
    ['2026-10-01T02:00:00Z', OFF, 'National Day (a Thursday): off-peak all day'],
    ['2026-10-08T02:00:00Z', PEAK, 'the first working day after it'],
  ];
  for (const [iso, want, why] of cases) {
    const p = cost(iso);
    assert.equal(p.unpriced, null, why);
    assert.equal(p.cost, want, `${iso} (${why})`);
  }
  const t = c.resolve('deepseek', 'deepseek-flash', new Date('2026-12-01T02:00:00Z')).token!;
  assert.match(t.sourceLabel, /^tollgate-genai-supplement@2026-12-01\.3:deepseek\/deepseek-flash$/);
  assert.equal(t.source.url, 'https://api-docs.deepseek.com/quick_start/pricing');
  assert.equal(t.source.asOf, '2026-10-17');
  // the same id on another route is not DeepSeek's price
  assert.equal(c.resolve('openrouter', 'deepseek-flash').token, null);
});

test('a time_of_date window may name weekdays and except_dates (checked like any other field)', () => {
  const file = (constraint: unknown) => [{ id: 'deepseek', name: 'DeepSeek', api_pattern: 'x', models: [{ id: 'm', match: { equals: 'm' }, prices: [{ prices: { input_mtok: 1 } }, { constraint, prices: { input_mtok: 2 } }] }] }];
  assert.equal(parseGenaiData(file({ type: 'time_of_date', start_time: '01:00:00Z', end_time: '04:00:00Z', weekdays: [1, 2, 3, 4, 5], except_dates: ['2026-10-01'] })).length, 1);
  assert.throws(() => parseGenaiData(file({ type: 'time_of_date', start_time: '01:00:00Z', end_time: '04:00:00Z', weekdays: [0] })), GenaiDataError);
  assert.throws(() => parseGenaiData(file({ type: 'time_of_date', start_time: '01:00:00Z', end_time: '04:00:00Z', except_dates: ['soon'] })), /\(deepseek\)\.models\[0\] \(m\)\.prices/);
  const c = new Catalog({ genai: { providers: parseGenaiData(file({ type: 'time_of_date', start_time: '01:00:00Z', end_time: '04:00:00Z', weekdays: [6, 7] })), label: 'test' } });
  const rate = (iso: string) => priceCall({ inputTokens: 1_000_000 }, c.resolve('deepseek', 'm', new Date(iso))).cost;
  assert.equal(rate('2026-12-05T02:00:00Z'), 2_000_000_000n, 'Saturday: inside');
  assert.equal(rate('2026-12-07T02:00:00Z'), 1_000_000_000n, 'Monday: not a listed weekday');
});
