/**
 * `tollgate prices update --from FILE`: a newer genai-prices data file, loaded offline, prices the
 * models it adds through the proxy (and in quotes); a malformed file is refused with exit 2 and
 * changes nothing; `--reset` goes back to the bundled data — in a running engine too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import OpenAI from 'openai';
import { startRig, eventually, tempDir, type Rig } from '../fixtures/engine.ts';
import { PRICE_DATA_FILE } from '../../electron/engine/price-data.ts';
import type { CallRecord, PriceDataInfo, PriceRow } from '../../shared/api.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const FIXTURE = path.join(ROOT, 'test/fixtures/price-data/genai-prices-newer.json');

/** The CLI as a user runs it (async: a running engine in this process must keep answering). */
function tollgate(dataDir: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [path.join(ROOT, 'bin/tollgate.js'), '--data-dir', dataDir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => resolve({ code: code ?? -1, out, err }));
  });
}

async function settled(rig: Rig, id: string | null): Promise<CallRecord> {
  assert.ok(id, 'the proxy names the call');
  return eventually(async () => {
    const c = await rig.engine.api.call({ id });
    return c && c.status !== 'pending' ? c : null;
  }, `call ${id}`);
}
async function post(rig: Rig, p: string, body: unknown, headers: Record<string, string> = {}): Promise<CallRecord> {
  const r = await fetch(`${rig.url}${p}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  await r.text();
  assert.equal(r.status, 200, p);
  return settled(rig, r.headers.get('x-tollgate-call-id'));
}

test('a malformed data file is refused with exit 2 naming what is wrong; nothing changes', async () => {
  const dir = tempDir();
  const cases: [string, string, RegExp][] = [
    ['not-json.json', '{"providers": [', /not JSON/],
    ['object.json', '{"providers": []}', /array of providers/],
    ['no-models.json', JSON.stringify([{ id: 'openai', name: 'OpenAI', api_pattern: 'x' }]), /\[0\] \(openai\)\.models/],
    ['bad-price.json', JSON.stringify([{ id: 'openai', name: 'OpenAI', api_pattern: 'x', models: [{ id: 'gpt-x', match: { equals: 'gpt-x' }, prices: { input_mtok: -1 } }] }]), /models\[0\] \(gpt-x\)\.prices\.input_mtok/],
    ['bad-tier.json', JSON.stringify([{ id: 'openai', name: 'OpenAI', api_pattern: 'x', models: [{ id: 'gpt-x', match: { equals: 'gpt-x' }, prices: { input_mtok: { base: 1, tiers: [{ start: 'big', price: 2 }] } } }] }]), /gpt-x/],
    ['bad-match.json', JSON.stringify([{ id: 'openai', name: 'OpenAI', api_pattern: 'x', models: [{ id: 'gpt-x', match: { regex: '(' }, prices: {} }] }]), /regular expression/],
    ['bad-date.json', JSON.stringify([{ id: 'openai', name: 'OpenAI', api_pattern: 'x', models: [{ id: 'gpt-x', match: { equals: 'gpt-x' }, prices: [{ constraint: { start_date: 'soon' }, prices: {} }] }] }]), /date/],
  ];
  for (const [name, text, why] of cases) {
    const f = path.join(dir, name);
    fs.writeFileSync(f, text);
    const r = await tollgate(dir, 'prices', 'update', '--from', f);
    assert.equal(r.code, 2, `${name}: ${r.err}`);
    assert.match(r.err, new RegExp(name.replace('.', '\\.')), 'names the file');
    assert.match(r.err, why, name);
  }
  assert.equal(fs.existsSync(path.join(dir, PRICE_DATA_FILE)), false, 'nothing stored');
  const after = JSON.parse((await tollgate(dir, 'prices', '--search', 'grok-4', '--json')).out) as { priceData: PriceDataInfo; models: PriceRow[] };
  assert.equal(after.priceData.kind, 'bundled');
  assert.equal(after.priceData.label, 'genai-prices@0.1.8');
  const none = await tollgate(dir, 'prices', 'update');
  assert.equal(none.code, 2, 'update without --from or --reset is bad input');
});

test('a newer data file prices its new models through the proxy; --reset goes back, in a running engine too', async () => {
  const dir = tempDir();
  const loaded = await tollgate(dir, 'prices', 'update', '--from', FIXTURE);
  assert.equal(loaded.code, 0, loaded.err);
  const sha = (await import('node:crypto')).createHash('sha256').update(fs.readFileSync(FIXTURE)).digest('hex');
  assert.match(loaded.out, new RegExp(`genai-prices data file genai-prices-newer\\.json \\(sha256:${sha.slice(0, 12)}, file dated \\d{4}-\\d{2}-\\d{2}, loaded `));
  assert.ok(fs.existsSync(path.join(dir, PRICE_DATA_FILE)), 'stored in the data dir');
  const listed = await tollgate(dir, 'prices', '--search', 'grok-4');
  assert.match(listed.out, /Token prices: genai-prices data file genai-prices-newer\.json/);
  assert.match(listed.out, /grok-4\.1-fast/);

  const rig = await startRig(['openai', 'anthropic', 'openrouter'], { dataDir: dir, upstreams: {} });
  try {
    // the engine's `xai` host goes to the OpenAI-compatible fake: /x/xai/… is provider x-ai
    rig.engine.upstreams.set('xai', `${rig.fakes.openai!.url}/v1`);
    const label = `genai-prices-data#sha256:${sha.slice(0, 12)}`;
    const info = await rig.engine.api.priceData({});
    assert.equal(info.kind, 'file');
    assert.equal(info.label, label);
    assert.equal(info.sha256, sha);
    assert.equal(info.file, 'genai-prices-newer.json');
    assert.equal(info.providers, 3);

    // Claude Haiku 5.5 over its 100K tier: every token at the long-prompt rate
    rig.fakes.anthropic!.next({ usage: { input_tokens: 150_000, output_tokens: 2_000 } });
    const haiku = await post(rig, '/anthropic/v1/messages', { model: 'claude-haiku-5-5', max_tokens: 4000, messages: [{ role: 'user', content: 'hi' }] }, { 'x-api-key': 'sk-ant-x', 'anthropic-version': '2023-06-01' });
    // 150,000 × $0.50/M + 2,000 × $2.50/M = 0.075 + 0.005
    assert.equal(haiku.cost, '0.08');
    assert.equal(haiku.priceSource, label);

    // grok-4.1-fast on xAI: in the file, not in the bundled data
    rig.fakes.openai!.next({ usage: { prompt_tokens: 10_000, cached_tokens: 2_000, completion_tokens: 1_000 } });
    const grok = await post(rig, '/x/xai/chat/completions', { model: 'grok-4.1-fast', messages: [{ role: 'user', content: 'hi' }] }, { authorization: 'Bearer xai-x' });
    // 8,000 × $0.20/M + 2,000 × $0.05/M + 1,000 × $0.50/M = 0.0016 + 0.0001 + 0.0005
    assert.equal(grok.unpriced, false, grok.unpricedReason ?? '');
    assert.equal(grok.cost, '0.0022');
    assert.equal(grok.priceSource, label);

    // OpenRouter x-ai/grok-4 over its 128K tier
    rig.fakes.openrouter!.next({ usage: { prompt_tokens: 200_000, completion_tokens: 1_000 } });
    const or = await post(rig, '/openrouter/api/v1/chat/completions', { model: 'x-ai/grok-4', messages: [{ role: 'user', content: 'hi' }] }, { authorization: 'Bearer sk-or-x' });
    // 200,000 × $6/M + 1,000 × $30/M = 1.2 + 0.03
    assert.equal(or.cost, '1.23');
    assert.equal(or.priceSource, label);

    // providers the file does not list keep the bundled data
    rig.fakes.openai!.next({ usage: { prompt_tokens: 100_000, completion_tokens: 10_000 } });
    const mini = await post(rig, '/openai/v1/chat/completions', { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, { authorization: 'Bearer sk-x' });
    assert.equal(mini.cost, '0.021'); // 100,000 × $0.15/M + 10,000 × $0.60/M
    assert.equal(mini.priceSource, 'genai-prices@0.1.8');

    // quotes use the same data
    const q = await rig.engine.api.quote({ kind: 'usage', model: 'x-ai:grok-4.1-fast', usage: { inputTokens: 1_000_000, outputTokens: 1_000_000 } });
    assert.equal(q.unpriced, 0);
    assert.equal(q.expected, '0.7');

    // --reset while the engine runs: it goes back to the bundled data on its next config check
    const reset = await tollgate(dir, 'prices', 'update', '--reset');
    assert.equal(reset.code, 0, reset.err);
    assert.match(reset.out, /bundled genai-prices data 0\.1\.8/);
    assert.equal(fs.existsSync(path.join(dir, PRICE_DATA_FILE)), false);
    await eventually(async () => (await rig.engine.api.priceData({})).kind === 'bundled', 'the engine to reload');
    rig.fakes.openai!.next({ usage: { prompt_tokens: 10_000, completion_tokens: 1_000 } });
    const bundled = await post(rig, '/x/xai/chat/completions', { model: 'grok-4.1-fast', messages: [{ role: 'user', content: 'hi' }] }, { authorization: 'Bearer xai-x' });
    // priced again from what ships: Tollgate's supplement to the bundled data, no longer the file
    assert.equal(bundled.unpriced, false);
    assert.match(bundled.priceSource ?? '', /^tollgate-genai-supplement@/);
    rig.fakes.openai!.next({ usage: { prompt_tokens: 10_000, completion_tokens: 1_000 } });
    const unknown = await post(rig, '/x/xai/chat/completions', { model: 'grok-99-test', messages: [{ role: 'user', content: 'hi' }] }, { authorization: 'Bearer xai-x' });
    assert.equal(unknown.unpriced, true);
    assert.match(unknown.unpricedReason ?? '', /not in the bundled genai-prices data; load a newer file with `npx tollgate prices update --from FILE`/);

    // and loading it again while the engine runs prices it again
    assert.equal((await tollgate(dir, 'prices', 'update', '--from', FIXTURE)).code, 0);
    await eventually(async () => (await rig.engine.api.priceData({})).kind === 'file', 'the engine to reload');
    rig.fakes.openai!.next({ usage: { prompt_tokens: 10_000, cached_tokens: 2_000, completion_tokens: 1_000 } });
    const again = await post(rig, '/x/xai/chat/completions', { model: 'grok-4.1-fast', messages: [{ role: 'user', content: 'hi' }] }, { authorization: 'Bearer xai-x' });
    assert.equal(again.cost, '0.0022');
  } finally {
    await rig.close();
  }
});

test('a stored data file that is damaged on disk falls back to the bundled data, said in words', async () => {
  const dir = tempDir();
  assert.equal((await tollgate(dir, 'prices', 'update', '--from', FIXTURE)).code, 0);
  fs.writeFileSync(path.join(dir, PRICE_DATA_FILE), '[');
  const r = await tollgate(dir, 'prices', '--search', 'grok-4.1', '--json');
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as { priceData: PriceDataInfo; models: PriceRow[] };
  assert.equal(j.priceData.kind, 'bundled');
  assert.match(j.priceData.problem ?? '', /cannot be used: .*not JSON.*using the bundled data/);
  const grok = j.models.find((m) => m.model === 'grok-4.1-fast');
  assert.ok(grok, 'grok-4.1-fast is listed from the bundled supplement');
  assert.match(grok.source.catalog ?? '', /^tollgate-genai-supplement@/, 'not from the damaged file');
});

/** DeepSeek's peak hours, written out by hand: 01:00-04:00 and 06:00-10:00 UTC, Monday to Friday, not on 2026's weekday Chinese holidays. */
function deepseekPeak(ts: number): boolean {
  const d = new Date(ts);
  const day = d.getUTCDay();
  const h = d.getUTCHours();
  const holidays = ['2026-01-01', '2026-01-02', '2026-02-16', '2026-02-17', '2026-02-18', '2026-02-19', '2026-02-20', '2026-02-23', '2026-04-06', '2026-05-01', '2026-05-04', '2026-05-05', '2026-06-19', '2026-09-25', '2026-10-01', '2026-10-02', '2026-10-05', '2026-10-06', '2026-10-07'];
  return day >= 1 && day <= 5 && ((h >= 1 && h < 4) || (h >= 6 && h < 10)) && !holidays.includes(d.toISOString().slice(0, 10));
}

test('deepseek-flash through the proxy (OpenAI SDK on /x/deepseek): booked from DeepSeek\'s cache hit / miss usage at the peak or off-peak rate of the call\'s time', async () => {
  let clock = Date.parse('2026-12-01T02:00:00Z'); // quotes: a Tuesday, 10:00 Beijing time (peak)
  const rig = await startRig(['deepseek'], { now: () => clock });
  try {
    // DeepSeek's OpenAI-compatible API answers /chat/completions at its base URL (and under /v1)
    rig.engine.upstreams.set('deepseek', `${rig.fakes.deepseek!.url}/v1`);
    const client = new OpenAI({ apiKey: 'sk-ds-x', baseURL: `${rig.url}/x/deepseek`, maxRetries: 0 });
    const usage = { prompt_tokens: 120_000, cached_tokens: 100_000, completion_tokens: 3_000, reasoning_tokens: 1_000 };
    // 20,000 misses, 100,000 hits, 3,000 output (1,000 of them reasoning) per M:
    // off-peak 20,000 × $0.15 + 100,000 × $0.003 + 3,000 × $0.60 = 0.003 + 0.0003 + 0.0018
    // peak     20,000 × $0.30 + 100,000 × $0.006 + 3,000 × $1.20 = 0.006 + 0.0006 + 0.0036
    const want = (ts: number) => (deepseekPeak(ts) ? '0.0102' : '0.0051');

    rig.fakes.deepseek!.next({ usage });
    const { data, response } = await client.chat.completions.create({ model: 'deepseek-flash', messages: [{ role: 'user', content: 'summarise the report' }] }).withResponse();
    const raw = data.usage as unknown as Record<string, unknown>;
    assert.equal(raw.prompt_cache_hit_tokens, 100_000, 'the fake speaks DeepSeek\'s usage fields');
    assert.equal(raw.prompt_tokens_details, undefined);
    const call = await settled(rig, response.headers.get('x-tollgate-call-id'));
    assert.equal(call.unpriced, false, call.unpricedReason ?? '');
    assert.equal(call.model, 'deepseek-flash');
    assert.equal(call.usage.cacheReadTokens, 100_000);
    assert.equal(call.usage.inputTokens, 20_000);
    assert.equal(call.cost, want(call.ts), `a call at ${new Date(call.ts).toISOString()}`);
    assert.match(call.priceSource ?? '', /^tollgate-genai-supplement@2026-12-01\.3:deepseek\/deepseek-flash$/);

    // streamed, usage in the last chunk
    rig.fakes.deepseek!.next({ usage });
    const stream = await client.chat.completions.create({ model: 'deepseek-flash', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'summarise the report' }] }).withResponse();
    for await (const _ of stream.data) { /* drain */ }
    const streamed = await settled(rig, stream.response.headers.get('x-tollgate-call-id'));
    assert.equal(streamed.cost, want(streamed.ts));

    // quotes use the engine's time: peak on a Tuesday at 02:00 UTC, off-peak at 11:00 and on a Saturday
    const quote = async () => (await rig.engine.api.quote({ kind: 'usage', model: 'deepseek:deepseek-flash', usage: { inputTokens: 1_000_000, outputTokens: 1_000_000 } })).expected;
    assert.equal(await quote(), '1.5'); // $0.30 + $1.20
    clock = Date.parse('2026-12-01T11:00:00Z');
    assert.equal(await quote(), '0.75'); // $0.15 + $0.60
    clock = Date.parse('2026-12-05T02:00:00Z');
    assert.equal(await quote(), '0.75');
  } finally {
    await rig.close();
  }
});
