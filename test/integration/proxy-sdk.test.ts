/**
 * The proxy driven by the official SDKs against local fakes of each provider: what the client
 * receives, what the ledger records (to the nano-dollar), streams, errors and aborts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';
import { startRig, eventually, type Rig } from '../fixtures/engine.ts';

let rig: Rig;
before(async () => {
  rig = await startRig(['openai', 'anthropic', 'gemini', 'fal']);
});
after(async () => {
  await rig.close();
});

const call = async (id: string) => eventually(async () => {
  const c = await rig.engine.api.call({ id });
  return c && c.status !== 'pending' ? c : null;
}, `call ${id}`);

test('OpenAI chat: the client gets the upstream bytes, the ledger the exact cost', async () => {
  const fake = rig.fakes.openai!;
  fake.next({ usage: { prompt_tokens: 1200, cached_tokens: 200, completion_tokens: 400, reasoning_tokens: 100 } });
  const client = new OpenAI({ apiKey: 'sk-test-123', baseURL: `${rig.url}/openai/v1`, maxRetries: 0 });
  const { data, response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  assert.equal(data.usage?.prompt_tokens, 1200);
  const id = response.headers.get('x-tollgate-call-id');
  assert.ok(id, 'x-tollgate-call-id header');
  assert.ok(response.headers.get('x-tollgate-quote-max-usd'));
  const rec = await call(id);
  // gpt-4o-mini: input 0.15/M, cached 0.075/M, output 0.6/M (reasoning billed as output)
  // 1000 × 0.15/M + 200 × 0.075/M + 300 × 0.6/M + 100 × 0.6/M = 0.00015 + 0.000015 + 0.00018 + 0.00006
  assert.equal(rec.cost, '0.000405');
  assert.deepEqual(rec.items.map((i) => [i.label, i.quantity, i.cost]), [
    ['Input tokens', '1000', '0.00015'], ['Cache reads', '200', '0.000015'], ['Output tokens', '300', '0.00018'], ['Reasoning tokens', '100', '0.00006'],
  ]);
  assert.equal(rec.status, 'ok');
  assert.equal(rec.keyFingerprint?.startsWith('fp_'), true);
  // the upstream saw the client's key and no x-tollgate headers
  const seen = fake.requests.at(-1)!;
  assert.equal(seen.headers.authorization, 'Bearer sk-test-123');
});

test('OpenAI stream without include_usage: usage is metered, the client never sees the extra chunk', async () => {
  const fake = rig.fakes.openai!;
  fake.next({ usage: { prompt_tokens: 50, completion_tokens: 20 } });
  const client = new OpenAI({ apiKey: 'sk-test', baseURL: `${rig.url}/openai/v1`, maxRetries: 0 });
  const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }] });
  let text = '';
  let sawUsage = false;
  for await (const chunk of stream) {
    if (chunk.usage) sawUsage = true;
    assert.notEqual(chunk.choices.length, 0, 'no usage-only chunk reaches the client');
    text += chunk.choices[0]?.delta.content ?? '';
  }
  assert.equal(sawUsage, false);
  assert.ok(text.length > 0);
  const sent = JSON.parse(fake.requests.at(-1)!.body.toString());
  assert.equal(sent.stream_options.include_usage, true, 'the proxy asked for usage upstream');
  const calls = await rig.engine.api.calls({ limit: 1 });
  const rec = await call(calls[0]!.id);
  // 50 × 0.15/M + 20 × 0.6/M = 0.0000075 + 0.000012
  assert.equal(rec.cost, '0.0000195');
  assert.equal(rec.stream, true);
});

test('OpenAI stream that asked for usage passes through byte for byte', async () => {
  const fake = rig.fakes.openai!;
  fake.next({ usage: { prompt_tokens: 10, completion_tokens: 5 } });
  const res = await fetch(`${rig.url}/openai/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer sk-x' },
    body: JSON.stringify({ model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] }),
  });
  const got = Buffer.from(await res.arrayBuffer());
  await fake.settled();
  assert.deepEqual(got, fake.lastResponseBody());
});

test('Anthropic streaming with cache writes and reads: exact cost', async () => {
  const fake = rig.fakes.anthropic!;
  fake.next({ usage: { input_tokens: 100, output_tokens: 50, cache_read_input_tokens: 1000, ephemeral_5m_input_tokens: 200, ephemeral_1h_input_tokens: 300, cache_creation_input_tokens: 500 } });
  const client = new Anthropic({ apiKey: 'sk-ant-test', baseURL: `${rig.url}/anthropic`, maxRetries: 0 });
  const stream = client.messages.stream({ model: 'claude-sonnet-4-5', max_tokens: 256, messages: [{ role: 'user', content: 'hi' }] });
  const msg = await stream.finalMessage();
  assert.equal(msg.usage.output_tokens, 50);
  const calls = await rig.engine.api.calls({ limit: 1, provider: 'anthropic' });
  const rec = await call(calls[0]!.id);
  // Sonnet 4.5: in 3/M, cache read 0.3/M, 5m write 3.75/M, 1h write 6/M, out 15/M
  // 100×3 + 1000×0.3 + 200×3.75 + 300×6 + 50×15 = 300 + 300 + 750 + 1800 + 750 = 3900 per M = 0.0039
  assert.equal(rec.cost, '0.0039');
  assert.equal(rec.estimated, false);
});

test('Gemini generateContent: thoughts billed as output', async () => {
  const fake = rig.fakes.gemini!;
  fake.next({ usage: { promptTokenCount: 1000, candidatesTokenCount: 100, thoughtsTokenCount: 400 } });
  const ai = new GoogleGenAI({ apiKey: 'g-test', httpOptions: { baseUrl: `${rig.url}/gemini` } });
  const r = await ai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'hi' });
  assert.equal(r.usageMetadata?.thoughtsTokenCount, 400);
  const calls = await rig.engine.api.calls({ limit: 1, provider: 'gemini' });
  const rec = await call(calls[0]!.id);
  // gemini-2.5-flash: in 0.3/M, out 2.5/M; 1000×0.3 + (100+400)×2.5 = 300 + 1250 = 1550 per M
  assert.equal(rec.cost, '0.00155');
});

test('upstream 429 passes through with retry-after and costs nothing', async () => {
  const fake = rig.fakes.openai!;
  fake.next({ status: 429, retryAfter: 7 });
  const res = await fetch(`${rig.url}/openai/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer sk-x' }, body: JSON.stringify({ model: 'gpt-4o-mini', messages: [] }),
  });
  assert.equal(res.status, 429);
  assert.equal(res.headers.get('retry-after'), '7');
  const rec = await call(res.headers.get('x-tollgate-call-id')!);
  assert.equal(rec.status, 'error');
  assert.equal(rec.cost, '0');
  assert.equal(rec.unpriced, false);
});

test('unknown model is recorded as unpriced, never $0 silently', async () => {
  const client = new OpenAI({ apiKey: 'sk-test', baseURL: `${rig.url}/openai/v1`, maxRetries: 0 });
  const { response } = await client.chat.completions.create({ model: 'gpt-nobody-knows', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  const rec = await call(response.headers.get('x-tollgate-call-id')!);
  assert.equal(rec.unpriced, true);
  assert.match(rec.unpricedReason ?? '', /gpt-nobody-knows/);
  const unpriced = await rig.engine.api.unpriced({});
  assert.ok(unpriced.some((u) => u.model === 'gpt-nobody-knows'));
});

test('client abort mid-stream aborts the upstream request and records an estimated cost', async () => {
  const fake = rig.fakes.anthropic!;
  fake.next({ chunkDelayMs: 150, text: 'word '.repeat(40) });
  const ctrl = new AbortController();
  const res = await fetch(`${rig.url}/anthropic/v1/messages`, {
    method: 'POST', signal: ctrl.signal, headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 1000, stream: true, messages: [{ role: 'user', content: 'hi' }] }),
  });
  const id = res.headers.get('x-tollgate-call-id')!;
  const reader = res.body!.getReader();
  await reader.read();
  await reader.read();
  ctrl.abort();
  await fake.settled();
  assert.equal(fake.requests.at(-1)!.aborted, true, 'the upstream request was aborted');
  const rec = await call(id);
  assert.equal(rec.status, 'aborted');
  assert.equal(rec.estimated, true);
  assert.notEqual(rec.cost, '0');
});

test('fal image generation is priced from the media catalog', async () => {
  const res = await fetch(`${rig.url}/fal/fal-ai/flux-2-pro`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Key fal-test' },
    body: JSON.stringify({ prompt: 'a cat', image_size: { width: 1920, height: 1080 }, num_images: 2 }),
  });
  assert.equal(res.status, 200);
  const rec = await call(res.headers.get('x-tollgate-call-id')!);
  // 1920×1080 = 2,073,600 px = 1.98 fal MP → rounded up to 2: first MP $0.03 + 1 × $0.015, × 2 images
  assert.equal(rec.cost, '0.09');
  assert.equal(rec.unpriced, false);
});

test('malformed and oversized bodies get provider-shaped errors', async () => {
  const bad = await fetch(`${rig.url}/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer sk' }, body: '{not json' });
  assert.ok(bad.status >= 400 && bad.status < 500);
  const j = await bad.json() as { error: { message: string } };
  assert.ok(j.error.message);
  const huge = await fetch(`${rig.url}/anthropic/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.alloc(33 * 1024 * 1024, 0x61) }).catch((e: Error) => e);
  if (!(huge instanceof Error)) {
    assert.equal(huge.status, 413);
    const b = await huge.json() as { type: string; error: { type: string } };
    assert.equal(b.type, 'error');
    assert.equal(b.error.type, 'request_too_large');
  }
  const nope = await fetch(`${rig.url}/nowhere/v1/x`);
  assert.equal(nope.status, 404);
});

