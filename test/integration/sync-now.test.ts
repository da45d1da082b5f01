/**
 * `sync now` (the CLI, the UI's button, the API) pushes everything recorded before it was asked,
 * even when a pass is already under way: that pass may have read the outbox before the latest
 * calls, so one more pass follows it (sync.ts syncNow). Seen as a flaky CI failure: a test's
 * `syncNow` joined the pass the join had started and pushed nothing of the call made since.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRig, tempDir } from '../fixtures/engine.ts';
import { joinDevice, startLedger, type LedgerBackend } from '../fixtures/ledger-service.ts';
import { startFaultProxy } from '../fixtures/fault-proxy.ts';
import { enrolCode, makeCalls, serviceCalls } from '../fixtures/sync-check.ts';

test('sync now during a pass under way pushes the calls recorded since that pass read the outbox', async () => {
  const backend: LedgerBackend = { dataDir: tempDir('tollgate-syncnow-svc-') };
  const svc = await startLedger(backend);
  // every request to the service takes 400 ms: a pass is long enough to call during it
  const slow = await startFaultProxy(svc.url, {}, 7);
  const rig = await startRig(['openai'], { syncIntervalMs: 3_600_000 });
  try {
    const observer = await joinDevice(backend, svc.url, 'default', 'observer');
    assert.equal((await rig.engine.api.syncJoin({ url: slow.url, code: await enrolCode(backend), name: 'laptop' })).joined, true);
    await rig.engine.api.syncNow({}); // the join's own pass, done
    await makeCalls(rig, 2, 1);
    rig.engine.flushQuietly();
    slow.faults.requestDelayMs = [400, 400];

    const first = rig.engine.sync.syncNow(); // pushes the outbox (2 calls), then pulls from the slow service
    // its push is done (the service has the 2 calls): it is pulling, and reads the outbox no more
    while (await serviceCalls(svc.url, observer) < 2) await new Promise((r) => setTimeout(r, 20));
    await makeCalls(rig, 3, 2); // recorded while the first pass is under way
    rig.engine.flushQuietly();
    const second = await rig.engine.api.syncNow({});
    assert.equal(second.pending, 0, 'nothing recorded before asking is left to push');
    assert.equal(await serviceCalls(svc.url, observer), 5, 'the service has all five calls');
    const p1 = await first;
    assert.equal(p1.pushed, 2);
    // callers asking while a pass runs share the one pass that follows it
    const a = rig.engine.sync.syncNow(), b = rig.engine.sync.syncNow(), c = rig.engine.sync.syncNow();
    assert.notEqual(a, b, 'a pass under way is not what a later caller waits for');
    assert.equal(b, c, 'one pass follows it, shared');
    await Promise.all([a, b, c]);
  } finally {
    await rig.close();
    await slow.close();
    await svc.stop();
  }
});
