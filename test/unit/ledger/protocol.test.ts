/** The ledger protocol's pure rules: canonical content, call validation, batch limits, protocol versions. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uuidv7 } from 'uuidv7';
import {
  ACCEPTED_PROTOCOLS, LedgerError, acceptedProtocols, MAX_BATCH_CALLS, MAX_BATCH_GRANTS, PROTOCOL, canonicalJson, checkGrantsProtocol, checkProtocol, validateCall, validateGrantEvent, validateGrantPush, validatePush,
} from '../../../ledger/protocol.ts';
import { isLoopback } from '../../../ledger/server.ts';

const call = (over: Record<string, unknown> = {}) => ({ id: uuidv7(), ts: 1, provider: 'openai', status: 'ok', cost: '0.00018', ...over });
const code = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof LedgerError);
    return `${e.status} ${e.code}`;
  }
  return 'ok';
};

test('canonical JSON sorts keys at every depth and drops undefined', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: null }], c: undefined } }), '{"a":{"d":[2,{"y":null,"z":1}]},"b":1}');
  const c = call();
  assert.equal(validateCall(c, 0).hash, validateCall(Object.fromEntries(Object.entries(c).reverse()), 0).hash, 'key order does not change content');
  assert.notEqual(validateCall(c, 0).hash, validateCall({ ...c, cost: '0.00019' }, 0).hash);
});

test('a call keeps unknown fields and gets its exact nano cost', () => {
  const v = validateCall(call({ cost: '1.000000001', device: 'laptop', later: { x: 1 } }), 0);
  assert.equal(v.costNano, 1_000_000_001n);
  assert.deepEqual(JSON.parse(v.body).later, { x: 1 });
  assert.equal(JSON.parse(v.body).device, 'laptop');
});

test('calls the service refuses, each naming its index', () => {
  assert.equal(code(() => validateCall(call({ id: '0190b6a4-0000-4000-8000-000000000000' }), 3)), '400 invalid_call', 'a UUIDv4 is not a UUIDv7');
  assert.equal(code(() => validateCall(call({ status: 'pending' }), 0)), '400 invalid_call');
  assert.equal(code(() => validateCall(call({ cost: 0.5 }), 0)), '400 invalid_call', 'money as a JSON number');
  assert.equal(code(() => validateCall(call({ cost: '1e3' }), 0)), '400 invalid_call');
  assert.equal(code(() => validateCall(call({ cost: '0.0000000001' }), 0)), '400 invalid_call', 'finer than a nano-dollar');
  assert.equal(code(() => validateCall(call({ cost: '-0.1' }), 0)), '400 invalid_call', 'negative without corrects');
  assert.equal(code(() => validateCall(call({ cost: '9223372037' }), 0)), '400 invalid_call', 'past signed 64-bit nano');
  assert.equal(code(() => validateCall(call({ ts: -1 }), 0)), '400 invalid_call');
  assert.equal(code(() => validateCall(null, 0)), '400 invalid_call');
  const c = call();
  assert.equal(code(() => validateCall({ ...c, corrects: c.id }, 0)), '400 invalid_call');
  assert.equal(code(() => validateCall(call({ cost: '-0.1', corrects: uuidv7() }), 0)), 'ok');
  try {
    validateCall(call({ cost: 'x' }), 7);
  } catch (e) {
    assert.match((e as Error).message, /calls\[7\].*cost/);
    assert.equal((e as LedgerError).details.index, 7);
  }
});

test('batches: protocol checked, at most MAX_BATCH_CALLS calls, any invalid call refuses the whole batch', () => {
  assert.equal(PROTOCOL, 2);
  assert.deepEqual(ACCEPTED_PROTOCOLS, [1, 2], 'protocol 2 (grants) and the previous one');
  assert.deepEqual(acceptedProtocols(3), [2, 3], 'the current version and the one before');
  assert.equal(checkProtocol(1), 1);
  assert.equal(checkProtocol(2), 2);
  for (const bad of [undefined, 0, 3, '1', null]) assert.equal(code(() => checkProtocol(bad)), '400 unsupported_protocol');
  assert.equal(validatePush({ protocol: 1, calls: [call(), call()], extra: 'kept' }).calls.length, 2);
  assert.equal(code(() => validatePush({ protocol: 1, calls: Array.from({ length: MAX_BATCH_CALLS + 1 }, () => call()) })), '413 batch_too_large');
  assert.equal(validatePush({ protocol: 1, calls: Array.from({ length: MAX_BATCH_CALLS }, () => call()) }).calls.length, MAX_BATCH_CALLS);
  assert.equal(code(() => validatePush({ protocol: 1, calls: [call(), { ...call(), status: 'pending' }] })), '400 invalid_call');
  assert.equal(code(() => validatePush([])), '400 malformed');
  assert.equal(code(() => validatePush({ protocol: 1 })), '400 malformed');
});

test('loopback addresses', () => {
  for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) assert.ok(isLoopback(h), h);
  for (const h of ['0.0.0.0', '::', '192.168.1.2', '10.0.0.1', 'example.com', '127.0.0.1.example.com']) assert.ok(!isLoopback(h), h);
});

test('grant events (protocol 2): content compared canonically, amounts exact, only protocol 2 and later', () => {
  const g = { id: 'cr_0123456789ab', provider: 'openai', amount: '12.5', effective: 0, expires: 86_400_000, priority: 50, promo: false, note: null, created_at: 5 };
  const reordered = Object.fromEntries(Object.entries(g).reverse());
  const a = validateGrantEvent({ kind: 'add', grant: g }, 0);
  const b = validateGrantEvent({ kind: 'add', grant: reordered }, 0);
  assert.equal(a.hash, b.hash, 'the same grant with its keys in another order is the same content');
  assert.notEqual(validateGrantEvent({ kind: 'add', grant: { ...g, amount: '12.50' } }, 0).hash, a.hash, 'an amount is content as written');
  assert.equal(code(() => validateGrantEvent({ kind: 'add', grant: { ...g, amount: '0.0000000001' } }, 3)), '400 invalid_grant', 'beyond the nano-dollar');
  assert.equal(code(() => validateGrantEvent({ kind: 'add', grant: { ...g, amount: '0' } }, 0)), '400 invalid_grant');
  assert.equal(code(() => validateGrantEvent({ kind: 'add', grant: { ...g, id: 'has space' } }, 0)), '400 invalid_grant');
  assert.equal(code(() => validateGrantEvent({ kind: 'remove', id: g.id, removed_at: -1 }, 0)), '400 invalid_grant');
  assert.equal(validateGrantEvent({ kind: 'remove', id: g.id, removed_at: 7 }, 0).kind, 'remove');
  assert.equal(code(() => checkGrantsProtocol(1)), '400 unsupported_protocol');
  assert.equal(checkGrantsProtocol(2), 2);
  assert.equal(code(() => validateGrantPush({ protocol: 2, events: Array.from({ length: MAX_BATCH_GRANTS + 1 }, () => ({ kind: 'add', grant: g })) })), '413 batch_too_large');
  assert.equal(code(() => validateGrantPush({ protocol: 2, events: [{ kind: 'add', grant: g }, { kind: 'remove', id: g.id }] })), '400 invalid_grant');
});
