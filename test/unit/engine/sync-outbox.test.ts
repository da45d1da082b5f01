/**
 * The sync outbox (migration 9): once a device has joined, a finished local call is listed from the
 * transaction that makes it final, pending and pulled calls never are, and pulled calls count once.
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

test('a device that never joined keeps no outbox; once joined, finished local calls enter it with their write, pending and pulled ones never do', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-outbox-'));
  const L = new Ledger(dir); // with its writer thread, as the engine runs it
  try {
    const before = [row(), row({ status: 'error' })];
    for (const r of before) L.recordEnd(r);
    L.flush(true);
    assert.equal(L.outboxCount(), 0, 'not joined: nothing is listed (the writer pays nothing for an outbox)');
    const triggers = () => (L.db.prepare(`SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'calls_outbox%' ORDER BY name`).pluck().all() as string[]);
    assert.deepEqual(triggers(), [], 'no outbox triggers run on its writes');

    L.resetOutbox(); // what joining does: the history goes into the outbox, once each
    assert.equal(L.outboxCount(), 2);
    assert.deepEqual(triggers(), ['calls_outbox_final', 'calls_outbox_insert']);
    const done = [row(), row({ status: 'blocked', costNano: 0n })];
    for (const r of done) L.recordEnd(r);
    const pending = row({ status: 'pending' });
    L.recordStart(pending);
    L.flush(true);
    assert.equal(L.outboxCount(), 4);
    assert.deepEqual(L.outbox(0, 10).map((r) => r.id), [...before, ...done].map((r) => r.id), 'in the order they became final');

    // a call journaled as pending enters the outbox when it becomes final, not before
    const slow = row({ status: 'pending', ts: Date.now() - 60_000 });
    L.recordStart(slow);
    L.flush(true);
    assert.equal(L.call(slow.id)?.status, 'pending');
    assert.equal(L.outboxCount(), 4);
    L.ending(slow);
    L.recordEnd({ ...slow, status: 'ok' });
    L.flush(true);
    assert.equal(L.outboxCount(), 5);
    assert.equal(L.outbox(0, 10).at(-1)!.id, slow.id);

    // pulled calls: inserted once by id, counted once in totals and rollups, never pushed back
    const totals = L.totals();
    const other = row({ costNano: 5_000n });
    assert.equal(L.insertPulled([{ row: other, device: 'desktop', deviceId: 'd2' }]), 1);
    assert.equal(L.insertPulled([{ row: other, device: 'desktop', deviceId: 'd2' }]), 0);
    assert.deepEqual(L.totals(), { calls: totals.calls + 1, cost: totals.cost + 5_000n, unpriced: 0 });
    assert.equal(L.outboxCount(), 5);
    assert.equal(L.call(other.id)?.device, 'desktop');

    // a pushed page leaves by its seq range; a conflict or refusal by id, marked on the call
    const raw = L.outboxRaw(0, 2);
    const seq = (r: unknown[]) => r[r.length - 1] as number;
    L.outboxDone(seq(raw[0]!), seq(raw[1]!));
    assert.equal(L.outboxCount(), 3);
    assert.deepEqual(L.outboxRaw(seq(raw[1]!), 10).map((r) => r[0]), [...done, slow].map((r) => r.id));
    L.markSynced([done[0]!.id], 2);
    assert.equal(L.outboxCount(), 2);
    L.resetOutbox();
    assert.equal(L.outboxCount(), 5, 'joining again lists the whole local history once (pushing duplicates is harmless)');
  } finally {
    L.close();
  }
});

test('a call left pending by a crash enters the outbox when recovery books it as interrupted', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-outbox-crash-'));
  let L = new Ledger(dir, { writerThread: false });
  L.resetOutbox();
  const lost = row({ status: 'pending', ts: Date.now() - 60_000, quoteExpectedNano: 7_000n });
  L.recordStart(lost);
  L.flush(true);
  assert.equal(L.outboxCount(), 0);
  L.db.close(); // the process dies: no flush, no close
  L = new Ledger(dir, { writerThread: false });
  try {
    assert.equal(L.recoverInterrupted(), 1);
    assert.deepEqual(L.outbox(0, 10).map((r) => [r.id, r.status]), [[lost.id, 'interrupted']]);
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
