/**
 * Sync across devices (issue 12, the client): real engines with their own data dirs, a real
 * `tollgate-ledger serve` (SQLite and PostgreSQL), calls through the official OpenAI SDK against
 * the fake upstream. Every call must end up exactly once on every device and on the service, with
 * per-device and account totals equal to the nano-dollar, also through a fault proxy and after a
 * partition heals.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { execFile as execFileCb, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { startRig, eventually, type Rig } from '../fixtures/engine.ts';
import { joinDevice, ledgerCli, request, startLedger, type Device, type LedgerBackend, type LedgerProcess } from '../fixtures/ledger-service.ts';
import { startPostgres, type TestPostgres } from '../fixtures/pg.ts';
import { startFaultProxy, type FaultProxy } from '../fixtures/fault-proxy.ts';
import { tempDir } from '../fixtures/engine.ts';
import { checkServiceUrl } from '../../electron/engine/sync.ts';
import { Ledger } from '../../electron/engine/ledger.ts';
import { usdToNanoExact } from '../../shared/money.ts';
import { assertConverged, capAcrossDevices, enrolCode, joinThroughFaults, local, makeCalls, service, syntheticRows } from '../fixtures/sync-check.ts';

const execFileP = promisify(execFileCb);

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`sync: three engines and one service on ${kind}`, () => {
    let pgdb: TestPostgres | undefined;
    let b: LedgerBackend;
    let svc: LedgerProcess;
    const rigs: Rig[] = [];
    const names = ['laptop', 'desktop', 'ci'];
    let observer: Device;

    before(async () => {
      if (kind === 'postgres') pgdb = await startPostgres();
      b = { dataDir: tempDir('tollgate-ledger-'), databaseUrl: pgdb?.url };
      svc = await startLedger(b);
      for (let i = 0; i < 3; i++) rigs.push(await startRig(['openai'], { syncIntervalMs: 100 }));
      observer = await joinDevice(b, svc.url, 'default', 'observer');
    });
    after(async () => {
      for (const r of rigs) await r.close();
      await svc?.stop();
      await pgdb?.close();
    });

    test('every call exactly once on every device and on the service; totals equal to the nano', async () => {
      // calls made before joining are pushed too (this device's history joins the account)
      await makeCalls(rigs[0]!, 3, 0);
      for (let i = 0; i < 3; i++) {
        const st = await rigs[i]!.engine.api.syncJoin({ url: svc.url, code: await enrolCode(b), name: names[i] });
        assert.equal(st.joined, true);
        assert.equal(st.device?.name, names[i]);
      }
      await Promise.all(rigs.map((r, i) => makeCalls(r, 12, i + 1)));
      await assertConverged(rigs, names, svc.url, observer, 3 + 36);
      // pulled calls carry their device; this device's own calls have none
      const calls = await rigs[1]!.engine.api.calls({ limit: 1000 });
      assert.equal(calls.filter((c) => c.device === null).length, 12);
      assert.equal(calls.filter((c) => c.device === 'laptop').length, 15);
      // the token is in the secret store, never in clear in the ledger
      const blob = rigs[0]!.engine.ledger.syncState('token')!;
      assert.ok(blob && !blob.includes('tgl_'));
      const dump = rigs[0]!.engine.ledger.db.prepare('SELECT group_concat(value) AS v FROM sync_state').get() as { v: string };
      assert.ok(!dump.v.includes('tgl_'), 'no token in clear in sync_state');
      const st = await rigs[0]!.engine.api.syncStatus({ refresh: true });
      assert.deepEqual(st.devices.map((d) => d.name).sort(), ['ci', 'desktop', 'laptop', 'observer']);
      assert.equal(st.devices.find((d) => d.self)?.name, 'laptop');
      assert.deepEqual(st.silentDevices, []);
    });
  });
}

describe('sync through faults', () => {
  let b: LedgerBackend;
  let svc: LedgerProcess;
  const proxies: FaultProxy[] = [];
  const rigs: Rig[] = [];
  const names = ['a', 'b', 'c'];
  let observer: Device;

  before(async () => {
    b = { dataDir: tempDir('tollgate-ledger-') };
    svc = await startLedger(b);
    observer = await joinDevice(b, svc.url, 'default', 'observer');
    await joinThroughFaults(b, [svc.url], names, 7, 50, { rigs, proxies });
  });
  after(async () => {
    for (const r of rigs) await r.close();
    for (const p of proxies) await p.close();
    await svc?.stop();
  });

  test('dropped requests and responses, resets mid-body, latency, one device partitioned: after healing nothing lost, nothing counted twice', async () => {
    for (const p of proxies.slice(0, 2)) p.set({ dropRequest: 0.2, dropResponse: 0.25, resetMidBody: 0.1, latencyMs: [0, 60] });
    proxies[2]!.set({ partition: true });
    await Promise.all(rigs.map((r, i) => makeCalls(r, 25, i + 1)));
    // the partitioned device booked its calls locally and holds them in its outbox
    const st = await rigs[2]!.engine.api.syncStatus({});
    assert.equal(st.pending, 25);
    await assert.rejects(rigs[2]!.engine.api.syncNow({}), /cannot reach|cut|socket|ECONN/i);
    // a response dropped after the service committed: the batch is retried and found duplicate
    await eventually(() => proxies[0]!.stats.droppedResponses + proxies[1]!.stats.droppedResponses > 0 && proxies[0]!.stats.droppedRequests + proxies[1]!.stats.droppedRequests > 0, 'a dropped response and a dropped request', 30_000);
    for (const p of proxies) p.set({});
    await assertConverged(rigs, names, svc.url, observer, 75);
    assert.ok(proxies[0]!.stats.droppedRequests + proxies[1]!.stats.droppedRequests > 0, 'requests were dropped');
  });
});

test('a plain http:// service that is not loopback is refused unless --insecure', () => {
  assert.throws(() => checkServiceUrl('http://10.0.0.5:7412', false), /--insecure/);
  assert.equal(checkServiceUrl('http://10.0.0.5:7412', true), 'http://10.0.0.5:7412');
  assert.equal(checkServiceUrl('https://ledger.example.com/', false), 'https://ledger.example.com');
  assert.equal(checkServiceUrl('http://127.0.0.1:7412', false), 'http://127.0.0.1:7412');
  assert.equal(checkServiceUrl('http://localhost:7412', false), 'http://localhost:7412');
});

describe('sync from the CLI (bin/tollgate.js), with and without a running engine', () => {
  let b: LedgerBackend;
  let svc: LedgerProcess;
  let rig: Rig;
  const ROOT = path.resolve(import.meta.dirname, '../..');
  const cli = async (dataDir: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    try {
      const r = await execFileP(process.execPath, [path.join(ROOT, 'bin/tollgate.js'), '--data-dir', dataDir, ...args], { encoding: 'utf8' });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (e) {
      const x = e as { code?: number; stdout?: string; stderr?: string };
      return { code: x.code ?? 1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
    }
  };

  before(async () => {
    b = { dataDir: tempDir('tollgate-ledger-') };
    svc = await startLedger(b);
    rig = await startRig(['openai'], { syncIntervalMs: 100 });
  });
  after(async () => {
    await rig?.close();
    await svc?.stop();
  });

  test('join, status --json, now, report --by device, leave', async () => {
    // the running engine joins through its control API and syncs in the background
    let r = await cli(rig.dataDir, ['sync', 'join', svc.url, await enrolCode(b), '--name', 'server', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).device.name, 'server');
    await makeCalls(rig, 5, 3);
    await eventually(async () => (await rig.engine.api.syncStatus({})).pending === 0 && (await rig.engine.api.syncStatus({})).lastPushAt !== null, 'pushed', 10_000);

    // a second device with no engine running: the CLI opens its ledger and syncs itself
    const offline = tempDir();
    r = await cli(offline, ['sync', 'status', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).joined, false);
    r = await cli(offline, ['sync', 'join', 'http://10.255.0.1:7412', 'ABCD-EFGH', '--name', 'x']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--insecure/);
    r = await cli(offline, ['sync', 'join', svc.url, 'WRONG-CODE-0000', '--name', 'x']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /invalid_code/);
    r = await cli(offline, ['sync', 'join', svc.url, await enrolCode(b), '--name', 'laptop']);
    assert.equal(r.code, 0, r.stderr);
    r = await cli(offline, ['sync', 'now', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { pushed: 0, pulled: 5, pending: 0 });
    r = await cli(offline, ['sync', 'status', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const st = JSON.parse(r.stdout);
    assert.equal(st.joined, true);
    assert.equal(st.pending, 0);
    assert.ok(st.lastPullAt > 0);
    assert.deepEqual(st.devices.map((d: { name: string }) => d.name).sort(), ['laptop', 'server']);
    assert.ok(!r.stdout.includes('tgl_'), 'the token is never shown');
    r = await cli(offline, ['report', '--by', 'device', '--period', 'total', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const rep = JSON.parse(r.stdout);
    assert.deepEqual(rep.groups.map((g: { key: string; calls: number }) => [g.key, g.calls]), [['server', 5]]);
    const serverTotal = local(rig, 'server').cost;
    assert.equal(rep.total, (await rig.engine.api.report({ by: 'device', period: 'all' })).total);
    assert.ok(serverTotal > 0n);
    r = await cli(offline, ['export', '--format', 'csv']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[0]!.split(',').at(-1), 'device');
    assert.equal(lines.slice(1).filter((l) => l.endsWith(',server')).length, 5);
    // the running engine's status through the CLI lists both devices
    r = await cli(rig.dataDir, ['sync', 'status']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /server \(this\)/);
    assert.match(r.stdout, /laptop/);
    r = await cli(offline, ['sync', 'leave']);
    assert.equal(r.code, 0, r.stderr);
    r = await cli(offline, ['sync', 'status', '--json']);
    assert.equal(JSON.parse(r.stdout).joined, false);
  });
});

const serveLogs: string[] = [];
function spawnServe(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [path.resolve(import.meta.dirname, '../../bin/tollgate.js'), '--data-dir', dataDir, 'serve', '--port', '0', '--no-ui'], {
    env: { ...process.env, TOLLGATE_SYNC_INTERVAL_MS: '50' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const log = serveLogs.push('') - 1;
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`serve did not start:\n${out}`)), 20_000);
    const on = (d: Buffer) => {
      out += d.toString();
      serveLogs[log] = out;
      const m = /metering on (http:\/\/\S+)/.exec(out);
      if (m) { clearTimeout(t); resolve({ child, url: m[1]! }); }
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.once('exit', (c) => { clearTimeout(t); reject(new Error(`serve exited ${c}:\n${out}`)); });
  });
}

const killed = (child: ChildProcess) => new Promise<void>((resolve) => {
  if (child.exitCode !== null || child.signalCode !== null) return resolve();
  child.once('exit', () => resolve());
  child.kill('SIGKILL');
});

describe('sync: a week offline, then the engine and the service killed with -9 mid-push', () => {
  let b: LedgerBackend;
  let svc: LedgerProcess;
  let proxy: FaultProxy;
  let observer: Device;
  let serve: { child: ChildProcess; url: string } | null = null;

  before(async () => {
    b = { dataDir: tempDir('tollgate-ledger-') };
    svc = await startLedger(b);
    proxy = await startFaultProxy(svc.url, {}, 3);
    observer = await joinDevice(b, svc.url, 'default', 'observer');
  });
  after(async () => {
    if (serve) await killed(serve.child);
    await proxy?.close();
    await svc?.stop();
  });

  test('the backlog is pushed in order after healing; nothing lost, nothing counted twice', async (t) => {
    const dir = tempDir();
    const N = 10_000;
    // a week of calls made while this device could not reach the service
    const L = new Ledger(dir, { writerThread: false });
    const rows = syntheticRows(N, Date.now() - 7 * 86_400_000, 7 * 86_400_000, 5);
    for (const r of rows) L.recordEnd(r);
    L.close();
    const expectedCost = rows.reduce((a, r) => a + r.costNano, 0n);
    const cli = (args: string[]) => execFileP(process.execPath, [path.resolve(import.meta.dirname, '../../bin/tollgate.js'), '--data-dir', dir, ...args], { encoding: 'utf8' });
    await cli(['sync', 'join', proxy.url, await enrolCode(b), '--name', 'week']);
    proxy.set({ latencyMs: [150, 300] }); // slow enough to be cut mid-push

    // 1. the engine is killed -9 while pushing
    serve = await spawnServe(dir);
    const seen = async () => (await service(svc.url, observer)).calls;
    await eventually(async () => (await seen()) > 0, 'a first batch stored', 30_000);
    await killed(serve.child);
    const afterEngineKill = await seen();
    t.diagnostic(`engine killed with ${afterEngineKill} of ${N} calls on the service`);

    // 2. restarted, it pushes again (batches the service has are duplicates); the service is killed -9 mid-batch
    serve = await spawnServe(dir);
    await eventually(async () => (await seen()) > afterEngineKill, 'more batches stored', 30_000).catch(async (e: Error) => {
      throw new Error(`${e.message} (${await seen()} stored); engine log:\n${serveLogs.join('\n---\n').slice(-3000)}`);
    });
    await killed(svc.child);
    t.diagnostic(`service killed with ${await request(svc.url, 'GET', '/v1/health').then(() => 'it still answering', () => 'it down')}`);
    svc = await startLedger(b);
    proxy.retarget(svc.url);
    proxy.set({});

    // 3. healed: everything arrives once
    await eventually(async () => (await seen()) === N, `${N} calls on the service`, 60_000);
    await eventually(async () => JSON.parse((await cli(['sync', 'status', '--json'])).stdout).pending === 0, 'the outbox is empty', 30_000);
    const s = await service(svc.url, observer);
    assert.equal(s.calls, N);
    assert.equal(new Set(s.ids).size, N);
    assert.deepEqual(s.ids, rows.map((r) => r.id).sort());
    assert.equal(s.cost, expectedCost, 'to the nano');
    assert.deepEqual(s.byDevice.get('week'), { calls: N, cost: expectedCost });
    // what the engine logged while the service went away and came back: said, and never the token
    const logs = serveLogs.join('\n');
    assert.match(logs, /sync: /);
    assert.doesNotMatch(logs, /tgl_/, 'the device token never appears in the log');
    assert.doesNotMatch(svc.output(), /tgl_/);
  });
});

// three engines × 200 parallel calls against one --all-devices cap, with faults: sync-faults.test.ts

describe('caps across devices offline: only what unexpired leases hold', () => {
  let b: LedgerBackend;
  let svc: LedgerProcess;
  let proxy: FaultProxy;
  let rig: Rig;

  before(async () => {
    b = { dataDir: tempDir('tollgate-ledger-') };
    svc = await startLedger(b);
    proxy = await startFaultProxy(svc.url, {}, 11);
    process.env.TOLLGATE_LEASE_TTL_MS = '2000';
    try {
      rig = await startRig(['openai'], { syncIntervalMs: 100 });
    } finally {
      delete process.env.TOLLGATE_LEASE_TTL_MS;
    }
    await rig.engine.api.syncJoin({ url: proxy.url, code: await enrolCode(b), name: 'roaming' });
    rig.fakes.openai!.setDefault({ usage: { prompt_tokens: 10, completion_tokens: 500 } });
  });
  after(async () => {
    await rig?.close();
    await proxy?.close();
    await svc?.stop();
  });

  test('partitioned, a device spends what its leases hold, then gets 402 naming the cap; an expired lease holds nothing; healed, calls flow again', async () => {
    const { capId, call } = await capAcrossDevices(rig, '0.05');
    assert.equal(await call(), 200, 'a lease is granted before the first call');
    const st = await rig.engine.api.syncStatus({});
    assert.ok(st.leases.some((l) => l.cap === capId && usdToNanoExact(l.amount) > 0n && l.expiresInMs > 0), 'sync status shows the lease');
    const leased = () => rig.engine.sync.leases.remaining(capId); // what unexpired leases still hold

    // offline: spend what the leases hold, then 402
    proxy.set({ partition: true });
    const held = leased();
    assert.ok(held > 0n);
    let ran = 0;
    for (let i = 0; i < 40; i++) {
      if ((await call()) === 402) break;
      ran++;
    }
    assert.ok(ran * 301_500 <= Number(held), `spent ${ran} × $0.0003015 offline, within the $${Number(held) / 1e9} leased`);
    assert.equal(await call(), 402);

    // healed: new leases, calls flow
    proxy.set({});
    await eventually(async () => (await call()) === 200, 'a call admitted after healing', 15_000);
    // partitioned again and the leases expire (2 s here): nothing is left to spend, whatever they held
    proxy.set({ partition: true });
    assert.ok(leased() > 0n);
    await new Promise((r) => setTimeout(r, 2100));
    assert.equal(leased(), 0n);
    assert.equal(await call(), 402);
    proxy.set({});
    // leaving the account drops the caps kept on its service: nothing would grant them any more
    await rig.engine.api.syncLeave({});
    assert.ok(!(await rig.engine.api.caps({})).some((x) => x.cap.allDevices));
    assert.equal(await call(), 200);
  });
});
