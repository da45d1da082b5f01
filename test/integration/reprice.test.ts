/**
 * Re-pricing: calls to a model Tollgate had no price for are booked unpriced; once the user sets a
 * price, `prices set` offers to price those earlier calls and `prices reprice` does, exactly, once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import OpenAI from 'openai';
import { startRig, eventually } from '../fixtures/engine.ts';
import { usdToNano } from '../../shared/money.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
/** The CLI as a user runs it, next to the running engine (never blocking this process's loop). */
async function tollgate(dataDir: string, ...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await run(process.execPath, [path.join(ROOT, 'bin/tollgate.js'), '--data-dir', dataDir, ...args], { encoding: 'utf8' });
    return { code: 0, out: r.stdout };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, out: err.stdout + err.stderr };
  }
}

test('prices set offers to re-price earlier unpriced calls; prices reprice books them exactly, once', async () => {
  const rig = await startRig(['openai']);
  try {
    const client = new OpenAI({ apiKey: 'sk-x', baseURL: `${rig.url}/openai/v1`, maxRetries: 0 });
    const ids: string[] = [];
    for (const content of ['hello', 'a somewhat longer question about invoices and their totals']) {
      const { response } = await client.chat.completions.create({ model: 'my-finetune', messages: [{ role: 'user', content }] }).withResponse();
      ids.push(response.headers.get('x-tollgate-call-id')!);
    }
    const before = await Promise.all(ids.map((id) => eventually(async () => { const c = await rig.engine.api.call({ id }); return c?.status === 'ok' ? c : null; }, 'the call booked')));
    for (const c of before) assert.equal(c.unpriced, true);
    const report0 = JSON.parse((await tollgate(rig.dataDir, 'report', '--period', 'day', '--json')).out) as { total: string; calls: number; unpriced_calls: number };
    assert.equal(report0.unpriced_calls, 2);

    const set = await tollgate(rig.dataDir, 'prices', 'set', 'openai:my-finetune', 'input_mtok=0.3', 'output_mtok=1.2');
    assert.equal(set.code, 0, set.out);
    assert.match(set.out, /2 earlier call\(s\) of openai:my-finetune are unpriced\. Price them with this price: npx tollgate prices reprice openai:my-finetune/);

    const r = await tollgate(rig.dataDir, 'prices', 'reprice', 'openai:my-finetune', '--json');
    assert.equal(r.code, 0, r.out);
    const res = JSON.parse(r.out) as { repriced: number; cost: string; stillUnpriced: number };
    // $0.30 per 1M input tokens is 300 nano-dollars a token, $1.20 per 1M output tokens 1,200: exact
    const expected = before.reduce((s, c) => s + BigInt(c.usage.inputTokens ?? 0) * 300n + BigInt(c.usage.outputTokens ?? 0) * 1200n, 0n);
    assert.ok(expected > 0n);
    assert.equal(res.repriced, 2);
    assert.equal(res.stillUnpriced, 0);
    assert.equal(usdToNano(res.cost), expected);

    for (const id of ids) {
      const c = (await rig.engine.api.call({ id }))!;
      assert.equal(c.unpriced, false);
      assert.equal(c.unpricedReason, null);
      assert.match(c.priceSource ?? '', /re-priced/);
      assert.equal(c.items.reduce((s, it) => s + usdToNano(it.cost), 0n), usdToNano(c.cost), 'a call is the sum of its lines');
    }
    // reports, rollups and all-time totals moved together; the call count did not
    const report = JSON.parse((await tollgate(rig.dataDir, 'report', '--period', 'day', '--json')).out) as { total: string; calls: number; unpriced_calls: number };
    assert.equal(report.calls, report0.calls);
    assert.equal(report.unpriced_calls, 0);
    assert.equal(usdToNano(report.total) - usdToNano(report0.total), expected);
    const overview = await rig.engine.api.overview({});
    assert.equal(overview.unpricedCalls, 0);

    // twice prices nothing twice
    const again = JSON.parse((await tollgate(rig.dataDir, 'prices', 'reprice', 'openai:my-finetune', '--json')).out) as { repriced: number };
    assert.equal(again.repriced, 0);
    const report2 = JSON.parse((await tollgate(rig.dataDir, 'report', '--period', 'day', '--json')).out) as { total: string };
    assert.equal(report2.total, report.total);
    // a normal call afterwards is priced by the new price directly
    await client.chat.completions.create({ model: 'my-finetune', messages: [{ role: 'user', content: 'x' }] });
  } finally {
    await rig.close();
  }
});

test('prices reprice on a model with nothing to price says so; bad input exits 2', async () => {
  const rig = await startRig(['openai']);
  try {
    const none = await tollgate(rig.dataDir, 'prices', 'reprice', 'openai:gpt-4o-mini');
    assert.equal(none.code, 0, none.out);
    assert.match(none.out, /No unpriced call of openai:gpt-4o-mini could be priced/);
    const bad = await tollgate(rig.dataDir, 'prices', 'reprice', 'gpt-4o-mini');
    assert.equal(bad.code, 2, bad.out);
  } finally {
    await rig.close();
  }
});
