/**
 * More of the proxy as users drive it: workflow runs and projects through headers and path
 * prefixes, reports and exports through the CLI, the Responses API and Gemini streams, upstream
 * cuts, fal's queue and Replicate, and a ledger that cannot be written.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import OpenAI from 'openai';
import { GoogleGenAI } from '@google/genai';
import { startRig, eventually, type Rig } from '../fixtures/engine.ts';
import type { CallRecord } from '../../shared/api.ts';
import { usdToNano } from '../../shared/money.ts';

const CLI = path.resolve(import.meta.dirname, '../../bin/tollgate.js');
let rig: Rig;
before(async () => {
  rig = await startRig(['openai', 'gemini', 'fal', 'fal-queue', 'replicate']);
});
after(async () => {
  await rig.close();
});

/** Run the CLI asynchronously (the engine under test lives in this process). */
function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CLI, '--data-dir', rig.dataDir, ...args]);
    let out = '', err = '';
    c.stdout.on('data', (d: Buffer) => { out += d; });
    c.stderr.on('data', (d: Buffer) => { err += d; });
    c.on('exit', (code) => resolve({ code: code ?? 1, out, err }));
  });
}

const settled = (id: string) => eventually(async () => {
  const c = await rig.engine.api.call({ id });
  return c && c.status !== 'pending' ? c : null;
}, `call ${id}`);

test('workflow runs: per-node cost against the quote; attribution headers never reach the provider', async () => {
  const fake = rig.fakes.openai!;
  const client = new OpenAI({ apiKey: 'sk-x', baseURL: `${rig.url}/openai/v1`, maxRetries: 0 });
  for (const [node, out] of [['brief', 100], ['brief', 100], ['copy', 300]] as const) {
    fake.next({ usage: { prompt_tokens: 1000, completion_tokens: out } });
    await client.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 500, messages: [{ role: 'user', content: 'hi' }] },
      { headers: { 'x-tollgate-workflow': 'launch', 'x-tollgate-run': 'run-1', 'x-tollgate-node': node, 'x-tollgate-project': 'acme' } });
    const sent = fake.requests.at(-1)!;
    assert.equal(Object.keys(sent.headers).some((h) => h.startsWith('x-tollgate-')), false);
  }
  rig.engine.flushQuietly();
  const { code, out } = await cli('runs', '--json');
  assert.equal(code, 0);
  const runs = JSON.parse(out) as { run: string; workflow: string; cost: string; quoted: string | null; nodes: { node: string; calls: number; cost: string; quoted: string | null }[] }[];
  const run = runs.find((r) => r.run === 'run-1')!;
  assert.equal(run.workflow, 'launch');
  // brief: 2 × (1000 × 0.15/M + 100 × 0.6/M) = 2 × 0.00021; copy: 0.00015 + 300 × 0.6/M = 0.00033
  assert.deepEqual(run.nodes.map((n) => [n.node, n.calls, n.cost]), [['brief', 2, '0.00042'], ['copy', 1, '0.00033']]);
  assert.equal(run.cost, '0.00075');
  assert.ok(run.nodes.every((n) => n.quoted !== null), 'each node carries the quote made before its calls');
});

test('a /p/PROJECT/ prefix attributes calls for tools that cannot set headers; report --json has the documented shape', async () => {
  const client = new OpenAI({ apiKey: 'sk-x', baseURL: `${rig.url}/p/side-gig/openai/v1`, maxRetries: 0 });
  rig.fakes.openai!.next({ usage: { prompt_tokens: 2000, completion_tokens: 1000 } });
  const { response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  const rec = await settled(response.headers.get('x-tollgate-call-id')!);
  assert.equal(rec.project, 'side-gig');
  const { code, out } = await cli('report', '--by', 'project', '--period', 'today', '--json');
  assert.equal(code, 0);
  const r = JSON.parse(out) as { total: string; calls: number; unpriced_calls: number; groups: { key: string; calls: number; cost: string }[] };
  assert.deepEqual(Object.keys(r).filter((k) => ['total', 'calls', 'unpriced_calls', 'groups'].includes(k)).sort(), ['calls', 'groups', 'total', 'unpriced_calls']);
  // 2000 × 0.15/M + 1000 × 0.6/M = 0.0003 + 0.0006
  assert.deepEqual(r.groups.find((g) => g.key === 'side-gig'), { key: 'side-gig', calls: 1, cost: '0.0009', unpriced: 0 });
  // the total is exactly the sum of the groups, to the nano-dollar
  assert.equal(r.groups.reduce((a, g) => a + usdToNano(g.cost), 0n), usdToNano(r.total));
  assert.equal(r.calls, r.groups.reduce((a, g) => a + g.calls, 0));
});

test('export streams the ledger as CSV and JSON Lines', async () => {
  rig.engine.flushQuietly();
  const csv = await cli('export', '--format', 'csv');
  assert.equal(csv.code, 0);
  const lines = csv.out.trim().split('\n');
  assert.equal(lines[0], 'id,time,provider,model,endpoint,project,workflow,run,node,key,status,http_status,cost_usd,estimated,unpriced,unpriced_reason,duration_ms,ttfb_ms,price_source,upstream_id,device');
  const calls = await rig.engine.api.calls({ limit: 1000 });
  assert.equal(lines.length - 1, calls.length);
  const jsonl = await cli('export', '--format', 'jsonl');
  const recs = jsonl.out.trim().split('\n').map((l) => JSON.parse(l) as CallRecord);
  assert.equal(recs.length, calls.length);
  assert.ok(recs.every((r) => typeof r.cost === 'string'), 'money as decimal strings');
});

test('OpenAI Responses API stream: usage from response.completed, reasoning billed as output', async () => {
  rig.fakes.openai!.next({ usage: { input_tokens: 500, cached_tokens: 100, output_tokens: 200, reasoning_tokens: 50 } });
  const client = new OpenAI({ apiKey: 'sk-x', baseURL: `${rig.url}/openai/v1`, maxRetries: 0 });
  const stream = await client.responses.create({ model: 'gpt-4o-mini', input: 'hi', stream: true });
  let completed = false;
  for await (const e of stream) if (e.type === 'response.completed') completed = true;
  assert.ok(completed);
  const [last] = await rig.engine.api.calls({ limit: 1, provider: 'openai' });
  const rec = await settled(last!.id);
  assert.equal(rec.endpoint, 'responses');
  // 400 × 0.15/M + 100 × 0.075/M + 150 × 0.6/M + 50 × 0.6/M = 0.00006 + 0.0000075 + 0.00009 + 0.00003
  assert.equal(rec.cost, '0.0001875');
});

test('Gemini streamGenerateContent through the SDK is metered from the last chunk', async () => {
  rig.fakes.gemini!.next({ usage: { promptTokenCount: 2000, candidatesTokenCount: 300, thoughtsTokenCount: 200 } });
  const ai = new GoogleGenAI({ apiKey: 'g', httpOptions: { baseUrl: `${rig.url}/gemini` } });
  let text = '';
  for await (const chunk of await ai.models.generateContentStream({ model: 'gemini-2.5-flash', contents: 'hi' })) text += chunk.text ?? '';
  assert.ok(text.length > 0);
  const [last] = await rig.engine.api.calls({ limit: 1, provider: 'gemini' });
  const rec = await settled(last!.id);
  assert.equal(rec.stream, true);
  // 2000 × 0.3/M + 500 × 2.5/M = 0.0006 + 0.00125
  assert.equal(rec.cost, '0.00185');
});

test('an upstream that cuts the stream: the client sees the cut, the ledger an estimated cost from what was streamed', async () => {
  rig.fakes.openai!.next({ cutAfterChunks: 3, text: 'alpha beta gamma delta epsilon zeta eta theta' });
  const client = new OpenAI({ apiKey: 'sk-x', baseURL: `${rig.url}/openai/v1`, maxRetries: 0 });
  const stream = await client.chat.completions.create({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }] });
  await assert.rejects(async () => { for await (const _ of stream) void _; });
  const [last] = await rig.engine.api.calls({ limit: 1, provider: 'openai' });
  const rec = await settled(last!.id);
  assert.equal(rec.status, 'error');
  assert.equal(rec.estimated, true);
  assert.equal(rec.unpriced, false);
  assert.notEqual(rec.cost, '0');
});

test("fal's queue: the submit is priced from the request, status and result polls are free", async () => {
  const base = `${rig.url}/fal-queue`;
  const headers = { 'content-type': 'application/json', authorization: 'Key fal-x' };
  const sub = await fetch(`${base}/fal-ai/flux-2-pro`, { method: 'POST', headers, body: JSON.stringify({ prompt: 'a fox', image_size: 'square_hd', num_images: 1 }) });
  assert.equal(sub.status, 200);
  const { request_id } = await sub.json() as { request_id: string };
  const priced = await settled(sub.headers.get('x-tollgate-call-id')!);
  // 1024×1024 = 1 fal megapixel: the first-MP price only
  assert.equal(priced.cost, '0.03');
  const st = await fetch(`${base}/fal-ai/flux-2-pro/requests/${request_id}/status`, { headers });
  const poll = await settled(st.headers.get('x-tollgate-call-id')!);
  assert.equal(poll.cost, '0');
  assert.equal(poll.unpriced, false);
});

test('Replicate predictions are priced from the media catalog', async () => {
  const res = await fetch(`${rig.url}/replicate/v1/models/recraft-ai/recraft-v4/predictions`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer r8_x', prefer: 'wait' }, body: JSON.stringify({ input: { prompt: 'a logo' } }),
  });
  assert.ok(res.status === 200 || res.status === 201);
  const rec = await settled(res.headers.get('x-tollgate-call-id')!);
  assert.equal(rec.model, 'recraft-ai/recraft-v4');
  assert.equal(rec.cost, '0.04');
});

test('a ledger that cannot be written: calls are refused in the client format, then flow again once it recovers', async () => {
  // A real write failure, in whichever thread writes calls: SQLite refuses every new call row.
  const db = rig.engine.ledger.db;
  db.exec(`CREATE TRIGGER test_disk_full BEFORE INSERT ON calls BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END`);
  const client = new OpenAI({ apiKey: 'sk-x', baseURL: `${rig.url}/openai/v1`, maxRetries: 0 });
  let firstId = '';
  try {
    const { response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'first' }] }).withResponse();
    firstId = response.headers.get('x-tollgate-call-id')!;
    await eventually(() => rig.engine.ledger.failure, 'the write failure');
    const before = rig.fakes.openai!.requests.length;
    await assert.rejects(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'refused' }] }),
      (e: { status?: number; message: string }) => e.status === 424 && /cannot write its ledger/.test(e.message));
    assert.equal(rig.fakes.openai!.requests.length, before, 'nothing was proxied unrecorded');
  } finally {
    db.exec('DROP TRIGGER test_disk_full');
  }
  await eventually(() => !rig.engine.ledger.failure, 'recovery', 5000);
  await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'again' }] });
  const first = await rig.engine.api.call({ id: firstId });
  assert.equal(first?.status, 'ok', 'the call made while the disk was full was written once the ledger recovered');
  assert.notEqual(first?.cost, '0');
});

test('compare --replay: what this period\'s real traffic would have cost on other models', async () => {
  rig.engine.flushQuietly();
  const { code, out } = await cli('compare', '--replay', '--period', 'month', '--models', 'openai:gpt-4o,openai:gpt-4o-mini,anthropic:claude-sonnet-4-5', '--json');
  assert.equal(code, 0);
  const r = JSON.parse(out) as { rows: { model: string; cost: string | null; cheapest: boolean }[] };
  assert.deepEqual(r.rows.map((x) => x.model), ['openai:gpt-4o-mini', 'openai:gpt-4o', 'anthropic:claude-sonnet-4-5']);
  assert.equal(r.rows[0]!.cheapest, true);
  assert.ok(r.rows.every((x) => x.cost !== null && usdToNano(x.cost) > 0n));
  // gpt-4o's list prices are 16⅔× gpt-4o-mini's for input and output (2.5 vs 0.15, 10 vs 0.6)
  assert.ok(usdToNano(r.rows[1]!.cost!) > usdToNano(r.rows[0]!.cost!) * 10n);
});

test("volume tiers apply automatically from the period's usage in the ledger", async () => {
  await rig.engine.api.setTiers({ provider: 'fal', model: 'fal-ai/flux-2-flex', unit: 'image', mode: 'graduated', period: 'month', tiers: [{ upTo: 2, price: '0.05' }, { upTo: null, price: '0.01' }] });
  const costs: string[] = [];
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${rig.url}/fal/fal-ai/flux-2-flex`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Key fal-x' }, body: JSON.stringify({ prompt: 'p', image_size: 'square_hd' }) });
    costs.push((await settled(res.headers.get('x-tollgate-call-id')!)).cost);
  }
  // images 1 and 2 in the first tier, the third crosses into the second
  assert.deepEqual(costs, ['0.05', '0.05', '0.01']);
});

test('a rate lock holds the price when the catalog (or an override) changes', async () => {
  const lock = await rig.engine.api.addLock({ provider: 'openai', model: 'gpt-4.1-nano' });
  assert.equal(lock.catalog, rig.engine.catalog.version);
  await rig.engine.api.setOverride({ provider: 'openai', model: 'gpt-4.1-nano', prices: { input_mtok: '100', output_mtok: '100' } });
  rig.fakes.openai!.next({ usage: { prompt_tokens: 1000, completion_tokens: 1000 } });
  const client = new OpenAI({ apiKey: 'sk-x', baseURL: `${rig.url}/openai/v1`, maxRetries: 0 });
  const { response } = await client.chat.completions.create({ model: 'gpt-4.1-nano', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  const rec = await settled(response.headers.get('x-tollgate-call-id')!);
  const locked = lock.prices['gpt-4.1-nano']!;
  // priced at the locked input/output prices, not the override's $100/M
  const expected = usdToNano(locked.input_mtok!) * 1000n / 1_000_000n + usdToNano(locked.output_mtok!) * 1000n / 1_000_000n;
  assert.equal(usdToNano(rec.cost), expected);
  assert.match(rec.priceSource ?? '', new RegExp(`lock ${lock.id}`));
  await rig.engine.api.removeLock({ id: lock.id });
  rig.fakes.openai!.next({ usage: { prompt_tokens: 1000, completion_tokens: 1000 } });
  const again = await client.chat.completions.create({ model: 'gpt-4.1-nano', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  assert.equal((await settled(again.response.headers.get('x-tollgate-call-id')!)).cost, '0.2', 'without the lock, the override applies: 2000 × $100/M');
});
