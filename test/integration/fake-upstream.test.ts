// The fake upstreams must speak each provider's real wire format: drive them
// with the official SDKs (pointed directly at the fake, no proxy) and check
// the parsed values.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { GoogleGenAI } from '@google/genai';
import { startFakeUpstream } from '../fixtures/fake-upstream/index.ts';
import type { FakeProvider, FakeUpstream } from '../fixtures/fake-upstream/index.ts';

const fakes = new Map<FakeProvider, FakeUpstream>();
async function fake(provider: FakeProvider): Promise<FakeUpstream> {
  let f = fakes.get(provider);
  if (!f) {
    f = await startFakeUpstream(provider, { quiet: true });
    fakes.set(provider, f);
  }
  f.reset();
  return f;
}
after(async () => {
  await Promise.all([...fakes.values()].map((f) => f.close()));
});

function openaiClient(f: FakeUpstream, base = '/v1'): OpenAI {
  return new OpenAI({ apiKey: 'sk-test', baseURL: f.url + base, maxRetries: 0 });
}

function bodyOf(f: FakeUpstream, i: number): Record<string, unknown> {
  const r = f.requests[i];
  assert.ok(r, `request ${i} recorded`);
  return JSON.parse(r.body.toString('utf8')) as Record<string, unknown>;
}

// ------------------------------------------------------------------ openai

test('openai: chat completion, derived and overridden usage', async () => {
  const f = await fake('openai');
  const client = openaiClient(f);
  const content = 'x'.repeat(40); // 40 chars -> 10 prompt tokens
  const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0]?.message.content, 'Hello from fake openai');
  assert.equal(r.usage?.prompt_tokens, 10);
  assert.equal(r.usage?.completion_tokens, 16);
  assert.equal(r.usage?.total_tokens, 26);
  assert.equal(bodyOf(f, 0)['model'], 'gpt-4o-mini');
  assert.equal(f.requests[0]?.headers['authorization'], 'Bearer sk-test');

  f.next({ usage: { prompt_tokens: 1200, cached_tokens: 200, completion_tokens: 400, reasoning_tokens: 100 }, text: 'custom' });
  const r2 = await client.chat.completions.create({ model: 'o4-mini', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(r2.choices[0]?.message.content, 'custom');
  assert.equal(r2.usage?.prompt_tokens, 1200);
  assert.equal(r2.usage?.prompt_tokens_details?.cached_tokens, 200);
  assert.equal(r2.usage?.completion_tokens, 400);
  assert.equal(r2.usage?.completion_tokens_details?.reasoning_tokens, 100);
  assert.equal(r2.usage?.total_tokens, 1600);

  // lastResponseBody is exactly what the client parsed
  assert.deepEqual(JSON.parse(f.lastResponseBody().toString('utf8')), JSON.parse(JSON.stringify(r2)));
});

test('openai: chat stream without include_usage sends no usage chunk', async () => {
  const f = await fake('openai');
  const client = openaiClient(f);
  const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }], stream: true });
  let text = '';
  let chunks = 0;
  for await (const c of stream) {
    chunks++;
    assert.equal(c.usage, undefined, 'no usage field without include_usage');
    assert.equal(c.choices.length, 1, 'no choices:[] chunk');
    text += c.choices[0]?.delta.content ?? '';
  }
  assert.equal(text, 'Hello from fake openai');
  assert.ok(chunks >= 3);
  const raw = f.lastResponseBody().toString('utf8');
  assert.ok(raw.endsWith('data: [DONE]\n\n'));
  assert.ok(!raw.includes('"prompt_tokens"'));
});

test('openai: chat stream with include_usage ends with a usage chunk', async () => {
  const f = await fake('openai');
  const client = openaiClient(f);
  f.next({ usage: { prompt_tokens: 50, completion_tokens: 7, cached_tokens: 10 } });
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'hello' }],
    stream: true,
    stream_options: { include_usage: true },
  });
  const all: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
  for await (const c of stream) all.push(c);
  const last = all[all.length - 1];
  assert.ok(last);
  assert.deepEqual(last.choices, []);
  assert.equal(last.usage?.prompt_tokens, 50);
  assert.equal(last.usage?.completion_tokens, 7);
  assert.equal(last.usage?.prompt_tokens_details?.cached_tokens, 10);
  assert.ok(all.slice(0, -1).every((c) => c.usage === null), 'earlier chunks carry usage: null');
  assert.equal(all.slice(0, -1).map((c) => c.choices[0]?.delta.content ?? '').join(''), 'Hello from fake openai');
});

test('openai: responses API, non-stream and stream', async () => {
  const f = await fake('openai');
  const client = openaiClient(f);
  const r = await client.responses.create({ model: 'gpt-4.1-mini', input: 'x'.repeat(80), max_output_tokens: 10 });
  assert.equal(r.output_text, 'Hello from fake openai');
  assert.equal(r.usage?.input_tokens, 20);
  assert.equal(r.usage?.output_tokens, 10);

  f.next({ usage: { input_tokens: 300, cached_tokens: 100, output_tokens: 60, reasoning_tokens: 40 } });
  const stream = await client.responses.create({ model: 'o4-mini', input: [{ role: 'user', content: 'hi' }], stream: true });
  const types: string[] = [];
  let text = '';
  let completed: OpenAI.Responses.Response | undefined;
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'response.output_text.delta') text += ev.delta;
    if (ev.type === 'response.completed') completed = ev.response;
  }
  assert.equal(types[0], 'response.created');
  assert.equal(types[types.length - 1], 'response.completed');
  assert.equal(text, 'Hello from fake openai');
  assert.equal(completed?.usage?.input_tokens, 300);
  assert.equal(completed?.usage?.input_tokens_details.cached_tokens, 100);
  assert.equal(completed?.usage?.output_tokens, 60);
  assert.equal(completed?.usage?.output_tokens_details.reasoning_tokens, 40);
  assert.equal(completed?.usage?.total_tokens, 360);
  assert.match(f.lastResponseBody().toString('utf8'), /^event: response\.created\ndata: /);

  // the SDK's stream helper accumulates the same final response
  const helper = client.responses.stream({ model: 'gpt-4.1-mini', input: 'hello' });
  const final = await helper.finalResponse();
  assert.equal(final.output_text, 'Hello from fake openai');
});

test('openai: embeddings (SDK base64 default) and images', async () => {
  const f = await fake('openai');
  const client = openaiClient(f);
  const e = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['abcdefgh', 'abcd'], dimensions: 8 });
  assert.equal(e.data.length, 2);
  assert.equal(e.data[0]?.embedding.length, 8);
  assert.equal(typeof e.data[0]?.embedding[0], 'number');
  assert.equal(e.usage.prompt_tokens, 3);
  assert.equal(bodyOf(f, 0)['encoding_format'], 'base64');

  const img = await client.images.generate({ model: 'gpt-image-1', prompt: 'a red fox', size: '1024x1024', quality: 'low', n: 2 });
  assert.equal(img.data?.length, 2);
  assert.ok(img.data?.[0]?.b64_json);
  assert.equal(img.usage?.output_tokens, 544);
  assert.equal(img.usage?.input_tokens_details.text_tokens, 3);
  assert.equal(img.quality, 'low');

  const d3 = await client.images.generate({ model: 'dall-e-3', prompt: 'a red fox' });
  assert.match(d3.data?.[0]?.url ?? '', /^https:\/\//);

  const models = await client.models.list();
  assert.ok(models.data.some((m) => m.id === 'gpt-4o'));
});

test('openai: 429 surfaces as RateLimitError with retry-after', async () => {
  const f = await fake('openai');
  const client = openaiClient(f);
  f.next({ status: 429, retryAfter: 7 });
  await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }), (err: unknown) => {
    assert.ok(err instanceof OpenAI.RateLimitError);
    assert.equal(err.status, 429);
    assert.equal(err.headers.get('retry-after'), '7');
    assert.equal(err.code, 'rate_limit_exceeded');
    return true;
  });
  assert.equal(f.requests.length, 1);
});

test('openai: a cut stream is reported as an error by the SDK', async () => {
  const f = await fake('openai');
  const client = openaiClient(f);
  f.next({ cutAfterChunks: 2 });
  const stream = await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], stream: true });
  let got = 0;
  await assert.rejects(async () => {
    for await (const _ of stream) got++;
  });
  assert.equal(got, 2);
  assert.equal(f.requests[0]?.aborted, false, 'a cut by the fake is not a client abort');

  // non-streaming cut: half a body, then the socket dies
  f.next({ cutAfterChunks: 0 });
  await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] }));
});

test('openai: bodyBytes pads a non-streaming response to about that size', async () => {
  const f = await fake('openai');
  f.next({ bodyBytes: 2048 });
  const res = await fetch(f.url + '/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
  });
  const buf = Buffer.from(await res.arrayBuffer());
  assert.ok(Math.abs(buf.length - 2048) < 16, `size ${buf.length}`);
  assert.ok(buf.equals(f.lastResponseBody()));
});

test('client disconnect is recorded as an aborted request', async () => {
  const f = await fake('openai');
  f.next({ chunkDelayMs: 100 });
  const ac = new AbortController();
  const res = await fetch(f.url + '/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], stream: true }),
    signal: ac.signal,
  });
  const reader = res.body!.getReader();
  await reader.read(); // first event
  ac.abort();
  await f.settled();
  assert.equal(f.requests[0]?.aborted, true);
});

// ------------------------------------------------------------------ openrouter

test('openrouter: usage with cost, always in the last stream chunk; generation lookup', async () => {
  const f = await fake('openrouter');
  const client = openaiClient(f, '/api/v1');
  const r = await client.chat.completions.create({ model: 'openai/gpt-4o', messages: [{ role: 'user', content: 'x'.repeat(400) }] });
  const usage = r.usage as unknown as { prompt_tokens: number; completion_tokens: number; cost: number };
  assert.equal(usage.prompt_tokens, 100);
  assert.equal(usage.completion_tokens, 16);
  assert.ok(Math.abs(usage.cost - (100 * 2.5e-6 + 16 * 10e-6)) < 1e-12);
  assert.match(r.id, /^gen-/);

  f.next({ usage: { cost: 0.0123, prompt_tokens: 5, completion_tokens: 3 } });
  const stream = await client.chat.completions.create({ model: 'openai/gpt-4o', messages: [{ role: 'user', content: 'hi' }], stream: true });
  let last: OpenAI.Chat.Completions.ChatCompletionChunk | undefined;
  let text = '';
  for await (const c of stream) {
    last = c;
    text += c.choices[0]?.delta.content ?? '';
  }
  assert.equal(text, 'Hello from fake openrouter');
  assert.equal((last?.usage as unknown as { cost: number }).cost, 0.0123);
  assert.ok(f.lastResponseBody().toString('utf8').startsWith(': OPENROUTER PROCESSING\n\n'));

  const gen = (await (await fetch(`${f.url}/api/v1/generation?id=${last?.id}`)).json()) as { data: { total_cost: number; tokens_prompt: number } };
  assert.equal(gen.data.total_cost, 0.0123);
  assert.equal(gen.data.tokens_prompt, 5);
});

// ------------------------------------------------------------------ anthropic

test('anthropic: messages create and stream usage', async () => {
  const f = await fake('anthropic');
  const client = new Anthropic({ apiKey: 'x', baseURL: f.url, maxRetries: 0 });
  const m = await client.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 100, system: 'x'.repeat(20), messages: [{ role: 'user', content: 'y'.repeat(20) }] });
  assert.equal(m.content[0]?.type === 'text' ? m.content[0].text : '', 'Hello from fake anthropic');
  assert.equal(m.usage.input_tokens, 10);
  assert.equal(m.usage.output_tokens, 16);
  assert.equal(m.usage.cache_read_input_tokens, 0);
  // this SDK version sends the key as a bearer token; older ones use x-api-key
  const h = f.requests[0]?.headers;
  assert.ok(h?.['x-api-key'] === 'x' || h?.['authorization'] === 'Bearer x');
  assert.ok(h?.['anthropic-version']);

  f.next({ usage: { input_tokens: 1000, output_tokens: 42, cache_read_input_tokens: 300, ephemeral_5m_input_tokens: 50, ephemeral_1h_input_tokens: 25 } });
  const stream = client.messages.stream({ model: 'claude-sonnet-4-6', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] });
  const events: string[] = [];
  stream.on('streamEvent', (e) => events.push(e.type));
  const final = await stream.finalMessage();
  assert.equal(final.content[0]?.type === 'text' ? final.content[0].text : '', 'Hello from fake anthropic');
  assert.equal(final.usage.input_tokens, 1000);
  assert.equal(final.usage.output_tokens, 42);
  assert.equal(final.usage.cache_read_input_tokens, 300);
  assert.equal(final.usage.cache_creation_input_tokens, 75);
  assert.equal(final.usage.cache_creation?.ephemeral_5m_input_tokens, 50);
  assert.equal(final.usage.cache_creation?.ephemeral_1h_input_tokens, 25);
  assert.deepEqual(events.slice(0, 2), ['message_start', 'content_block_start']);
  assert.equal(events[events.length - 1], 'message_stop');
  const wire = [...f.lastResponseBody().toString('utf8').matchAll(/^event: (\w+)$/gm)].map((x) => x[1]);
  assert.deepEqual(wire.slice(0, 4), ['message_start', 'content_block_start', 'ping', 'content_block_delta']);
  assert.deepEqual(wire.slice(-3), ['content_block_stop', 'message_delta', 'message_stop']);

  const c = await client.messages.countTokens({ model: 'claude-sonnet-4-6', messages: [{ role: 'user', content: 'abcdefgh' }] });
  assert.equal(c.input_tokens, 2);
});

test('anthropic: extended thinking stream', async () => {
  const f = await fake('anthropic');
  const client = new Anthropic({ apiKey: 'x', baseURL: f.url, maxRetries: 0 });
  const stream = client.messages.stream({
    model: 'claude-sonnet-4-6',
    max_tokens: 2048,
    thinking: { type: 'enabled', budget_tokens: 1024 },
    messages: [{ role: 'user', content: 'hi' }],
  });
  let thinking = '';
  stream.on('thinking', (delta) => (thinking += delta));
  const final = await stream.finalMessage();
  assert.equal(final.content[0]?.type, 'thinking');
  assert.equal(final.content[1]?.type, 'text');
  assert.ok(thinking.length > 0);
  assert.ok(final.content[0]?.type === 'thinking' && final.content[0].signature.length > 0);
});

test('anthropic: 429 and a cut stream surface as SDK errors', async () => {
  const f = await fake('anthropic');
  const client = new Anthropic({ apiKey: 'x', baseURL: f.url, maxRetries: 0 });
  f.next({ status: 429 });
  await assert.rejects(client.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }), (err: unknown) => {
    assert.ok(err instanceof Anthropic.RateLimitError);
    assert.equal(err.status, 429);
    assert.equal(err.headers?.get('retry-after'), '1');
    assert.match(err.requestID ?? '', /^req_/);
    assert.equal((err.error as { error: { type: string } }).error.type, 'rate_limit_error');
    return true;
  });

  f.next({ cutAfterChunks: 3 });
  const stream = client.messages.stream({ model: 'claude-sonnet-4-6', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
  stream.on('error', () => {});
  await assert.rejects(stream.finalMessage());
});

// ------------------------------------------------------------------ gemini

test('gemini: generateContent and generateContentStream', async () => {
  const f = await fake('gemini');
  const ai = new GoogleGenAI({ apiKey: 'x', httpOptions: { baseUrl: f.url } });
  const r = await ai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'x'.repeat(36) });
  assert.equal(r.text, 'Hello from fake gemini');
  assert.equal(r.usageMetadata?.promptTokenCount, 9);
  assert.equal(r.usageMetadata?.candidatesTokenCount, 16);
  assert.equal(r.usageMetadata?.totalTokenCount, 25);
  assert.equal(f.requests[0]?.url, '/v1beta/models/gemini-2.5-flash:generateContent');
  assert.equal(f.requests[0]?.headers['x-goog-api-key'], 'x');

  f.next({ usage: { promptTokenCount: 500, candidatesTokenCount: 40, thoughtsTokenCount: 30, cachedContentTokenCount: 200 } });
  const stream = await ai.models.generateContentStream({ model: 'gemini-2.5-pro', contents: 'hi' });
  let text = '';
  let lastUsage: { promptTokenCount?: number; candidatesTokenCount?: number; thoughtsTokenCount?: number; cachedContentTokenCount?: number; totalTokenCount?: number } | undefined;
  for await (const chunk of stream) {
    text += chunk.text ?? '';
    lastUsage = chunk.usageMetadata;
  }
  assert.equal(text, 'Hello from fake gemini');
  assert.equal(lastUsage?.promptTokenCount, 500);
  assert.equal(lastUsage?.candidatesTokenCount, 40);
  assert.equal(lastUsage?.thoughtsTokenCount, 30);
  assert.equal(lastUsage?.cachedContentTokenCount, 200);
  assert.equal(lastUsage?.totalTokenCount, 570);
  assert.equal(f.requests[1]?.url, '/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse');
  assert.ok(f.lastResponseBody().toString('utf8').includes('\r\n\r\ndata: '));
});

test('gemini: 429 and a cut stream surface as SDK errors', async () => {
  const f = await fake('gemini');
  const ai = new GoogleGenAI({ apiKey: 'x', httpOptions: { baseUrl: f.url } });
  f.next({ status: 429 });
  await assert.rejects(ai.models.generateContent({ model: 'gemini-2.5-flash', contents: 'hi' }), (err: unknown) => {
    assert.equal((err as { status?: number }).status, 429);
    assert.match(String((err as Error).message), /RESOURCE_EXHAUSTED/);
    return true;
  });

  f.next({ cutAfterChunks: 2 });
  const stream = await ai.models.generateContentStream({ model: 'gemini-2.5-flash', contents: 'hi' });
  let got = 0;
  await assert.rejects(async () => {
    for await (const _ of stream) got++;
  });
  assert.equal(got, 2);
});

test('gemini: Veo long-running operation completes on the second poll', async () => {
  const f = await fake('gemini');
  const ai = new GoogleGenAI({ apiKey: 'x', httpOptions: { baseUrl: f.url } });
  let op = await ai.models.generateVideos({ model: 'veo-3.0-generate-001', source: { prompt: 'a cat' }, config: { numberOfVideos: 1 } });
  assert.match(op.name ?? '', /^models\/veo-3\.0-generate-001\/operations\//);
  assert.ok(!op.done);
  op = await ai.operations.getVideosOperation({ operation: op });
  assert.ok(!op.done);
  op = await ai.operations.getVideosOperation({ operation: op });
  assert.equal(op.done, true);
  const uri = op.response?.generatedVideos?.[0]?.video?.uri ?? '';
  assert.match(uri, /:download\?alt=media$/);
  assert.equal(f.requests[0]?.url, '/v1beta/models/veo-3.0-generate-001:predictLongRunning');
});

// ------------------------------------------------------------------ fal

async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

test('fal: sync image, video and upscaler results', async () => {
  const f = await fake('fal');
  const res = await postJson(f.url + '/fal-ai/flux-2-pro', { prompt: 'a fox', image_size: 'landscape_16_9', num_images: 2 }, { authorization: 'Key abc' });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-fal-billable-units'), '2');
  assert.ok(res.headers.get('x-fal-request-id'));
  const img = (await res.json()) as { images: Array<{ url: string; width: number; height: number; content_type: string }>; prompt: string };
  assert.equal(img.images.length, 2);
  assert.equal(img.images[0]?.width, 1024);
  assert.equal(img.images[0]?.height, 576);
  assert.equal(img.prompt, 'a fox');

  const custom = (await (await postJson(f.url + '/fal-ai/flux/dev', { prompt: 'p', image_size: { width: 640, height: 480 } })).json()) as { images: Array<{ width: number; height: number }> };
  assert.deepEqual([custom.images[0]?.width, custom.images[0]?.height], [640, 480]);

  const vres = await postJson(f.url + '/fal-ai/kling-video/v2.1/master/text-to-video', { prompt: 'p', duration: '10' });
  assert.equal(vres.headers.get('x-fal-billable-units'), '10');
  const video = (await vres.json()) as { video: { url: string } };
  assert.match(video.video.url, /\.mp4$/);

  const up = (await (await postJson(f.url + '/fal-ai/clarity-upscaler', { image_url: 'https://x.test/in.png?w=512&h=256', upscale_factor: 4 })).json()) as { image: { width: number; height: number } };
  assert.deepEqual([up.image.width, up.image.height], [2048, 1024]);
  const up2 = (await (await postJson(f.url + '/fal-ai/clarity-upscaler', { image_url: 'https://x.test/in.png' })).json()) as { image: { width: number; height: number } };
  assert.deepEqual([up2.image.width, up2.image.height], [2048, 2048]);

  f.next({ status: 429 });
  const err = await postJson(f.url + '/fal-ai/flux-2-pro', { prompt: 'p' });
  assert.equal(err.status, 429);
  assert.equal(err.headers.get('retry-after'), '1');
  assert.ok(((await err.json()) as { detail: string }).detail);
});

test('fal-queue: submit, poll (COMPLETED on second poll), result', async () => {
  const f = await fake('fal-queue');
  const sub = (await (await postJson(f.url + '/fal-ai/flux-2/edit', { prompt: 'p', num_images: 3, image_size: 'square_hd' })).json()) as {
    request_id: string;
    response_url: string;
    status_url: string;
    cancel_url: string;
  };
  assert.ok(sub.request_id);
  assert.equal(sub.status_url, `${f.url}/fal-ai/flux-2/requests/${sub.request_id}/status`);
  assert.equal(sub.response_url, `${f.url}/fal-ai/flux-2/requests/${sub.request_id}`);
  assert.equal(sub.cancel_url, `${f.url}/fal-ai/flux-2/requests/${sub.request_id}/cancel`);
  const s1 = (await (await fetch(sub.status_url)).json()) as { status: string };
  assert.equal(s1.status, 'IN_QUEUE');
  const s2 = (await (await fetch(sub.status_url)).json()) as { status: string };
  assert.equal(s2.status, 'COMPLETED');
  const res = await fetch(sub.response_url);
  assert.equal(res.headers.get('x-fal-billable-units'), '3');
  assert.equal(res.headers.get('x-fal-request-id'), sub.request_id);
  const result = (await res.json()) as { images: Array<{ width: number; height: number }> };
  assert.equal(result.images.length, 3);
  assert.equal(result.images[0]?.width, 1024);
});

// ------------------------------------------------------------------ replicate

test('replicate: Prefer: wait returns a completed prediction; otherwise starting then GET', async () => {
  const f = await fake('replicate');
  const res = await postJson(f.url + '/v1/models/black-forest-labs/flux-schnell/predictions', { input: { prompt: 'p', num_outputs: 2 } }, { prefer: 'wait', authorization: 'Bearer r8_x' });
  assert.equal(res.status, 201);
  const p = (await res.json()) as { id: string; model: string; status: string; output: string[]; metrics: { predict_time: number; image_count: number } };
  assert.equal(p.status, 'succeeded');
  assert.equal(p.model, 'black-forest-labs/flux-schnell');
  assert.equal(p.output.length, 2);
  assert.equal(p.metrics.image_count, 2);
  assert.ok(p.metrics.predict_time > 0);

  const started = (await (await postJson(f.url + '/v1/predictions', { version: 'stability-ai/sdxl:39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b', input: { prompt: 'p' } })).json()) as {
    id: string;
    status: string;
    output: unknown;
    version: string;
    urls: { get: string };
  };
  assert.equal(started.status, 'starting');
  assert.equal(started.output, null);
  assert.equal(started.version, '39ed52f2a78e934b3ba6e2a89f5b1c712de7dfea535525255b1aa35c5565e08b');
  assert.equal(started.urls.get, `${f.url}/v1/predictions/${started.id}`);
  f.next({ usage: { predict_time: 9.5 } });
  const done = (await (await fetch(started.urls.get)).json()) as { status: string; model: string; metrics: { predict_time: number } };
  assert.equal(done.status, 'succeeded');
  assert.equal(done.model, 'stability-ai/sdxl');
  assert.equal(done.metrics.predict_time, 9.5);

  f.next({ status: 429 });
  const err = await postJson(f.url + '/v1/predictions', { version: 'x', input: {} });
  assert.equal(err.status, 429);
  assert.equal(err.headers.get('content-type'), 'application/problem+json');
});
