/**
 * The classifier's rule: a call is priced, unpriced with a reason, or on the explicit free list
 * (listings, polls, result downloads, token counting, cancels, uploads). Nothing else is free.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { classify, ENDPOINTS, isBillable, unpricedEndpoint, type Endpoint } from '../../../electron/engine/extract.ts';

/** The free allow-list, spelled out: adding to it must be a deliberate change to this test. */
const FREE: Endpoint[] = [
  'openai.read', 'openai.cancel', 'openai.files', 'moderations', 'responses.input_tokens',
  'messages.count_tokens', 'anthropic.read', 'anthropic.cancel', 'anthropic.files',
  'countTokens', 'gemini.operation', 'gemini.read', 'gemini.files', 'gemini.cancel',
  'fal.poll', 'replicate.poll', 'replicate.cancel', 'replicate.files',
];

/** Every route the proxy accepts, as users call it: [route, method, path, expected endpoint]. */
const CALLS: [string, string, string, Endpoint][] = [
  ['openai', 'POST', '/v1/chat/completions', 'chat.completions'],
  ['openai', 'POST', '/v1/chat/completions/', 'chat.completions'],
  ['openai', 'POST', '/v1/completions', 'completions'],
  ['openai', 'POST', '/v1/responses', 'responses'],
  ['openai', 'POST', '/v1/embeddings', 'embeddings'],
  ['openai', 'POST', '/v1/images/generations', 'images'],
  ['openai', 'POST', '/v1/images/edits', 'images'],
  ['openai', 'POST', '/v1/videos', 'videos'],
  ['openai', 'POST', '/v1/videos/video_1/remix', 'videos'],
  ['openai', 'POST', '/v1/audio/transcriptions', 'audio.transcriptions'],
  ['openai', 'POST', '/v1/audio/translations', 'audio.translations'],
  ['openai', 'POST', '/v1/audio/speech', 'audio.speech'],
  ['openai', 'POST', '/v1/batches', 'batches'],
  ['openai', 'POST', '/v1/fine_tuning/jobs', 'fine_tuning'],
  ['openai', 'POST', '/v1/vector_stores/vs_1/search', 'vector_stores.search'],
  ['openai', 'POST', '/v1/realtime/client_secrets', 'realtime'],
  ['openai', 'POST', '/v1/assistants', 'openai.unknown'],
  ['openai', 'PATCH', '/v1/chat/completions', 'openai.unknown'],
  ['openai', 'GET', '/v1/models', 'openai.read'],
  ['openai', 'GET', '/v1/batches/batch_1', 'openai.read'],
  ['openai', 'GET', '/v1/files/file_1/content', 'openai.read'],
  ['openai', 'DELETE', '/v1/files/file_1', 'openai.read'],
  ['openai', 'POST', '/v1/batches/batch_1/cancel', 'openai.cancel'],
  ['openai', 'POST', '/v1/responses/resp_1/cancel', 'openai.cancel'],
  ['openai', 'POST', '/v1/files', 'openai.files'],
  ['openai', 'POST', '/v1/uploads/upload_1/parts', 'openai.files'],
  ['openai', 'POST', '/v1/moderations', 'moderations'],
  ['openai', 'POST', '/v1/responses/input_tokens', 'responses.input_tokens'],
  ['openrouter', 'POST', '/api/v1/chat/completions', 'chat.completions'],
  ['openrouter', 'GET', '/api/v1/generation?id=gen-1', 'openai.read'],
  ['together', 'POST', '/v1/chat/completions', 'chat.completions'],
  ['anthropic', 'POST', '/v1/messages', 'messages'],
  ['anthropic', 'POST', '/v1/messages/count_tokens', 'messages.count_tokens'],
  ['anthropic', 'POST', '/v1/messages/batches', 'messages.batches'],
  ['anthropic', 'POST', '/v1/messages/batches/msgbatch_1/cancel', 'anthropic.cancel'],
  ['anthropic', 'GET', '/v1/messages/batches/msgbatch_1/results', 'anthropic.read'],
  ['anthropic', 'GET', '/v1/models', 'anthropic.read'],
  ['anthropic', 'POST', '/v1/files', 'anthropic.files'],
  ['anthropic', 'POST', '/v1/complete', 'anthropic.unknown'],
  ['anthropic', 'PUT', '/v1/messages', 'anthropic.unknown'],
  ['gemini', 'POST', '/v1beta/models/gemini-2.5-flash:generateContent', 'generateContent'],
  ['gemini', 'POST', '/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse', 'streamGenerateContent'],
  ['gemini', 'POST', '/v1beta/models/imagen-4.0-generate-001:predict', 'predict'],
  ['gemini', 'POST', '/v1beta/models/veo-3.1-generate-preview:predictLongRunning', 'predictLongRunning'],
  ['gemini', 'POST', '/v1beta/models/gemini-2.5-flash:countTokens', 'countTokens'],
  ['gemini', 'POST', '/v1beta/models/gemini-2.5-flash:batchGenerateContent', 'batchGenerateContent'],
  ['gemini', 'POST', '/v1beta/models/gemini-embedding-001:asyncBatchEmbedContent', 'batchGenerateContent'],
  ['gemini', 'POST', '/v1beta/models/gemini-embedding-001:embedContent', 'embedContent'],
  ['gemini', 'POST', '/v1beta/models/gemini-embedding-001:batchEmbedContents', 'embedContent'],
  ['gemini', 'POST', '/v1beta/cachedContents', 'cachedContents'],
  ['gemini', 'POST', '/v1beta/models/aqa:generateAnswer', 'gemini.unknown'],
  ['gemini', 'GET', '/v1beta/operations/op-1', 'gemini.operation'],
  ['gemini', 'GET', '/v1beta/models/veo-3.1-generate-preview/operations/op-1', 'gemini.operation'],
  ['gemini', 'POST', '/v1beta/batches/b-1:cancel', 'gemini.cancel'],
  ['gemini', 'GET', '/v1beta/models', 'gemini.read'],
  ['gemini', 'GET', '/v1beta/files/f-1:download', 'gemini.read'],
  ['gemini', 'POST', '/upload/v1beta/files', 'gemini.files'],
  ['gemini', 'PATCH', '/v1beta/cachedContents/c-1', 'gemini.unknown'],
  ['fal', 'POST', '/fal-ai/flux-2-pro', 'fal'],
  ['fal', 'GET', '/fal-ai/flux-2-pro', 'fal.poll'],
  ['fal', 'PATCH', '/fal-ai/flux-2-pro', 'fal.unknown'],
  ['fal-queue', 'POST', '/fal-ai/flux-2-pro', 'fal.submit'],
  ['fal-queue', 'GET', '/fal-ai/flux-2-pro/requests/r1/status', 'fal.poll'],
  ['fal-queue', 'GET', '/fal-ai/flux-2-pro/requests/r1', 'fal.poll'],
  ['fal-queue', 'PUT', '/fal-ai/flux-2-pro/requests/r1/cancel', 'fal.poll'],
  ['fal-queue', 'POST', '/fal-ai/flux-2-pro/requests/r1', 'fal.unknown'],
  ['replicate', 'POST', '/v1/predictions', 'replicate.create'],
  ['replicate', 'POST', '/v1/models/black-forest-labs/flux-2-pro/predictions', 'replicate.create'],
  ['replicate', 'POST', '/v1/deployments/acme/flux/predictions', 'replicate.create'],
  ['replicate', 'GET', '/v1/predictions/p1', 'replicate.poll'],
  ['replicate', 'POST', '/v1/predictions/p1/cancel', 'replicate.cancel'],
  ['replicate', 'POST', '/v1/files', 'replicate.files'],
  ['replicate', 'POST', '/v1/models/o/n/versions/v1/trainings', 'replicate.trainings'],
  ['replicate', 'POST', '/v1/deployments', 'replicate.unknown'],
];

test('every route the proxy accepts is classified as expected', () => {
  for (const [route, method, path, want] of CALLS) assert.equal(classify(route, method, path), want, `${route} ${method} ${path}`);
});

test('every endpoint the classifier knows is reached by a real call, and is priced, unpriced with a reason, or on the free list', () => {
  const reached = new Set(CALLS.map((c) => c[3]));
  for (const e of Object.keys(ENDPOINTS) as Endpoint[]) {
    assert.ok(reached.has(e), `no call in this test reaches ${e}`);
    const billing = ENDPOINTS[e].billing;
    if (billing === 'free') assert.ok(FREE.includes(e), `${e} is free but not on the explicit free list`);
    else assert.ok(!FREE.includes(e), `${e} is on the free list but billed as ${billing}`);
    assert.equal(isBillable(e), billing !== 'free', e);
    if (billing === 'unpriced') assert.match(unpricedEndpoint(e) ?? "", /^.{20,}$/, `${e} has no reason`);
    else assert.equal(unpricedEndpoint(e), null, e);
  }
  assert.deepEqual(new Set(FREE), new Set(Object.keys(ENDPOINTS).filter((e) => ENDPOINTS[e as Endpoint].billing === 'free')));
});

test('batch APIs and audio endpoints are never free', () => {
  for (const [r, p] of [['openai', '/v1/batches'], ['anthropic', '/v1/messages/batches'], ['gemini', '/v1beta/models/gemini-2.5-flash:batchGenerateContent'],
    ['openai', '/v1/audio/transcriptions'], ['openai', '/v1/audio/translations'], ['openai', '/v1/audio/speech']] as const) {
    assert.equal(isBillable(classify(r, 'POST', p)), true, `${r} ${p}`);
  }
});

test('any POST to a path the classifier does not know is billable (unpriced with a reason), never free', () => {
  const seg = fc.stringMatching(/^[a-z_]{1,8}$/);
  fc.assert(fc.property(fc.constantFrom('openai', 'anthropic', 'gemini', 'replicate', 'fal-queue', 'openrouter', 'mistral'), fc.array(seg, { minLength: 1, maxLength: 4 }), (route, segs) => {
    const path = '/v1/zz_' + segs.join('/');
    const e = classify(route, 'POST', path);
    assert.ok(e in ENDPOINTS);
    if (path.endsWith('/cancel') || path.endsWith('/files') || path.includes('/uploads') || path.endsWith('/moderations') || path.endsWith('/count_tokens')) return;
    assert.equal(isBillable(e), true, `${route} POST ${path} → ${e}`);
  }), { numRuns: 500 });
});
