/**
 * The response tap on a batch's results: JSONL (Anthropic results, OpenAI batch output files, Gemini responses files) read
 * line by line in whatever chunks it arrives, compressed or not, bounded per line; a Gemini batch job
 * read from its inline responses once done. Bad lines are counted, never thrown; a file that is not a
 * batch's results yields nothing to book.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import fc from 'fast-check';
import { ResponseTap, type Endpoint, type Extracted } from '../../../electron/engine/extract.ts';

async function tap(endpoint: Endpoint, body: Buffer, chunks: number[] = [], encoding?: string, contentType = 'application/binary'): Promise<Extracted> {
  const t = new ResponseTap(endpoint, contentType, encoding);
  let at = 0;
  for (const c of [...chunks, body.length]) {
    const end = Math.min(body.length, at + c);
    if (end > at) t.write(body.subarray(at, end));
    at = end;
  }
  if (at < body.length) t.write(body.subarray(at));
  return await t.finish();
}

const anthropicLine = (id: string, input: number, output: number, type = 'succeeded') => JSON.stringify(type === 'succeeded'
  ? { custom_id: id, result: { type, message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-sonnet-4-5', content: [{ type: 'text', text: 'é "usage" {}\n' }], usage: { input_tokens: input, cache_read_input_tokens: 5, output_tokens: output } } } }
  : { custom_id: id, result: { type } });
const ANTHROPIC = Buffer.from([anthropicLine('a', 10, 20), anthropicLine('b', 30, 40), anthropicLine('c', 0, 0, 'errored'), anthropicLine('d', 0, 0, 'expired')].join('\n') + '\n');

test('Anthropic results: succeeded lines carry their usage at the batch tier; errored and expired are not billed', async () => {
  const x = await tap('messages.batches.results', ANTHROPIC);
  assert.equal(x.parseError, null);
  assert.deepEqual(x.batch?.results, [
    { model: 'claude-sonnet-4-5', usage: { inputTokens: 10, cacheReadTokens: 5, outputTokens: 20, serviceTier: 'batch' } },
    { model: 'claude-sonnet-4-5', usage: { inputTokens: 30, cacheReadTokens: 5, outputTokens: 40, serviceTier: 'batch' } },
  ]);
  assert.equal(x.batch?.notBilled, 2);
  assert.equal(x.batch?.unread, 0);
});

test('the same results whatever the chunking, and through gzip; no trailing newline needed', async () => {
  const want = (await tap('messages.batches.results', ANTHROPIC)).batch;
  await fc.assert(fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 200 }), { maxLength: 40 }), async (chunks) => {
    assert.deepEqual((await tap('messages.batches.results', ANTHROPIC, chunks)).batch, want);
  }), { numRuns: 200 });
  assert.deepEqual((await tap('messages.batches.results', zlib.gzipSync(ANTHROPIC), [7, 100, 3], 'gzip')).batch, want);
  assert.deepEqual((await tap('messages.batches.results', ANTHROPIC.subarray(0, ANTHROPIC.length - 1))).batch, want);
});

test('a malformed line, invalid usage, or a line past the length bound is counted unread; the other lines still count', async () => {
  const body = Buffer.from([anthropicLine('a', 10, 20), '{"custom_id":"b","result":{"type":"succ', JSON.stringify({ custom_id: 'c', result: { type: 'succeeded', message: { model: 'm', usage: { input_tokens: -5, output_tokens: 1 } } } }), anthropicLine('d', 1, 2)].join('\n'));
  const x = await tap('messages.batches.results', body);
  assert.equal(x.batch?.results?.length, 2);
  assert.equal(x.batch?.unread, 2);
  // a 33 MB line is skipped without being held (the bound is 32 MB), and counted
  const long = Buffer.concat([Buffer.from(anthropicLine('a', 1, 1) + '\n{"custom_id":"big","x":"'), Buffer.alloc(33 * 1024 * 1024, 0x61), Buffer.from('"}\n' + anthropicLine('z', 2, 2) + '\n')]);
  const y = await tap('messages.batches.results', long, Array(40).fill(1024 * 1024));
  assert.deepEqual(y.batch?.results?.map((r) => r.usage.inputTokens), [1, 2]);
  assert.equal(y.batch?.unread, 1);
});

test('a file that is not a batch\'s results (an input file, an error body, any download) books nothing and is not a parse error', async () => {
  const input = Buffer.from(JSON.stringify({ custom_id: 'r1', method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini' } }) + '\n');
  for (const body of [input, Buffer.from('{"type":"error","error":{"type":"not_found_error","message":"x"}}'), Buffer.from('plain text\nlines\n'), Buffer.alloc(0), Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47]), Buffer.alloc(1 << 20)])]) {
    for (const e of ['batches.output', 'messages.batches.results'] as const) {
      const x = await tap(e, body);
      assert.equal(x.batch?.results ?? null, null, `${e}: ${body.toString().slice(0, 30)}`);
      assert.equal(x.parseError, null);
      assert.equal(x.usage, null);
    }
  }
});

test('OpenAI output file: chat, responses and embeddings bodies at the batch tier; failed requests are not billed', async () => {
  const line = (id: string, body: unknown, status = 200, error: unknown = null) => JSON.stringify({ id: 'batch_req_' + id, custom_id: id, response: body === null ? null : { status_code: status, request_id: 'r', body }, error });
  const body = Buffer.from([
    line('chat', { object: 'chat.completion', model: 'gpt-4o-mini-2024-07-18', usage: { prompt_tokens: 100, completion_tokens: 10, total_tokens: 110, prompt_tokens_details: { cached_tokens: 40 } } }),
    line('resp', { object: 'response', model: 'gpt-5', usage: { input_tokens: 50, output_tokens: 5, total_tokens: 55, input_tokens_details: { cached_tokens: 0 }, output_tokens_details: { reasoning_tokens: 2 } } }),
    line('emb', { object: 'list', model: 'text-embedding-3-small', usage: { prompt_tokens: 8, total_tokens: 8 } }),
    line('bad', { error: { message: 'x' } }, 400),
    line('err', null, 200, { code: 'batch_expired', message: 'expired' }),
  ].join('\n'));
  const x = await tap('batches.output', body, [], undefined, 'application/octet-stream');
  assert.deepEqual(x.batch?.results?.map((r) => [r.model, r.usage]), [
    ['gpt-4o-mini-2024-07-18', { inputTokens: 60, cacheReadTokens: 40, outputTokens: 10, serviceTier: 'batch' }],
    ['gpt-5', { inputTokens: 50, outputTokens: 3, reasoningTokens: 2, serviceTier: 'batch' }],
    ['text-embedding-3-small', { inputTokens: 8, serviceTier: 'batch' }],
  ]);
  assert.equal(x.batch?.notBilled, 2);
});

test('Gemini batch job: inline responses only once done; the submit and poll responses name the batch', async () => {
  const resp = (p: number, c: number) => ({ response: { candidates: [], usageMetadata: { promptTokenCount: p, candidatesTokenCount: c, totalTokenCount: p + c }, modelVersion: 'gemini-2.5-flash' }, metadata: { key: 'k' } });
  const job = (done: boolean) => Buffer.from(JSON.stringify({
    name: 'batches/abc', done,
    metadata: { model: 'models/gemini-2.5-flash', state: done ? 'BATCH_STATE_SUCCEEDED' : 'BATCH_STATE_RUNNING', output: done ? { inlinedResponses: { inlinedResponses: [resp(7, 16), { error: { code: 400 } }] } } : undefined },
    ...(done ? { response: { '@type': 'x', inlinedResponses: { inlinedResponses: [resp(7, 16), { error: { code: 400 } }] } } } : {}),
  }));
  const x = await tap('gemini.batch', job(true), [], undefined, 'application/json');
  assert.equal(x.batch?.id, 'batches/abc');
  assert.equal(x.batch?.model, 'gemini-2.5-flash');
  assert.deepEqual(x.batch?.results, [{ model: 'gemini-2.5-flash', usage: { inputTokens: 7, outputTokens: 16, serviceTier: 'batch' } }]);
  assert.equal(x.batch?.notBilled, 1);
  const running = await tap('gemini.batch', job(false), [], undefined, 'application/json');
  assert.equal(running.batch?.results, null);
  const openai = await tap('batches.retrieve', Buffer.from(JSON.stringify({ id: 'batch_1', object: 'batch', output_file_id: 'file-out' })), [], undefined, 'application/json');
  assert.deepEqual([openai.batch?.id, openai.batch?.outputFileId], ['batch_1', 'file-out']);
});

test('Gemini responses file: {key, response} lines carry their usage and model version at the batch tier; {key, error} and {key, status} are not billed; a video is not results; a finished file batch names its responses file', async () => {
  const line = (key: string, prompt: number, out: number) => JSON.stringify({ key, response: { candidates: [{ content: { parts: [{ text: 'x\n"usageMetadata"' }], role: 'model' }, finishReason: 'STOP' }], usageMetadata: { promptTokenCount: prompt, candidatesTokenCount: out, totalTokenCount: prompt + out }, modelVersion: 'gemini-2.5-flash' } });
  const body = Buffer.from([line('1', 7, 16), JSON.stringify({ key: '2', error: { code: 400, message: 'bad', status: 'INVALID_ARGUMENT' } }), JSON.stringify({ key: '3', status: { code: 8, message: 'quota' } }), line('4', 3, 2)].join('\n') + '\n');
  const want = [
    { model: 'gemini-2.5-flash', usage: { inputTokens: 7, outputTokens: 16, serviceTier: 'batch' } },
    { model: 'gemini-2.5-flash', usage: { inputTokens: 3, outputTokens: 2, serviceTier: 'batch' } },
  ];
  for (const chunks of [[], [5, 50, 1, 300]]) {
    const x = await tap('gemini.batch.output', body, chunks, undefined, 'application/octet-stream');
    assert.deepEqual(x.batch?.results?.map((r) => ({ model: r.model, usage: { inputTokens: r.usage.inputTokens, outputTokens: r.usage.outputTokens, serviceTier: r.usage.serviceTier } })), want);
    assert.equal(x.batch?.notBilled, 2);
    assert.equal(x.batch?.unread, 0);
  }
  assert.deepEqual((await tap('gemini.batch.output', zlib.gzipSync(body), [9], 'gzip')).batch?.results?.length, 2);
  // a Veo video, or another file (a batch's input file: {key, request}), downloaded the same way: nothing to book
  assert.equal((await tap('gemini.batch.output', Buffer.from('\x00\x00\x00 ftypisom fake video'), [], undefined, 'video/mp4')).batch ?? null, null);
  assert.equal((await tap('gemini.batch.output', Buffer.from(JSON.stringify({ key: '1', request: { contents: [] } }) + '\n'))).batch ?? null, null);
  // the finished job: its responses file, no inline results
  const job = Buffer.from(JSON.stringify({ name: 'batches/abc', metadata: { model: 'models/gemini-2.5-flash', state: 'BATCH_STATE_SUCCEEDED', output: { responsesFile: 'files/batch-abc' } }, done: true, response: { '@type': 'type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput', responsesFile: 'files/batch-abc' } }));
  const j = await tap('gemini.batch', job, [], undefined, 'application/json');
  assert.deepEqual([j.batch?.id, j.batch?.outputFileId, j.batch?.results], ['batches/abc', 'files/batch-abc', null]);
});
