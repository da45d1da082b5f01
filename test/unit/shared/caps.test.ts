/** Cap matching by key: caps name keys as the UI and CLI show them (by name), and by id or fingerprint. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { capApplies, keyCapMatcher, type CallScope } from '../../../shared/caps.ts';

const call = (over: Partial<CallScope> = {}): CallScope => ({
  provider: 'openai', model: 'gpt-4o-mini', project: null, keyFingerprint: 'fp_aaa', keyId: 'key_1', keyName: 'laptop', workflow: null, ...over,
});

test('a key cap applies by key name, id or fingerprint, and only to that key', () => {
  for (const v of ['laptop', 'key_1', 'fp_aaa']) assert.equal(capApplies({ scope: 'key', scopeValue: v }, call()), true, v);
  assert.equal(capApplies({ scope: 'key', scopeValue: 'desktop' }, call()), false);
  assert.equal(capApplies({ scope: 'key', scopeValue: 'laptop' }, call({ keyName: null, keyId: null, keyFingerprint: 'fp_bbb' })), false);
});

test('keyCapMatcher resolves a name to every key that carried it (a name reused after a revocation)', () => {
  const keys = [
    { id: 'key_1', name: 'laptop', fingerprint: 'fp_aaa' },
    { id: 'key_2', name: 'laptop', fingerprint: 'fp_bbb' },
    { id: 'key_3', name: 'ci', fingerprint: 'fp_ccc' },
  ];
  assert.deepEqual([...keyCapMatcher('laptop', keys)].sort(), ['fp_aaa', 'fp_bbb', 'key_1', 'key_2', 'laptop']);
  assert.deepEqual([...keyCapMatcher('fp_ccc', keys)].sort(), ['fp_ccc', 'key_3']);
  assert.deepEqual([...keyCapMatcher('fp_zzz', keys)], ['fp_zzz'], 'a provider key fingerprint with no local key matches itself');
});
