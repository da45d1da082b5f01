/**
 * OpenRouter reconciliation joined per generation id (issue 13): calls made with the official
 * `openai` SDK pointed at the proxy's OpenRouter route (streamed and not), against the fake
 * OpenRouter upstream, which answers with `id: "gen-…"` as OpenRouter does. The ledger keeps each
 * call's generation id (calls.upstream_id); `tollgate reconcile --provider openrouter` joins the
 * activity export (test/fixtures/reconcile/openrouter-generations.csv, OpenRouter's real header)
 * row by row with those calls.
 *
 * The fixture's generation ids are the fake's (deterministic per request), its dates are
 * 2025-11-30: the test moves them to the day the calls were made (UTC) before importing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { startRig, tempDir, type Rig } from '../fixtures/engine.ts';
import type { ReconcileResult } from '../../shared/reconcile.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const FIXTURE = path.join(ROOT, 'test/fixtures/reconcile/openrouter-generations.csv');
let rig: Rig;

function tollgate(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'bin/tollgate.js'), '--data-dir', rig.dataDir, ...args], { encoding: 'utf8', maxBuffer: 16 << 20 }, (e, out, err) => {
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, out, err });
    });
  });
}

before(async () => {
  rig = await startRig(['openrouter']);
});
after(async () => {
  await rig?.close();
});

test('the OpenRouter activity export is joined per generation id: matched, cost differs, billed but not metered, metered but not billed', async () => {
  const client = new OpenAI({ apiKey: 'sk-or-test', baseURL: `${rig.url}/openrouter/api/v1`, maxRetries: 0 });
  const ids: string[] = [];
  for (let i = 0; i < 2; i++) {
    rig.fakes.openrouter!.next({ usage: { prompt_tokens: 1000 + i, completion_tokens: 500 } });
    ids.push((await client.chat.completions.create({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: `hi ${i}` }] })).id);
  }
  rig.fakes.openrouter!.next({ usage: { prompt_tokens: 1002, completion_tokens: 500 } });
  const stream = await client.chat.completions.create({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'stream' }], stream: true });
  let streamedId = '';
  for await (const chunk of stream) streamedId ||= chunk.id;
  ids.push(streamedId);
  // a fourth call OpenRouter's export does not list (metered, not billed)
  rig.fakes.openrouter!.next({ usage: { prompt_tokens: 1003, completion_tokens: 500 } });
  ids.push((await client.chat.completions.create({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'extra' }] })).id);

  // the ledger keeps the generation id of each call, streamed or not
  rig.engine.flushQuietly();
  const calls = rig.engine.ledger.db.prepare(`SELECT id, ts, upstream_id, cost_nano FROM calls WHERE provider = 'openrouter' ORDER BY ts, id`).all() as { id: string; ts: number; upstream_id: string; cost_nano: number }[];
  assert.deepEqual(calls.map((c) => c.upstream_id), ids);
  assert.ok(ids.every((id) => /^gen-\d+-[0-9a-f]+$/.test(id)), ids.join(' '));

  const fixture = fs.readFileSync(FIXTURE, 'utf8');
  for (const id of ids.slice(0, 3)) assert.ok(fixture.includes(id), `the fixture lists ${id} (the fake's ids are deterministic)`);
  // the fixture's costs are the catalog's for these token counts: the first and third match exactly
  assert.equal(calls[0]!.cost_nano, 450_000, 'gpt-4o-mini via OpenRouter: 1000 in + 500 out = $0.00045 (if the catalog price changed, update the fixture)');
  const day = new Date(calls[0]!.ts).toISOString().slice(0, 10);
  const file = path.join(tempDir('tollgate-reconcile-'), 'openrouter_activity.csv');
  fs.writeFileSync(file, fixture.replaceAll('2025-11-30', day));

  const r = await tollgate('reconcile', '--provider', 'openrouter', file, '--json');
  assert.equal(r.code, 1, 'mismatches exit 1');
  const out = JSON.parse(r.out) as ReconcileResult;
  assert.equal(out.format, 'openrouter-activity');
  assert.deepEqual(out.generations!.counts, { matched: 2, costDiffers: 1, billedNotMetered: 1, meteredNotBilled: 1 });
  const un = new Map(out.generations!.unmatched.map((g) => [g.status, g]));
  assert.deepEqual(un.get('cost differs'), { generationId: ids[1], callId: calls[1]!.id, day, model: 'gpt-4o-mini', tollgate: '0.00045015', provider: '0.00052', difference: '-0.00006985', status: 'cost differs' });
  assert.deepEqual(un.get('billed, not metered'), { generationId: 'gen-1750000099-77a1c0ffee5eed0ba5e1', callId: null, day, model: 'claude-3-5-haiku', tollgate: null, provider: '0.0011', difference: '-0.0011', status: 'billed, not metered' });
  assert.deepEqual(un.get('metered, not billed'), { generationId: ids[3], callId: calls[3]!.id, day, model: 'gpt-4o-mini', tollgate: '0.00045045', provider: null, difference: '0.00045045', status: 'metered, not billed' });
  assert.equal(out.generations!.unmatched.length, 3, 'matched generations are not listed');

  // still rolled up per day × model for the view: a day × model whose sums are within max(1 %, $0.01)
  // is not called a match when one of its generations was never billed
  assert.deepEqual(out.rows.map((x) => [x.day, x.model, x.tollgate, x.provider, x.calls, x.status, x.generations]), [
    [day, 'claude-3-5-haiku', '0', '0.0011', 0, 'unmetered', { matched: 0, costDiffers: 0, billedNotMetered: 1, meteredNotBilled: 0 }],
    [day, 'gpt-4o-mini', '0.0018009', '0.0014203', 4, 'not billed', { matched: 2, costDiffers: 1, billedNotMetered: 0, meteredNotBilled: 1 }],
  ]);
  assert.equal(out.unmetered, '0.0011');
  assert.equal(out.tollgateTotal, '0.0018009');
  assert.equal(out.providerTotal, '0.0025203');
  assert.deepEqual(out.daily, [{ day, tollgate: '0.0018009', provider: '0.0025203', difference: '-0.0007194' }]);

  // the same as a user reads it
  const text = await tollgate('reconcile', '--provider', 'openrouter', file);
  assert.match(text.out, /2 matched · 1 cost differs · 1 billed but not metered · 1 metered but not billed/);
  assert.match(text.out, /gen-1750000099-77a1c0ffee5eed0ba5e1/);

  // the export carries the generation id (CSV column upstream_id, JSON Lines upstreamId)
  const csv = await tollgate('export', '--format', 'csv');
  assert.equal(csv.code, 0, csv.err);
  const [header, ...lines] = csv.out.trim().split('\n');
  const col = header!.split(',').indexOf('upstream_id');
  assert.ok(col >= 0, header);
  assert.deepEqual(lines.map((l) => l.split(',')[col]), ids);
  const jsonl = await tollgate('export', '--format', 'jsonl');
  assert.deepEqual(jsonl.out.trim().split('\n').map((l) => (JSON.parse(l) as { upstreamId?: string }).upstreamId), ids);
});

test('an activity export with a generation listed twice, or without its id, is refused and nothing imported', async () => {
  const header = fs.readFileSync(FIXTURE, 'utf8').split('\n')[0]!;
  const row = 'gen-1-a,2025-11-30 10:00:00.000,0.001,0,0,0,10,10,0,0,openai/gpt-4o-mini,OpenAI,standard,false,false,,stop,stop,1,1,,x';
  const dir = tempDir('tollgate-reconcile-');
  fs.writeFileSync(path.join(dir, 'twice.csv'), [header, row, row].join('\n'));
  fs.writeFileSync(path.join(dir, 'noid.csv'), [header, row.replace('gen-1-a', '')].join('\n'));
  const twice = await tollgate('reconcile', '--provider', 'openrouter', path.join(dir, 'twice.csv'));
  assert.equal(twice.code, 2);
  assert.match(twice.err, /appears twice\. Nothing was imported/);
  const noid = await tollgate('reconcile', '--provider', 'openrouter', path.join(dir, 'noid.csv'));
  assert.equal(noid.code, 2);
  assert.match(noid.err, /generation_id is empty/);
});
