/**
 * Corrections (migration 8, calls.corrects): a new record naming an earlier call, with a signed cost.
 * Rollups and totals count its cost (negative too) but not as a call; only a correction may be
 * negative; it syncs with `corrects`, and a pulled one keeps it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ledger, toCallRecord, type CallRow } from '../../../electron/engine/ledger.ts';
import { newCallId } from '../../../electron/engine/ids.ts';
import { pushRecord, rowFromPulled } from '../../../electron/engine/sync.ts';

const row = (over: Partial<CallRow> = {}): CallRow => ({
  id: newCallId(), ts: Date.now(), provider: 'anthropic', model: 'claude-sonnet-4-5', endpoint: 'messages.batches', project: 'nightly', workflow: null, run: null, node: null,
  keyId: null, keyFingerprint: 'fp_x', keyName: null, status: 'ok', httpStatus: 200, stream: false, durationMs: 10, ttfbMs: 5, usage: {},
  items: [], costNano: 5_322_000n, reservedNano: 0n, quoteMaxNano: null, quoteExpectedNano: null, estimated: true, unpriced: false, unpricedReason: null,
  priceSource: 'estimate', error: null, blockedBy: null, prompt: null, ...over,
});

test('a correction counts its signed cost in totals and rollups, not a call; only a correction may be negative', () => {
  for (const writerThread of [true, false]) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-corr-'));
    const L = new Ledger(dir, { writerThread });
    try {
      const estimate = row();
      L.recordEnd(estimate);
      const actual = row({ endpoint: 'messages.batches.results', costNano: 273_000n, estimated: false });
      L.recordEnd(actual);
      const corr = row({ endpoint: 'batch.correction', costNano: -5_322_000n, estimated: false, corrects: estimate.id });
      L.recordEnd(corr);
      L.flush(true);
      assert.deepEqual(L.totals(), { calls: 2, cost: 273_000n, unpriced: 0 });
      assert.deepEqual(L.spend({ from: 0, to: Number.MAX_SAFE_INTEGER, project: 'nightly' }), { cost: 273_000n, calls: 2, unpriced: 0 });
      assert.deepEqual(L.groupByDevice(0, Number.MAX_SAFE_INTEGER, 'laptop').map((g) => [g.key, g.calls, g.cost]), [['laptop', 2, 273_000n]], 'report --by device counts the correction\'s cost, not a call');
      assert.equal(L.call(corr.id)?.corrects, estimate.id);
      assert.equal(L.call(estimate.id)?.corrects, null);
      assert.equal(toCallRecord(L.call(corr.id)!).corrects, estimate.id);
      assert.equal('corrects' in toCallRecord(L.call(estimate.id)!), false, 'an ordinary call\'s record (and its sync body) is unchanged');
      assert.throws(() => L.recordEnd(row({ costNano: -1n })), /negative cost; only a correction/);
    } finally {
      L.close();
    }
  }
});

test('a correction syncs with what it corrects; a pulled one keeps it and counts its cost, not a call', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-corr-'));
  const L = new Ledger(dir, { writerThread: false });
  try {
    const orig = row();
    const corr = row({ costNano: -5_322_000n, corrects: orig.id, endpoint: 'batch.correction' });
    const pushed = pushRecord(corr);
    assert.equal(pushed.corrects, orig.id);
    assert.equal(pushed.cost, '-0.005322');
    assert.equal('corrects' in pushRecord(orig), false);
    const back = rowFromPulled(JSON.parse(JSON.stringify(pushed)) as Record<string, unknown>)!;
    assert.equal(back.corrects, orig.id);
    assert.equal(back.costNano, -5_322_000n);
    assert.equal(L.insertPulled([{ row: row({ id: orig.id }), device: 'desktop', deviceId: 'd2' }, { row: back, device: 'desktop', deviceId: 'd2' }]), 2);
    assert.deepEqual(L.totals(), { calls: 1, cost: 0n, unpriced: 0 });
  } finally {
    L.close();
  }
});
