/**
 * The engine API the UI reads (additive fields and filters), against a real engine fed through
 * its proxy with the official openai SDK.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startRig, eventually, type Rig } from '../fixtures/engine.ts';
import { usdToNanoExact } from '../../shared/money.ts';
import { ValidationError, parseApiArg } from '../../shared/schemas.ts';

let rig: Rig;
const HOUR = 3_600_000n;

const sdk = (project?: string) => new OpenAI({ apiKey: 'sk-test', baseURL: rig.url + '/openai/v1', maxRetries: 0, ...(project ? { defaultHeaders: { 'x-tollgate-project': project } } : {}) });
async function call(model: string, project?: string, usage = { prompt_tokens: 1000, completion_tokens: 500 }): Promise<void> {
  rig.fakes.openai!.next({ usage });
  await sdk(project).chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] });
}

before(async () => {
  rig = await startRig(['openai']);
  await call('gpt-4o-mini', 'acme_support');
  await call('gpt-4o-mini', 'acme-web');
  await call('gpt-4.1-nano', 'other');
  await call('my-finetune', 'acme_support'); // unpriced
  await eventually(async () => (await rig.engine.api.calls({})).length === 4, 'four calls booked');
});

after(async () => rig?.close());

test('calls: case-insensitive substring filters, with LIKE wildcards taken literally', async () => {
  assert.deepEqual((await rig.engine.api.calls({ modelContains: '4O-MI' })).map((c) => c.model), ['gpt-4o-mini', 'gpt-4o-mini']);
  assert.equal((await rig.engine.api.calls({ projectContains: 'acme' })).length, 3);
  // "_" and "%" are characters, not wildcards: "acme_" matches acme_support only, never acme-web
  assert.deepEqual([...new Set((await rig.engine.api.calls({ projectContains: 'acme_' })).map((c) => c.project))], ['acme_support']);
  assert.equal((await rig.engine.api.calls({ projectContains: '%' })).length, 0);
  assert.equal((await rig.engine.api.calls({ modelContains: 'nano', projectContains: 'other' })).length, 1);
});

test('calls: a date range in the engine\'s time zone, "to" inclusive; bad dates refused', async () => {
  const tz = (await rig.engine.api.settings({})).timeZone;
  const today = new Intl.DateTimeFormat('en-CA', { timeZone: tz }).format(Date.now());
  const tomorrow = new Date(Date.parse(today + 'T12:00:00Z') + 86_400_000).toISOString().slice(0, 10);
  assert.equal((await rig.engine.api.calls({ from: today, to: today })).length, 4);
  assert.equal((await rig.engine.api.calls({ from: tomorrow })).length, 0);
  assert.equal((await rig.engine.api.calls({ to: '2000-01-01' })).length, 0);
  assert.throws(() => parseApiArg('calls', { from: 'yesterday' }), ValidationError);
  assert.throws(() => parseApiArg('calls', { modelContains: 'x'.repeat(5000) }), ValidationError);
});

test('usageBy: spend, calls, unpriced and last use per project and per local key', async () => {
  const projects = await rig.engine.api.usageBy({ by: 'project' });
  const acme = projects.find((p) => p.key === 'acme_support')!;
  assert.equal(acme.calls, 2);
  assert.equal(acme.unpriced, 1);
  assert.equal(acme.cost, '0.00045');
  assert.ok(acme.lastUsed && acme.lastUsed <= Date.now() && acme.lastUsed > Date.now() - 60_000);

  const { key, token } = await rig.engine.api.addKey({ name: 'laptop', provider: 'openai', project: null, secret: 'sk-real' });
  assert.equal((await rig.engine.api.usageBy({ by: 'key' })).length, 0);
  rig.fakes.openai!.next({ usage: { prompt_tokens: 1000, completion_tokens: 500 } });
  await new OpenAI({ apiKey: token, baseURL: rig.url + '/openai/v1', maxRetries: 0 }).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
  const keys = await eventually(async () => {
    const k = await rig.engine.api.usageBy({ by: 'key' });
    return k.length ? k : null;
  }, 'key usage');
  assert.deepEqual(keys.map((k) => [k.key, k.calls, k.cost, k.unpriced]), [[key.id, 1, '0.00045', 0]]);
  assert.throws(() => parseApiArg('usageBy', { by: 'model' }), ValidationError);
});

test('report groups and the overview top lists count unpriced calls', async () => {
  const r = await rig.engine.api.report({ by: 'model', period: 'all' });
  assert.equal(r.groups.find((g) => g.key === 'openai:my-finetune')?.unpriced, 1);
  assert.equal(r.groups.find((g) => g.key === 'openai:gpt-4o-mini')?.unpriced, 0);
  const ov = await rig.engine.api.overview({});
  assert.equal(ov.topModels.find((g) => g.key === 'openai:my-finetune')?.unpriced, 1);
});

test('overview: the month-end projection is "so far + the 24 h burn rate × hours left", as stated', async () => {
  const ov = await rig.engine.api.overview({});
  assert.equal(ov.projection.basis, 'last24h');
  assert.equal(ov.projection.ratePerHour, ov.burnRatePerHour);
  assert.equal(ov.projection.monthSoFar, ov.month.current);
  const msLeft = BigInt(Math.round(ov.projection.hoursLeft * 3_600_000));
  const expected = usdToNanoExact(ov.projection.monthSoFar) + (usdToNanoExact(ov.projection.ratePerHour) * msLeft) / HOUR;
  const got = usdToNanoExact(ov.projectedMonth);
  assert.ok(got - expected <= 1n && expected - got <= 1n, `${ov.projectedMonth} vs ${expected} nano`);
  assert.ok(got >= usdToNanoExact(ov.month.current));
});

test('compare replay: per-call figures and what the calls actually cost', async () => {
  const r = await rig.engine.api.compare({ workload: { kind: 'replay', period: 'month' }, models: ['openai:gpt-4o-mini'] });
  assert.ok(r.replay);
  const calls = r.replay.calls;
  assert.equal(calls, (await rig.engine.api.calls({})).filter((c) => c.status !== 'blocked').length);
  // every replayed call was 1000 in / 500 out: on gpt-4o-mini each costs $0.00045
  assert.equal(r.rows[0]!.perUnit, '0.00045');
  assert.equal(usdToNanoExact(r.rows[0]!.cost!), 450_000n * BigInt(calls));
  assert.equal(r.replay.unpricedCalls, 1);
  // as booked: 3 × gpt-4o-mini $0.00045 + gpt-4.1-nano $0.0003 + the unpriced call (nothing) = $0.00165
  assert.equal(calls, 5);
  assert.equal(r.replay.actual, '0.00165');
  assert.equal(r.replay.actualPerCall, '0.00033');
  assert.equal(r.description, `Your ${calls} chat calls of the last 30 days, re-priced`);
});
