/**
 * The classifier's rule: a call is priced, unpriced with a reason, or on the explicit free list
 * (listings, polls, result downloads, token counting, cancels, uploads). Nothing else is free.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { classify, ENDPOINTS, isBatchResults, isBillable, isTapped, unpricedEndpoint, type Endpoint } from '../../../electron/engine/extract.ts';
import { CALLS, FREE } from '../../fixtures/provider-routes.ts';


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
    assert.equal(isBillable(e), billing !== 'free' && billing !== 'results', e);
    // a batch's results are free to fetch, but read: their first retrieval books the batch's actual cost
    assert.equal(isBatchResults(e), billing === 'results', e);
    if (billing === 'results') assert.equal(isTapped(e), true, e);
    if (billing === 'unpriced') assert.match(unpricedEndpoint(e) ?? "", /^.{20,}$/, `${e} has no reason`);
    else assert.equal(unpricedEndpoint(e), null, e);
  }
  assert.deepEqual(new Set(FREE), new Set(Object.keys(ENDPOINTS).filter((e) => ENDPOINTS[e as Endpoint].billing === 'free')));
});

test('batch results are classified as results (booked once when read), only for the providers whose format Tollgate reads', () => {
  assert.equal(classify('anthropic', 'GET', '/v1/messages/batches/msgbatch_01/results'), 'messages.batches.results');
  assert.equal(classify('openai', 'GET', '/v1/files/file-abc/content'), 'batches.output');
  assert.equal(classify('gemini', 'GET', '/v1beta/batches/abc123'), 'gemini.batch');
  // a Gemini file batch's responses file, downloaded as the JS SDK asks it and as the REST docs and the Python SDK do
  assert.equal(classify('gemini', 'GET', '/v1beta/files/batch-abc:download?alt=media'), 'gemini.batch.output');
  assert.equal(classify('gemini', 'GET', '/download/v1beta/files/batch-abc:download?alt=media'), 'gemini.batch.output');
  assert.equal(classify('gemini', 'GET', '/v1beta/files/batch-abc'), 'gemini.read');
  // other OpenAI-compatible hosts: a plain read (their batch output is not priced here)
  assert.equal(classify('openrouter', 'GET', '/api/v1/files/file-abc/content'), 'openai.read');
  assert.equal(classify('anthropic', 'DELETE', '/v1/messages/batches/msgbatch_01'), 'anthropic.read');
  assert.equal(isTapped(classify('openai', 'GET', '/v1/batches/batch_1')), true, 'a batch poll is read for its output file');
  assert.equal(isTapped(classify('openai', 'GET', '/v1/models')), false);
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
