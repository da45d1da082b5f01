/**
 * Caps across devices: a device that could not reach the ledger service backs off its lease asks
 * (1 s, 2 s, … up to a minute). Once a sync pass gets through again, that backoff is over: the
 * next call is admitted on a fresh lease at once, not refused until the backoff runs out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startRig, tempDir } from '../fixtures/engine.ts';
import { startLedger, type LedgerBackend } from '../fixtures/ledger-service.ts';
import { startFaultProxy } from '../fixtures/fault-proxy.ts';
import { capAcrossDevices, enrolCode } from '../fixtures/sync-check.ts';

test('back online, a sync pass lifts the lease backoff: the next call is admitted at once', async () => {
  const b: LedgerBackend = { dataDir: tempDir('tollgate-lease-recovery-') };
  const svc = await startLedger(b);
  const proxy = await startFaultProxy(svc.url, {}, 5);
  const rig = await startRig(['openai'], { syncIntervalMs: 3_600_000 }); // passes only when asked
  try {
    await rig.engine.api.syncJoin({ url: proxy.url, code: await enrolCode(b), name: 'roaming' });
    rig.fakes.openai!.setDefault({ usage: { prompt_tokens: 10, completion_tokens: 500 } });
    const { call } = await capAcrossDevices(rig, '0.05');
    assert.equal(await call(), 200, 'a lease is granted before the first call');

    // offline: spend what the lease holds; each refusal asks for more, which fails and backs off
    proxy.set({ partition: true });
    let refused = false;
    for (let i = 0; i < 60 && !refused; i++) refused = (await call()) === 402;
    assert.ok(refused, 'refused once the lease is spent');
    await new Promise((r) => setTimeout(r, 1200)); // the first backoff (1 s) is over: the next refusal asks again
    assert.equal(await call(), 402);
    await new Promise((r) => setTimeout(r, 200)); // that ask failed too: the backoff is now 2 s

    // back online: one sync pass, then a call at once
    proxy.set({});
    await rig.engine.api.syncNow({});
    assert.equal(await call(), 200, 'admitted on a fresh lease right after the pass, not 2 s later');
  } finally {
    await rig.close();
    await proxy.close();
    await svc.stop();
  }
});
