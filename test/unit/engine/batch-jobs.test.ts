/**
 * Batches across devices (migration 10): the submit call and the booking call carry the batch's id in
 * upstream_id; BatchJobs finds them (of any device) through the partial index calls_batch_upstream,
 * which SQLite uses only while the queries repeat its WHERE text exactly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ledger, type CallRow } from '../../../electron/engine/ledger.ts';
import { BatchJobs, BATCH_CALL_ENDPOINTS } from '../../../electron/engine/batches.ts';
import { MIGRATIONS } from '../../../electron/engine/migrations.ts';
import { newCallId } from '../../../electron/engine/ids.ts';

const row = (over: Partial<CallRow> = {}): CallRow => ({
  id: newCallId(), ts: Date.now(), provider: 'anthropic', model: 'claude-sonnet-4-5', endpoint: 'messages.batches', project: 'nightly', workflow: null, run: null, node: null,
  keyId: null, keyFingerprint: 'fp_x', keyName: null, status: 'ok', httpStatus: 200, stream: false, durationMs: 10, ttfbMs: 5, usage: {},
  items: [], costNano: 1_548_000n, reservedNano: 0n, quoteMaxNano: null, quoteExpectedNano: null, estimated: true, unpriced: false, unpricedReason: null,
  priceSource: 'estimate', error: null, blockedBy: null, prompt: null, ...over,
});

test('the submit and the bookings of a batch are found by its id, pulled or not, through the partial index', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-batchjobs-'));
  const L = new Ledger(dir, { writerThread: false });
  try {
    assert.ok(MIGRATIONS.at(-1)!.includes(BATCH_CALL_ENDPOINTS), 'the index is on the very text the queries use');
    const jobs = new BatchJobs(L.db);
    const t = Date.now();
    const submit = row({ upstreamId: 'msgbatch_1', ts: t });
    const other = row({ upstreamId: 'msgbatch_2', ts: t });
    const unpriced = row({ endpoint: 'messages.batches.results', upstreamId: 'msgbatch_1', ts: t + 1, costNano: 0n, unpriced: true, unpricedReason: 'unknown model' });
    const late = row({ endpoint: 'messages.batches.results', upstreamId: 'msgbatch_1', ts: t + 3, costNano: 273_000n, estimated: false });
    for (const r of [submit, other, unpriced, late]) L.recordEnd(r);
    // a booking pulled from another device, earlier than this device's
    const early = row({ endpoint: 'messages.batches.results', upstreamId: 'msgbatch_1', ts: t + 2, costNano: 273_000n, estimated: false });
    L.insertPulled([{ row: early, device: 'desktop', deviceId: 'dev-2' }]);
    L.flush();
    assert.equal(jobs.submitCallOf('anthropic', 'msgbatch_1'), submit.id);
    assert.equal(jobs.submitCallOf('openai', 'msgbatch_1'), null, 'per provider');
    // priced before unpriced, then the earliest; own or pulled
    assert.deepEqual(jobs.bookingsOf('anthropic', 'msgbatch_1').map((b) => [b.id, b.own]), [[early.id, false], [late.id, true], [unpriced.id, true]]);
    assert.deepEqual(jobs.bookingsOf('anthropic', 'msgbatch_2'), []);
    // OpenAI: a device that read the output file without seeing the batch keyed its booking by the file
    const byFile = row({ provider: 'openai', endpoint: 'batches.output', upstreamId: 'file:file-abc', ts: t + 5, costNano: 10_500n, estimated: false });
    L.insertPulled([{ row: byFile, device: 'desktop', deviceId: 'dev-2' }]);
    L.flush();
    assert.deepEqual(jobs.bookingsOf('openai', 'batch_1', 'file-abc').map((b) => b.id), [byFile.id]);
    assert.deepEqual(jobs.bookingsOf('openai', 'batch_1'), []);
    for (const sql of [
      `SELECT id FROM calls WHERE provider = 'a' AND upstream_id = 'b' AND ${BATCH_CALL_ENDPOINTS} AND corrects IS NULL`,
    ]) {
      const plan = (L.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((r) => r.detail).join(' | ');
      assert.match(plan, /USING INDEX calls_batch_upstream/);
    }
  } finally {
    L.close();
  }
});
