/**
 * The sync outbox is the calls table itself (migration 4): a finished local call is in it from the
 * transaction that writes it, pending and pulled calls never are, and pulled calls count once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ledger, type CallRow } from '../../../electron/engine/ledger.ts';
import { newCallId } from '../../../electron/engine/ids.ts';
import { pushRecord, rowFromPulled } from '../../../electron/engine/sync.ts';

const row = (over: Partial<CallRow> = {}): CallRow => ({
  id: newCallId(), ts: Date.now(), provider: 'openai', model: 'gpt-4o-mini', endpoint: 'chat.completions', project: null, workflow: null, run: null, node: null,
  keyId: 'k1', keyFingerprint: 'fp_x', keyName: 'laptop', status: 'ok', httpStatus: 200, stream: false, durationMs: 10, ttfbMs: 5, usage: { inputTokens: 10 },
  items: [], costNano: 1_234n, reservedNano: 0n, quoteMaxNano: null, quoteExpectedNano: null, estimated: false, unpriced: false, unpricedReason: null,
  priceSource: 'test', error: null, blockedBy: null, prompt: 'secret prompt', ...over,
});

test('finished local calls enter the outbox with their write; pending and pulled ones never do', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-outbox-'));
  const L = new Ledger(dir); // with its writer thread, as the engine runs it
  try {
    const done = [row(), row({ status: 'blocked', costNano: 0n })];
    for (const r of done) L.recordEnd(r);
    const pending = row({ status: 'pending' });
    L.recordStart(pending);
    L.flush(true);
    assert.equal(L.outboxCount(), 2);
    assert.deepEqual(L.outbox('', 10).map((r) => r.id), done.map((r) => r.id).sort());
    const plan = L.db.prepare(`EXPLAIN QUERY PLAN SELECT * FROM calls WHERE synced = 0 AND device IS NULL AND status != 'pending' AND id > ? ORDER BY id LIMIT ?`).all('', 10) as { detail: string }[];
    assert.match(plan.map((p) => p.detail).join(' '), /calls_outbox/, 'the outbox is read through its partial index');

    // pulled calls: inserted once by id, counted once in totals and rollups, never pushed back
    const before = L.totals();
    const other = row({ costNano: 5_000n });
    assert.equal(L.insertPulled([{ row: other, device: 'desktop', deviceId: 'd2' }]), 1);
    assert.equal(L.insertPulled([{ row: other, device: 'desktop', deviceId: 'd2' }]), 0);
    assert.deepEqual(L.totals(), { calls: before.calls + 1, cost: before.cost + 5_000n, unpriced: 0 });
    assert.equal(L.outboxCount(), 2);
    assert.equal(L.call(other.id)?.device, 'desktop');

    L.markSynced([done[0]!.id]);
    assert.equal(L.outboxCount(), 1);
    L.resetOutbox();
    assert.equal(L.outboxCount(), 2, 'joining again pushes the whole local history (duplicates are harmless)');
  } finally {
    L.close();
  }
});

test('a pushed record carries no prompt and no local key id; a pulled record of unknown shape is read defensively', () => {
  const r = pushRecord(row({ leases: ['0190a0c2-0000-4000-8000-000000000001'] }));
  assert.equal((r as unknown as Record<string, unknown>).prompt, undefined);
  assert.equal((r as unknown as Record<string, unknown>).keyId, undefined);
  assert.equal(r.cost, '0.000001234');
  assert.deepEqual(r.leases, ['0190a0c2-0000-4000-8000-000000000001']);
  assert.equal(rowFromPulled({ id: 'x' }), null);
  const p = rowFromPulled({ id: newCallId(), ts: 1, provider: 'openai', cost: '0.5', status: 'some-new-status', usage: [1], items: 'no', futureField: 1 })!;
  assert.equal(p.costNano, 500_000_000n);
  assert.deepEqual(p.usage, {});
  assert.deepEqual(p.items, []);
  assert.equal(p.endpoint, 'unknown');
});
