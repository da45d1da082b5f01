/**
 * Route-level pricing through the proxy with the fake upstreams: each call is booked the way the
 * provider bills it — image tokens, service tiers, audio, batches (never $0 unflagged), failed
 * calls (not billed, said so), free listings on the explicit allow-list.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI, { toFile } from 'openai';
import { startRig, eventually, type Rig } from '../fixtures/engine.ts';
import type { CallRecord } from '../../shared/api.ts';
import { CALLS, FREE } from '../fixtures/provider-routes.ts';
import { ENDPOINTS } from '../../electron/engine/extract.ts';

let rig: Rig;
let bad: http.Server;
let badBody = '';
before(async () => {
  // an upstream that answers every call with an error whose body still reports usage
  bad = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(badBody);
    });
  });
  await new Promise<void>((r) => bad.listen(0, '127.0.0.1', () => r()));
  rig = await startRig(['openai', 'anthropic', 'gemini', 'fal', 'fal-queue', 'replicate', 'recraft'], { upstreams: { badhost: `http://127.0.0.1:${(bad.address() as AddressInfo).port}/v1` } });
});
after(async () => {
  await rig.close();
  await new Promise<void>((r) => bad.close(() => r()));
});

async function settled(id: string | null): Promise<CallRecord> {
  assert.ok(id, 'the proxy names the call in x-tollgate-call-id');
  return eventually(async () => {
    const c = await rig.engine.api.call({ id });
    return c && c.status !== 'pending' ? c : null;
  }, `call ${id}`);
}
async function post(path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; call: CallRecord; text: string }> {
  const r = await fetch(`${rig.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, call: await settled(r.headers.get('x-tollgate-call-id')), text };
}
const openai = () => new OpenAI({ apiKey: 'sk-x', baseURL: `${rig.url}/openai/v1`, maxRetries: 0 });

test('Nano Banana Pro through generateContent: the image is booked at the image-output rate', async () => {
  rig.fakes.gemini!.next({ usage: { promptTokenCount: 20, candidatesTokenCount: 0, imageTokenCount: 1120 } });
  const { status, call } = await post('/gemini/v1beta/models/gemini-3-pro-image-preview:generateContent', { contents: [{ parts: [{ text: 'a red bicycle' }] }] }, { 'x-goog-api-key': 'g-x' });
  assert.equal(status, 200);
  assert.equal(call.status, 'ok');
  // 20 × $2/M = 0.00004; 1120 × $120/M = 0.1344 (Google: "$0.134 per 1K/2K image")
  assert.equal(call.cost, '0.13444');
  assert.equal(call.usage.outputImageTokens, 1120);
});

test('OpenAI priority tier as the response reports it: gpt-5 at its priority prices', async () => {
  rig.fakes.openai!.next({ usage: { prompt_tokens: 10000, cached_tokens: 4000, completion_tokens: 2000, reasoning_tokens: 1500 } });
  const { data, response } = await openai().chat.completions.create({ model: 'gpt-5', service_tier: 'priority', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  assert.equal(data.service_tier, 'priority');
  const call = await settled(response.headers.get('x-tollgate-call-id'));
  // 6000 × $2.50/M + 4000 × $0.25/M + 500 × $20/M + 1500 × $20/M = 0.015 + 0.001 + 0.01 + 0.03
  assert.equal(call.cost, '0.056');
  assert.equal(call.usage.serviceTier, 'priority');
  rig.fakes.openai!.next({ usage: { prompt_tokens: 10000, cached_tokens: 4000, completion_tokens: 2000, reasoning_tokens: 1500 } });
  const flex = await openai().responses.create({ model: 'gpt-5', service_tier: 'flex', input: 'hi' }).withResponse();
  assert.equal((await settled(flex.response.headers.get('x-tollgate-call-id'))).cost, '0.014');
});

test('batch submissions are never a silent $0: inline batches are estimated at 50 %, file batches unpriced with the reason', async () => {
  const o = await openai().batches.create({ input_file_id: 'file-abc', endpoint: '/v1/chat/completions', completion_window: '24h' }).withResponse();
  const oc = await settled(o.response.headers.get('x-tollgate-call-id'));
  assert.equal(oc.endpoint, 'batches');
  assert.equal(oc.unpriced, true);
  assert.match(oc.unpricedReason ?? '', /batch/i);
  assert.equal(oc.cost, '0');

  const params = { model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'Summarise the attached policy in one line.' }] };
  const a = await post('/anthropic/v1/messages/batches', { requests: [{ custom_id: 'a', params }, { custom_id: 'b', params: { ...params, max_tokens: 2000 } }] },
    { 'x-api-key': 'sk-ant-x', 'anthropic-version': '2023-06-01' });
  assert.equal(a.call.endpoint, 'messages.batches');
  assert.equal(a.call.unpriced, false);
  assert.equal(a.call.estimated, true);
  // 2 × 16 input × $1.50/M + (100 + 500 expected) output × $7.50/M
  assert.equal(a.call.cost, '0.004548');
  assert.equal(a.call.model, 'claude-sonnet-4-5');

  const g = await post('/gemini/v1beta/models/gemini-2.5-flash:batchGenerateContent', { batch: { display_name: 'nightly', input_config: { file_name: 'files/abc' } } }, { 'x-goog-api-key': 'g-x' });
  assert.equal(g.call.endpoint, 'batchGenerateContent');
  assert.equal(g.call.unpriced, true);
  assert.match(g.call.unpricedReason ?? '', /batch from a file/);
  assert.equal(g.call.cost, '0');
});

test('OpenAI audio: whisper-1 by the seconds it reports, gpt-4o-transcribe by tokens, tts-1 by characters', async () => {
  const client = openai();
  const file = () => toFile(Buffer.from('ID3\u0003 not really an mp3'), 'note.mp3');
  rig.fakes.openai!.next({ usage: { seconds: 95 } });
  const w = await client.audio.transcriptions.create({ model: 'whisper-1', file: await file() }).withResponse();
  const wc = await settled(w.response.headers.get('x-tollgate-call-id'));
  assert.equal(wc.model, 'whisper-1');
  assert.equal(wc.cost, '0.0095'); // 95 s × $0.006/min

  rig.fakes.openai!.next({ usage: { audio_tokens: 1480, text_tokens: 20, output_tokens: 300 } });
  const t = await client.audio.transcriptions.create({ model: 'gpt-4o-transcribe', file: await file() }).withResponse();
  const tc = await settled(t.response.headers.get('x-tollgate-call-id'));
  assert.equal(tc.model, 'gpt-4o-transcribe');
  assert.equal(tc.cost, '0.01193'); // 20 × $2.50/M + 1480 × $6/M + 300 × $10/M

  const s = await client.audio.speech.create({ model: 'tts-1', voice: 'coral', input: 'Your order has shipped!' }).withResponse();
  await s.data.arrayBuffer();
  const sc = await settled(s.response.headers.get('x-tollgate-call-id'));
  assert.equal(sc.unpriced, false);
  assert.equal(sc.cost, '0.000345'); // 23 characters × $15/M

  // a translation answers { text } only: an mp3's length is not measured, so it is unpriced with why
  const tr = await client.audio.translations.create({ model: 'whisper-1', file: await file() }).withResponse();
  const trc = await settled(tr.response.headers.get('x-tollgate-call-id'));
  assert.equal(trc.unpriced, true);
  assert.match(trc.unpricedReason ?? '', /whisper-1 bills per second/);

  const m = await client.audio.speech.create({ model: 'gpt-4o-mini-tts', voice: 'coral', input: 'hi' }).withResponse();
  await m.data.arrayBuffer();
  const mc = await settled(m.response.headers.get('x-tollgate-call-id'));
  assert.equal(mc.unpriced, true);
  assert.match(mc.unpricedReason ?? '', /audio output tokens/);
});

test('a failed call is not billed, whatever usage its error body reports, and says so', async () => {
  badBody = JSON.stringify({ error: { message: 'upstream overloaded', type: 'server_error' }, model: 'gpt-4o-mini', usage: { prompt_tokens: 1_000_000, completion_tokens: 1_000_000, total_tokens: 2_000_000 } });
  const { status, call } = await post('/x/badhost/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(status, 500);
  assert.equal(call.status, 'error');
  assert.equal(call.cost, '0');
  assert.equal(call.unpriced, false);
  assert.deepEqual(call.items, []);
  assert.match(call.priceSource ?? '', /not billed: the provider answered HTTP 500/);
});

test('free endpoints on the allow-list book $0 without a flag; token counting is free', async () => {
  const r = await fetch(`${rig.url}/openai/v1/models`, { headers: { authorization: 'Bearer sk-x' } });
  await r.text();
  const models = await settled(r.headers.get('x-tollgate-call-id'));
  assert.equal(models.cost, '0');
  assert.equal(models.unpriced, false);
  const ct = await post('/anthropic/v1/messages/count_tokens', { model: 'claude-sonnet-4-6', messages: [{ role: 'user', content: 'hi' }] }, { 'x-api-key': 'sk-ant-x', 'anthropic-version': '2023-06-01' });
  assert.equal(ct.call.endpoint, 'messages.count_tokens');
  assert.equal(ct.call.cost, '0');
  assert.equal(ct.call.unpriced, false);
});

test('absurd usage from an upstream is flagged (estimated, unpriced with the reason), never booked', async () => {
  for (const n of [Number.MAX_SAFE_INTEGER, 1e12]) {
    rig.fakes.openai!.next({ usage: { prompt_tokens: n, completion_tokens: 5 } });
    const { status, call } = await post('/openai/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, { authorization: 'Bearer sk-x' });
    assert.equal(status, 200);
    assert.equal(call.cost, '0');
    assert.equal(call.unpriced, true);
    assert.equal(call.estimated, true);
    assert.match(call.unpricedReason ?? '', /implausible usage: the provider reported [\d,]+ tokens, more than the gpt-4o-mini context window/);
  }
  rig.fakes.openai!.next({ usage: { prompt_tokens: 100_000, completion_tokens: 1000 } });
  const ok = await post('/openai/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, { authorization: 'Bearer sk-x' });
  assert.equal(ok.call.unpriced, false);
  assert.equal(ok.call.cost, '0.0156'); // 100,000 × $0.15/M + 1,000 × $0.60/M
});

test('Anthropic stream reports cache writes without the 5m/1h split: the request\'s 1 h ttl prices them as 1 h writes', async () => {
  rig.fakes.anthropic!.next({ usage: { input_tokens: 50, cache_creation_input_tokens: 2000, output_tokens: 10, cache_split: 0 } });
  const r = await fetch(`${rig.url}/anthropic/v1/messages`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': 'sk-ant-x', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 10, stream: true, system: [{ type: 'text', text: 'policy', cache_control: { type: 'ephemeral', ttl: '1h' } }], messages: [{ role: 'user', content: 'hi' }] }),
  });
  await r.text();
  const call = await settled(r.headers.get('x-tollgate-call-id'));
  assert.equal(call.usage.cacheWrite1hTokens, 2000);
  // 50 × $3/M + 2000 × $6/M (1 h writes) + 10 × $15/M = 0.00015 + 0.012 + 0.00015
  assert.equal(call.cost, '0.0123');
  assert.equal(call.estimated, false);
});

test('media ids users send are booked at their catalog price through the proxy (fal, fal queue, Replicate incl. flux-2-pro and veo-3.1, Gemini Veo)', async () => {
  const falH = { authorization: 'Key fal-x' };
  // FLUX.2 [pro] edit: 1 output MP ($0.03) + 2 reference images at 1 MP each × $0.015
  const edit = await post('/fal/fal-ai/flux-2-pro/edit', { prompt: 'p', image_urls: ['https://x/a.png', 'https://x/b.png'], image_size: 'square_hd' }, falH);
  assert.equal(edit.status, 200);
  assert.equal(edit.call.cost, '0.06');
  // Nano Banana Pro 4K through fal's queue: $0.30
  const nbp = await post('/fal-queue/fal-ai/nano-banana-pro', { prompt: 'p', resolution: '4K' }, falH);
  assert.equal(nbp.call.cost, '0.3');
  // Veo 3.1 Fast, 8 s with audio (default): 8 × $0.15
  const veo = await post('/fal/fal-ai/veo3.1/fast', { prompt: 'p', duration: '8s' }, falH);
  assert.equal(veo.call.cost, '1.2');
  // Recraft V4 SVG and Nano Banana Pro on Replicate
  const repH = { authorization: 'Bearer r8_x', prefer: 'wait' };
  const svg = await post('/replicate/v1/models/recraft-ai/recraft-v4-svg/predictions', { input: { prompt: 'an icon' } }, repH);
  assert.equal(svg.call.model, 'recraft-ai/recraft-v4-svg');
  assert.equal(svg.call.cost, '0.08');
  const rnb = await post('/replicate/v1/models/google/nano-banana-pro/predictions', { input: { prompt: 'p', resolution: '2K' } }, repH);
  assert.equal(rnb.call.cost, '0.15');
  // FLUX.2 [pro] on Replicate, "2 MP" with two reference images: $0.015 run + 2 × $0.015 output MP + 2 × $0.015 input MP
  const fp = await post('/replicate/v1/models/black-forest-labs/flux-2-pro/predictions', { input: { prompt: 'the mug on the desk', resolution: '2 MP', input_images: ['https://x/a.png', 'https://x/b.png'] } }, repH);
  assert.equal(fp.status, 201);
  assert.equal(fp.call.model, 'black-forest-labs/flux-2-pro');
  assert.equal(fp.call.unpriced, false, fp.call.unpricedReason ?? '');
  assert.equal(fp.call.cost, '0.075');
  assert.match(fp.call.priceSource ?? '', /^tollgate-media@.*:replicate\/flux-2-pro$/);
  // …and at its default resolution (1 MP): $0.03
  const fp1 = await post('/replicate/v1/models/black-forest-labs/flux-2-pro/predictions', { input: { prompt: 'a fox' } }, repH);
  assert.equal(fp1.call.cost, '0.03');
  // Veo 3.1 on Replicate, per second of output video: the default 8 s with audio (default on) × $0.40; 6 s without audio × $0.20
  const rv = await post('/replicate/v1/models/google/veo-3.1/predictions', { input: { prompt: 'a drone shot over a lake' } }, repH);
  assert.equal(rv.call.model, 'google/veo-3.1');
  assert.equal(rv.call.cost, '3.2');
  assert.match(rv.call.priceSource ?? '', /:replicate\/veo-3-1$/);
  const rv6 = await post('/replicate/v1/models/google/veo-3.1/predictions', { input: { prompt: 'p', duration: 6, resolution: '1080p', generate_audio: false } }, repH);
  assert.equal(rv6.call.cost, '1.2');
  // a Replicate id with no published price: unpriced with the reason, not $0 silently
  const ff = await post('/replicate/v1/models/black-forest-labs/flux-2-flex/predictions', { input: { prompt: 'p' } }, repH);
  assert.equal(ff.call.unpriced, true);
  assert.match(ff.call.unpricedReason ?? '', /black-forest-labs\/flux-2-flex/);
  // Veo 3.1 Fast on the Gemini API, 8 s at 1080p: 8 × $0.12
  const g = await post('/gemini/v1beta/models/veo-3.1-fast-generate-preview:predictLongRunning', { instances: [{ prompt: 'p' }], parameters: { durationSeconds: 8, resolution: '1080p' } }, { 'x-goog-api-key': 'g-x' });
  assert.equal(g.call.cost, '0.96');
});

test('Recraft API route: recraftv4, recraftv4_vector, V4.1 and V4.1 Pro booked per image from the response; other Recraft calls unpriced with the reason', async () => {
  const h = { authorization: 'Bearer rc_x' };
  const cases: [string, number, string][] = [
    ['recraftv4', 2, '0.08'], // 2 × $0.04
    ['recraftv4_vector', 1, '0.08'],
    ['recraftv4_1', 1, '0.035'],
    ['recraftv4_1_pro', 3, '0.63'], // 3 × $0.21
    ['recraftv4_pro_vector', 1, '0.3'],
  ];
  for (const [model, n, cost] of cases) {
    const { status, call } = await post('/recraft/v1/images/generations', { prompt: 'a red fox, flat vector', model, n }, h);
    assert.equal(status, 200, model);
    assert.equal(call.provider, 'recraft');
    assert.equal(call.endpoint, 'images');
    assert.equal(call.model, model);
    assert.equal(call.unpriced, false, call.unpricedReason ?? '');
    assert.equal(call.cost, cost, model);
    assert.match(call.priceSource ?? '', /tollgate-media@.*recraft/);
  }
  // a model without a published price on Recraft's API is unpriced with the reason, never $0
  const v41v = await post('/recraft/v1/images/generations', { prompt: 'p', model: 'recraftv4_1_vector' }, h);
  assert.equal(v41v.call.unpriced, true);
  assert.match(v41v.call.unpricedReason ?? '', /recraftv4_1_vector/);
  // vectorize takes a multipart upload, as Recraft documents it: forwarded, and unpriced with the reason
  const form = new FormData();
  form.append('file', new Blob([Buffer.from([0x89, 0x50, 0x4e, 0x47])], { type: 'image/png' }), 'in.png');
  const r = await fetch(`${rig.url}/recraft/v1/images/vectorize`, { method: 'POST', headers: h, body: form });
  await r.text();
  assert.equal(r.status, 200);
  const vec = await settled(r.headers.get('x-tollgate-call-id'));
  assert.equal(vec.endpoint, 'recraft.unknown');
  assert.equal(vec.unpriced, true);
  assert.match(vec.unpricedReason ?? '', /Recraft bills this endpoint/);
  // and the quote before the call says the same price
  const q = await rig.engine.api.quote({ kind: 'request', provider: 'recraft', path: '/v1/images/generations', body: { prompt: 'p', model: 'recraftv4_1', n: 2 } });
  assert.equal(q.unpriced, 0);
  assert.equal(q.expected, '0.07');
});

test('Replicate clarity-upscaler is billed by hardware time: the finished prediction\'s metrics.predict_time × the A100 (40GB) rate; an unfinished one is unpriced with the reason', async () => {
  const h = { authorization: 'Bearer r8_x' };
  rig.fakes.replicate!.next({ usage: { predict_time: 14.287345 } });
  const done = await post('/replicate/v1/models/philz1337x/clarity-upscaler/predictions', { input: { image: 'https://example.com/in.png', scale_factor: 2, creativity: 0.35 } }, { ...h, prefer: 'wait' });
  assert.equal(done.status, 201);
  const body = JSON.parse(done.text) as { status: string; metrics: { predict_time: number } };
  assert.equal(body.status, 'succeeded');
  assert.equal(body.metrics.predict_time, 14.287345);
  assert.equal(done.call.model, 'philz1337x/clarity-upscaler');
  assert.equal(done.call.unpriced, false, done.call.unpricedReason ?? '');
  // 14.287 s (to the millisecond) × $0.00115/s = $0.01643005
  assert.equal(done.call.cost, '0.01643005');
  assert.equal(done.call.usage.runSeconds, 14.287);
  assert.match(done.call.items[0]!.label, /Run time \(Nvidia A100 \(40GB\) GPU\)/);
  // without Prefer: wait the prediction has only started: no run time yet, unpriced with the reason (never $0)
  const started = await post('/replicate/v1/models/philz1337x/clarity-upscaler/predictions', { input: { image: 'https://example.com/in.png' } }, h);
  assert.equal(started.call.unpriced, true);
  assert.match(started.call.unpricedReason ?? '', /billed by hardware run time .*metrics\.predict_time/);
});

test('Anthropic fast mode and US-only inference as the response reports them: multipliers on the token rates; fast mode on a model without a published multiplier is estimated, said', async () => {
  const h = { 'x-api-key': 'sk-ant-x', 'anthropic-version': '2023-06-01' };
  const msg = (model: string, extra: Record<string, unknown>) => ({ model, max_tokens: 2000, messages: [{ role: 'user', content: 'hi' }], ...extra });
  // Opus 5.5 fast + US-only: 2x × 1.1x on $4 / $0.20 / $20 per M
  rig.fakes.anthropic!.next({ usage: { input_tokens: 10_000, cache_read_input_tokens: 20_000, output_tokens: 1_000 } });
  const both = await post('/anthropic/v1/messages', msg('claude-opus-5-5', { speed: 'fast', inference_geo: 'us' }), h);
  const body = JSON.parse(both.text) as { usage: { speed?: string; inference_geo?: string } };
  assert.equal(body.usage.speed, 'fast');
  assert.equal(body.usage.inference_geo, 'us');
  assert.equal(both.call.usage.speed, 'fast');
  assert.equal(both.call.usage.inferenceGeo, 'us');
  // (10,000 × 4 + 20,000 × 0.20 + 1,000 × 20) / 1M × 2.2 = (0.04 + 0.004 + 0.02) × 2.2
  assert.equal(both.call.cost, '0.1408');
  assert.equal(both.call.estimated, false);
  assert.match(both.call.priceSource ?? '', /fast mode at 2x .* US-only inference at 1\.1x/);
  // US-only alone on Sonnet 4.6: ($3 × 10,000 + $15 × 1,000) / 1M × 1.1
  rig.fakes.anthropic!.next({ usage: { input_tokens: 10_000, output_tokens: 1_000 } });
  const us = await post('/anthropic/v1/messages', msg('claude-sonnet-4-6', { inference_geo: 'us' }), h);
  assert.equal(us.call.cost, '0.0495');
  // fast mode reported on a model with no published fast-mode price: standard rates, marked estimated with the reason
  rig.fakes.anthropic!.next({ usage: { input_tokens: 10_000, output_tokens: 1_000 } });
  const odd = await post('/anthropic/v1/messages', msg('claude-sonnet-4-6', { speed: 'fast' }), h);
  assert.equal(odd.call.cost, '0.045');
  assert.equal(odd.call.estimated, true);
  assert.match(odd.call.priceSource ?? '', /no fast-mode price is published for claude-sonnet-4-6/);
});

test('a walk over every route the proxy accepts: each call is priced, unpriced with a reason, free by the allow-list, or a failed call said not billed', async () => {
  const bodies: Record<string, unknown> = {
    openai: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], prompt: 'p', input: 'hi' },
    openrouter: { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
    anthropic: { model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] },
    gemini: { contents: [{ parts: [{ text: 'hi' }] }] },
    fal: { prompt: 'p', image_size: 'square_hd' },
    'fal-queue': { prompt: 'p', image_size: 'square_hd' },
    replicate: { input: { prompt: 'p' } },
    recraft: { prompt: 'p', model: 'recraftv4' },
  };
  const auth: Record<string, Record<string, string>> = {
    anthropic: { 'x-api-key': 'sk-ant-x', 'anthropic-version': '2023-06-01' }, gemini: { 'x-goog-api-key': 'g-x' },
    fal: { authorization: 'Key f' }, 'fal-queue': { authorization: 'Key f' }, replicate: { authorization: 'Bearer r8_x' },
    recraft: { authorization: 'Bearer rc_x' },
  };
  const silent: string[] = [];
  let walked = 0;
  for (const [route, method, path, endpoint] of CALLS) {
    if (route === 'together' || route === 'openrouter') continue; // no fake behind these names in this rig
    const hasBody = method === 'POST' || method === 'PUT' || method === 'PATCH';
    const r = await fetch(`${rig.url}/${route}${path}`, {
      method, headers: { 'content-type': 'application/json', authorization: 'Bearer sk-x', ...auth[route] }, body: hasBody ? JSON.stringify(bodies[route]) : undefined,
    });
    await r.arrayBuffer();
    const id = r.headers.get('x-tollgate-call-id');
    if (!id) continue; // refused before forwarding (e.g. a method the proxy does not forward)
    const c = await settled(id);
    walked++;
    assert.equal(c.endpoint, endpoint, `${route} ${method} ${path}`);
    const free = FREE.includes(c.endpoint as never);
    const priced = !c.unpriced && c.cost !== '0';
    const unpricedWithReason = c.unpriced && (c.unpricedReason ?? '').length > 10;
    const freeByList = free && !c.unpriced && c.cost === '0';
    const failedSaid = c.httpStatus !== null && c.httpStatus >= 400 && c.cost === '0' && /^not billed/.test(c.priceSource ?? '');
    // a batch's results: free to fetch; booked (priced, or unpriced with why) when they are a batch's results, else $0 unflagged
    const results = ENDPOINTS[c.endpoint as keyof typeof ENDPOINTS]?.billing === 'results' && (priced || unpricedWithReason || (!c.unpriced && c.cost === '0'));
    if (!(priced || unpricedWithReason || freeByList || failedSaid || results)) silent.push(`${route} ${method} ${path} → ${c.endpoint} (${ENDPOINTS[c.endpoint as keyof typeof ENDPOINTS]?.billing}): HTTP ${c.httpStatus}, cost ${c.cost}, unpriced ${c.unpriced}`);
  }
  assert.ok(walked > 50, `walked ${walked} routes`);
  assert.deepEqual(silent, [], 'calls booked at $0 with no reason');
});

test('an image edit (multipart) is priced from its usage under the model named in the form (gpt-image-1.5)', async () => {
  rig.fakes.openai!.next({ usage: { text_tokens: 20, image_tokens: 500, output_tokens: 1000 } });
  const { response } = await openai().images.edit({ model: 'gpt-image-1.5', prompt: 'make it blue', image: await toFile(Buffer.from([0x89, 0x50, 0x4e, 0x47]), 'a.png', { type: 'image/png' }) }).withResponse();
  const c = await settled(response.headers.get('x-tollgate-call-id'));
  assert.equal(c.model, 'gpt-image-1.5');
  // 20 text × $5/M + 500 image in × $8/M + 1000 image out × $32/M = 0.0001 + 0.004 + 0.032
  assert.equal(c.cost, '0.0361');
});
