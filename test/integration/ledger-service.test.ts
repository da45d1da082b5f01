/**
 * The remote ledger service (issue 12), started as a user starts it, on SQLite and on PostgreSQL:
 * enrolment, push idempotency and conflicts, all-or-nothing batches, pull paging, two service
 * processes on one database, account isolation, revocation, and refused input.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import pg from 'pg';
import { execFileSync } from 'node:child_process';
import { Agent, fetch as undiciFetch } from 'undici';
import Database from 'better-sqlite3';
import { PG_MIGRATIONS, SQLITE_MIGRATIONS } from '../../ledger/migrations.ts';
import { uuidv7 } from 'uuidv7';
import { eventually, tempDir } from '../fixtures/engine.ts';
import { usdToNanoExact } from '../../shared/money.ts';
import { startPostgres, type TestPostgres } from '../fixtures/pg.ts';
import {
  joinDevice, ledgerCli, makeCall, pullAll, pushCalls, request, startLedger,
  type Device, type LedgerBackend, type LedgerProcess,
} from '../fixtures/ledger-service.ts';

const sum = (xs: bigint[]) => xs.reduce((a, b) => a + b, 0n);

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`ledger service on ${kind}`, () => {
    let pgdb: TestPostgres | undefined;
    let b: LedgerBackend;
    let svc: LedgerProcess;
    const tokens: string[] = [];
    const join = async (account = 'default', name?: string): Promise<Device> => {
      const d = await joinDevice(b, svc.url, account, name);
      tokens.push(d.token);
      return d;
    };

    before(async () => {
      if (kind === 'postgres') pgdb = await startPostgres();
      b = { dataDir: tempDir('tollgate-ledger-'), databaseUrl: pgdb?.url };
      svc = await startLedger(b);
    });
    after(async () => {
      await svc?.stop();
      await pgdb?.close();
    });

    test('push stores once; a re-push of the same content is a duplicate; pull returns it with its device', async () => {
      const d = await join('default', 'laptop');
      const calls = [makeCall(), makeCall({ cost: '0.000000001' }), makeCall({ futureField: { nested: [1, 'two'] } })];
      const first = await pushCalls(svc.url, d.token, calls);
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.equal(first.body.stored, 3);
      assert.deepEqual(first.body.results.map((r: any) => r.status), ['stored', 'stored', 'stored']);
      const again = await pushCalls(svc.url, d.token, calls, { gzip: true });
      assert.equal(again.status, 200);
      assert.deepEqual(again.body.results.map((r: any) => r.status), ['duplicate', 'duplicate', 'duplicate']);
      assert.deepEqual(again.body.results.map((r: any) => r.seq), first.body.results.map((r: any) => r.seq));
      const pulled = await pullAll(svc.url, d.token);
      assert.deepEqual(pulled.map((p) => p.call.id), calls.map((c) => c.id));
      assert.ok(pulled.every((p) => p.device === d.id));
      assert.deepEqual(pulled[2]!.call.futureField, { nested: [1, 'two'] }, 'unknown fields are kept');
      assert.deepEqual(pulled[0]!.call, JSON.parse(JSON.stringify(calls[0])));
      const totals = await request(svc.url, 'GET', '/v1/totals', { token: d.token });
      assert.equal(totals.body.calls, 3);
      assert.equal(totals.body.cost_nano, (180000n * 2n + 1n).toString(), 'money is exact to the nano');
    });

    test('other content under a known id is a conflict: reported, never merged', async () => {
      const d = await join('conflicts');
      const call = makeCall();
      assert.equal((await pushCalls(svc.url, d.token, [call])).body.stored, 1);
      const fresh = makeCall();
      const r = await pushCalls(svc.url, d.token, [{ ...call, cost: '9.99' }, fresh]);
      assert.equal(r.status, 200);
      assert.deepEqual(r.body.results.map((x: any) => x.status), ['conflict', 'stored']);
      assert.equal(r.body.conflicts, 1);
      const pulled = await pullAll(svc.url, d.token);
      assert.equal(pulled.length, 2);
      assert.equal(pulled[0]!.call.cost, '0.00018', 'the original is kept');
      await eventually(() => /conflicting content/.test(svc.output()), 'the conflict warning in the log');
    });

    test('a batch is all in or all out', async () => {
      const d = await join('atomic');
      const good = Array.from({ length: 250 }, () => makeCall());
      const bad = await pushCalls(svc.url, d.token, [...good, { ...makeCall(), cost: 'free' }]);
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, 'invalid_call');
      assert.equal(bad.body.error.index, 250);
      // a correction of a call the account does not have fails inside the transaction, after 200 rows were written
      const orphan = makeCall({ corrects: uuidv7(), cost: '-0.0001' });
      const rolled = await pushCalls(svc.url, d.token, [...good, orphan]);
      assert.equal(rolled.status, 400);
      assert.equal(rolled.body.error.code, 'unknown_original');
      assert.deepEqual(await pullAll(svc.url, d.token), [], 'nothing of either batch was stored');
      const ok = await pushCalls(svc.url, d.token, [...good, makeCall({ corrects: good[0]!.id, cost: '-0.00008' })]);
      assert.equal(ok.body.stored, 251);
      const totals = await request(svc.url, 'GET', '/v1/totals', { token: d.token });
      assert.equal(totals.body.cost_nano, (180000n * 250n - 80000n).toString());
      const pulled = await pullAll(svc.url, d.token);
      assert.deepEqual(pulled.map((p) => p.seq), Array.from({ length: 251 }, (_, i) => i + 1), 'sequence numbers have no gaps from the failed batches');
      assert.equal(pulled[250]!.call.corrects, good[0]!.id, 'a correction is a new record that names the original');
    });

    test('pull pages by server sequence with next and has_more, whatever the clients\' clocks', async () => {
      const d = await join('paging');
      const skewed = Array.from({ length: 25 }, (_, i) => makeCall({ ts: i % 2 ? Date.now() + 365 * 86400_000 : 1000 + i }));
      assert.equal((await pushCalls(svc.url, d.token, skewed)).body.stored, 25);
      const seen: number[] = [];
      let after = 0;
      const pages: boolean[] = [];
      for (;;) {
        const r = await request(svc.url, 'GET', `/v1/pull?after=${after}&limit=10`, { token: d.token });
        assert.equal(r.status, 200);
        seen.push(...r.body.calls.map((c: any) => c.seq));
        pages.push(r.body.has_more);
        after = r.body.next;
        if (!r.body.has_more) break;
      }
      assert.deepEqual(pages, [true, true, false]);
      assert.deepEqual(seen, Array.from({ length: 25 }, (_, i) => i + 1));
      const empty = await request(svc.url, 'GET', `/v1/pull?after=${after}&limit=10`, { token: d.token });
      assert.deepEqual([empty.body.calls.length, empty.body.next, empty.body.has_more], [0, 25, false]);
      const bad = await request(svc.url, 'GET', '/v1/pull?after=-1', { token: d.token });
      assert.equal(bad.status, 400);
    });

    test('another account\'s token reads and writes nothing of this account', async () => {
      const a = await join('alice');
      const a2 = await join('alice');
      const m = await join('mallory');
      const call = makeCall();
      await pushCalls(svc.url, a.token, [call]);
      assert.deepEqual(await pullAll(svc.url, m.token), []);
      // the same id under another account is that account's own record and changes nothing here
      const evil = await pushCalls(svc.url, m.token, [{ ...call, cost: '100' }]);
      assert.deepEqual(evil.body.results.map((r: any) => r.status), ['stored']);
      const seenByAlice = await pullAll(svc.url, a2.token);
      assert.equal(seenByAlice.length, 1);
      assert.equal(seenByAlice[0]!.call.cost, '0.00018');
      const devices = await request(svc.url, 'GET', '/v1/devices', { token: m.token });
      assert.deepEqual(devices.body.devices.map((x: any) => x.id), [m.id]);
      const aliceDevices = await request(svc.url, 'GET', '/v1/devices', { token: a.token });
      assert.deepEqual(aliceDevices.body.devices.map((x: any) => x.id).sort(), [a.id, a2.id].sort());
      assert.equal((await request(svc.url, 'GET', '/v1/totals', { token: m.token })).body.calls, 1);
    });

    test('a revoked device gets 401 on its next request; the others go on', async () => {
      const keep = await join('revoking', 'desktop');
      const gone = await join('revoking', 'stolen-laptop');
      assert.equal((await pushCalls(svc.url, gone.token, [makeCall()])).status, 200);
      const r = await ledgerCli(b, ['revoke', gone.id, '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(JSON.parse(r.stdout).device.revoked_at);
      const push = await pushCalls(svc.url, gone.token, [makeCall()]);
      assert.equal(push.status, 401);
      assert.equal(push.body.error.code, 'revoked');
      assert.equal((await request(svc.url, 'GET', '/v1/pull', { token: gone.token })).status, 401);
      assert.equal((await request(svc.url, 'GET', '/v1/pull', { token: 'tgl_not-a-token' })).status, 401);
      assert.equal((await request(svc.url, 'GET', '/v1/pull')).status, 401);
      assert.equal((await pullAll(svc.url, keep.token)).length, 1);
      const list = await ledgerCli(b, ['devices', '--json']);
      const mine = JSON.parse(list.stdout).devices.filter((x: any) => x.account === 'revoking');
      assert.deepEqual(mine.map((x: any) => [x.name, x.revoked_at !== null]), [['desktop', false], ['stolen-laptop', true]]);
    });

    test('enrolment codes: single use, expire, unknown ones refused', async () => {
      const r = await ledgerCli(b, ['enroll', '--account', 'codes', '--json', '--expires-in', '1']);
      const { code } = JSON.parse(r.stdout);
      await new Promise((res) => setTimeout(res, 1300));
      const expired = await request(svc.url, 'POST', '/v1/enrol', { body: { protocol: 1, code } });
      assert.equal(expired.status, 401);
      assert.equal(expired.body.error.code, 'code_expired');
      const { code: fresh } = JSON.parse((await ledgerCli(b, ['enroll', '--account', 'codes', '--json'])).stdout);
      const first = await request(svc.url, 'POST', '/v1/enrol', { body: { protocol: 1, code: fresh.toLowerCase() } });
      assert.equal(first.status, 200);
      tokens.push(first.body.token, fresh);
      const reused = await request(svc.url, 'POST', '/v1/enrol', { body: { protocol: 1, code: fresh } });
      assert.equal(reused.status, 401);
      assert.equal(reused.body.error.code, 'code_used');
      const unknown = await request(svc.url, 'POST', '/v1/enrol', { body: { protocol: 1, code: 'AAAA-BBBB-CCCC-DDDD' } });
      assert.equal(unknown.body.error.code, 'invalid_code');
      const { code: raced } = JSON.parse((await ledgerCli(b, ['enroll', '--account', 'codes', '--json'])).stdout);
      const racers = await Promise.all(Array.from({ length: 6 }, () => request(svc.url, 'POST', '/v1/enrol', { body: { protocol: 1, code: raced } })));
      assert.deepEqual(racers.map((x) => x.status).sort(), [200, 401, 401, 401, 401, 401], 'a code used at once by several devices still enrols one');
      tokens.push(racers.find((x) => x.status === 200)!.body.token);
      const human = await ledgerCli(b, ['enroll']);
      assert.match(human.stdout, /Enrolment code for account "default": [A-Z0-9-]{19}/);
    });

    test('oversized, malformed and wrong-protocol requests are refused with a clear error and nothing written', async () => {
      const d = await join('refusals');
      const expectError = async (p: Promise<{ status: number; body: any }>, status: number, code: string) => {
        const r = await p;
        assert.equal(r.status, status, JSON.stringify(r.body));
        assert.equal(r.body.error.code, code);
        assert.equal(typeof r.body.error.message, 'string');
      };
      const many = Array.from({ length: 1001 }, () => makeCall());
      await expectError(pushCalls(svc.url, d.token, many), 413, 'batch_too_large');
      const huge = [makeCall({ padding: 'x'.repeat(8 * 1024 * 1024) })];
      await expectError(pushCalls(svc.url, d.token, huge), 413, 'body_too_large');
      await expectError(pushCalls(svc.url, d.token, huge, { gzip: true }), 413, 'body_too_large'); // small on the wire, too large unzipped
      await expectError(request(svc.url, 'POST', '/v1/push', { token: d.token, raw: '{"protocol":1,"calls":[' }), 400, 'malformed');
      await expectError(request(svc.url, 'POST', '/v1/push', { token: d.token, raw: zlib.gzipSync('{}').subarray(0, 10), gzip: false }), 400, 'malformed');
      await expectError(request(svc.url, 'POST', '/v1/push', { token: d.token, body: [] }), 400, 'malformed');
      await expectError(request(svc.url, 'POST', '/v1/push', { token: d.token, body: { protocol: 1, calls: {} } }), 400, 'malformed');
      await expectError(pushCalls(svc.url, d.token, [makeCall()], { protocol: 99 }), 400, 'unsupported_protocol');
      await expectError(pushCalls(svc.url, d.token, [makeCall()], { protocol: '1' }), 400, 'unsupported_protocol');
      await expectError(request(svc.url, 'POST', '/v1/push', { token: d.token, body: { calls: [makeCall()] } }), 400, 'unsupported_protocol');
      await expectError(pushCalls(svc.url, d.token, [makeCall({ status: 'pending' })]), 400, 'invalid_call');
      await expectError(pushCalls(svc.url, d.token, [makeCall({ id: 'not-a-uuid' })]), 400, 'invalid_call');
      await expectError(pushCalls(svc.url, d.token, [makeCall({ cost: '0.0000000001' })]), 400, 'invalid_call');
      await expectError(pushCalls(svc.url, d.token, [makeCall({ cost: '-1' })]), 400, 'invalid_call');
      await expectError(pushCalls(svc.url, d.token, [makeCall({ cost: '9300000000' })]), 400, 'invalid_call'); // past 64-bit nano
      await expectError(request(svc.url, 'GET', '/v1/pull?protocol=7', { token: d.token }), 400, 'unsupported_protocol');
      await expectError(request(svc.url, 'POST', '/v1/enrol', { body: { code: 'X' } }), 400, 'unsupported_protocol');
      await expectError(request(svc.url, 'GET', '/v1/nope', { token: d.token }), 404, 'not_found');
      assert.deepEqual(await pullAll(svc.url, d.token), []);
      assert.equal((await request(svc.url, 'GET', '/v1/health')).body.ok, true, 'the service is still up');
    });

    test('two service processes on one database behave as one: concurrent pushes, no duplicates, gap-free order', async () => {
      const second = await startLedger(b, ['--quiet']);
      try {
        const d1 = await join('shared', 'one');
        const d2 = await join('shared', 'two');
        const alerting = (await request(svc.url, 'POST', '/v1/caps', { token: d1.token, body: { protocol: 1, scope: 'global', period: 'month', limit: '0.036', alerts: [25, 50, 100] } })).body.cap;
        const batches = Array.from({ length: 8 }, () => Array.from({ length: 50 }, () => makeCall()));
        // every batch goes to both processes at once, from both devices: each call must land exactly once
        const results = await Promise.all(batches.flatMap((batch, i) => [
          pushCalls(svc.url, (i % 2 ? d1 : d2).token, batch),
          pushCalls(second.url, (i % 2 ? d2 : d1).token, batch, { gzip: true }),
        ]));
        for (const r of results) assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal(results.reduce((n, r) => n + r.body.stored, 0), 400);
        assert.equal(results.reduce((n, r) => n + r.body.duplicates, 0), 400);
        const viaFirst = await pullAll(svc.url, d1.token, 37);
        const viaSecond = await pullAll(second.url, d2.token, 1000);
        assert.deepEqual(viaFirst.map((p) => p.seq), Array.from({ length: 400 }, (_, i) => i + 1));
        assert.deepEqual(viaSecond.map((p) => [p.seq, p.call.id]), viaFirst.map((p) => [p.seq, p.call.id]));
        assert.deepEqual(new Set(viaFirst.map((p) => p.call.id)), new Set(batches.flat().map((c) => c.id)));
        const totals = await request(second.url, 'GET', '/v1/totals', { token: d1.token });
        assert.equal(totals.body.calls, 400);
        const alerts = (await request(second.url, 'GET', '/v1/alerts', { token: d2.token })).body.alerts;
        assert.deepEqual(alerts.map((x: any) => [x.cap, x.threshold]), [[alerting.id, 25], [alerting.id, 50], [alerting.id, 100]], 'each threshold once, whichever process saw it');
        assert.equal(BigInt(totals.body.cost_nano), sum(totals.body.devices.map((x: any) => BigInt(x.cost_nano))));
        assert.equal(totals.body.cost_nano, (400n * 180000n).toString());

        // grants from both processes at once never add up past the limit
        const d3 = await join('shared', 'three');
        const cap = (await request(second.url, 'POST', '/v1/caps', { token: d3.token, body: { protocol: 1, scope: 'project', scope_value: 'leased', period: 'month', limit: '0.05' } })).body.cap;
        assert.equal(cap.available, '0.05');
        const devices = [d1, d2, d3];
        const grants = await Promise.all(Array.from({ length: 60 }, (_, i) =>
          request([svc.url, second.url][i % 2]!, 'POST', '/v1/leases', { token: devices[i % 3]!.token, body: { protocol: 1, cap: cap.id, amount: `0.00${1 + (i % 3)}` } })));
        for (const g of grants) assert.equal(g.status, 200, JSON.stringify(g.body));
        const granted = sum(grants.map((g) => usdToNanoExact(g.body.granted)));
        assert.equal(granted, usdToNanoExact('0.05'), 'exactly the limit, not a nano more');
        const held = (await request(svc.url, 'GET', '/v1/caps', { token: d1.token })).body.caps.find((c: any) => c.id === cap.id);
        assert.deepEqual([held.held, held.available], ['0.05', '0']);
      } finally {
        await second.stop();
      }
    });

    test('caps across devices: a lease never exceeds limit − spend − other leases; pushes, returns and revocation move it exactly', async () => {
      const a = await join('leases', 'a');
      const b2 = await join('leases', 'b');
      const m = await join('leases-other');
      const created = await request(svc.url, 'POST', '/v1/caps', { token: a.token, body: { protocol: 1, scope: 'global', period: 'month', limit: '0.01' } });
      assert.equal(created.status, 200, JSON.stringify(created.body));
      const cap = created.body.cap;
      assert.deepEqual([cap.limit, cap.spent, cap.held, cap.available], ['0.01', '0', '0', '0.01']);
      const lease = (d: Device, amount: string, extra: Record<string, unknown> = {}) => request(svc.url, 'POST', '/v1/leases', { token: d.token, body: { protocol: 1, cap: cap.id, amount, ...extra } });
      const state = async () => {
        const c = (await request(svc.url, 'GET', '/v1/caps', { token: b2.token })).body.caps.find((x: any) => x.id === cap.id);
        return [c.spent, c.held, c.available];
      };
      const la = await lease(a, '0.006');
      assert.equal(la.body.granted, '0.006');
      assert.ok(la.body.lease.ttl_ms > 14 * 60_000 && la.body.lease.ttl_ms <= 15 * 60_000);
      const lb = await lease(b2, '0.006');
      assert.equal(lb.body.granted, '0.004', 'only what is left');
      const none = await lease(a, '0.001');
      assert.deepEqual([none.status, none.body.granted, none.body.lease], [200, '0', null]);
      const spend = (n: number) => Array.from({ length: n }, () => makeCall({ cost: '0.001', leases: [la.body.lease.id] }));
      const [c1, c2, c3] = spend(3);
      assert.equal((await pushCalls(svc.url, a.token, [c1, c2])).body.stored, 2);
      assert.deepEqual(await state(), ['0.002', '0.008', '0'], 'pushed spend moves from the hold to the spend');
      assert.equal((await pushCalls(svc.url, a.token, [c1])).body.duplicates, 1);
      assert.deepEqual(await state(), ['0.002', '0.008', '0'], 'a duplicate moves nothing');
      const ret = await request(svc.url, 'POST', `/v1/leases/${la.body.lease.id}/return`, { token: a.token, body: { protocol: 1, used: '0.003' } });
      assert.equal(ret.status, 200, JSON.stringify(ret.body));
      assert.deepEqual(await state(), ['0.002', '0.005', '0.003'], 'a returned lease holds only what was used and not yet pushed');
      await pushCalls(svc.url, a.token, [c3]);
      assert.deepEqual(await state(), ['0.003', '0.004', '0.003']);
      const again = await request(svc.url, 'POST', `/v1/leases/${la.body.lease.id}/return`, { token: a.token, body: { protocol: 1, used: '0.003' } });
      assert.equal(again.status, 200, 'returning twice with the same figure is fine');
      const changed = await request(svc.url, 'POST', `/v1/leases/${la.body.lease.id}/return`, { token: a.token, body: { protocol: 1, used: '0.001' } });
      assert.equal(changed.body.error.code, 'lease_returned');
      const stolen = await request(svc.url, 'POST', `/v1/leases/${lb.body.lease.id}/return`, { token: a.token, body: { protocol: 1, used: '0' } });
      assert.equal(stolen.status, 404, 'only the lease holder returns a lease');
      assert.equal((await ledgerCli(b, ['revoke', b2.id])).code, 0);
      const after = (await request(svc.url, 'GET', '/v1/caps', { token: a.token })).body.caps[0];
      assert.deepEqual([after.spent, after.held, after.available], ['0.003', '0', '0.007'], 'a revoked device holds nothing');
      // another account sees no cap and can lease nothing from it
      assert.deepEqual((await request(svc.url, 'GET', '/v1/caps', { token: m.token })).body.caps, []);
      assert.equal((await lease(m, '0.001')).status, 404);
      assert.equal((await request(svc.url, 'DELETE', `/v1/caps/${cap.id}`, { token: m.token })).status, 404);
      // refusals
      for (const [amount, code] of [['0', 'malformed'], ['abc', 'malformed'], ['0.0000000001', 'malformed']]) assert.equal((await lease(a, amount!)).body.error.code, code);
      assert.equal((await lease(a, '0.001', { ttl_ms: 16 * 60_000 })).status, 400);
      assert.equal((await request(svc.url, 'POST', '/v1/caps', { token: a.token, body: { protocol: 1, scope: 'global', scope_value: 'x', period: 'day', limit: '1' } })).status, 400);
      assert.equal((await request(svc.url, 'POST', '/v1/caps', { token: a.token, body: { protocol: 1, scope: 'project', period: 'day', limit: '1' } })).status, 400);
      assert.equal((await request(svc.url, 'POST', '/v1/caps', { token: a.token, body: { protocol: 1, scope: 'global', period: 'day', limit: '1', tz: 'Mars/Olympus' } })).status, 400);
      assert.equal((await request(svc.url, 'POST', '/v1/caps', { token: a.token, body: { protocol: 3, scope: 'global', period: 'day', limit: '1' } })).body.error.code, 'unsupported_protocol');
      assert.equal((await request(svc.url, 'DELETE', `/v1/caps/${cap.id}`, { token: a.token })).status, 200);
      assert.deepEqual((await request(svc.url, 'GET', '/v1/caps', { token: a.token })).body.caps, []);
    });

    test('a scoped cap counts only its calls', async () => {
      const d = await join('scoped');
      const mk = (scope: string, scope_value: string) => request(svc.url, 'POST', '/v1/caps', { token: d.token, body: { protocol: 1, scope, scope_value, period: 'day', limit: '1', tz: 'Europe/Berlin' } });
      const project = (await mk('project', 'acme')).body.cap;
      const model = (await mk('model', 'openai:gpt-4o')).body.cap;
      await pushCalls(svc.url, d.token, [
        makeCall({ project: 'acme', model: 'gpt-4o', cost: '0.3' }),
        makeCall({ project: 'other', model: 'gpt-4o-mini', cost: '0.5' }),
        makeCall({ project: 'acme', provider: 'anthropic', model: 'claude-x', cost: '0.000000007' }),
      ]);
      const caps = (await request(svc.url, 'GET', '/v1/caps', { token: d.token })).body.caps;
      assert.deepEqual(caps.map((c: any) => [c.id, c.spent, c.available]), [[project.id, '0.300000007', '0.699999993'], [model.id, '0.3', '0.7']]);
    });

    test('alert thresholds fire once per cap and period, for every device of the account', async () => {
      const a = await join('alerts');
      const b2 = await join('alerts');
      const other = await join('alerts-other');
      const cap = (await request(svc.url, 'POST', '/v1/caps', { token: a.token, body: { protocol: 1, scope: 'global', period: 'day', limit: '0.001', alerts: [100, 50, 80] } })).body.cap;
      assert.deepEqual(cap.alerts, [50, 80, 100]);
      await pushCalls(svc.url, a.token, [makeCall({ cost: '0.0004' })]);
      await pushCalls(svc.url, b2.token, [makeCall({ cost: '0.0001' })]); // exactly 50 %
      const second = makeCall({ cost: '0.0004' });
      await pushCalls(svc.url, a.token, [second]);
      await pushCalls(svc.url, a.token, [second]); // a duplicate fires nothing
      await pushCalls(svc.url, b2.token, [makeCall({ cost: '0.0002' })]);
      await pushCalls(svc.url, b2.token, [makeCall({ cost: '0.0002' })]);
      const seenByA = (await request(svc.url, 'GET', '/v1/alerts', { token: a.token })).body;
      assert.deepEqual(seenByA.alerts.map((x: any) => [x.threshold, x.spent]), [[50, '0.0005'], [80, '0.0009'], [100, '0.0011']]);
      const seenByB = await request(svc.url, 'GET', `/v1/alerts?after=${seenByA.alerts[0].id}&limit=1`, { token: b2.token });
      assert.deepEqual([seenByB.body.alerts.map((x: any) => x.threshold), seenByB.body.has_more], [[80], true]);
      assert.deepEqual((await request(svc.url, 'GET', '/v1/alerts', { token: other.token })).body.alerts, []);
    });

    test('an expired lease that was never returned keeps holding what it may have spent', async () => {
      const a = await join('expiry');
      const other = await join('expiry');
      const cap = (await request(svc.url, 'POST', '/v1/caps', { token: a.token, body: { protocol: 1, scope: 'global', period: 'total', limit: '0.005' } })).body.cap;
      const l = await request(svc.url, 'POST', '/v1/leases', { token: a.token, body: { protocol: 1, cap: cap.id, amount: '0.005', ttl_ms: 1000 } });
      assert.equal(l.body.granted, '0.005');
      await new Promise((r) => setTimeout(r, 1100));
      const open = (await request(svc.url, 'GET', '/v1/leases', { token: a.token })).body.leases;
      assert.deepEqual(open.map((x: any) => [x.id, x.ttl_ms]), [[l.body.lease.id, 0]]);
      const blocked = await request(svc.url, 'POST', '/v1/leases', { token: other.token, body: { protocol: 1, cap: cap.id, amount: '0.001' } });
      assert.equal(blocked.body.granted, '0', 'the expired lease may have been spent offline');
      await request(svc.url, 'POST', `/v1/leases/${l.body.lease.id}/return`, { token: a.token, body: { protocol: 1, used: '0.002' } });
      assert.deepEqual((await request(svc.url, 'GET', '/v1/leases', { token: a.token })).body.leases, []);
      const freed = await request(svc.url, 'POST', '/v1/leases', { token: other.token, body: { protocol: 1, cap: cap.id, amount: '1' } });
      assert.equal(freed.body.granted, '0.003');
    });

    test('killed with kill -9 in the middle of batches: each batch is all there or not at all', async () => {
      const victim = await startLedger(b, ['--quiet']);
      const d = await join('crash');
      const batches = Array.from({ length: 6 }, () => Array.from({ length: 1000 }, () => makeCall()));
      const inflight = batches.map((batch) => pushCalls(victim.url, d.token, batch, { gzip: true }).catch(() => null));
      // kill it as soon as the first batch has committed, while the others are being written
      for (let i = 0; i < 2000; i++) {
        if ((await request(svc.url, 'GET', '/v1/totals', { token: d.token })).body.calls > 0) break;
        await new Promise((r) => setTimeout(r, 2));
      }
      victim.child.kill('SIGKILL');
      await Promise.all(inflight);
      await victim.stop();
      const pulled = await pullAll(svc.url, d.token);
      const ids = new Set(pulled.map((p) => p.call.id));
      const present = batches.map((batch) => batch.filter((c) => ids.has(c.id)).length);
      for (const n of present) assert.ok(n === 0 || n === 1000, `a batch was half-written: ${present.join(', ')}`);
      assert.ok(present.includes(1000));
      assert.deepEqual(pulled.map((p) => p.seq), Array.from({ length: pulled.length }, (_, i) => i + 1));
      // the client retries everything; what was stored is a duplicate, the rest is stored now
      const retried = await Promise.all(batches.map((batch) => pushCalls(svc.url, d.token, batch)));
      assert.deepEqual(retried.map((r) => r.body.duplicates), present);
      assert.equal((await pullAll(svc.url, d.token)).length, 6000);
    });

    test('tokens and enrolment codes never appear in the logs or the database in clear', async () => {
      await join('leak-check'); // plus every token the tests before this one got
      const logs = svc.output();
      let stored: string;
      if (kind === 'sqlite') {
        stored = fs.readdirSync(b.dataDir).map((f) => fs.readFileSync(path.join(b.dataDir, f)).toString('latin1')).join('\n');
      } else {
        const c = new pg.Client({ connectionString: pgdb!.url });
        await c.connect();
        const tables = ['accounts', 'devices', 'enrol_codes', 'calls', 'conflicts'];
        stored = '';
        for (const t of tables) stored += JSON.stringify((await c.query(`SELECT * FROM ${t}`)).rows) + '\n';
        await c.end();
      }
      assert.match(stored, /[0-9a-f]{64}/, 'the hashes are there');
      for (const t of tokens) {
        assert.ok(!logs.includes(t), 'a token in the logs');
        assert.ok(!stored.includes(t) && !stored.includes(t.slice(4)), 'a token in the database');
      }
    });
  });
}

describe('forward-only migrations', () => {
  for (const kind of ['sqlite', 'postgres'] as const) {
    test(`a version 1 database on ${kind} is upgraded in place at start, its calls kept and read by the new cap columns`, async () => {
      const pgdb = kind === 'postgres' ? await startPostgres() : undefined;
      let svc: LedgerProcess | undefined;
      try {
        const b: LedgerBackend = { dataDir: tempDir('tollgate-ledger-'), databaseUrl: pgdb?.url };
        const call = makeCall({ project: 'old', cost: '0.25' });
        const v1 = [
          `INSERT INTO accounts (id, name, last_seq, created_at) VALUES ('acc', 'default', 1, 0)`,
          `INSERT INTO devices (id, account_id, name, token_hash, created_at) VALUES ('dev', 'acc', 'old-device', '${'0'.repeat(64)}', 0)`,
          `INSERT INTO calls (account_id, id, seq, device_id, content_hash, body, ts, cost_nano, received_at) VALUES ('acc', '${call.id}', 1, 'dev', 'h', '${JSON.stringify(call)}', 0, 250000000, ${Date.now()})`,
          `INSERT INTO schema_migrations (version, applied_at) VALUES (1, 0)`,
        ];
        const schema = 'CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL);';
        if (pgdb) {
          const c = new pg.Client({ connectionString: pgdb.url });
          await c.connect();
          await c.query(schema + PG_MIGRATIONS[0]!);
          for (const sql of v1) await c.query(sql);
          await c.end();
        } else {
          const raw = new Database(path.join(b.dataDir, 'ledger.db'));
          raw.exec(schema + SQLITE_MIGRATIONS[0]!);
          for (const sql of v1) raw.exec(sql);
          raw.close();
        }
        svc = await startLedger(b);
        const d = await joinDevice(b, svc.url);
        const cap = await request(svc.url, 'POST', '/v1/caps', { token: d.token, body: { protocol: 1, scope: 'project', scope_value: 'old', period: 'month', limit: '1' } });
        assert.equal(cap.body.cap.spent, '0.25', 'the old call was backfilled into the scope columns');
        const pulled = await pullAll(svc.url, d.token);
        assert.deepEqual(pulled.map((p) => [p.seq, p.call.id]), [[1, call.id]]);
        assert.equal((await pushCalls(svc.url, d.token, [makeCall()])).body.results[0].seq, 2);
      } finally {
        await svc?.stop();
        await pgdb?.close();
      }
    });
  }
});

describe('serve refuses to expose plain HTTP', () => {
  test('a non-loopback --host needs TLS or --behind-proxy', async () => {
    const b = { dataDir: tempDir('tollgate-ledger-') };
    const r = await ledgerCli(b, ['serve', '--host', '0.0.0.0', '--port', '0']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--tls-cert and --tls-key, or --behind-proxy/);
    const half = await ledgerCli(b, ['serve', '--host', '0.0.0.0', '--tls-cert', 'x.pem']);
    assert.equal(half.code, 2);
    const missing = await ledgerCli(b, ['serve', '--host', '0.0.0.0', '--tls-cert', 'x.pem', '--tls-key', 'y.pem', '--port', '0']);
    assert.equal(missing.code, 1, 'TLS files that cannot be read');
    assert.match(missing.stderr, /x\.pem/);
    const help = await ledgerCli(b, ['serve', '--help']);
    assert.match(help.stdout, /--behind-proxy/);
    assert.match(help.stdout, /--data-dir/);
  });

  test('with --tls-cert/--tls-key it serves HTTPS', async () => {
    const dir = tempDir('tollgate-ledger-tls-');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
      '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const b = { dataDir: dir };
    const svc = await startLedger(b, ['--tls-cert', path.join(dir, 'cert.pem'), '--tls-key', path.join(dir, 'key.pem')]);
    try {
      assert.match(svc.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const agent = new Agent({ connect: { ca: fs.readFileSync(path.join(dir, 'cert.pem')) } });
      const res = await undiciFetch(`${svc.url}/v1/health`, { dispatcher: agent });
      assert.equal(((await res.json()) as { ok: boolean }).ok, true);
      await agent.close();
      await assert.rejects(fetch(`${svc.url.replace('https:', 'http:')}/v1/health`));
    } finally {
      await svc.stop();
    }
  });
});
