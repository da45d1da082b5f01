/**
 * Billed paths priced the way the provider bills them: each test feeds a provider's real response
 * shape (test/fixtures/provider-bodies/) through the proxy's response tap and the pricer, and
 * checks the cost to the nano-dollar against a figure computed by hand in the comment.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ResponseTap, type Endpoint, type Extracted } from '../../../electron/engine/extract.ts';
import { bundledCatalog } from '../../../shared/catalog.ts';
import { priceCall, toLineItems, type PricedCall } from '../../../shared/pricing.ts';
import { nanoToUsd } from '../../../shared/money.ts';

const catalog = bundledCatalog();
function fixture(name: string): Buffer {
  return readFileSync(fileURLToPath(new URL(`../../fixtures/provider-bodies/${name}.json`, import.meta.url)));
}
function tap(endpoint: Endpoint, body: Buffer | string, contentType = 'application/json'): Extracted {
  const t = new ResponseTap(endpoint, contentType, undefined);
  t.write(typeof body === 'string' ? Buffer.from(body) : body);
  const r = t.finish();
  assert.ok(!(r instanceof Promise));
  assert.equal(r.parseError, null);
  return r;
}
function priced(provider: string, endpoint: Endpoint, name: string): { p: PricedCall; ex: Extracted } {
  const ex = tap(endpoint, fixture(name));
  const p = priceCall(ex.usage!, catalog.resolve(provider, ex.model!), {}, `${provider}:${ex.model}`);
  assert.equal(p.unpriced, null, `unpriced: ${p.unpriced}`);
  return { p, ex };
}
const lines = (p: PricedCall) => toLineItems(p.items).map((l) => `${l.label}: ${l.quantity} × ${l.unitPrice}/${l.per} = ${l.cost}`);

describe('Gemini image and audio tokens are priced at their own rates', () => {
  test('Nano Banana (gemini-2.5-flash-image), one image: $0.0387 for the image (Google: "$0.039 per image")', () => {
    const { p, ex } = priced('gemini', 'generateContent', 'gemini-2.5-flash-image-nano-banana');
    assert.deepEqual(ex.usage, { inputTokens: 12, outputImageTokens: 1290 });
    // 12 × $0.30/M = 0.0000036; 1290 × $30/M = 0.0387
    assert.deepEqual(lines(p), ['Input tokens: 12 × 0.3/1000000 = 0.0000036', 'Image output tokens: 1290 × 30/1000000 = 0.0387']);
    assert.equal(nanoToUsd(p.cost), '0.0387036');
  });

  test('Nano Banana 2 (gemini-3.1-flash-image-preview), 1K image: $0.0672 (Google: "$0.067 per 1K image")', () => {
    const { p } = priced('gemini', 'generateContent', 'gemini-3.1-flash-image-1k');
    // 15 × $0.50/M = 0.0000075; 1120 × $60/M = 0.0672
    assert.equal(nanoToUsd(p.cost), '0.0672075');
  });

  test('Nano Banana Pro (gemini-3-pro-image-preview), 1K image: $0.1344 (Google: "$0.134 per 1K/2K image")', () => {
    const { p } = priced('gemini', 'generateContent', 'gemini-3-pro-image-1k');
    // 20 × $2/M = 0.00004; 1120 × $120/M = 0.1344
    assert.equal(nanoToUsd(p.cost), '0.13444');
  });

  test('Nano Banana Pro, 4K image with text, thinking and an input image: $0.24 for the image', () => {
    const { p, ex } = priced('gemini', 'generateContent', 'gemini-3-pro-image-4k-thinking');
    assert.deepEqual(ex.usage, { inputTokens: 320, outputTokens: 25, outputImageTokens: 2000, reasoningTokens: 180 });
    // 320 × $2/M = 0.00064; 25 × $12/M = 0.0003; 2000 × $120/M = 0.24; 180 × $12/M = 0.00216 → 0.2431
    assert.equal(nanoToUsd(p.cost), '0.2431');
    assert.ok(lines(p).includes('Image output tokens: 2000 × 120/1000000 = 0.24'));
  });

  test('the same image streamed (alt=sse) is priced the same', () => {
    const body = JSON.parse(fixture('gemini-3-pro-image-1k').toString()) as Record<string, unknown>;
    const sse = `data: ${JSON.stringify({ ...body, usageMetadata: { promptTokenCount: 20, candidatesTokenCount: 0 } })}\r\n\r\ndata: ${JSON.stringify(body)}\r\n\r\n`;
    const ex = tap('streamGenerateContent', sse, 'text/event-stream');
    const p = priceCall(ex.usage!, catalog.resolve('gemini', ex.model!), {}, 'x');
    assert.equal(nanoToUsd(p.cost), '0.13444');
  });

  test('Gemini 2.5 Flash audio input at the audio rate, cached audio at the cached audio rate', () => {
    const { p, ex } = priced('gemini', 'generateContent', 'gemini-2.5-flash-audio-input');
    assert.deepEqual(ex.usage, { inputTokens: 800, inputAudioTokens: 2200, cacheAudioReadTokens: 1000, outputTokens: 40 });
    // 800 × $0.30/M = 0.00024; 2200 × $1/M = 0.0022; 1000 × $0.10/M = 0.0001; 40 × $2.50/M = 0.0001 → 0.00264
    assert.equal(nanoToUsd(p.cost), '0.00264');
  });

  test('a Gemini model with no image-output price leaves image output unpriced, never at the text rate', () => {
    const p = priceCall({ inputTokens: 10, outputImageTokens: 1290 }, catalog.resolve('gemini', 'gemini-2.5-flash'), {}, 'gemini:gemini-2.5-flash');
    assert.match(p.unpriced ?? '', /no price for image output tokens/);
  });
});

describe('OpenAI service tier as the response reports it', () => {
  test('priority (gpt-5): $2.50 / $0.25 / $20 per M — 2x standard', () => {
    const { p, ex } = priced('openai', 'chat.completions', 'openai-chat-gpt-5-priority');
    assert.equal(ex.usage!.serviceTier, 'priority');
    // 6000 × $2.50/M = 0.015; 4000 × $0.25/M = 0.001; 500 × $20/M = 0.01; 1500 × $20/M = 0.03 → 0.056
    assert.equal(nanoToUsd(p.cost), '0.056');
    assert.match(p.priceSource ?? '', /priority prices \(openai\.com\/api-priority-processing\)/);
    const standard = priceCall({ ...ex.usage!, serviceTier: undefined }, catalog.resolve('openai', 'gpt-5'));
    assert.equal(nanoToUsd(standard.cost), '0.028');
  });

  test('flex (gpt-5, Responses API): 50 % of standard', () => {
    const { p, ex } = priced('openai', 'responses', 'openai-responses-gpt-5-flex');
    assert.equal(ex.usage!.serviceTier, 'flex');
    // 6000 × $0.625/M = 0.00375; 4000 × $0.0625/M = 0.00025; 500 × $5/M = 0.0025; 1500 × $5/M = 0.0075 → 0.014
    assert.equal(nanoToUsd(p.cost), '0.014');
    assert.ok(lines(p).includes('Input tokens (flex): 6000 × 0.625/1000000 = 0.00375'));
  });

  test('priority on a model without a published priority price: 2x standard, said in the source', () => {
    const p = priceCall({ inputTokens: 1000, outputTokens: 100, serviceTier: 'priority' }, catalog.resolve('openai', 'o3-mini'));
    const std = priceCall({ inputTokens: 1000, outputTokens: 100 }, catalog.resolve('openai', 'o3-mini'));
    assert.equal(p.cost, std.cost * 2n);
    assert.match(p.priceSource ?? '', /2x standard \(estimate/);
  });

  test('the request asks for priority but the response says default: standard prices', () => {
    const body = JSON.parse(fixture('openai-chat-gpt-5-priority').toString()) as Record<string, unknown>;
    const ex = tap('chat.completions', JSON.stringify({ ...body, service_tier: 'default' }));
    assert.equal(ex.usage!.serviceTier, undefined);
    assert.equal(nanoToUsd(priceCall(ex.usage!, catalog.resolve('openai', 'gpt-5')).cost), '0.028');
  });

  test('an unknown tier is unpriced with a reason', () => {
    const p = priceCall({ inputTokens: 1000, serviceTier: 'scale' }, catalog.resolve('openai', 'gpt-5'));
    assert.match(p.unpriced ?? '', /service tier "scale"/);
  });
});
