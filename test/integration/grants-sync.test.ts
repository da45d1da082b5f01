/**
 * Credit grants across devices (issue 13 on the sync of issue 12; protocol 2 in ledger/README.md).
 * Real processes: a `tollgate-ledger serve` (SQLite and PostgreSQL), two engines with their own data
 * dirs joined to it, calls through the official OpenAI SDK against the fake upstream, grants added
 * and removed with `bin/tollgate.js credits …` as a user does. Balances on both devices must agree
 * to the nano-dollar; a removal travels as a tombstone.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { execFile } from 'node:child_process';
import OpenAI from 'openai';
import { startRig, tempDir, type Rig } from '../fixtures/engine.ts';
import { joinDevice, ledgerCli, makeCall, pushCalls, request, startLedger, type Device, type LedgerBackend, type LedgerProcess } from '../fixtures/ledger-service.ts';
import { startPostgres, type TestPostgres } from '../fixtures/pg.ts';
import { startFaultProxy, type FaultProxy } from '../fixtures/fault-proxy.ts';
import { nanoToUsd, usdToNanoExact } from '../../shared/money.ts';
import type { CreditsStatus } from '../../shared/api.ts';
import { grantOutboxCount } from '../../electron/engine/billing.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DAY = 86_400_000;

function tollgate(rig: Rig, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(ROOT, 'bin/tollgate.js'), '--data-dir', rig.dataDir, ...args], { encoding: 'utf8' }, (e, out, err) => {
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, out, err });
    });
  });
}

async function credits(rig: Rig): Promise<CreditsStatus> {
  const r = await tollgate(rig, 'credits', 'list', '--json');
  assert.equal(r.code, 0, r.err);
  return JSON.parse(r.out) as CreditsStatus;
}

/** What must agree across devices: every balance, draw and grant, without the clock-dependent fields. */
function comparable(st: CreditsStatus) {
  return st.providers.map((p) => ({
    provider: p.provider, balance: p.balance, uncovered: p.uncovered, burn7d: p.burn7d,
    grants: p.grants.map((g) => ({ id: g.id, amount: g.amount, effective: g.effective, expires: g.expires, priority: g.priority, promo: g.promo, note: g.note, createdAt: g.createdAt, state: g.state, drawn: g.drawn, remaining: g.remaining })),
  }));
}

async function makeCalls(rig: Rig, n: number, seed: number): Promise<void> {
  const client = new OpenAI({ apiKey: `sk-device-${seed}`, baseURL: `${rig.url}/openai/v1`, maxRetries: 0 });
  for (let i = 0; i < n; i++) {
    rig.fakes.openai!.next({ usage: { prompt_tokens: 1000 + seed * 100 + i, completion_tokens: 7 + i } });
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `call ${i}` }] });
  }
}

/** One full pass (a pass already under way is joined, so run it twice to be sure one started after now). */
async function syncNow(rig: Rig): Promise<void> {
  for (let i = 0; i < 2; i++) await rig.engine.api.syncNow({});
}

function callCost(rig: Rig): bigint {
  rig.engine.flushQuietly();
  return (rig.engine.ledger.db.prepare(`SELECT COALESCE(SUM(cost_nano), 0) AS c FROM calls WHERE status NOT IN ('blocked', 'pending')`).safeIntegers(true).get() as { c: bigint }).c;
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`credit grants sync between two engines on ${kind}`, () => {
    let pgdb: TestPostgres | undefined;
    let b: LedgerBackend;
    let svc: LedgerProcess;
    let A: Rig, B: Rig;
    let observer: Device;

    before(async () => {
      if (kind === 'postgres') pgdb = await startPostgres();
      b = { dataDir: tempDir('tollgate-ledger-'), databaseUrl: pgdb?.url };
      svc = await startLedger(b);
      // no background passes after the first: each sync in this test is one the test asks for
      A = await startRig(['openai'], { syncIntervalMs: 600_000 });
      B = await startRig(['openai'], { syncIntervalMs: 600_000 });
      observer = await joinDevice(b, svc.url, 'default', 'observer');
    });
    after(async () => {
      await A?.close();
      await B?.close();
      await svc?.stop();
      await pgdb?.close();
    });

    test('a grant added on A, a back-dated top-up, calls on both: balances agree to the nano; removed on B, gone on A', async () => {
      // a grant recorded before joining is pushed when the device joins (like its calls)
      const paid = await tollgate(A, 'credits', 'add', '--provider', 'openai', '--amount', '50', '--expires', '2027-11-30', '--json');
      assert.equal(paid.code, 0, paid.err);
      const paidId = (JSON.parse(paid.out) as { id: string }).id;
      for (const [rig, name] of [[A, 'laptop'], [B, 'desktop']] as const) {
        const code = JSON.parse((await ledgerCli(b, ['enroll', '--json'])).stdout).code as string;
        const j = await tollgate(rig, 'sync', 'join', svc.url, code, '--name', name);
        assert.equal(j.code, 0, j.err + j.out);
      }
      await makeCalls(A, 3, 1);
      await makeCalls(B, 4, 2);
      await syncNow(A);
      await syncNow(B);
      await syncNow(A);
      const total = callCost(A);
      assert.equal(callCost(B), total, 'both devices hold the same calls');
      assert.ok(total > 0n);
      // each call's upstream response id travels with it (protocol 2's upstreamId)
      const upstream = (r: Rig) => r.engine.ledger.db.prepare('SELECT id, upstream_id FROM calls ORDER BY id').all() as { id: string; upstream_id: string | null }[];
      assert.deepEqual(upstream(B), upstream(A));
      assert.equal(upstream(A).length, 7);
      assert.ok(upstream(A).every((x) => /^chatcmpl-/.test(x.upstream_id ?? '')), JSON.stringify(upstream(A)));

      let a = await credits(A), bb = await credits(B);
      assert.deepEqual(comparable(bb), comparable(a), 'the same grant and the same balance on both devices');
      assert.equal(a.providers[0]!.grants.length, 1);
      assert.equal(a.providers[0]!.grants[0]!.id, paidId);
      assert.equal(usdToNanoExact(a.providers[0]!.grants[0]!.drawn), total, 'the grant drew every call of both devices');
      assert.equal(usdToNanoExact(a.providers[0]!.balance), usdToNanoExact('50') - total);

      // a top-up recorded after the fact, effective yesterday and burned first: it re-derives the
      // draws of calls already made, on both devices, and runs out part-way through a call
      const yesterday = new Date(Date.now() - DAY).toISOString().slice(0, 10);
      const topAmount = nanoToUsd(total / 3n);
      const top = await tollgate(A, 'credits', 'add', '--provider', 'openai', '--amount', topAmount, '--expires', '2027-06-30', '--effective', yesterday, '--priority', '10', '--promo', '--note', 'inv-7', '--json');
      assert.equal(top.code, 0, top.err);
      const topId = (JSON.parse(top.out) as { id: string }).id;
      assert.equal((await A.engine.api.syncStatus({})).pendingGrants, 1, 'the top-up waits in the grants outbox');
      assert.match((await tollgate(A, 'sync', 'status')).out, /1 credit grant change/);
      await makeCalls(B, 2, 3);
      await syncNow(A);
      await syncNow(B);
      await syncNow(A);
      const total2 = callCost(A);
      assert.equal(callCost(B), total2);
      a = await credits(A);
      bb = await credits(B);
      assert.deepEqual(comparable(bb), comparable(a), 'after the top-up: the same draws to the nano on both devices');
      const g = new Map(a.providers[0]!.grants.map((x) => [x.id, x]));
      assert.equal(g.get(topId)!.remaining, '0', 'the top-up (priority 10) burned first and is used up');
      assert.equal(g.get(topId)!.effective, yesterday);
      assert.equal(g.get(topId)!.note, 'inv-7');
      assert.equal(usdToNanoExact(g.get(paidId)!.drawn), total2 - usdToNanoExact(topAmount), 'the rest drawn from the paid grant');

      // removed on B (a tombstone), synced: gone on A, balances derived again without it
      const rm = await tollgate(B, 'credits', 'rm', topId);
      assert.equal(rm.code, 0, rm.err);
      await syncNow(B);
      await syncNow(A);
      a = await credits(A);
      bb = await credits(B);
      assert.deepEqual(a.providers[0]!.grants.map((x) => x.id), [paidId], 'the removed grant is gone on A');
      assert.deepEqual(comparable(bb), comparable(a));
      assert.equal(usdToNanoExact(a.providers[0]!.grants[0]!.drawn), total2);
      // a tombstone, never a silent edit: the grant's row stays, its removal is recorded; the service keeps both events
      const row = A.engine.ledger.db.prepare('SELECT r.device FROM credit_grants g JOIN credit_grant_removals r ON r.id = g.id WHERE g.id = ?').get(topId) as { device: string } | undefined;
      assert.equal(row?.device, 'desktop');
      const ev = await request(svc.url, 'GET', '/v1/grants?after=0&limit=100', { token: observer.token });
      assert.equal(ev.status, 200);
      assert.deepEqual((ev.body.events as { kind: string; id: string; device_name: string }[]).map((e) => [e.kind, e.id, e.device_name]),
        [['add', paidId, 'laptop'], ['add', topId, 'laptop'], ['remove', topId, 'desktop']]);
      // nothing left to push; syncing again changes nothing
      assert.equal((await A.engine.api.syncStatus({})).pendingGrants, 0);
      assert.equal((await B.engine.api.syncStatus({})).pendingGrants, 0);
      await syncNow(A);
      await syncNow(B);
      const again = await request(svc.url, 'GET', '/v1/grants?after=0&limit=100', { token: observer.token });
      assert.equal(again.body.events.length, 3, 'a grant or removal is stored once, however often it is pushed');
      assert.deepEqual(comparable(await credits(B)), comparable(a));
    });
  });

  describe(`grants protocol (2) on the service, ${kind}`, () => {
    let pgdb: TestPostgres | undefined;
    let b: LedgerBackend;
    let svc: LedgerProcess;

    before(async () => {
      if (kind === 'postgres') pgdb = await startPostgres();
      b = { dataDir: tempDir('tollgate-ledger-'), databaseUrl: pgdb?.url };
      svc = await startLedger(b);
    });
    after(async () => {
      await svc?.stop();
      await pgdb?.close();
    });

    const grant = (over: Record<string, unknown> = {}) => ({
      id: 'cr_0123456789ab', provider: 'openai', amount: '50', effective: Date.UTC(2026, 10, 1), expires: Date.UTC(2027, 11, 1),
      priority: 50, promo: false, note: null, created_at: Date.UTC(2026, 10, 1, 12), ...over,
    });
    const pushGrants = (d: Device, events: unknown[], protocol: unknown = 2) => request(svc.url, 'POST', '/v1/grants', { token: d.token, body: { protocol, events } });
    const pullGrants = async (d: Device) => {
      const r = await request(svc.url, 'GET', '/v1/grants?after=0&limit=1000', { token: d.token });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body.events as { seq: number; kind: string; id: string; grant?: Record<string, unknown>; removed_at?: number }[];
    };

    test('idempotent by grant id, conflicts kept apart, removal a tombstone, all-or-nothing batches, account-scoped, protocol 1 still served', async () => {
      const d1 = await joinDevice(b, svc.url, 'acme', 'one');
      const d2 = await joinDevice(b, svc.url, 'acme', 'two');
      const other = await joinDevice(b, svc.url, 'someone-else', 'x');

      // protocol 1 clients keep working (calls), but protocol 1 has no grants
      assert.equal((await pushCalls(svc.url, d1.token, [makeCall()], { protocol: 1 })).status, 200);
      const old = await pushGrants(d1, [{ kind: 'add', grant: grant() }], 1);
      assert.equal(old.status, 400);
      assert.equal(old.body.error.code, 'unsupported_protocol');
      assert.equal((await request(svc.url, 'GET', '/v1/grants?protocol=1', { token: d1.token })).body.error.code, 'unsupported_protocol');
      assert.deepEqual((await request(svc.url, 'GET', '/v1/health')).body.accepted, [1, 2]);

      const first = await pushGrants(d1, [{ kind: 'add', grant: grant() }]);
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.deepEqual(first.body.results, [{ kind: 'add', id: 'cr_0123456789ab', status: 'stored', seq: 1 }]);
      // the same grant again (a retry, or the same device re-joining): duplicate; other content: conflict, original kept
      const dup = await pushGrants(d2, [{ kind: 'add', grant: grant() }, { kind: 'add', grant: grant({ amount: '500' }) }]);
      assert.deepEqual(dup.body.results.map((r: { status: string }) => r.status), ['duplicate', 'conflict']);
      assert.equal(dup.body.conflicts, 1);
      // unknown fields are kept as sent
      await pushGrants(d1, [{ kind: 'add', grant: grant({ id: 'cr_second', currency: 'USD', future_field: { x: 1 } }) }]);

      // a batch with one bad event stores nothing
      const bad = await pushGrants(d1, [{ kind: 'add', grant: grant({ id: 'cr_third' }) }, { kind: 'add', grant: grant({ id: 'cr_fourth', amount: '-5' }) }]);
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, 'invalid_grant');
      assert.equal(bad.body.error.index, 1);
      for (const [ev, msg] of [
        [{ kind: 'add', grant: grant({ expires: Date.UTC(2026, 0, 1) }) }, /expires/],
        [{ kind: 'add', grant: grant({ amount: 50 }) }, /amount/],
        [{ kind: 'add', grant: grant({ priority: 101 }) }, /priority/],
        [{ kind: 'edit', id: 'cr_0123456789ab' }, /kind/],
        [{ kind: 'remove', id: 'cr_0123456789ab' }, /removed_at/],
      ] as const) {
        const r = await pushGrants(d1, [ev]);
        assert.equal(r.status, 400);
        assert.match(r.body.error.message, msg);
      }
      assert.equal((await pushGrants(d1, {} as unknown as unknown[])).body.error.code, 'malformed');

      // removal: a tombstone event, stored once whoever sends it; the grant's own event is unchanged
      const rm = await pushGrants(d2, [{ kind: 'remove', id: 'cr_0123456789ab', removed_at: 1 }]);
      assert.equal(rm.body.results[0].status, 'stored');
      const rm2 = await pushGrants(d1, [{ kind: 'remove', id: 'cr_0123456789ab', removed_at: 2 }]);
      assert.equal(rm2.body.results[0].status, 'duplicate');
      // a removal may arrive before its grant (pushed from a device that never pushed the add)
      assert.equal((await pushGrants(d1, [{ kind: 'remove', id: 'cr_early', removed_at: 3 }])).body.results[0].status, 'stored');

      const events = await pullGrants(d2);
      assert.deepEqual(events.map((e) => [e.seq, e.kind, e.id]), [[1, 'add', 'cr_0123456789ab'], [2, 'add', 'cr_second'], [3, 'remove', 'cr_0123456789ab'], [4, 'remove', 'cr_early']]);
      assert.equal(events[0]!.grant!.amount, '50', 'the original is kept, not the conflicting version');
      assert.deepEqual(events[1]!.grant!.future_field, { x: 1 });
      assert.equal(events[2]!.removed_at, 1);
      // paging by sequence
      const page = await request(svc.url, 'GET', '/v1/grants?after=1&limit=2', { token: d1.token });
      assert.deepEqual([page.body.events.map((e: { seq: number }) => e.seq), page.body.next, page.body.has_more], [[2, 3], 3, true]);

      // another account sees none of it; the same grant id there is its own grant
      assert.deepEqual(await pullGrants(other), []);
      const mine = await pushGrants(other, [{ kind: 'add', grant: grant({ amount: '7' }) }]);
      assert.deepEqual(mine.body.results, [{ kind: 'add', id: 'cr_0123456789ab', status: 'stored', seq: 1 }]);
      assert.equal((await pullGrants(d1)).length, 4);
      // the calls' sequence is untouched by grants
      const pulled = await request(svc.url, 'GET', '/v1/pull?after=0', { token: d1.token });
      assert.deepEqual(pulled.body.calls.map((c: { seq: number }) => c.seq), [1]);
    });

    test('two service processes on one database: concurrent grant pushes get one gap-free sequence, each grant once', async () => {
      const second = await startLedger(b);
      try {
        const devices = [await joinDevice(b, svc.url, 'busy', 'p'), await joinDevice(b, second.url, 'busy', 'q')];
        const pushes = Array.from({ length: 24 }, (_, i) => request([svc.url, second.url][i % 2]!, 'POST', '/v1/grants', {
          token: devices[i % 2]!.token,
          // every grant pushed twice, by both devices through both processes
          body: { protocol: 2, events: [{ kind: 'add', grant: grant({ id: `cr_busy${i % 12}` }) }, { kind: 'add', grant: grant({ id: `cr_other${i}` }) }] },
        }));
        const replies = await Promise.all(pushes);
        for (const r of replies) assert.equal(r.status, 200, JSON.stringify(r.body));
        const events = await pullGrants(devices[0]!);
        assert.deepEqual(events.map((e) => e.seq), Array.from({ length: 36 }, (_, i) => i + 1), 'gap-free, no seq twice');
        assert.equal(new Set(events.map((e) => e.id)).size, 36, '12 shared grants once each, 24 others once each');
        const statuses = replies.flatMap((r) => r.body.results.map((x: { status: string }) => x.status));
        assert.equal(statuses.filter((x: string) => x === 'stored').length, 36);
        assert.equal(statuses.filter((x: string) => x === 'duplicate').length, 12);
      } finally {
        await second.stop();
      }
    });
  });
}

describe('credit grants through faults', () => {
  let b: LedgerBackend;
  let svc: LedgerProcess;
  let proxy: FaultProxy;
  let A: Rig, B: Rig;
  let observer: Device;

  before(async () => {
    b = { dataDir: tempDir('tollgate-ledger-') };
    svc = await startLedger(b);
    proxy = await startFaultProxy(svc.url, {}, 11);
    A = await startRig(['openai'], { syncIntervalMs: 600_000 });
    B = await startRig(['openai'], { syncIntervalMs: 600_000 });
    observer = await joinDevice(b, svc.url, 'default', 'observer');
    for (const [rig, name, url] of [[A, 'a', proxy.url], [B, 'b', svc.url]] as const) {
      const code = JSON.parse((await ledgerCli(b, ['enroll', '--json'])).stdout).code as string;
      await rig.engine.api.syncJoin({ url, code, name });
    }
  });
  after(async () => {
    await A?.close();
    await B?.close();
    await proxy?.close();
    await svc?.stop();
  });

  test('dropped requests and responses after commit: each grant and removal stored once, and every device ends up with the same grants', async () => {
    const add = async (i: number) => (await A.engine.api.addCredit({ provider: 'openai', amount: `${i + 1}`, expires: '2027-11-30', effective: null, priority: 50, promo: false, note: null })).id;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await add(i));
    assert.equal((await A.engine.api.removeCredit({ id: ids[1]! })).removed, true);
    proxy.set({ dropRequest: 0.25, dropResponse: 0.4, resetMidBody: 0.1 });
    // stored by the service (its log) vs. acknowledged to the device (its outbox emptied by a pass):
    // more stored than acknowledged means a response was lost after the commit, and the batch went again
    const stored = () => (svc.output().match(/"method":"POST","path":"\/v1\/grants","status":200/g) ?? []).length;
    let acknowledged = 0;
    for (let i = 0; i < 80 && stored() <= acknowledged; i++) {
      if (grantOutboxCount(A.engine.ledger.db) === 0) ids.push(await add(ids.length));
      await A.engine.api.syncNow({}).catch(() => {});
      if (grantOutboxCount(A.engine.ledger.db) === 0) acknowledged++;
    }
    assert.ok(stored() > acknowledged, `a grants batch was stored but its answer lost (stored ${stored()}, acknowledged ${acknowledged})`);
    proxy.set({});
    await A.engine.api.syncNow({});
    assert.equal(grantOutboxCount(A.engine.ledger.db), 0);
    const ev = await request(svc.url, 'GET', '/v1/grants?after=0&limit=1000', { token: observer.token });
    assert.deepEqual((ev.body.events as { kind: string; id: string }[]).map((e) => `${e.kind}:${e.id}`).sort(),
      [...ids.map((id) => `add:${id}`), `remove:${ids[1]}`].sort(), 'every grant and removal exactly once');
    await B.engine.api.syncNow({});
    assert.deepEqual(comparable(await B.engine.api.credits({})), comparable(await A.engine.api.credits({})));
    assert.equal((await B.engine.api.credits({})).providers[0]!.grants.length, ids.length - 1);
  });
});
