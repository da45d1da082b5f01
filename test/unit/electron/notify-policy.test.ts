import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createNotifyPolicy, sanitizeState } from '../../../electron/notify-policy.ts';
import type { NotifyPolicy, JsonStore } from '../../../electron/notify-policy.ts';
import { createJsonFileStore, createMemoryJsonStore } from '../../../electron/json-store.ts';
import type { EngineEvent } from '../../../shared/api.ts';
import { alert, blockedCall, capStatus } from './fixtures.ts';

const ev = {
  alert: (over: Parameters<typeof alert>[0] = {}): EngineEvent => ({ type: 'alert', alert: alert(over) }),
  caps: (...caps: ReturnType<typeof capStatus>[]): EngineEvent => ({ type: 'caps', caps }),
  call: (blockedBy: string): EngineEvent => ({ type: 'call', call: blockedCall(blockedBy) }),
  paused: (paused: boolean): EngineEvent => ({ type: 'paused', paused }),
};

function count(policy: NotifyPolicy, events: EngineEvent[]): number {
  return events.filter((e) => policy.decide(e) !== null).length;
}

test('a threshold alert notifies once per cap + threshold + period', () => {
  const policy = createNotifyPolicy({ store: createMemoryJsonStore() });
  const n = policy.decide(ev.alert());
  assert.deepEqual(n && { title: n.title, body: n.body, capId: n.capId }, {
    title: 'global month: 80% of the cap',
    body: '$80.50 spent of $100.00.',
    capId: 'cap_month',
  });
  assert.equal(policy.decide(ev.alert({ id: 'al_2', ts: 2_000 })), null, 'same threshold, same period: silent');
  assert.notEqual(policy.decide(ev.alert({ threshold: 100 })), null, 'another threshold notifies');
  assert.notEqual(policy.decide(ev.alert({ periodKey: '2026-12' })), null, 'the next period notifies again');
  assert.notEqual(policy.decide(ev.alert({ capId: 'cap_other' })), null, 'another cap notifies');
});

test('dedupe survives a restart through the JSON store (a real file)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-notify-'));
  try {
    const file = path.join(dir, 'notifications.json');
    assert.notEqual(createNotifyPolicy({ store: createJsonFileStore(file) }).decide(ev.alert()), null);
    const restarted = createNotifyPolicy({ store: createJsonFileStore(file) });
    assert.equal(restarted.decide(ev.alert()), null, 'not repeated after restart');
    assert.notEqual(restarted.decide(ev.alert({ threshold: 100 })), null);
    assert.equal(fs.statSync(file).isFile(), true);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a hard block notifies once per block episode, not per blocked call', () => {
  const policy = createNotifyPolicy({ store: createMemoryJsonStore() });
  const blockedCap = capStatus('100', { id: 'cap_month' }, true);
  policy.decide(ev.caps(blockedCap));
  const first = policy.decide(ev.alert({ kind: 'blocked', threshold: 100 }));
  assert.ok(first);
  assert.equal(first.kind, 'blocked');
  assert.equal(first.capId, 'cap_month');
  assert.equal(count(policy, Array.from({ length: 50 }, () => ev.call('cap_month'))), 0, '50 blocked calls: silent');
  assert.equal(policy.decide(ev.alert({ kind: 'blocked', threshold: 100, id: 'again' })), null);

  // the episode ends when the cap is no longer blocked (limit raised, period reset)
  policy.decide(ev.caps(capStatus('100', { id: 'cap_month', limit: '200' }, false)));
  policy.decide(ev.caps(blockedCap));
  assert.notEqual(policy.decide(ev.call('cap_month')), null, 'a new episode notifies once');
  assert.equal(policy.decide(ev.call('cap_month')), null);
});

test('blocked calls alone open an episode (engine without block alerts)', () => {
  const policy = createNotifyPolicy({ store: createMemoryJsonStore() });
  policy.decide(ev.caps(capStatus('5', { id: 'cap_day', scope: 'project', scopeValue: 'acme', period: 'day', limit: '5' }, true)));
  const n = policy.decide(ev.call('cap_day'));
  assert.ok(n);
  assert.equal(n.title, 'project:acme day: cap reached, calls blocked');
  assert.equal(policy.decide(ev.call('cap_day')), null);
});

test('a block in a new period is a new episode even without an unblocked caps event', () => {
  const policy = createNotifyPolicy({ store: createMemoryJsonStore() });
  assert.notEqual(policy.decide(ev.alert({ kind: 'blocked', periodKey: '2026-11-25' })), null);
  assert.equal(policy.decide(ev.alert({ kind: 'blocked', periodKey: '2026-11-25' })), null);
  assert.notEqual(policy.decide(ev.alert({ kind: 'blocked', periodKey: '2026-11-26' })), null);
});

test('block episodes survive a restart', () => {
  const store = createMemoryJsonStore();
  const before = createNotifyPolicy({ store });
  assert.notEqual(before.decide(ev.alert({ kind: 'blocked' })), null);
  const after = createNotifyPolicy({ store });
  assert.equal(after.decide(ev.call('cap_month')), null, 'still the same episode after restart');
  after.decide(ev.caps(capStatus('0', { id: 'cap_month' }, false)));
  assert.notEqual(after.decide(ev.alert({ kind: 'blocked' })), null);
});

test('calls blocked while paused, or by something that is not a cap, are silent', () => {
  const policy = createNotifyPolicy({ store: createMemoryJsonStore() });
  policy.decide(ev.caps(capStatus('1', { id: 'cap_month' })));
  policy.decide(ev.paused(true));
  assert.equal(policy.decide(ev.call('paused')), null);
  assert.equal(policy.decide(ev.call('cap_month')), null);
  policy.decide(ev.paused(false));
  assert.equal(policy.decide(ev.call('paused')), null, 'blockedBy is not a known cap');
  const fresh = createNotifyPolicy({ store: createMemoryJsonStore() }); // no caps/paused events seen yet
  assert.equal(fresh.decide(ev.call('pause')), null, 'the engine marks pause refusals blockedBy "pause"');
  assert.equal(fresh.decide(ev.call('E_PAUSED')), null);
});

test('do-not-disturb suppresses, and what it suppressed is not replayed later', () => {
  const policy = createNotifyPolicy({ store: createMemoryJsonStore(), doNotDisturb: true });
  assert.equal(policy.doNotDisturb, true);
  assert.equal(policy.decide(ev.alert()), null);
  assert.equal(policy.decide(ev.alert({ kind: 'blocked' })), null);
  policy.setDoNotDisturb(false);
  assert.equal(policy.decide(ev.alert()), null, 'the 80 % alert was already handled');
  assert.equal(policy.decide(ev.call('cap_month')), null, 'same block episode');
  assert.notEqual(policy.decide(ev.alert({ threshold: 100 })), null);
});

test('other events never notify', () => {
  const policy = createNotifyPolicy({ store: createMemoryJsonStore() });
  assert.equal(policy.decide({ type: 'hello', version: '0.1.0' }), null);
  assert.equal(policy.decide(ev.paused(true)), null);
  assert.equal(policy.decide({ type: 'call', call: { ...blockedCall('x'), status: 'ok', blockedBy: null } }), null);
});

test('a broken or hostile store never breaks the policy', () => {
  const throwing: JsonStore = { load: () => { throw new Error('EACCES'); }, save: () => { throw new Error('ENOSPC'); } };
  const policy = createNotifyPolicy({ store: throwing });
  assert.notEqual(policy.decide(ev.alert()), null);
  assert.equal(policy.decide(ev.alert()), null, 'in-memory dedupe still works');
  assert.deepEqual({ ...sanitizeState({ v: 1, thresholds: { a: 'x', b: 2 }, episodes: { c: { since: 'no' } } }).thresholds }, { b: 2 });
  assert.deepEqual(Object.keys(sanitizeState('garbage').thresholds), []);
  assert.deepEqual(Object.keys(sanitizeState(JSON.parse('{"v":1,"thresholds":{"__proto__":{"x":1}}}')).thresholds), []);
});

test('old threshold records are pruned to a bound', () => {
  const store = createMemoryJsonStore();
  let t = 0;
  const policy = createNotifyPolicy({ store, now: () => ++t, maxThresholdRecords: 5 });
  for (let i = 0; i < 12; i++) policy.decide(ev.alert({ periodKey: `2026-${i}` }));
  const saved = store.value as { thresholds: Record<string, number> };
  assert.equal(Object.keys(saved.thresholds).length, 5);
  assert.ok('cap_month|80|2026-11' in saved.thresholds, 'the newest are kept');
});
