/**
 * A batch's correction syncs: the estimate at submit, the actual from the results and the correction
 * that takes the estimate back are pushed to the ledger service (which takes a negative cost only from
 * a record naming what it corrects) and pulled by another device, whose total is the actual exactly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startRig, eventually, tempDir } from '../fixtures/engine.ts';
import { joinDevice, ledgerCli, request, startLedger, type LedgerBackend } from '../fixtures/ledger-service.ts';

async function enrolCode(b: LedgerBackend): Promise<string> {
  const r = await ledgerCli(b, ['enroll', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { code: string }).code;
}

test('estimate, actual and correction reach the service and another device; every total is the actual', async () => {
  const b: LedgerBackend = { dataDir: tempDir('tollgate-ledger-') };
  const svc = await startLedger(b);
  const a = await startRig(['anthropic'], { syncIntervalMs: 100 });
  const other = await startRig(['anthropic'], { syncIntervalMs: 100 });
  try {
    const observer = await joinDevice(b, svc.url, 'default', 'observer');
    assert.equal((await a.engine.api.syncJoin({ url: svc.url, code: await enrolCode(b), name: 'laptop' })).joined, true);
    assert.equal((await other.engine.api.syncJoin({ url: svc.url, code: await enrolCode(b), name: 'desktop' })).joined, true);

    const client = new Anthropic({ apiKey: 'sk-ant-x', baseURL: `${a.url}/anthropic`, maxRetries: 0, defaultHeaders: { 'x-tollgate-project': 'nightly' } });
    const params = { model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user' as const, content: 'Summarise the attached policy in one line.' }] };
    const batch = await client.messages.batches.create({ requests: [{ custom_id: 'a', params }, { custom_id: 'b', params }] });
    for await (const _ of await client.messages.batches.results(batch.id)) { /* drain */ }
    // submit (estimate 0.001548), the poll, the results (0.000273) and the correction (-0.001548)
    await eventually(async () => {
      a.engine.flushQuietly();
      const t = await request(svc.url, 'GET', '/v1/totals', { token: observer.token });
      return t.status === 200 && t.body.calls === 4 ? t : null;
    }, 'the four records on the service', 20_000);
    const t = await request(svc.url, 'GET', '/v1/totals', { token: observer.token });
    assert.equal(String(t.body.cost_nano), '273000');
    const pulled = await eventually(async () => {
      other.engine.flushQuietly();
      const r = await other.engine.api.report({ by: 'project', period: 'all' });
      return r.total === '0.000273' ? r : null;
    }, 'the other device pulls them', 20_000);
    assert.equal(pulled.groups.find((g) => g.key === 'nightly')?.cost, '0.000273');
    other.engine.flushQuietly();
    const corr = (await other.engine.api.calls({ limit: 50 })).find((c) => c.endpoint === 'batch.correction');
    assert.equal(corr?.cost, '-0.001548');
    assert.ok(corr?.corrects);
    assert.equal((await a.engine.api.syncStatus({})).pending, 0, 'nothing refused, nothing left to push');
  } finally {
    await a.close();
    await other.close();
    await svc.stop();
  }
});

const params = { model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user' as const, content: 'Summarise the attached policy in one line.' }] };
const anthropic = (url: string, project: string) => new Anthropic({ apiKey: 'sk-ant-x', baseURL: `${url}/anthropic`, maxRetries: 0, defaultHeaders: { 'x-tollgate-project': project } });
async function totalOf(rig: Awaited<ReturnType<typeof startRig>>): Promise<string> {
  rig.engine.flushQuietly();
  return (await rig.engine.api.report({ by: 'project', period: 'all' })).total;
}
async function endpointsOf(rig: Awaited<ReturnType<typeof startRig>>, endpoint: string) {
  rig.engine.flushQuietly();
  return (await rig.engine.api.calls({ limit: 100 })).filter((c) => c.endpoint === endpoint);
}

test('results read on another device than the submit: that device takes the pulled estimate back; read again on the submitting device, not booked again', async () => {
  const b: LedgerBackend = { dataDir: tempDir('tollgate-ledger-') };
  const svc = await startLedger(b);
  const laptop = await startRig(['anthropic'], { syncIntervalMs: 100 });
  // the desktop calls the same provider account (the same fake upstream)
  const desktop = await startRig([], { syncIntervalMs: 100, upstreams: { anthropic: laptop.fakes.anthropic!.url } });
  try {
    const observer = await joinDevice(b, svc.url, 'default', 'observer');
    assert.equal((await laptop.engine.api.syncJoin({ url: svc.url, code: await enrolCode(b), name: 'laptop' })).joined, true);
    assert.equal((await desktop.engine.api.syncJoin({ url: svc.url, code: await enrolCode(b), name: 'desktop' })).joined, true);

    // submitted on the laptop: an estimate of 0.001548, which the desktop pulls
    const batch = await anthropic(laptop.url, 'nightly').messages.batches.create({ requests: [{ custom_id: 'a', params }, { custom_id: 'b', params }] });
    await eventually(async () => (await totalOf(desktop)) === '0.001548' || null, 'the desktop pulls the estimate', 20_000);
    const [submit] = await endpointsOf(desktop, 'messages.batches');
    assert.equal(submit!.upstreamId, batch.id, 'the submit call names its batch');

    // the results read on the desktop: the actual booked there, attributed like the submit, and the laptop's estimate taken back there
    for await (const _ of await anthropic(desktop.url, 'reader').messages.batches.results(batch.id)) { /* drain */ }
    const [booked] = (await endpointsOf(desktop, 'messages.batches.results')).filter((c) => c.cost !== '0');
    assert.equal(booked?.cost, '0.000273');
    assert.equal(booked?.project, 'nightly');
    const [corr] = await endpointsOf(desktop, 'batch.correction');
    assert.equal(corr?.corrects, submit!.id);
    assert.equal(corr?.cost, '-0.001548');
    assert.equal(await totalOf(desktop), '0.000273');

    // everyone converges on the actual: the service, and the laptop once it pulls
    await eventually(async () => {
      desktop.engine.flushQuietly();
      const t = await request(svc.url, 'GET', '/v1/totals', { token: observer.token });
      return t.status === 200 && String(t.body.cost_nano) === '273000' ? t : null;
    }, 'the service total is the actual', 20_000);
    await eventually(async () => (await totalOf(laptop)) === '0.000273' || null, 'the laptop pulls the actual and the correction', 20_000);

    // the laptop reads the same results later: booked on the desktop already, not booked again
    for await (const _ of await anthropic(laptop.url, 'nightly').messages.batches.results(batch.id)) { /* drain */ }
    const reads = await endpointsOf(laptop, 'messages.batches.results');
    const own = reads.filter((c) => c.id !== booked!.id);
    assert.equal(own.length, 1);
    assert.equal(own[0]!.cost, '0');
    assert.match(own[0]!.priceSource ?? '', new RegExp(`not booked again: .* booked on call ${booked!.id} \\(on another device\\)`));
    assert.equal((await endpointsOf(laptop, 'batch.correction')).length, 1);
    assert.equal(await totalOf(laptop), '0.000273');
    // and read again on the desktop: not booked twice on the same device
    for await (const _ of await anthropic(desktop.url, 'reader').messages.batches.results(batch.id)) { /* drain */ }
    assert.equal((await endpointsOf(desktop, 'messages.batches.results')).filter((c) => c.cost !== '0').length, 1);
    await eventually(async () => {
      laptop.engine.flushQuietly();
      const t = await request(svc.url, 'GET', '/v1/totals', { token: observer.token });
      return t.status === 200 && (await laptop.engine.api.syncStatus({})).pending === 0 ? t : null;
    }, 'the laptop pushed its read', 20_000);
    assert.equal(String((await request(svc.url, 'GET', '/v1/totals', { token: observer.token })).body.cost_nano), '273000');
  } finally {
    await laptop.close();
    await desktop.close();
    await svc.stop();
  }
});

test('results read on two devices between two syncs: both book, and once each pulls the other\'s, the later booking and the second correction are taken back by their own device; every total is the actual', async () => {
  const b: LedgerBackend = { dataDir: tempDir('tollgate-ledger-') };
  const svc = await startLedger(b);
  // no background sync: each sync is run by the test, so both devices read the results before either sees the other's booking
  const laptop = await startRig(['anthropic'], { syncIntervalMs: 3_600_000 });
  const desktop = await startRig([], { syncIntervalMs: 3_600_000, upstreams: { anthropic: laptop.fakes.anthropic!.url } });
  try {
    const observer = await joinDevice(b, svc.url, 'default', 'observer');
    assert.equal((await laptop.engine.api.syncJoin({ url: svc.url, code: await enrolCode(b), name: 'laptop' })).joined, true);
    assert.equal((await desktop.engine.api.syncJoin({ url: svc.url, code: await enrolCode(b), name: 'desktop' })).joined, true);
    const sync = async (rig: typeof laptop) => { rig.engine.flushQuietly(); return rig.engine.api.syncNow({}); };

    const batch = await anthropic(laptop.url, 'nightly').messages.batches.create({ requests: [{ custom_id: 'a', params }, { custom_id: 'b', params }] });
    await sync(laptop);
    await sync(desktop);
    assert.equal(await totalOf(desktop), '0.001548', 'the desktop has the estimate');

    // both read the results before syncing: each books the actual and takes the estimate back
    for await (const _ of await anthropic(laptop.url, 'nightly').messages.batches.results(batch.id)) { /* drain */ }
    for await (const _ of await anthropic(desktop.url, 'nightly').messages.batches.results(batch.id)) { /* drain */ }
    assert.equal(await totalOf(laptop), '0.000273');
    assert.equal(await totalOf(desktop), '0.000273');

    // they sync (twice each: what a pull settles is pushed by the next sync)
    for (let i = 0; i < 2; i++) {
      await sync(laptop);
      await sync(desktop);
    }
    await sync(laptop);
    assert.equal(await totalOf(laptop), '0.000273');
    assert.equal(await totalOf(desktop), '0.000273');
    const t = await request(svc.url, 'GET', '/v1/totals', { token: observer.token });
    assert.equal(String(t.body.cost_nano), '273000', 'the service counts the actual once');
    // the laptop read first: its booking stands; the desktop took back its own booking and its own correction of the estimate
    const bookings = (await endpointsOf(laptop, 'messages.batches.results')).filter((c) => c.cost !== '0').sort((x, y) => x.ts - y.ts || (x.id < y.id ? -1 : 1));
    assert.equal(bookings.length, 2, 'both devices booked (and the laptop holds both)');
    const [kept, later] = bookings;
    const fixes = (await endpointsOf(desktop, 'batch.correction')).filter((c) => c.cost !== '-0.001548');
    assert.deepEqual(fixes.map((c) => c.cost).sort(), ['-0.000273', '0.001548']);
    assert.equal((await endpointsOf(laptop, 'batch.correction')).length, 4, 'the laptop holds the same records');
    assert.equal((await endpointsOf(laptop, 'batch.correction')).filter((c) => c.corrects === kept!.id).length, 0, 'the first booking is never taken back');
    assert.deepEqual((await endpointsOf(laptop, 'batch.correction')).filter((c) => c.corrects === later!.id).map((c) => c.cost), ['-0.000273'], 'the later one is, once');
    assert.equal((await laptop.engine.api.syncStatus({})).pending, 0);
    assert.equal((await desktop.engine.api.syncStatus({})).pending, 0);
  } finally {
    await laptop.close();
    await desktop.close();
    await svc.stop();
  }
});
