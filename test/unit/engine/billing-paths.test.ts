/**
 * Billed paths priced the way the provider bills them: each test feeds a provider's real response
 * shape (test/fixtures/provider-bodies/) through the proxy's response tap and the pricer, and
 * checks the cost to the nano-dollar against a figure computed by hand in the comment.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { audioFacts, ResponseTap, type Endpoint, type Extracted } from '../../../electron/engine/extract.ts';
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

describe('OpenAI audio endpoints', () => {
  const whisper = () => catalog.resolve('openai', 'whisper-1');
  test('whisper-1 transcription, usage {type: duration, seconds: 95}: 95 s × $0.006/min = $0.0095', () => {
    const ex = tap('audio.transcriptions', fixture('openai-audio-transcription-whisper-1'));
    assert.deepEqual(ex.usage, { audioSeconds: 95 });
    const p = priceCall(ex.usage!, whisper(), {}, 'openai:whisper-1');
    // $0.36 per hour (genai-prices audio_hours) = $0.006 per minute; 95 / 3600 × 0.36 = 0.0095
    assert.equal(nanoToUsd(p.cost), '0.0095');
  });

  test('gpt-4o-transcribe, usage by tokens: text and audio input at their rates', () => {
    const ex = tap('audio.transcriptions', fixture('openai-audio-transcription-gpt-4o-transcribe'));
    assert.deepEqual(ex.usage, { inputTokens: 20, inputAudioTokens: 1480, outputTokens: 300 });
    // 20 × $2.50/M = 0.00005; 1480 × $6/M = 0.00888; 300 × $10/M = 0.003 → 0.01193
    assert.equal(nanoToUsd(priceCall(ex.usage!, catalog.resolve('openai', 'gpt-4o-transcribe')).cost), '0.01193');
  });

  test('whisper-1 translation, verbose_json duration 8.47 s → 9 s: $0.0009', () => {
    const ex = tap('audio.translations', fixture('openai-audio-translation-verbose'));
    assert.deepEqual(ex.usage, { audioSeconds: 9 });
    assert.equal(nanoToUsd(priceCall(ex.usage!, whisper()).cost), '0.0009');
  });

  test('a plain-text transcript is not read as JSON; a WAV upload is measured from the request: 10 s → $0.001', () => {
    const ex = tap('audio.transcriptions', 'Thanks for calling.', 'text/plain; charset=utf-8');
    assert.equal(ex.usage, null);
    const rate = 16_000 * 2; // 16 kHz, mono, 16-bit
    const wav = Buffer.alloc(44 + rate * 10);
    wav.write('RIFF', 0, 'latin1'); wav.writeUInt32LE(36 + rate * 10, 4); wav.write('WAVE', 8, 'latin1');
    wav.write('fmt ', 12, 'latin1'); wav.writeUInt32LE(16, 16); wav.writeUInt16LE(1, 20); wav.writeUInt16LE(1, 22);
    wav.writeUInt32LE(16_000, 24); wav.writeUInt32LE(rate, 28); wav.writeUInt16LE(2, 32); wav.writeUInt16LE(16, 34);
    wav.write('data', 36, 'latin1'); wav.writeUInt32LE(rate * 10, 40);
    const b = '----b1';
    const body = Buffer.concat([
      Buffer.from(`--${b}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n--${b}\r\nContent-Disposition: form-data; name="response_format"\r\n\r\ntext\r\n--${b}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n`),
      wav, Buffer.from(`\r\n--${b}--\r\n`),
    ]);
    const a = audioFacts('audio.transcriptions', `multipart/form-data; boundary=${b}`, body, null);
    assert.equal(a.model, 'whisper-1');
    assert.deepEqual(a.usage, { audioSeconds: 10 });
    assert.equal(nanoToUsd(priceCall(a.usage!, whisper()).cost), '0.001');
    const mp3 = audioFacts('audio.transcriptions', `multipart/form-data; boundary=${b}`, Buffer.from(body.toString('latin1').replace('RIFF', 'ID3\u0003'), 'latin1'), null);
    assert.equal(mp3.usage, null);
    assert.match(mp3.reason ?? '', /whisper-1 bills per second/);
  });

  test('tts-1 speech: per character of input, counted in code points ($15 per 1M characters)', () => {
    const input = 'Your order has shipped! 📦';
    const a = audioFacts('audio.speech', 'application/json', Buffer.alloc(0), { model: 'tts-1', input, voice: 'coral' });
    assert.deepEqual(a.usage, { characters: 25 });
    // 25 × $15/M = 0.000375
    assert.equal(nanoToUsd(priceCall(a.usage!, catalog.resolve('openai', 'tts-1')).cost), '0.000375');
    assert.equal(nanoToUsd(priceCall({ characters: 1_000_000 }, catalog.resolve('openai', 'tts-1-hd')).cost), '30');
    const mini = audioFacts('audio.speech', 'application/json', Buffer.alloc(0), { model: 'gpt-4o-mini-tts', input, voice: 'coral' });
    assert.equal(mini.usage, null);
    assert.match(mini.reason ?? '', /audio output tokens/);
  });

  test('streamed speech (stream_format sse) reports tokens: gpt-4o-mini-tts priced from them', () => {
    const sse = 'data: {"type":"speech.audio.delta","audio":"AAAA"}\n\ndata: {"type":"speech.audio.done","usage":{"input_tokens":14,"output_tokens":101,"total_tokens":115}}\n\n';
    const ex = tap('audio.speech', sse, 'text/event-stream');
    assert.deepEqual(ex.usage, { inputTokens: 14, outputTokens: 101 });
    // 14 × $0.60/M = 0.0000084; 101 × $12/M = 0.001212 → 0.0012204
    assert.equal(nanoToUsd(priceCall(ex.usage!, catalog.resolve('openai', 'gpt-4o-mini-tts')).cost), '0.0012204');
  });

  test('an audio (binary) speech response is skipped, not reported as broken JSON', () => {
    const t = new ResponseTap('audio.speech', 'audio/mpeg', undefined);
    t.write(Buffer.from([0xff, 0xfb, 0x90, 0x64, 0, 1, 2]));
    const r = t.finish() as Extracted;
    assert.equal(r.parseError, null);
    assert.equal(r.usage, null);
  });
});

describe('tool fees', () => {
  test('OpenAI Responses web_search_call: $10 per 1,000 calls on top of the tokens (gpt-5)', () => {
    const { p, ex } = priced('openai', 'responses', 'openai-responses-gpt-5-web-search');
    assert.equal(ex.usage!.webSearches, 2); // the escaped text inside the message is not counted
    // 2000 × $1.25/M = 0.0025; 300 × $10/M = 0.003; 2 × $10/1000 = 0.02 → 0.0255
    assert.equal(nanoToUsd(p.cost), '0.0255');
    assert.ok(lines(p).includes('Web searches: 2 × 10/1000 = 0.02'));
  });

  test('the same call streamed: searches counted from response.completed', () => {
    const body = JSON.parse(fixture('openai-responses-gpt-5-web-search').toString()) as Record<string, unknown>;
    const sse = `event: response.created\ndata: ${JSON.stringify({ type: 'response.created', response: { ...body, status: 'in_progress', output: [], usage: null } })}\n\n`
      + `event: response.completed\ndata: ${JSON.stringify({ type: 'response.completed', response: body })}\n\n`;
    const ex = tap('responses', sse, 'text/event-stream');
    assert.equal(ex.usage!.webSearches, 2);
    assert.equal(nanoToUsd(priceCall(ex.usage!, catalog.resolve('openai', 'gpt-5')).cost), '0.0255');
  });
});
