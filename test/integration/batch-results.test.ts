/**
 * Batch jobs priced from their results (issue 11, item 1), through the proxy with the fake upstreams
 * and the official SDKs: a batch submitted with its requests inline is booked as an estimate at
 * submit; the first retrieval of its results books the actual cost at the batch rate (50 %) on the
 * retrieving call, attributed like the submit call, and a correction (a new record naming the submit
 * call) takes the estimate back, so the report's total is the actual exactly. Results fetched again
 * are not booked again; results of a batch Tollgate never saw are booked once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI, { toFile } from 'openai';
import { GoogleGenAI } from '@google/genai';
import fs from 'node:fs';
import path from 'node:path';
import { startRig, eventually, tempDir, type Rig } from '../fixtures/engine.ts';
import type { CallRecord } from '../../shared/api.ts';

async function settled(rig: Rig, id: string | null): Promise<CallRecord> {
  assert.ok(id, 'the proxy names the call in x-tollgate-call-id');
  return eventually(async () => {
    const c = await rig.engine.api.call({ id });
    return c && c.status !== 'pending' ? c : null;
  }, `call ${id}`);
}
async function callsOf(rig: Rig, endpoint: string): Promise<CallRecord[]> {
  rig.engine.flushQuietly();
  return (await rig.engine.api.calls({ limit: 500 })).filter((c) => c.endpoint === endpoint);
}
async function total(rig: Rig): Promise<{ total: string; calls: number }> {
  rig.engine.flushQuietly();
  const r = await rig.engine.api.report({ by: 'project', period: 'all' });
  return { total: r.total, calls: r.calls };
}
const sub = (a: string, b: string) => {
  // exact decimal difference of two USD strings, in nano-dollars
  const nano = (s: string) => BigInt(Math.round(Number(s) * 1e9));
  return nano(a) - nano(b);
};

/** The official SDK pointed at Tollgate, nothing else: its results() follows the batch's results_url, which Tollgate points back through itself. */
function anthropicClient(rig: Rig, project: string): Anthropic {
  return new Anthropic({ apiKey: 'sk-ant-x', baseURL: `${rig.url}/anthropic`, maxRetries: 0, defaultHeaders: { 'x-tollgate-project': project } });
}

test('Anthropic: estimate at submit, the actual at the batch rate when the results are read, once; the report total is the actual exactly', async () => {
  const rig = await startRig(['anthropic']);
  try {
    const params = { model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user' as const, content: 'Summarise the attached policy in one line.' }] };
    const submit = await anthropicClient(rig, 'nightly').messages.batches.create({
      requests: [{ custom_id: 'a', params }, { custom_id: 'b', params: { ...params, max_tokens: 2000 } }, { custom_id: 'err-1', params }],
    }).withResponse();
    const sc = await settled(rig, submit.response.headers.get('x-tollgate-call-id'));
    assert.equal(sc.endpoint, 'messages.batches');
    assert.equal(sc.estimated, true);
    assert.equal(sc.project, 'nightly');
    // 3 × 16 input × $1.50/M + (100 + 500 + 100) expected output × $7.50/M
    assert.equal(sc.cost, '0.005322');
    assert.deepEqual(await total(rig), { total: '0.005322', calls: 1 });

    // the batch poll names its results through Tollgate (the upstream names its own host)
    const polled = await anthropicClient(rig, 'reader').messages.batches.retrieve(submit.data.id);
    assert.equal(polled.results_url, `${rig.url}/anthropic/v1/messages/batches/${submit.data.id}/results`);
    assert.match(rig.fakes.anthropic!.lastResponseBody().toString(), new RegExp(`"results_url":"${rig.fakes.anthropic!.url}/v1/messages/batches/`));

    // read from another project: the cost still belongs to the batch's submitter
    const reader = anthropicClient(rig, 'reader');
    const results = [];
    for await (const r of await reader.messages.batches.results(submit.data.id)) results.push(r);
    assert.deepEqual(results.map((r) => r.result.type), ['succeeded', 'succeeded', 'errored']);
    // the results pass through byte for byte
    const raw = await fetch(`${rig.url}/anthropic/v1/messages/batches/${submit.data.id}/results`, { headers: { 'x-api-key': 'sk-ant-x', 'anthropic-version': '2023-06-01' } });
    assert.deepEqual(Buffer.from(await raw.arrayBuffer()), rig.fakes.anthropic!.lastResponseBody());

    const reads = await callsOf(rig, 'messages.batches.results');
    assert.equal(reads.length, 2);
    const actual = reads.find((c) => c.cost !== '0')!;
    assert.ok(actual, 'the results call is recorded');
    assert.equal(actual.id, reads[reads.length - 1]!.id, 'booked on the first read (the SDK\'s)');
    // the fake bills each request 11 input tokens (42 characters / 4) and 16 output tokens; the errored one is not billed:
    // 22 × $1.50/M + 32 × $7.50/M = 0.000033 + 0.00024
    assert.equal(actual.cost, '0.000273');
    assert.equal(actual.estimated, false);
    assert.equal(actual.unpriced, false);
    assert.equal(actual.model, 'claude-sonnet-4-5');
    assert.equal(actual.project, 'nightly', 'attributed like the submit call');
    assert.equal(actual.usage.inputTokens, 22);
    assert.equal(actual.usage.outputTokens, 32);
    assert.equal(actual.usage.requests, 2);
    assert.match(actual.priceSource ?? '', /2 billed requests, 1 not billed .*batch at 50 %/);
    assert.deepEqual(actual.items.map((i) => [i.label, i.quantity, i.cost]), [['Input tokens (batch)', '22', '0.000033'], ['Output tokens (batch)', '32', '0.00024']]);

    const [corr] = await callsOf(rig, 'batch.correction');
    assert.ok(corr, 'a correction record');
    assert.equal(corr.corrects, sc.id, 'the correction names the estimate it takes back');
    assert.equal(corr.cost, '-0.005322');
    assert.equal(corr.project, 'nightly');
    // the submit call itself is unchanged (calls are immutable once final)
    assert.equal((await rig.engine.api.call({ id: sc.id }))!.cost, '0.005322');

    // submit, 2 polls, 2 reads of the results: 5 calls (a correction adds its cost, not a call); the total is the actual
    assert.deepEqual(await total(rig), { total: '0.000273', calls: 5 });
    const byProject = await rig.engine.api.report({ by: 'project', period: 'all' });
    assert.equal(byProject.groups.find((g) => g.key === 'nightly')?.cost, '0.000273');
    assert.equal(byProject.groups.find((g) => g.key === 'reader')?.cost ?? '0', '0');

    // fetched again: not booked again
    for await (const _ of await reader.messages.batches.results(submit.data.id)) { /* drain */ }
    const again = await callsOf(rig, 'messages.batches.results');
    assert.equal(again.length, 3);
    const second = again[0]!;
    assert.equal(second.cost, '0');
    assert.equal(second.unpriced, false);
    assert.match(second.priceSource ?? '', new RegExp(`not booked again: .* booked on call ${actual.id}`));
    assert.equal((await callsOf(rig, 'batch.correction')).length, 1);
    assert.deepEqual(await total(rig), { total: '0.000273', calls: 7 });
  } finally {
    await rig.close();
  }
});

test('Anthropic: results of a batch never submitted through Tollgate are booked once, to the retrieving call', async () => {
  const rig = await startRig(['anthropic']);
  try {
    // submitted straight to the provider (not through Tollgate)
    const direct = new Anthropic({ apiKey: 'sk-ant-x', baseURL: rig.fakes.anthropic!.url, maxRetries: 0 });
    const b = await direct.messages.batches.create({
      requests: [{ custom_id: 'x', params: { model: 'claude-haiku-4-5', max_tokens: 8, messages: [{ role: 'user', content: 'x'.repeat(400) }] } }],
    });
    const h = { 'x-api-key': 'sk-ant-x', 'anthropic-version': '2023-06-01', 'x-tollgate-project': 'elsewhere' };
    for (let i = 0; i < 2; i++) {
      const r = await fetch(`${rig.url}/anthropic/v1/messages/batches/${b.id}/results`, { headers: h });
      assert.equal(r.status, 200);
      assert.equal((await r.text()).split('\n').filter(Boolean).length, 1);
    }
    const calls = await callsOf(rig, 'messages.batches.results');
    assert.equal(calls.length, 2);
    const booked = calls.filter((c) => c.cost !== '0');
    assert.equal(booked.length, 1, 'booked once');
    // haiku 4.5 at 50 %: 100 input × $0.50/M + 8 output × $2.50/M = 0.00005 + 0.00002
    assert.equal(booked[0]!.cost, '0.00007');
    assert.equal(booked[0]!.project, 'elsewhere');
    assert.deepEqual(await total(rig), { total: '0.00007', calls: 2 });
    assert.equal((await callsOf(rig, 'batch.correction')).length, 0);
  } finally {
    await rig.close();
  }
});

test('OpenAI: a file batch (unpriced at submit) is booked at the batch rate when its output file is read; other files book nothing', async () => {
  const rig = await startRig(['openai']);
  try {
    const client = new OpenAI({ apiKey: 'sk-x', baseURL: `${rig.url}/openai/v1`, maxRetries: 0, defaultHeaders: { 'x-tollgate-project': 'evals' } });
    const reader = new OpenAI({ apiKey: 'sk-x', baseURL: `${rig.url}/openai/v1`, maxRetries: 0, defaultHeaders: { 'x-tollgate-project': 'reader' } });
    const jsonl = [1, 2].map((i) => JSON.stringify({ custom_id: `request-${i}`, method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hello in one word.' }] } })).join('\n');
    const file = await client.files.create({ file: await toFile(Buffer.from(jsonl), 'batch.jsonl'), purpose: 'batch' });
    const submit = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' }).withResponse();
    const sc = await settled(rig, submit.response.headers.get('x-tollgate-call-id'));
    assert.equal(sc.unpriced, true);
    assert.equal(sc.cost, '0');

    assert.equal((await reader.batches.retrieve(submit.data.id)).status, 'in_progress');
    const done = await reader.batches.retrieve(submit.data.id);
    assert.equal(done.status, 'completed');
    assert.ok(done.output_file_id);

    // the input file read back through the same endpoint: not batch output, nothing booked
    const input = await reader.files.content(file.id);
    assert.equal(await input.text(), jsonl);
    const [plain] = await callsOf(rig, 'batches.output');
    assert.equal(plain!.cost, '0');
    assert.equal(plain!.unpriced, false);

    for (let i = 0; i < 2; i++) {
      const out = await reader.files.content(done.output_file_id!);
      const lines = (await out.text()).trim().split('\n').map((l) => JSON.parse(l) as { response: { body: { usage: { prompt_tokens: number } } } });
      assert.equal(lines.length, 2);
      assert.equal(lines[0]!.response.body.usage.prompt_tokens, 6);
    }
    const outputs = (await callsOf(rig, 'batches.output')).filter((c) => c.id !== plain!.id);
    assert.equal(outputs.length, 2);
    const booked = outputs.filter((c) => c.cost !== '0');
    assert.equal(booked.length, 1, 'booked once');
    // gpt-4o-mini at 50 %: 2 × 6 input × $0.075/M + 2 × 16 output × $0.30/M = 0.0000009 + 0.0000096
    assert.equal(booked[0]!.cost, '0.0000105');
    assert.equal(booked[0]!.project, 'evals', 'attributed like the submit call');
    assert.match(booked[0]!.model ?? '', /^gpt-4o-mini/);
    assert.deepEqual(await total(rig), { total: '0.0000105', calls: 7 });
  } finally {
    await rig.close();
  }
});

test('OpenAI: an output file of a batch Tollgate never saw is priced from its lines, once', async () => {
  const rig = await startRig(['openai']);
  try {
    // batch created and polled straight at the provider
    const direct = new OpenAI({ apiKey: 'sk-x', baseURL: `${rig.fakes.openai!.url}/v1`, maxRetries: 0 });
    const b = await direct.batches.create({ input_file_id: 'file-elsewhere', endpoint: '/v1/chat/completions', completion_window: '24h' });
    await direct.batches.retrieve(b.id);
    const done = await direct.batches.retrieve(b.id);
    const reader = new OpenAI({ apiKey: 'sk-x', baseURL: `${rig.url}/openai/v1`, maxRetries: 0 });
    for (let i = 0; i < 2; i++) await (await reader.files.content(done.output_file_id!)).text();
    const booked = (await callsOf(rig, 'batches.output')).filter((c) => c.cost !== '0');
    assert.equal(booked.length, 1);
    // the fake's two default requests, as above: 0.0000105
    assert.equal(booked[0]!.cost, '0.0000105');
    assert.deepEqual(await total(rig), { total: '0.0000105', calls: 2 });
  } finally {
    await rig.close();
  }
});

test('Gemini: an inline batch estimated at submit is booked at its actual cost when the finished job is read (ai.batches.get), once', async () => {
  const rig = await startRig(['gemini']);
  try {
    const ai = new GoogleGenAI({ apiKey: 'g-x', httpOptions: { baseUrl: `${rig.url}/gemini`, headers: { 'x-tollgate-project': 'haiku' } } });
    const job = await ai.batches.create({
      model: 'gemini-2.5-flash',
      src: [{ contents: [{ parts: [{ text: 'Write a haiku about the sea.' }], role: 'user' }] }, { contents: [{ parts: [{ text: 'Write a haiku about the sky.' }], role: 'user' }] }],
    });
    assert.ok(job.name?.startsWith('batches/'));
    const [sc] = await callsOf(rig, 'batchGenerateContent');
    assert.equal(sc!.estimated, true);
    const estimate = sc!.cost;
    assert.notEqual(estimate, '0');

    const reader = new GoogleGenAI({ apiKey: 'g-x', httpOptions: { baseUrl: `${rig.url}/gemini`, headers: { 'x-tollgate-project': 'reader' } } });
    for (let i = 0; i < 2; i++) {
      const got = await reader.batches.get({ name: job.name! });
      assert.equal(got.state, 'JOB_STATE_SUCCEEDED');
      assert.equal(got.dest?.inlinedResponses?.length, 2);
    }
    const reads = await callsOf(rig, 'gemini.batch');
    assert.equal(reads.length, 2);
    const booked = reads.filter((c) => c.cost !== '0');
    assert.equal(booked.length, 1, 'booked once');
    // gemini-2.5-flash at 50 %: 2 × 7 input × $0.15/M + 2 × 16 output × $1.25/M = 0.0000021 + 0.00004
    assert.equal(booked[0]!.cost, '0.0000421');
    assert.equal(booked[0]!.project, 'haiku');
    assert.equal(booked[0]!.model, 'gemini-2.5-flash');
    const [corr] = await callsOf(rig, 'batch.correction');
    assert.equal(corr!.corrects, sc!.id);
    assert.equal(sub(corr!.cost, '0'), -sub(estimate, '0'));
    assert.deepEqual(await total(rig), { total: '0.0000421', calls: 3 });
  } finally {
    await rig.close();
  }
});

test('caps: reading a batch\'s results is never refused (the batch has run); the actual and the correction move the caps of the submit\'s scope', async () => {
  const rig = await startRig(['anthropic']);
  try {
    const params = { model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user' as const, content: 'Summarise the attached policy in one line.' }] };
    const submit = await anthropicClient(rig, 'nightly').messages.batches.create({ requests: [{ custom_id: 'a', params }, { custom_id: 'b', params }] });
    rig.engine.flushQuietly();
    // estimate: 2 × 16 input × $1.50/M + 2 × 100 output × $7.50/M = 0.000048 + 0.0015
    const project = await rig.engine.api.setCap({ scope: 'project', scopeValue: 'nightly', period: 'month', limit: '0.001', hard: true });
    const global = await rig.engine.api.setCap({ scope: 'global', period: 'month', limit: '0.001', hard: true });
    const spent = async () => Object.fromEntries((await rig.engine.api.caps({})).map((c) => [c.cap.id, c.spent]));
    assert.deepEqual(await spent(), { [project.id]: '0.001548', [global.id]: '0.001548' });

    const h = { 'x-api-key': 'sk-ant-x', 'anthropic-version': '2023-06-01', 'x-tollgate-project': 'reader' };
    const refused = await fetch(`${rig.url}/anthropic/v1/messages`, { method: 'POST', headers: { ...h, 'content-type': 'application/json' }, body: JSON.stringify(params) });
    await refused.text();
    assert.equal(refused.status, 402, 'the spent global cap refuses new calls');
    const r = await fetch(`${rig.url}/anthropic/v1/messages/batches/${submit.id}/results`, { headers: h });
    assert.equal(r.status, 200, 'but not the results of a batch that has run');
    await r.text();
    const c = await settled(rig, r.headers.get('x-tollgate-call-id'));
    // 22 × $1.50/M + 32 × $7.50/M
    assert.equal(c.cost, '0.000273');
    assert.equal(c.project, 'nightly');
    // the estimate is taken back and the actual booked: on the project cap too, though the call came from "reader"
    assert.deepEqual(await spent(), { [project.id]: '0.000273', [global.id]: '0.000273' });
    // and the ledger agrees once the caps are reloaded from it
    rig.engine.changed();
    assert.deepEqual(await spent(), { [project.id]: '0.000273', [global.id]: '0.000273' });
  } finally {
    await rig.close();
  }
});

test('Gemini: a file batch is booked at its actual cost when its responses file is downloaded (ai.files.download), once; other files downloaded the same way book nothing', async () => {
  const rig = await startRig(['gemini']);
  try {
    // the input file (one {key, request} per line) uploaded through Tollgate (a resumable upload: its session URL,
    // on the provider's host, is pointed back through Tollgate); an upload bills nothing
    const ai = new GoogleGenAI({ apiKey: 'g-x', httpOptions: { baseUrl: `${rig.url}/gemini`, headers: { 'x-tollgate-project': 'haiku' } } });
    const lines = [['request-1', 'Write a haiku about the sea.'], ['request-2', 'Write a haiku about the sky.'], ['err-3', 'Write a haiku.']];
    const jsonl = lines.map(([key, text]) => JSON.stringify({ key, request: { contents: [{ parts: [{ text }], role: 'user' }] } })).join('\n');
    const input = await ai.files.upload({ file: new Blob([jsonl], { type: 'application/jsonl' }), config: { mimeType: 'application/jsonl' } });
    assert.ok(input.name?.startsWith('files/'));
    assert.equal(input.sizeBytes, String(Buffer.byteLength(jsonl)), 'the bytes reached the provider');
    assert.deepEqual((await callsOf(rig, 'gemini.files')).map((c) => [c.cost, c.unpriced]), [['0', false], ['0', false]], 'the upload: start and bytes, free');

    const job = await ai.batches.create({ model: 'gemini-2.5-flash', src: input.name! });
    assert.ok(job.name?.startsWith('batches/'));
    const [sc] = await callsOf(rig, 'batchGenerateContent');
    assert.equal(sc!.cost, '0', 'its requests are in a file Tollgate does not see: no estimate');

    // the finished job names its responses file; reading the job books nothing (its results are in the file)
    const reader = new GoogleGenAI({ apiKey: 'g-x', httpOptions: { baseUrl: `${rig.url}/gemini`, headers: { 'x-tollgate-project': 'reader' } } });
    const got = await reader.batches.get({ name: job.name! });
    assert.equal(got.state, 'JOB_STATE_SUCCEEDED');
    const responsesFile = got.dest?.fileName;
    assert.ok(responsesFile?.startsWith('files/'), 'the job names its responses file');
    assert.deepEqual((await callsOf(rig, 'gemini.batch')).map((c) => c.cost), ['0']);

    const dir = tempDir('tollgate-gemini-batch-');
    for (let i = 0; i < 2; i++) {
      const to = path.join(dir, `out-${i}.jsonl`);
      await reader.files.download({ file: responsesFile!, downloadPath: to });
      const out = fs.readFileSync(to, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { key: string; response?: { usageMetadata: { promptTokenCount: number } }; error?: unknown });
      assert.deepEqual(out.map((l) => l.key), ['request-1', 'request-2', 'err-3']);
      assert.equal(out[0]!.response!.usageMetadata.promptTokenCount, 7);
      assert.ok(out[2]!.error);
    }
    // the REST docs' download path (as the Python SDK asks it): the same file, not booked again
    const rest = await fetch(`${rig.url}/gemini/download/v1beta/${responsesFile}:download?alt=media`, { headers: { 'x-goog-api-key': 'g-x' } });
    assert.equal(rest.status, 200);
    assert.equal((await rest.text()).trim().split('\n').length, 3);

    const downloads = await callsOf(rig, 'gemini.batch.output');
    assert.equal(downloads.length, 3);
    const booked = downloads.filter((c) => c.cost !== '0');
    assert.equal(booked.length, 1, 'booked once');
    // gemini-2.5-flash at 50 %: 2 × 7 input × $0.15/M + 2 × 16 output × $1.25/M = 0.0000021 + 0.00004; the failed request is not billed
    assert.equal(booked[0]!.cost, '0.0000421');
    assert.equal(booked[0]!.unpriced, false);
    assert.equal(booked[0]!.estimated, false);
    assert.equal(booked[0]!.model, 'gemini-2.5-flash');
    assert.equal(booked[0]!.project, 'haiku', 'attributed like the submit call');
    assert.equal(booked[0]!.usage.requests, 2);
    assert.match(booked[0]!.priceSource ?? '', new RegExp(`batch ${job.name}: 2 billed requests, 1 not billed`));
    for (const c of downloads.filter((x) => x.id !== booked[0]!.id)) assert.match(c.priceSource ?? '', new RegExp(`not booked again: .* booked on call ${booked[0]!.id}`));

    // any other file downloaded through the same endpoint (a Veo video): passes through, books nothing
    const video = await fetch(`${rig.url}/gemini/v1beta/files/video-1:download?alt=media`, { headers: { 'x-goog-api-key': 'g-x' } });
    assert.equal(await video.text(), 'fake video video-1');
    const v = await settled(rig, video.headers.get('x-tollgate-call-id'));
    assert.equal(v.cost, '0');
    assert.equal(v.unpriced, false);
    assert.deepEqual(await total(rig), { total: '0.0000421', calls: 8 });
  } finally {
    await rig.close();
  }
});

test('re-pricing results booked unpriced (a model the catalog does not know) takes the estimate back then', async () => {
  const rig = await startRig(['anthropic']);
  try {
    const params = { model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user' as const, content: 'Summarise the attached policy in one line.' }] };
    const submit = await anthropicClient(rig, 'nightly').messages.batches.create({ requests: [{ custom_id: 'a', params }, { custom_id: 'b', params }] });
    // estimate: 2 × 16 input × $1.50/M + 2 × 100 output × $7.50/M
    assert.deepEqual(await total(rig), { total: '0.001548', calls: 1 });

    // the results report a model the catalog does not know (a snapshot newer than its price data): unpriced, the estimate stays
    const snapshot = 'claude-tern-1-20991231';
    rig.fakes.anthropic!.next({ model: snapshot, path: '/results' });
    for await (const _ of await anthropicClient(rig, 'reader').messages.batches.results(submit.id)) { /* drain */ }
    const [read] = await callsOf(rig, 'messages.batches.results');
    assert.equal(read!.unpriced, true);
    assert.match(read!.unpricedReason ?? '', new RegExp(`${snapshot} is not in the price catalog`));
    assert.equal(read!.project, 'nightly', 'attributed like the submit call, priced or not');
    assert.deepEqual([read!.usage.requests, read!.usage.inputTokens, read!.usage.outputTokens], [2, 22, 32], 'the usage of every request, to price later');
    assert.equal((await callsOf(rig, 'batch.correction')).length, 0);
    assert.equal((await total(rig)).total, '0.001548');

    // the user prices the snapshot (its standard rates; the batch rate is half) and re-prices
    await rig.engine.api.setOverride({ provider: 'anthropic', model: snapshot, prices: { input_mtok: '3', output_mtok: '15' } });
    const r = await rig.engine.api.reprice({ provider: 'anthropic', model: snapshot });
    assert.equal(r.repriced, 1);
    const priced = (await rig.engine.api.call({ id: read!.id }))!;
    assert.equal(priced.unpriced, false);
    // 22 × $1.50/M + 32 × $7.50/M
    assert.equal(priced.cost, '0.000273');
    const [corr] = await callsOf(rig, 'batch.correction');
    assert.ok(corr, 'the estimate is taken back once the results are priced');
    assert.equal(corr.cost, '-0.001548');
    assert.equal(corr.project, 'nightly');
    const [sc] = await callsOf(rig, 'messages.batches');
    assert.equal(corr.corrects, sc!.id);
    // the submit, the SDK's poll for the results URL and the results: 3 calls (a correction adds its cost, not a call)
    assert.deepEqual(await total(rig), { total: '0.000273', calls: 3 });
    // re-pricing again changes nothing
    assert.equal((await rig.engine.api.reprice({ provider: 'anthropic', model: snapshot })).repriced, 0);
    assert.equal((await callsOf(rig, 'batch.correction')).length, 1);
  } finally {
    await rig.close();
  }
});

test('credits: the movements list the estimate drawn at submit, the actual, and the correction giving the estimate back to the grant', async () => {
  const rig = await startRig(['anthropic']);
  try {
    const grant = await rig.engine.api.addCredit({ provider: 'anthropic', amount: '1', expires: '2099-12-31' });
    const params = { model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user' as const, content: 'Summarise the attached policy in one line.' }] };
    const submit = await anthropicClient(rig, 'nightly').messages.batches.create({ requests: [{ custom_id: 'a', params }, { custom_id: 'b', params }] });
    for await (const _ of await anthropicClient(rig, 'nightly').messages.batches.results(submit.id)) { /* drain */ }
    const [sc] = await callsOf(rig, 'messages.batches');
    const [booked] = (await callsOf(rig, 'messages.batches.results')).filter((c) => c.cost !== '0');
    const [corr] = await callsOf(rig, 'batch.correction');
    const moves = await rig.engine.api.creditMovements({ provider: 'anthropic' });
    assert.deepEqual(moves.map((m) => [m.callId, m.grantId, m.amount]), [
      [sc!.id, grant.id, '0.001548'],
      [booked!.id, grant.id, '0.000273'],
      [corr!.id, grant.id, '-0.001548'],
    ]);
    const status = await rig.engine.api.credits({});
    const g = status.providers.find((p) => p.provider === 'anthropic')!;
    assert.equal(g.balance, '0.999727', 'the balance and the movements agree');
  } finally {
    await rig.close();
  }
});
