import { test } from 'node:test';
import assert from 'node:assert/strict';
import { API_METHODS } from '../../../shared/api.ts';
import type { TollgateApi } from '../../../shared/api.ts';
import {
  API_CHANNELS,
  formatBridgeError,
  handleIpcRequest,
  methodFromChannel,
  parseBridgeError,
  toApiError,
  unwrapIpcReply,
} from '../../../electron/ipc-policy.ts';
import type { IpcReply } from '../../../electron/ipc-policy.ts';

/** An engine API that records what reached it. */
function recordingApi() {
  const calls: { method: string; arg: unknown }[] = [];
  const api = new Proxy({} as TollgateApi, {
    get: (_t, method: string) => async (arg: unknown) => {
      calls.push({ method, arg });
      if (method === 'removeCap') throw Object.assign(new Error('no cap cap_x'), { code: 'E_NOT_FOUND' });
      if (method === 'keys') throw new Error('SQLITE_CORRUPT: secret details');
      if (method === 'call') return { id: 'c1', error: 'upstream 500' }; // a result with an `error` field
      return { ok: method };
    },
  });
  return { api, calls };
}

const errorOf = (r: IpcReply) => {
  assert.equal(r.ok, false);
  return (r as Extract<IpcReply, { ok: false }>).error;
};

test('channels map to API methods and nothing else', () => {
  assert.equal(API_CHANNELS.length, API_METHODS.length);
  assert.equal(methodFromChannel('tollgate:setCap'), 'setCap');
  for (const bad of ['tollgate:event', 'tollgate:navigate', 'tollgate:constructor', 'tollgate:__proto__', 'setCap', 'other:setCap', 'tollgate:', 'tollgate:SETCAP', 42, null]) {
    assert.equal(methodFromChannel(bad), null, String(bad));
  }
});

test('a valid request reaches the engine with the parsed argument', async () => {
  const { api, calls } = recordingApi();
  const r = await handleIpcRequest(api, 'tollgate:setCap', { scope: 'global', period: 'month', limit: '25' });
  assert.deepEqual(r, { ok: true, result: { ok: 'setCap' } });
  assert.deepEqual(calls, [{ method: 'setCap', arg: { scope: 'global', period: 'month', limit: '25' } }]);
  await handleIpcRequest(api, 'tollgate:caps', undefined);
  assert.deepEqual(calls[1], { method: 'caps', arg: {} });
});

test('results containing an `error` field are not mistaken for failures', async () => {
  const { api } = recordingApi();
  const r = await handleIpcRequest(api, 'tollgate:call', { id: 'c1' });
  assert.deepEqual(r, { ok: true, result: { id: 'c1', error: 'upstream 500' } });
  assert.deepEqual(unwrapIpcReply(r), { id: 'c1', error: 'upstream 500' });
});

test('bad payloads are refused before the engine sees them', async () => {
  const { api, calls } = recordingApi();
  const cases: [string, unknown][] = [
    ['tollgate:setCap', { scope: 'global', period: 'month', limit: -1 }],
    ['tollgate:setCap', { scope: 'global', period: 'month', limit: 0.1 }],
    ['tollgate:setCap', { scope: 'global', period: 'month', limit: '10', isAdmin: true }],
    ['tollgate:call', { id: 'x'.repeat(1_000) }],
    ['tollgate:addKey', { name: 'k', provider: 'openai', secret: 's'.repeat(100_000) }],
    ['tollgate:pause', { everything: true }],
    ['tollgate:quote', 'rm -rf /'],
    ['tollgate:compare', null],
  ];
  for (const [channel, payload] of cases) {
    const e = errorOf(await handleIpcRequest(api, channel, payload));
    assert.equal(e.code, 'E_VALIDATION', channel);
    assert.ok(e.issues && e.issues.length > 0);
  }
  assert.equal(calls.length, 0);
});

test('unknown channels are refused', async () => {
  const { api, calls } = recordingApi();
  for (const channel of ['tollgate:dropAll', 'tollgate:event', 'ipc:setCap', 'tollgate:' + 'x'.repeat(500)]) {
    assert.equal(errorOf(await handleIpcRequest(api, channel, {})).code, 'E_UNKNOWN_METHOD');
  }
  assert.equal(calls.length, 0);
});

test('untrusted senders are refused', async () => {
  const { api, calls } = recordingApi();
  const isTrustedSender = (url: string) => url.startsWith('file:///app/index.html');
  assert.equal(errorOf(await handleIpcRequest(api, 'tollgate:caps', {}, { senderUrl: 'https://evil.example/', isTrustedSender })).code, 'E_FORBIDDEN');
  assert.equal(errorOf(await handleIpcRequest(api, 'tollgate:caps', {}, { senderUrl: null, isTrustedSender })).code, 'E_FORBIDDEN');
  assert.equal(calls.length, 0);
  assert.equal((await handleIpcRequest(api, 'tollgate:caps', {}, { senderUrl: 'file:///app/index.html#/budgets', isTrustedSender })).ok, true);
});

test('engine errors keep their code; unknown errors become E_INTERNAL', async () => {
  const { api } = recordingApi();
  assert.deepEqual(errorOf(await handleIpcRequest(api, 'tollgate:removeCap', { id: 'cap_x' })), { code: 'E_NOT_FOUND', message: 'no cap cap_x' });
  assert.equal(errorOf(await handleIpcRequest(api, 'tollgate:keys', {})).code, 'E_INTERNAL');
  assert.equal(toApiError('boom').code, 'E_INTERNAL');
  assert.equal(toApiError({ code: 'ENOENT', message: 'x' }).code, 'E_INTERNAL', 'only E_ codes pass through');
});

test('the bridge error survives contextBridge as its message and parses back', () => {
  const apiError = { code: 'E_VALIDATION', message: 'invalid argument for setCap: limit: bad', issues: [{ path: 'limit', message: 'bad' }] };
  let thrown: unknown;
  try {
    unwrapIpcReply({ ok: false, error: apiError });
  } catch (err) {
    thrown = err;
  }
  assert.ok(thrown instanceof Error);
  assert.equal(thrown.message, formatBridgeError(apiError));
  // what renderer/src/bridge/ipc.ts sees after Electron prefixes the message
  assert.deepEqual(parseBridgeError(`Error invoking remote method 'tollgate:setCap': Error: ${thrown.message}`), apiError);
  assert.throws(() => unwrapIpcReply('nonsense'), /E_INTERNAL/);
});
