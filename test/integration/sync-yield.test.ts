/**
 * Background sync yields to a saturated proxy (sync.ts tick): while the engine's event loop is
 * busier than 90 % since the last look, the pass waits for a quieter moment, for at most
 * `syncMaxDeferMs` since the last pass, then runs whatever the load. Nothing is lost either way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRig, eventually, tempDir } from '../fixtures/engine.ts';
import { startLedger, type LedgerBackend } from '../fixtures/ledger-service.ts';
import { enrolCode, makeCalls } from '../fixtures/sync-check.ts';

/** Keep this process's event loop busy (the engine runs in it) for `ms`, with short breaks that let timers and I/O run. */
async function saturate(ms: number, whileBusy?: () => void): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const slice = Date.now() + 95;
    while (Date.now() < slice) { /* the proxy's work, as far as the event loop can tell */ }
    await new Promise((r) => setImmediate(r));
    whileBusy?.();
  }
}

test('background sync waits while the proxy is saturated, pushes once it is quiet, and never waits longer than its bound', async () => {
  const backend: LedgerBackend = { dataDir: tempDir('tollgate-yield-svc-') };
  const svc = await startLedger(backend);
  const rig = await startRig(['openai'], { syncIntervalMs: 50, syncMaxDeferMs: 3000 });
  try {
    await rig.engine.sync.join(svc.url, await enrolCode(backend), 'busy');
    rig.engine.sync.start();
    await new Promise((r) => setTimeout(r, 500)); // a first pass has run: the next ones may be put off

    // the calls are made with the loop stopped (a pass between them would push them at once), then
    // the loop starts again inside the saturation: its first look already sees the busy loop
    await rig.engine.sync.stop();
    await makeCalls(rig, 5, 1);
    rig.engine.ledger.flush();
    const pendingWhileBusy: number[] = [];
    const deferredBefore = rig.engine.sync.deferred;
    rig.engine.sync.start();
    await saturate(1500, () => pendingWhileBusy.push(rig.engine.ledger.outboxCount()));
    assert.ok(rig.engine.sync.deferred > deferredBefore, 'passes were put off while the loop was busy');
    assert.equal(Math.min(...pendingWhileBusy), 5, 'nothing was pushed while the proxy was saturated');
    await eventually(() => rig.engine.ledger.outboxCount() === 0, 'pushed once quiet', 5000);

    // saturated for longer than the bound: a pass runs anyway, during the load
    await rig.engine.sync.stop();
    await makeCalls(rig, 3, 2);
    rig.engine.ledger.flush();
    const during: number[] = [];
    rig.engine.sync.start();
    await saturate(7000, () => during.push(rig.engine.ledger.outboxCount()));
    assert.equal(during[0], 3);
    assert.equal(during.at(-1), 0, `pushed during the load once 3,000 ms had passed since the last pass: ${[...new Set(during)].join(' → ')}`);
  } finally {
    await rig.close();
    await svc.stop();
  }
});
