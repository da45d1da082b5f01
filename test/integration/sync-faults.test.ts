/**
 * Sync under the faults sync.test.ts does not inject (issue 12, "Done when" bullets 2 and 3):
 * push batches delivered twice (the copy on its own connection, even to another service process
 * on the same PostgreSQL) and two batches in flight reaching the service in swapped order, with a
 * 50 ms–5 s latency spread; and a hard cap across devices, three engines × 200 parallel calls
 * through fault proxies, on SQLite and on two service processes sharing one PostgreSQL.
 * Real engines and a real `tollgate-ledger serve`; calls through the official OpenAI SDK against
 * the fake upstream.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { eventually, tempDir, type Rig } from '../fixtures/engine.ts';
import { joinDevice, request, startLedger, type Device, type LedgerBackend, type LedgerProcess } from '../fixtures/ledger-service.ts';
import { startPostgres, type TestPostgres } from '../fixtures/pg.ts';
import type { FaultProxy } from '../fixtures/fault-proxy.ts';
import { assertConverged, joinThroughFaults, makeCalls, syntheticRows } from '../fixtures/sync-check.ts';
import { usdToNanoExact } from '../../shared/money.ts';

const label = (kind: 'sqlite' | 'postgres') => (kind === 'sqlite' ? 'SQLite' : 'two service processes on one PostgreSQL');

for (const kind of ['sqlite', 'postgres'] as const) describe(`sync: duplicated and reordered batches, a 50 ms–5 s latency spread (${label(kind)})`, () => {
  let pgdb: TestPostgres | undefined;
  let b: LedgerBackend;
  let svc: LedgerProcess;
  let svc2: LedgerProcess | undefined;
  const proxies: FaultProxy[] = [];
  const rigs: Rig[] = [];
  const names = ['a', 'b', 'c'];
  let observer: Device;

  before(async () => {
    if (kind === 'postgres') pgdb = await startPostgres();
    b = { dataDir: tempDir('tollgate-ledger-'), databaseUrl: pgdb?.url };
    svc = await startLedger(b);
    if (kind === 'postgres') svc2 = await startLedger(b);
    observer = await joinDevice(b, svc.url, 'default', 'observer');
    // on PostgreSQL the third device talks to the second process
    await joinThroughFaults(b, svc2 ? [svc.url, svc.url, svc2.url] : [svc.url], names, 101, 50, { rigs, proxies });
  });
  after(async () => {
    for (const r of rigs) await r.close();
    for (const p of proxies) await p.close();
    await svc?.stop();
    await svc2?.stop();
    await pgdb?.close();
  });

  test('every push may arrive twice and out of order: after healing every call exactly once everywhere, totals to the nano', async (t) => {
    // pushes are delivered twice (the copy up to 0.5 s later; on PostgreSQL to the OTHER service
    // process) and held back until a later batch is answered; device c sees 50 ms–5 s per request
    proxies.forEach((p, i) => p.set({
      duplicate: 0.6, reorder: 0.6, holdMs: 2000, duplicateTo: svc2 && i !== 2 ? svc2.url : undefined,
      ...(i === 2 ? { requestDelayMs: [50, 5000] as [number, number] } : {}),
    }));
    await Promise.all(rigs.map((r, i) => makeCalls(r, 15, i + 1)));
    // a backlog on device a (booked offline): the pusher has 4 batches of 1,000 in flight at once;
    // booked again (at most 4 times) until the proxy has swapped two of them
    const backlog: ReturnType<typeof syntheticRows> = [];
    for (let round = 0; round < 4 && proxies[0]!.stats.reordered === 0; round++) {
      const rows = syntheticRows(2500, Date.now() - 3_600_000, 3_600_000, 9 + round);
      for (const r of rows) rigs[0]!.engine.ledger.recordEnd(r);
      rigs[0]!.engine.ledger.flush();
      backlog.push(...rows);
      await eventually(async () => (await rigs[0]!.engine.api.syncStatus({})).pending === 0, 'the backlog pushed', 60_000);
    }
    const sum = (k: 'duplicated' | 'reordered') => proxies.reduce((a, p) => a + p.stats[k], 0);
    await eventually(() => sum('duplicated') >= 3 && proxies[0]!.stats.reordered >= 1, 'batches duplicated and reordered', 60_000);
    // c's calls made it through the 50 ms–5 s spread before anything heals
    const cCalls = async () => {
      const d = (await request(svc.url, 'GET', '/v1/devices', { token: observer.token })).body.devices.find((x: { name: string }) => x.name === 'c');
      const tot = (await request(svc.url, 'GET', '/v1/totals', { token: observer.token })).body.devices.find((x: { device: string }) => x.device === d?.id);
      return tot?.calls ?? 0;
    };
    await eventually(async () => (await cCalls()) === 15, 'c\'s calls through the latency spread', 60_000);
    t.diagnostic(`duplicated ${sum('duplicated')}, reordered ${sum('reordered')}, held until timeout ${proxies.reduce((a, p) => a + p.stats.holdTimeouts, 0)}`);
    for (const p of proxies) p.set({});
    const s = await assertConverged(rigs, names, svc.url, observer, backlog.length + 45, 90_000);
    // every copy was answered as a success (the service found it a duplicate), never an error
    for (const p of proxies) for (const a of p.stats.duplicateAnswers) assert.match(a, /^HTTP\/1\.1 200 /, 'a duplicated batch is answered 200 (duplicate), not an error');
    // the swap reached the service: a's calls, in the service's sequence, are not in id (= booking) order
    const aId = (await request(svc.url, 'GET', '/v1/devices', { token: observer.token })).body.devices.find((d: { name: string }) => d.name === 'a').id;
    const order = s.pulled.filter((p) => p.device === aId).map((p) => p.call.id as string);
    assert.notDeepEqual(order, [...order].sort(), 'a later batch was stored before an earlier one');
    const backlogCost = backlog.reduce((x, r) => x + r.costNano, 0n);
    const ids = new Set(order);
    assert.ok(backlog.every((r) => ids.has(r.id)), 'the whole backlog is on the service');
    assert.ok(s.byDevice.get('a')!.cost > backlogCost);
  });
});

for (const kind of ['sqlite', 'postgres'] as const) describe(`caps across devices with faults: leases from the service (${label(kind)})`, () => {
  let pgdb: TestPostgres | undefined;
  let svc2: LedgerProcess | undefined;
  let b: LedgerBackend;
  let svc: LedgerProcess;
  const proxies: FaultProxy[] = [];
  const rigs: Rig[] = [];
  const names = ['dev0', 'dev1', 'dev2'];
  let observer: Device;

  before(async () => {
    if (kind === 'postgres') pgdb = await startPostgres();
    b = { dataDir: tempDir('tollgate-ledger-'), databaseUrl: pgdb?.url };
    svc = await startLedger(b);
    // on PostgreSQL a second service process shares the database: the third device talks to it
    if (kind === 'postgres') svc2 = await startLedger(b);
    observer = await joinDevice(b, svc.url, 'default', 'observer');
    // each call costs 10 × $0.15/M + 500 × $0.60/M = $0.0003015; it reserves its quote for max_tokens 1000
    await joinThroughFaults(b, svc2 ? [svc.url, svc.url, svc2.url] : [svc.url], names, 201, 100, { rigs, proxies },
      (r) => r.fakes.openai!.setDefault({ usage: { prompt_tokens: 10, completion_tokens: 500 } }));
  });
  after(async () => {
    for (const r of rigs) await r.close();
    for (const p of proxies) await p.close();
    await svc?.stop();
    await svc2?.stop();
    await pgdb?.close();
  });

  test('three engines × 200 parallel calls against one --all-devices cap, faults on: total spend never exceeds the limit, to the nano; every call once', async (t) => {
    const limit = '0.05';
    const cap = await rigs[0]!.engine.api.setCap({ scope: 'global', period: 'month', limit, hard: true, allDevices: true });
    assert.equal(cap.allDevices, true);
    // the other devices mirror the cap from the service
    await eventually(async () => {
      for (const r of rigs) if (!(await r.engine.api.caps({})).some((s) => s.cap.id === cap.id && s.cap.allDevices)) return false;
      return true;
    }, 'the cap on every device', 15_000);
    // faults on every request between the engines and the service: grants, returns and pushes are
    // dropped, answered into the void, cut mid-body, delivered twice (on PostgreSQL the copy goes to
    // the other process) and reordered
    proxies.forEach((p, i) => p.set({
      dropRequest: 0.1, dropResponse: 0.1, resetMidBody: 0.05, latencyMs: [0, 30],
      duplicate: 0.4, reorder: 0.3, holdMs: 500, match: /^POST \/v1\//, duplicateTo: svc2 ? (i === 2 ? svc.url : svc2.url) : undefined,
    }));
    const fire = (r: Rig, n = 200) => {
      const client = new OpenAI({ apiKey: 'sk-lease', baseURL: `${r.url}/openai/v1`, maxRetries: 0 });
      return Promise.allSettled(Array.from({ length: n }, () => client.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 1000, messages: [{ role: 'user', content: 'hi' }] })));
    };
    const f = (k: 'droppedRequests' | 'droppedResponses' | 'resets' | 'duplicated' | 'reordered') => proxies.reduce((a, p) => a + p.stats[k], 0);
    // two rounds: the second spends against what the service makes of the first round's pushes,
    // grants and returns, all of them through the faults (each kind has struck in between)
    const results = (await Promise.all(rigs.map((r) => fire(r)))).flat();
    await eventually(async () => {
      if (f('duplicated') >= 2 && f('droppedResponses') >= 1 && f('droppedRequests') + f('resets') >= 1) return true;
      // once the first round is pushed, requests would stop: one more call on each device keeps
      // pushes (and grants) going through the faults until each kind has struck (counted like the rest)
      results.push(...(await Promise.all(rigs.map((r) => fire(r, 1)))).flat());
      return false;
    }, 'duplicated, dropped and cut requests', 60_000);
    results.push(...(await Promise.all(rigs.map((r) => fire(r)))).flat());
    const ok = results.filter((x) => x.status === 'fulfilled').length;
    const blocked = results.filter((x) => x.status === 'rejected' && (x.reason as { status?: number }).status === 402);
    t.diagnostic(`${ok} calls ran, ${blocked.length} were blocked; faults: ${f('droppedRequests')} requests dropped, ${f('droppedResponses')} answers dropped, ${f('resets')} resets, ${f('duplicated')} duplicated, ${f('reordered')} reordered`);
    assert.equal(ok + blocked.length, results.length, 'every call either ran or was blocked with 402');
    assert.ok(ok > 20, 'calls ran while the leases had room');
    assert.ok(blocked.length > 0, 'calls were blocked at the limit');
    assert.match(String((blocked[0] as PromiseRejectedResult).reason.message), new RegExp(cap.id));
    // healed: every call (blocked ones too, recorded at $0) reaches the service and every device once
    for (const p of proxies) p.set({});
    const s = await assertConverged(rigs, names, svc.url, observer, results.length, 90_000);
    assert.ok(s.cost <= usdToNanoExact(limit), `spent ${s.cost} nano ≤ limit ${usdToNanoExact(limit)}`);
    assert.equal(s.cost, 301_500n * BigInt(ok), 'the service counted exactly the calls that ran');
    const caps = await request(svc.url, 'GET', '/v1/caps', { token: observer.token });
    const sc = (caps.body.caps as { id: string; spent: string }[]).find((c) => c.id === cap.id)!;
    assert.equal(usdToNanoExact(sc.spent), s.cost);
    // no allowance is stranded: what the service counts as held is exactly what the devices' leases
    // still hold (a lease granted into a lost or duplicated answer is found and given back)
    const held = async () => {
      const c = (await request(svc.url, 'GET', '/v1/caps', { token: observer.token })).body.caps.find((x: { id: string }) => x.id === cap.id) as { held: string };
      const known = rigs.reduce((a, r) => a + r.engine.sync.leases.list().reduce((x, l) => x + l.amount - l.used, 0n), 0n);
      return { service: usdToNanoExact(c.held), devices: known };
    };
    await eventually(async () => {
      await Promise.all(rigs.map((r) => r.engine.sync.syncNow().catch(() => {})));
      const h = await held();
      return h.service === h.devices;
    }, 'the service holds only what the devices hold', 15_000).catch(async (e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(await held(), (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
    });
    // the 50 % alert fired once on the service, and every device shows it once
    if (s.cost * 2n >= usdToNanoExact(limit)) await eventually(async () => {
      for (const r of rigs) if (!(await r.engine.api.alerts({})).some((a) => a.capId === cap.id && a.threshold === 50)) return false;
      return true;
    }, 'the 50 % alert on every device', 15_000);
    for (const r of rigs) assert.ok((await r.engine.api.alerts({})).filter((a) => a.capId === cap.id && a.threshold === 50).length <= 1);
  });
});
