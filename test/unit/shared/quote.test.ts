import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { countTokens } from 'gpt-tokenizer';
import { bundledCatalog } from '../../../shared/catalog.ts';
import { analyzeRequest, cachedCountTokens, countInputTokens, quoteNano, quoteRequest, QuoteError, splitModelRef, sumQuote } from '../../../shared/quote.ts';
import { usdToNanoExact } from '../../../shared/money.ts';

const catalog = bundledCatalog();
const SYSTEM = 'You are a terse assistant that answers in one sentence.'; // 11 o200k tokens
const USER = 'What is the capital of Australia, and why was it chosen?'; // 13 o200k tokens
const chat = (extra: Record<string, unknown> = {}) => ({
  model: 'gpt-4o-mini',
  messages: [{ role: 'system', content: SYSTEM }, { role: 'user', content: USER }],
  ...extra,
});
const range = (q: { min: string; expected: string; max: string }) => [q.min, q.expected, q.max];

describe('quote: token counting', () => {
  test('input tokens = gpt-tokenizer count of the text + OpenAI chat framing (3 per message + 3)', () => {
    assert.equal(countTokens(SYSTEM), 11);
    assert.equal(countTokens(USER), 13);
    const a = analyzeRequest('openai', chat(), '/v1/chat/completions');
    assert.equal(a.inputTokens, countTokens(SYSTEM) + countTokens(USER) + 2 * 3 + 3);
    assert.equal(a.inputTokens, 33);
    assert.equal(countInputTokens([{ role: 'user', content: 'Hello, world!' }], 1), 4 + 3 + 3);
    // roles, types and image payloads are not text that is counted
    assert.equal(countInputTokens([{ role: 'user', content: [{ type: 'text', text: 'Hello, world!' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] }], 1), 10);
  });
});

describe('quote: requests', () => {
  test('OpenAI chat with max_tokens: max uses it, expected uses 500 output tokens', () => {
    const q = quoteRequest(catalog, 'openai', chat({ max_tokens: 1000 }), '/v1/chat/completions');
    // gpt-4o-mini: 33 in × $0.15/M = 0.00000495
    // expected: + 500 × $0.60/M = 0.0003      → 0.00030495
    // max:      + 1000 × $0.60/M = 0.0006     → 0.00060495
    assert.deepEqual(range(q), ['0.00000495', '0.00030495', '0.00060495']);
    assert.deepEqual(q.notes, []);
    assert.equal(q.unpriced, null);
    assert.deepEqual(q.items.map((l) => [l.label, l.quantity, l.cost]), [['Input tokens', '33', '0.00000495'], ['Output tokens', '500', '0.0003']]);
    // a limit below 500 caps expected too: 200 × 0.6 / 1e6 = 0.00012
    const small = quoteRequest(catalog, 'openai', chat({ max_completion_tokens: 200 }), '/v1/chat/completions');
    assert.deepEqual(range(small), ['0.00000495', '0.00012495', '0.00012495']);
  });

  test('OpenAI chat without a limit: max uses the context window and the note says so', () => {
    const q = quoteRequest(catalog, 'openai', chat(), '/v1/chat/completions');
    // max output = 128,000 − 33 = 127,967 × $0.60/M = 0.0767802; + 0.00000495
    assert.deepEqual(range(q), ['0.00000495', '0.00030495', '0.07678515']);
    assert.deepEqual(q.notes, ["no output limit in the request: max assumes the model's context window (128,000 tokens)"]);
  });

  test('observed output from the ledger drives expected', () => {
    const q = quoteRequest(catalog, 'openai', chat({ max_tokens: 1000 }), '', { observedOutput: (p, m) => (p === 'openai' && m === 'gpt-4o-mini' ? 120 : null) });
    // 33 × 0.15 + 120 × 0.60 per M = 0.00000495 + 0.000072
    assert.equal(q.expected, '0.00007695');
  });

  test('Anthropic messages', () => {
    const body = { model: 'claude-sonnet-4-5', max_tokens: 1024, system: SYSTEM, messages: [{ role: 'user', content: [{ type: 'text', text: USER, cache_control: { type: 'ephemeral' } }] }], stream: true };
    const a = analyzeRequest('anthropic', body, '/v1/messages');
    assert.equal(a.inputTokens, 11 + 13 + 1 * 3 + 3);
    assert.equal(a.endpoint, 'messages');
    assert.equal(a.stream, true);
    const q = quoteRequest(catalog, 'anthropic', body, '/v1/messages');
    // 30 × $3/M = 0.00009; +500 × $15/M = 0.0075; +1024 × $15/M = 0.01536
    assert.deepEqual(range(q), ['0.00009', '0.00759', '0.01545']);
    assert.deepEqual(q.notes, ['input tokens approximated with the o200k_base tokenizer']);
  });

  test('Gemini generateContent: the model comes from the path', () => {
    const body = { contents: [{ role: 'user', parts: [{ text: USER }] }], systemInstruction: { parts: [{ text: SYSTEM }] }, generationConfig: { maxOutputTokens: 800 } };
    const path = '/v1beta/models/gemini-2.5-flash:generateContent';
    const a = analyzeRequest('gemini', body, path);
    assert.deepEqual([a.model, a.endpoint, a.inputTokens, a.maxOutput], ['gemini-2.5-flash', 'generateContent', 30, 800]);
    const q = quoteRequest(catalog, 'gemini', body, path);
    // 30 × $0.30/M = 0.000009; +500 × $2.50/M = 0.00125; +800 × $2.50/M = 0.002
    assert.deepEqual(range(q), ['0.000009', '0.001259', '0.002009']);
    assert.equal(analyzeRequest('gemini', body, '/v1beta/models/gemini-2.5-flash:streamGenerateContent').stream, true);
    assert.throws(() => analyzeRequest('gemini', body, ''), QuoteError);
  });

  test('OpenAI Responses API', () => {
    const body = { model: 'gpt-4o-mini', instructions: SYSTEM, input: USER, max_output_tokens: 100 };
    const a = analyzeRequest('openai', body, '/v1/responses');
    assert.deepEqual([a.endpoint, a.inputTokens, a.maxOutput], ['responses', 11 + 13 + 3 + 3, 100]);
    // 30 × 0.15 = 0.0000045; 100 × 0.6 = 0.00006
    assert.deepEqual(range(quoteRequest(catalog, 'openai', body, '/v1/responses')), ['0.0000045', '0.0000645', '0.0000645']);
  });

  test('gpt-image-1 images request: exact when quality and size are known, a range otherwise', () => {
    const path = '/v1/images/generations';
    const q = quoteRequest(catalog, 'openai', { model: 'gpt-image-1', prompt: 'a lighthouse at dusk', size: '1024x1536', quality: 'high', n: 2 }, path);
    assert.deepEqual(range(q), ['0.5', '0.5', '0.5']); // 2 × $0.25
    assert.deepEqual(q.items.map((l) => [l.label, l.quantity, l.unitPrice, l.cost]), [['Images', '2', '0.25', '0.5']]);
    // size known, quality unknown: the range over qualities AT THAT SIZE (low 0.011, medium 0.042, high 0.167)
    const r = quoteRequest(catalog, 'openai', { model: 'gpt-image-1', prompt: 'a lighthouse at dusk', size: '1024x1024' }, path);
    assert.deepEqual(range(r), ['0.011', '0.042', '0.167']);
    // nothing known: the whole price list (0.011 … 0.25)
    const all = quoteRequest(catalog, 'openai', { model: 'gpt-image-1', prompt: 'a lighthouse at dusk' }, path);
    assert.deepEqual([all.min, all.max], ['0.011', '0.25']);
  });

  test('fal FLUX.2 [pro] request with an image_size preset and with explicit dimensions', () => {
    // landscape_16_9 = 1024×576 = 0.5625 MP → rounded up to 1 MP → $0.03 per image, 2 images
    const q = quoteRequest(catalog, 'fal', { prompt: 'a red bicycle', image_size: 'landscape_16_9', num_images: 2 }, '/fal-ai/flux-2-pro');
    assert.equal(q.model, 'fal-ai/flux-2-pro');
    assert.deepEqual(range(q), ['0.06', '0.06', '0.06']);
    // 2048×1536 = 3 MP: 0.03 + 2 × 0.015 = 0.06
    const big = quoteRequest(catalog, 'fal', { prompt: 'a red bicycle', image_size: { width: 2048, height: 1536 } }, 'fal-ai/flux-2-pro/requests/abc');
    assert.deepEqual(range(big), ['0.06', '0.06', '0.06']);
    assert.deepEqual(big.items.map((l) => [l.label, l.quantity, l.cost]), [['First megapixel', '1', '0.03'], ['Additional megapixels', '2', '0.03']]);
  });

  test('fal image request without image_size is quoted at fal\'s default size, said in a note', () => {
    // fal's default image_size is landscape_4_3 = 1024×768 = 0.75 MP → 1 MP → $0.03
    const q = quoteRequest(catalog, 'fal', { prompt: 'a red bicycle' }, '/fal-ai/flux-2-pro');
    assert.equal(q.unpriced, null);
    assert.deepEqual(range(q), ['0.03', '0.03', '0.03']);
    assert.ok(q.notes.some((n) => /landscape_4_3/.test(n)), JSON.stringify(q.notes));
  });

  test('Replicate {input} requests', () => {
    // openai/sora-2 on Replicate: $0.10 per second × 8 s
    const v = quoteRequest(catalog, 'replicate', { input: { prompt: 'waves on a beach', seconds: 8 } }, '/v1/models/openai/sora-2/predictions');
    assert.equal(v.model, 'openai/sora-2');
    assert.deepEqual(range(v), ['0.8', '0.8', '0.8']);
    const i = quoteRequest(catalog, 'replicate', { input: { prompt: 'a logo', num_outputs: 3 } }, '/v1/models/recraft-ai/recraft-v4/predictions');
    assert.deepEqual(range(i), ['0.12', '0.12', '0.12']); // 3 × $0.04
  });

  test('Veo via Gemini predictLongRunning', () => {
    const q = quoteRequest(catalog, 'gemini', { instances: [{ prompt: 'a drone shot of a glacier' }], parameters: { durationSeconds: 8, resolution: '1080p' } }, '/v1beta/models/veo-3.1-generate-preview:predictLongRunning');
    assert.deepEqual(range(q), ['3.2', '3.2', '3.2']); // 8 s × $0.40
  });

  test('unknown models and malformed requests', () => {
    const q = quoteRequest(catalog, 'openai', { model: 'gpt-nonexistent-9', messages: [{ role: 'user', content: 'hi' }], max_tokens: 10 });
    assert.match(q.unpriced ?? '', /unknown model: openai:gpt-nonexistent-9/);
    assert.deepEqual(sumQuote([q]), { min: 0n, expected: 0n, max: 0n });
    const m = quoteRequest(catalog, 'fal', { prompt: 'x', num_images: 1 }, '/fal-ai/not-a-model');
    assert.notEqual(m.unpriced, null);
    assert.throws(() => analyzeRequest('openai', [], ''), QuoteError);
    assert.throws(() => analyzeRequest('openai', { messages: [] }, ''), /no "model"/);
    assert.throws(() => splitModelRef('gpt-4o-mini'), QuoteError);
    assert.deepEqual(splitModelRef('google:gemini-2.5-pro'), { provider: 'gemini', model: 'gemini-2.5-pro' });
  });

  test('repeat multiplies the whole call and its items', () => {
    const q = quoteRequest(catalog, 'openai', chat({ max_tokens: 1000 }), '', {}, 'n1', 3);
    assert.deepEqual(range(q), ['0.00001485', '0.00091485', '0.00181485']);
    assert.deepEqual(q.items.map((l) => [l.label, l.cost]), [['Input tokens ×3', '0.00001485'], ['Output tokens ×3', '0.0009']]);
  });
});

describe('proxy hot path', () => {
  test('a resent conversation is counted the same from the token cache', () => {
    const history = 'The quick brown fox jumps over the lazy dog. '.repeat(2000) + 'ünïcödé 漢字 🦊';
    const first = cachedCountTokens(history);
    assert.equal(first, countTokens(history));
    assert.equal(cachedCountTokens(history), first);
    const body = { model: 'gpt-4o', messages: [{ role: 'user', content: history }] };
    assert.equal(analyzeRequest('openai', body).inputTokens, analyzeRequest('openai', structuredClone(body)).inputTokens);
  });

  test('quoteNano gives the same amounts as the full quote, in nano-USD', () => {
    const catalog = bundledCatalog();
    for (const [provider, body, path] of [
      ['openai', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello there' }], max_tokens: 16 }, '/v1/chat/completions'],
      ['openai', { model: 'gpt-4o', messages: [{ role: 'user', content: 'no limit given' }] }, '/v1/chat/completions'],
      ['anthropic', { model: 'claude-sonnet-4-5', max_tokens: 1000, messages: [{ role: 'user', content: 'hi' }] }, '/v1/messages'],
      ['fal', { prompt: 'a cat', image_size: { width: 1024, height: 1024 } }, '/fal-ai/flux-2-pro'],
    ] as const) {
      const a = analyzeRequest(provider, body, path);
      const full = quoteRequest(catalog, provider, body, path);
      const nano = quoteNano(catalog, a);
      assert.ok(nano, `${provider}:${a.model} is priced`);
      assert.deepEqual(
        { min: nano.min, expected: nano.expected, max: nano.max },
        { min: usdToNanoExact(full.min), expected: usdToNanoExact(full.expected), max: usdToNanoExact(full.max) },
      );
    }
    assert.equal(quoteNano(catalog, analyzeRequest('openai', { model: 'no-such-model-xyz', messages: [] })), null);
  });
});
