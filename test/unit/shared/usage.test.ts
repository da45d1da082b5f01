import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  addUsage, fromAnthropic, fromGemini, fromOpenAIChat, fromOpenAIImages, fromOpenAIResponses, totalInputTokens, totalOutputTokens,
  resolveCacheLifetime, UsageError, type Usage,
} from '../../../shared/usage.ts';
import { bundledCatalog } from '../../../shared/catalog.ts';
import { priceCall, toLineItems } from '../../../shared/pricing.ts';
import { nanoToUsd } from '../../../shared/money.ts';

/* Response bodies in test/fixtures/provider-bodies/ follow the documented response shapes:
 * OpenAI chat.completion / response objects (platform.openai.com API reference), Anthropic
 * Message objects with usage.cache_creation (docs.claude.com prompt caching), and Gemini
 * GenerateContentResponse.usageMetadata (ai.google.dev API reference: promptTokenCount includes
 * cachedContentTokenCount; thoughtsTokenCount is reported beside candidatesTokenCount — a
 * documented sample has 12 prompt + 87 candidates + 156 thoughts = 255 total). */
type Body = Record<string, unknown>;
function body(name: string): Body {
  return JSON.parse(readFileSync(fileURLToPath(new URL(`../../fixtures/provider-bodies/${name}.json`, import.meta.url)), 'utf8')) as Body;
}

const catalog = bundledCatalog();
function price(provider: string, model: string, usage: Usage) {
  const p = priceCall(usage, catalog.resolve(provider, model), {}, `${provider}:${model}`);
  assert.equal(p.unpriced, null, `${provider}:${model} should be priced`);
  return { cost: nanoToUsd(p.cost), lines: Object.fromEntries(toLineItems(p.items).map((l) => [l.label, `${l.quantity} @ ${l.unitPrice}/${l.per} = ${l.cost}`])), source: p.priceSource };
}

describe('usage: OpenAI chat completions', () => {
  test('prompt includes cached, completion includes reasoning → leaves exclude them; priced exactly (o4-mini)', () => {
    const b = body('openai-chat-o4-mini-cached-reasoning');
    const u = fromOpenAIChat(b.usage);
    // prompt 2006 = 1920 cached + 86 fresh; completion 300 = 192 reasoning + 108 visible
    assert.deepEqual(u, { inputTokens: 86, cacheReadTokens: 1920, outputTokens: 108, reasoningTokens: 192 });
    assert.equal(totalInputTokens(u), 2006);
    assert.equal(totalOutputTokens(u), 300);
    // o4-mini (genai-prices): input $1.10/M, cached input $0.275/M, output $4.40/M (reasoning billed as output)
    //   86 × 1.10 / 1e6   = 0.0000946
    // 1920 × 0.275 / 1e6  = 0.000528
    //  108 × 4.40 / 1e6   = 0.0004752
    //  192 × 4.40 / 1e6   = 0.0008448
    //                total = 0.0019426
    const p = price('openai', b.model as string, u);
    assert.equal(p.cost, '0.0019426');
    assert.deepEqual(p.lines, {
      'Input tokens': '86 @ 1.1/1000000 = 0.0000946',
      'Cache reads': '1920 @ 0.275/1000000 = 0.000528',
      'Output tokens': '108 @ 4.4/1000000 = 0.0004752',
      'Reasoning tokens': '192 @ 4.4/1000000 = 0.0008448',
    });
    assert.equal(p.source, 'genai-prices@0.1.8');
  });

  test('no cache, no reasoning (gpt-4o-mini): zero details are dropped', () => {
    const b = body('openai-chat-gpt-4o-mini');
    const u = fromOpenAIChat(b.usage);
    assert.deepEqual(u, { inputTokens: 1117, outputTokens: 46 });
    // 1117 × 0.15 / 1e6 = 0.00016755; 46 × 0.60 / 1e6 = 0.0000276; total 0.00019515
    assert.equal(price('openai', b.model as string, u).cost, '0.00019515');
  });

  test('details exceeding the total raise UsageError (never a negative leaf)', () => {
    const b = body('openai-chat-details-exceed-total');
    assert.throws(() => fromOpenAIChat(b.usage), (e: unknown) => e instanceof UsageError && e.code === 'E_USAGE' && /details \(2048\) exceed the total \(1024\)/.test(e.message));
    assert.throws(() => fromOpenAIChat({ prompt_tokens: 10, completion_tokens: 5, completion_tokens_details: { reasoning_tokens: 6 } }), UsageError);
    assert.throws(() => fromOpenAIResponses({ input_tokens: 1, input_tokens_details: { cached_tokens: 2 } }), UsageError);
    assert.throws(() => fromGemini({ promptTokenCount: 10, cachedContentTokenCount: 11 }), UsageError);
    // modality details larger than their totals (IMAGE output, AUDIO input) are refused, not clamped
    assert.throws(() => fromGemini({ promptTokenCount: 10, candidatesTokenCount: 100, candidatesTokensDetails: [{ modality: 'IMAGE', tokenCount: 1290 }] }), UsageError);
    assert.throws(() => fromGemini({ promptTokenCount: 10, promptTokensDetails: [{ modality: 'AUDIO', tokenCount: 11 }] }), UsageError);
    assert.throws(() => fromGemini({ promptTokenCount: 10, candidatesTokenCount: 5, candidatesTokensDetails: [{ modality: 'IMAGE', tokenCount: -1 }] }), UsageError);
    assert.throws(() => fromOpenAIChat({ prompt_tokens: -1 }), UsageError);
    assert.throws(() => fromOpenAIChat({ prompt_tokens: 1.5 }), UsageError);
    assert.throws(() => fromAnthropic({ input_tokens: '12' }), UsageError);
  });

  test('audio tokens are split out of prompt and completion', () => {
    const u = fromOpenAIChat({ prompt_tokens: 100, completion_tokens: 50, prompt_tokens_details: { cached_tokens: 10, audio_tokens: 30 }, completion_tokens_details: { audio_tokens: 20, reasoning_tokens: 0 } });
    assert.deepEqual(u, { inputTokens: 60, cacheReadTokens: 10, inputAudioTokens: 30, outputTokens: 30, outputAudioTokens: 20 });
  });
});

describe('usage: OpenAI Responses', () => {
  test('input includes cached, output includes reasoning; priced exactly (gpt-5)', () => {
    const b = body('openai-responses-gpt-5');
    const u = fromOpenAIResponses(b.usage);
    assert.deepEqual(u, { inputTokens: 476, cacheReadTokens: 1024, outputTokens: 260, reasoningTokens: 640 });
    // gpt-5: input $1.25/M, cached $0.125/M, output $10/M
    //  476 × 1.25  / 1e6 = 0.000595
    // 1024 × 0.125 / 1e6 = 0.000128
    //  260 × 10    / 1e6 = 0.0026
    //  640 × 10    / 1e6 = 0.0064
    //             total = 0.009723
    assert.equal(price('openai', b.model as string, u).cost, '0.009723');
  });

  test('image generation usage: text vs image input, image output', () => {
    const u = fromOpenAIImages({ total_tokens: 4210, input_tokens: 50, output_tokens: 4160, input_tokens_details: { text_tokens: 40, image_tokens: 10 } });
    assert.deepEqual(u, { inputTokens: 40, inputImageTokens: 10, outputImageTokens: 4160 });
  });
});

describe('usage: Anthropic messages', () => {
  test('input EXCLUDES cache; 5 m and 1 h writes priced at their own rates (claude-sonnet-4-5)', () => {
    const b = body('anthropic-messages-cache-1h');
    const u = fromAnthropic(b.usage);
    assert.deepEqual(u, { inputTokens: 50, cacheReadTokens: 12000, cacheWrite5mTokens: 1000, cacheWrite1hTokens: 2000, outputTokens: 503 });
    assert.equal(totalInputTokens(u), 15050);
    // claude-sonnet-4-5 (≤200k input): input $3/M, cache read $0.30/M, 5 m write $3.75/M, 1 h write $6/M, output $15/M
    //    50 × 3    / 1e6 = 0.00015
    // 12000 × 0.30 / 1e6 = 0.0036
    //  1000 × 3.75 / 1e6 = 0.00375
    //  2000 × 6    / 1e6 = 0.012     ← the 1 h rate (2 × input), not the 5 m rate
    //   503 × 15   / 1e6 = 0.007545
    //              total = 0.027045
    const p = price('anthropic', b.model as string, u);
    assert.equal(p.cost, '0.027045');
    assert.equal(p.lines['Cache writes (1 h)'], '2000 @ 6/1000000 = 0.012');
    assert.equal(p.lines['Cache writes (5 min)'], '1000 @ 3.75/1000000 = 0.00375');
  });

  test('without the cache_creation split the writes\' lifetime is unknown: priced at the plain write price (claude-3-5-haiku)', () => {
    const b = body('anthropic-messages-cache-no-split');
    const u = fromAnthropic(b.usage);
    assert.deepEqual(u, { inputTokens: 13, cacheWriteTokens: 2048, outputTokens: 17 });
    // haiku 3.5: input $0.80/M, cache write $1/M, output $4/M
    // 13 × 0.8 = 10.4 → 0.0000104; 2048 × 1 → 0.002048; 17 × 4 = 68 → 0.000068; total 0.0021264
    assert.equal(price('anthropic', b.model as string, u).cost, '0.0021264');
  });

  test('without the split, the request\'s cache_control ttl settles the lifetime (claude-sonnet-4-5)', () => {
    const u = fromAnthropic({ input_tokens: 50, cache_creation_input_tokens: 2000, output_tokens: 10 });
    const oneHour = { model: 'claude-sonnet-4-5', system: [{ type: 'text', text: 'long policy', cache_control: { type: 'ephemeral', ttl: '1h' } }], messages: [{ role: 'user', content: 'hi' }] };
    const r1 = resolveCacheLifetime(u, oneHour);
    assert.deepEqual(r1, { usage: { inputTokens: 50, cacheWrite1hTokens: 2000, outputTokens: 10 }, estimated: false });
    // 50 × $3/M + 2000 × $6/M (1 h) + 10 × $15/M = 0.00015 + 0.012 + 0.00015
    assert.equal(price('anthropic', 'claude-sonnet-4-5', r1.usage).cost, '0.0123');
    const fiveMin = { ...oneHour, system: [{ type: 'text', text: 'x', cache_control: { type: 'ephemeral' } }] };
    assert.deepEqual(resolveCacheLifetime(u, fiveMin).usage, { inputTokens: 50, cacheWrite5mTokens: 2000, outputTokens: 10 });
    const mixed = { ...oneHour, messages: [{ role: 'user', content: [{ type: 'text', text: 'doc', cache_control: { type: 'ephemeral', ttl: '5m' } }] }] };
    const r3 = resolveCacheLifetime(u, mixed);
    assert.equal(r3.estimated, true);
    assert.equal(r3.usage.cacheWrite5mTokens, 2000);
    // a split that covers only part of the writes: the rest has no stated lifetime
    assert.deepEqual(fromAnthropic({ input_tokens: 1, cache_creation_input_tokens: 300, cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 100 } }),
      { inputTokens: 1, cacheWriteTokens: 200, cacheWrite1hTokens: 100 });
  });

  test('OpenAI cache writes (cache_write_tokens) are priced where the model lists cache_write_mtok', () => {
    const chat = fromOpenAIChat({ prompt_tokens: 10_000, completion_tokens: 100, prompt_tokens_details: { cached_tokens: 2000, cache_write_tokens: 3000 } });
    assert.deepEqual(chat, { inputTokens: 5000, cacheReadTokens: 2000, cacheWriteTokens: 3000, outputTokens: 100 });
    const resp = fromOpenAIResponses({ input_tokens: 10_000, output_tokens: 100, input_tokens_details: { cached_tokens: 2000, cache_write_tokens: 3000 } });
    assert.deepEqual(resp, chat);
    const m = bundledCatalog().resolve('openai', 'gpt-5.6-sol').token!;
    const write = m.rates.get('cache_write_mtok')!.baseText;
    const p = price('openai', 'gpt-5.6-sol', chat);
    assert.match(p.lines['Cache writes'] ?? '', new RegExp(`^3000 @ ${write.replace('.', '\\.')}/1000000 = `));
    // a model without a write price bills writes as plain input (gpt-4o-mini: $0.15/M)
    assert.equal(price('openai', 'gpt-4o-mini', chat).lines['Cache writes'], '3000 @ 0.15/1000000 = 0.00045');
  });

  test('server-side web searches are counted', () => {
    const u = fromAnthropic({ input_tokens: 10, output_tokens: 5, server_tool_use: { web_search_requests: 3 } });
    assert.deepEqual(u, { inputTokens: 10, outputTokens: 5, webSearches: 3 });
    // $10 per 1,000 searches: 3 → $0.03; 10 × 3/M + 5 × 15/M = 0.00003 + 0.000075
    assert.equal(price('anthropic', 'claude-sonnet-4-5', u).cost, '0.030105');
  });
});

describe('usage: Gemini generateContent', () => {
  test('tool-use prompt tokens (grounding) are beside promptTokenCount and billed as input', () => {
    // totalTokenCount = prompt + toolUsePrompt + candidates + thoughts
    const meta = { promptTokenCount: 1000, toolUsePromptTokenCount: 3000, candidatesTokenCount: 200, thoughtsTokenCount: 100, totalTokenCount: 4300 };
    const u = fromGemini(meta);
    assert.deepEqual(u, { inputTokens: 4000, outputTokens: 200, reasoningTokens: 100 });
    assert.equal(totalInputTokens(u) + totalOutputTokens(u), meta.totalTokenCount);
    // gemini-2.5-flash: 4000 × 0.30/M + 300 × 2.50/M = 0.0012 + 0.00075
    assert.equal(price('gemini', 'gemini-2.5-flash', u).cost, '0.00195');
  });

  test('thoughts are NOT in candidates (billed as output); cached IS in prompt (gemini-2.5-flash)', () => {
    const b = body('gemini-2.5-flash-thinking-cached');
    const u = fromGemini(b.usageMetadata);
    assert.deepEqual(u, { inputTokens: 904, cacheReadTokens: 4096, outputTokens: 420, reasoningTokens: 1210 });
    const meta = b.usageMetadata as Record<string, number>;
    assert.equal(totalInputTokens(u) + totalOutputTokens(u), meta.totalTokenCount);
    // gemini-2.5-flash: input $0.30/M, cached $0.03/M, output (incl. thinking) $2.50/M
    //  904 × 0.30 / 1e6 = 0.0002712
    // 4096 × 0.03 / 1e6 = 0.00012288
    //  420 × 2.50 / 1e6 = 0.00105
    // 1210 × 2.50 / 1e6 = 0.003025
    //            total = 0.00446908
    assert.equal(price('gemini', b.modelVersion as string, u).cost, '0.00446908');
  });

  test('gemini-2.5-pro: a 250,000-token prompt prices the WHOLE call at the >200k rates', () => {
    const b = body('gemini-2.5-pro-long-context');
    const u = fromGemini(b.usageMetadata);
    assert.deepEqual(u, { inputTokens: 250000, outputTokens: 2000, reasoningTokens: 1000 });
    // >200k: input $2.50/M, output $15/M
    // 250000 × 2.5 / 1e6 = 0.625; 2000 × 15 / 1e6 = 0.03; 1000 × 15 / 1e6 = 0.015; total 0.67
    const p = price('gemini', b.modelVersion as string, u);
    assert.equal(p.cost, '0.67');
    assert.equal(p.lines['Input tokens'], '250000 @ 2.5/1000000 = 0.625');
    assert.equal(p.lines['Output tokens'], '2000 @ 15/1000000 = 0.03');
  });

  test('gemini-2.5-pro: exactly 200,000 prompt tokens stays at the base rates', () => {
    const b = body('gemini-2.5-pro-base-context');
    const u = fromGemini(b.usageMetadata);
    // ≤200k: input $1.25/M, output $10/M
    // 200000 × 1.25 / 1e6 = 0.25; 2000 × 10 / 1e6 = 0.02; 1000 × 10 / 1e6 = 0.01; total 0.28
    assert.equal(price('gemini', b.modelVersion as string, u).cost, '0.28');
  });

  test('the long-context threshold counts cached tokens too, and re-prices cache reads', () => {
    // 150,000 fresh + 60,000 cached = 210,000 > 200k: input $2.50/M, cached $0.25/M, output $15/M
    const u = fromGemini({ promptTokenCount: 210000, cachedContentTokenCount: 60000, candidatesTokenCount: 100 });
    // 150000 × 2.5 = 0.375; 60000 × 0.25 = 0.015; 100 × 15 = 0.0015; total 0.3915
    assert.equal(price('gemini', 'gemini-2.5-pro', u).cost, '0.3915');
  });
});

describe('usage: aggregation', () => {
  test('addUsage adds field by field and keeps leaves disjoint', () => {
    const a = fromOpenAIChat(body('openai-chat-o4-mini-cached-reasoning').usage);
    const b = fromOpenAIChat(body('openai-chat-gpt-4o-mini').usage);
    assert.deepEqual(addUsage(a, b), { inputTokens: 1203, cacheReadTokens: 1920, outputTokens: 154, reasoningTokens: 192 });
    assert.deepEqual(addUsage({ megapixelsPerImage: '1' }, { images: 2, megapixelsPerImage: '2' }), { images: 2, megapixelsPerImage: '2' });
  });
});

test('Anthropic speed and inference_geo: kept when the response reports a non-default, dropped for standard / global or anything odd', () => {
  // message_start usage of a fast, US-only Opus 5.5 stream (the shape the API sends)
  const u = fromAnthropic({ input_tokens: 25, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1, service_tier: 'standard', inference_geo: 'us', speed: 'fast' });
  assert.deepEqual(u, { inputTokens: 25, outputTokens: 1, speed: 'fast', inferenceGeo: 'us' });
  assert.deepEqual(fromAnthropic({ input_tokens: 25, output_tokens: 1, inference_geo: 'global', speed: 'standard' }), { inputTokens: 25, outputTokens: 1 });
  assert.deepEqual(fromAnthropic({ input_tokens: 25, output_tokens: 1, inference_geo: 'x'.repeat(500), speed: { fast: true } }), { inputTokens: 25, outputTokens: 1 });
});
