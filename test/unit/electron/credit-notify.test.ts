/** A prepaid-credit alert becomes a "Credits" notification with the engine's sentence, not a cap block. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createNotifyPolicy } from '../../../electron/notify-policy.ts';
import { createMemoryJsonStore } from '../../../electron/json-store.ts';
import { alert } from './fixtures.ts';

test('a credit alert notifies as Credits with its message', () => {
  const policy = createNotifyPolicy({ store: createMemoryJsonStore() });
  const message = 'openai credit cr_1: $4.90 of $50.00 left (10 % or less)';
  const n = policy.decide({ type: 'alert', alert: alert({ kind: 'credit', capId: 'cr_1', capLabel: message, message, periodKey: 'balance', threshold: 10 }) });
  assert.deepEqual(n && { title: n.title, body: n.body, kind: n.kind }, { title: 'Credits', body: message, kind: 'threshold' });
});
