import { test } from 'node:test';
import assert from 'node:assert/strict';
import { API_METHODS } from '../../shared/api.ts';
import { MAX_DOCUMENT_CHARS, ValidationError, apiArgSchemas, isApiMethod, parseApiArg } from '../../shared/schemas.ts';

function refused(method: string, raw: unknown, path?: string): ValidationError {
  let caught: unknown;
  try {
    parseApiArg(method as never, raw);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ValidationError, `${method} ${JSON.stringify(raw)?.slice(0, 80)} should be refused`);
  assert.equal(caught.code, 'E_VALIDATION');
  assert.ok(caught.issues.length > 0);
  if (path !== undefined) assert.ok(caught.issues.some((i) => i.path === path), `expected an issue at "${path}", got ${JSON.stringify(caught.issues)}`);
  return caught;
}

test('there is a schema for every API method and nothing else', () => {
  assert.deepEqual(Object.keys(apiArgSchemas).sort(), [...API_METHODS].sort());
});

test('isApiMethod', () => {
  assert.equal(isApiMethod('setCap'), true);
  assert.equal(isApiMethod('constructor'), false);
  assert.equal(isApiMethod('toString'), false);
  assert.equal(isApiMethod('__proto__'), false);
  assert.equal(isApiMethod(42), false);
  assert.equal(isApiMethod(undefined), false);
});

test('unknown method is refused', () => {
  const err = refused('dropTables', {});
  assert.match(err.message, /unknown method/);
  refused('hasOwnProperty', {});
});

test('empty-argument methods accept {} and undefined, refuse anything else', () => {
  for (const m of ['caps', 'pause', 'resume', 'keys', 'overrides', 'locks', 'tiers', 'unpriced', 'settings'] as const) {
    assert.deepEqual(parseApiArg(m, {}), {});
    assert.deepEqual(parseApiArg(m, undefined), {});
    refused(m, { force: true });
    refused(m, 'yes');
    refused(m, []);
    refused(m, null);
  }
});

test('setCap: valid caps pass, with exact decimal strings', () => {
  assert.deepEqual(parseApiArg('setCap', { scope: 'global', period: 'month', limit: '25', alerts: [50, 80, 100], hard: true }), {
    scope: 'global', period: 'month', limit: '25', alerts: [50, 80, 100], hard: true,
  });
  parseApiArg('setCap', { scope: 'project', scopeValue: 'acme', period: 'day', limit: '0.000000001' });
  parseApiArg('setCap', { id: 'cap_1', scope: 'global', scopeValue: null, period: 'total', limit: '999999999999999.5' });
});

test('setCap: bad limits are refused', () => {
  const base = { scope: 'global', period: 'month' };
  refused('setCap', { ...base, limit: '-5' }, 'limit');
  refused('setCap', { ...base, limit: -5 }, 'limit');
  refused('setCap', { ...base, limit: 25 }, 'limit'); // a number, even an integer: money is text
  refused('setCap', { ...base, limit: 0.1 }, 'limit'); // the float case
  refused('setCap', { ...base, limit: '0' }, 'limit');
  refused('setCap', { ...base, limit: '0.000' }, 'limit');
  refused('setCap', { ...base, limit: '0.0000000001' }, 'limit'); // 10 decimals
  refused('setCap', { ...base, limit: '1e3' }, 'limit');
  refused('setCap', { ...base, limit: ' 5' }, 'limit');
  refused('setCap', { ...base, limit: '5.' }, 'limit');
  refused('setCap', { ...base, limit: '05' }, 'limit');
  refused('setCap', { ...base, limit: 'NaN' }, 'limit');
  refused('setCap', { ...base, limit: 'Infinity' }, 'limit');
  refused('setCap', { ...base, limit: '1'.repeat(40) }, 'limit');
});

test('setCap: alerts are integers 1-100, scope values are consistent', () => {
  const base = { scope: 'global', period: 'month', limit: '10' };
  refused('setCap', { ...base, alerts: [0] }, 'alerts.0');
  refused('setCap', { ...base, alerts: [101] }, 'alerts.0');
  refused('setCap', { ...base, alerts: [50.5] }, 'alerts.0');
  refused('setCap', { ...base, alerts: ['80'] }, 'alerts.0');
  refused('setCap', { ...base, alerts: [80, 80] }, 'alerts');
  refused('setCap', { ...base, scopeValue: 'acme' }, 'scopeValue');
  refused('setCap', { ...base, scope: 'project' }, 'scopeValue');
  refused('setCap', { ...base, scope: 'galaxy' }, 'scope');
  refused('setCap', { ...base, period: 'year' }, 'period');
});

test('extra keys are refused at every level', () => {
  refused('setCap', { scope: 'global', period: 'month', limit: '10', admin: true }, '');
  refused('call', { id: 'x', sql: 'drop' });
  refused('compare', { workload: { kind: 'chat', calls: 1, inputTokens: 1, outputTokens: 1, extra: 1 }, models: ['openai:gpt-4o'] });
  refused('quote', { kind: 'workflow', text: '{}', run: true });
});

test('ids are non-empty strings of at most 200 characters', () => {
  assert.deepEqual(parseApiArg('call', { id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b' }), { id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b' });
  refused('call', { id: '' }, 'id');
  refused('call', { id: 'x'.repeat(201) }, 'id');
  refused('removeCap', { id: 7 }, 'id');
  refused('revokeKey', { id: 'a\u0000b' }, 'id');
  refused('call', {}, 'id');
});

test('huge strings are refused', () => {
  refused('prices', { search: 'a'.repeat(10_000) }, 'search');
  refused('addKey', { name: 'n', provider: 'openai', secret: 'k'.repeat(5_000) }, 'secret');
  refused('quote', { kind: 'workflow', text: 'x'.repeat(MAX_DOCUMENT_CHARS + 1) }, 'text');
  refused('quote', { kind: 'request', provider: 'openai', body: { prompt: 'x'.repeat(MAX_DOCUMENT_CHARS + 1) } }, 'body');
  refused('setOverride', { provider: 'openai', model: 'm'.repeat(1_000), prices: { input_mtok: '1' } }, 'model');
});

test('addKey trims a pasted secret and refuses whitespace inside it', () => {
  assert.equal(parseApiArg('addKey', { name: 'work', provider: 'openai', secret: '  sk-abc123\n' }).secret, 'sk-abc123');
  refused('addKey', { name: 'work', provider: 'openai', secret: 'sk abc' }, 'secret');
  refused('addKey', { name: 'work', provider: 'openai', secret: '   ' }, 'secret');
});

test('QuoteInput is a discriminated union', () => {
  parseApiArg('quote', { kind: 'usage', model: 'gpt-4o', usage: { input_tokens: 1200, output_tokens: 400 } });
  parseApiArg('quote', { kind: 'request', provider: 'anthropic', body: { model: 'claude', messages: [] }, path: '/v1/messages' });
  parseApiArg('quote', { kind: 'workflow', text: '{"nodes":[]}', filename: 'flow.json' });
  refused('quote', { kind: 'guess', model: 'x' }, 'kind');
  refused('quote', { kind: 'usage', model: 'gpt-4o', usage: { input_tokens: -1 } }, 'usage.input_tokens');
  refused('quote', { kind: 'usage', model: 'gpt-4o', usage: { input_tokens: Number.POSITIVE_INFINITY } });
  refused('quote', { kind: 'workflow', text: '' }, 'text');
  refused('quote', undefined);
});

test('Workload is a discriminated union with bounded numbers', () => {
  const models = ['openai:gpt-4o', 'anthropic:claude-sonnet-4'];
  parseApiArg('compare', { workload: { kind: 'image', count: 100, size: '1024x1024', quality: 'high' }, models });
  parseApiArg('compare', { workload: { kind: 'video', seconds: 8, audio: true }, models });
  parseApiArg('compare', { workload: { kind: 'upscale', count: 10, megapixels: '16.7', factor: 4 }, models });
  parseApiArg('compare', { workload: { kind: 'replay', period: 'month' }, models });
  refused('compare', { workload: { kind: 'chat', calls: 0, inputTokens: 1, outputTokens: 1 }, models }, 'workload.calls');
  refused('compare', { workload: { kind: 'chat', calls: 1.5, inputTokens: 1, outputTokens: 1 }, models }, 'workload.calls');
  refused('compare', { workload: { kind: 'upscale', count: 1, megapixels: 16.7 }, models }, 'workload.megapixels');
  refused('compare', { workload: { kind: 'chat', calls: 1, inputTokens: 1, outputTokens: 1 }, models: [] }, 'models');
  refused('compare', { workload: { kind: 'chat', calls: 1, inputTokens: 1, outputTokens: 1 }, models: ['gpt-4o'] }, 'models.0');
});

test('records refuse __proto__ keys and never pollute prototypes', () => {
  const raw = JSON.parse('{"provider":"openai","model":"x","prices":{"__proto__":{"polluted":"1"},"input_mtok":"0.1"}}') as unknown;
  refused('setOverride', raw, 'prices');
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  refused('setOverride', { provider: 'openai', model: 'x', prices: { input_mtok: 0.15 } }, 'prices.input_mtok');
  refused('setOverride', { provider: 'openai', model: 'x', prices: {} }, 'prices');
  assert.deepEqual(parseApiArg('setOverride', { provider: 'openai', model: 'x', prices: { input_mtok: '0', output_mtok: '0.000000000015' } }).prices, {
    input_mtok: '0', output_mtok: '0.000000000015',
  });
});

test('tier plans must have increasing bounds and only a final open tier', () => {
  const plan = { provider: 'fal', model: null, unit: 'image', mode: 'graduated', period: 'month' };
  parseApiArg('setTiers', { ...plan, tiers: [{ upTo: 1000, price: '0.04' }, { upTo: null, price: '0.03' }] });
  refused('setTiers', { ...plan, tiers: [] }, 'tiers');
  refused('setTiers', { ...plan, tiers: [{ upTo: null, price: '0.04' }, { upTo: 10, price: '0.03' }] }, 'tiers.0.upTo');
  refused('setTiers', { ...plan, tiers: [{ upTo: 10, price: '0.04' }, { upTo: 5, price: '0.03' }] }, 'tiers.1.upTo');
  refused('setTiers', { ...plan, tiers: [{ upTo: 10, price: '-1' }] }, 'tiers.0.price');
});

test('dates, time zones, enums', () => {
  parseApiArg('report', { by: 'model', from: '2026-11-01', to: '2026-11-25T10:00:00Z' });
  refused('report', { by: 'model', from: 'yesterday' }, 'from');
  refused('report', { by: 'model', from: '2026-11-25', to: '2026-11-01' }, 'to');
  refused('report', { by: 'colour' }, 'by');
  parseApiArg('updateSettings', { timeZone: 'Europe/Paris', weekStart: 7 });
  assert.deepEqual(parseApiArg('updateSettings', undefined), {});
  refused('updateSettings', { timeZone: 'Mars/Olympus_Mons' }, 'timeZone');
  refused('updateSettings', { weekStart: 2 }, 'weekStart');
  refused('updateSettings', { dataDir: '/etc' }, '');
  refused('calls', { status: 'maybe' }, 'status');
  refused('calls', { limit: 0 }, 'limit');
  refused('calls', { limit: 1e9 }, 'limit');
  assert.deepEqual(parseApiArg('calls', undefined), {});
});

test('ValidationError serializes to the ApiError shape', () => {
  const err = refused('setCap', { scope: 'global', period: 'month', limit: -1 });
  const json = JSON.parse(JSON.stringify(err)) as { code: string; message: string; issues: { path: string; message: string }[] };
  assert.equal(json.code, 'E_VALIDATION');
  assert.match(json.message, /setCap/);
  assert.equal(json.issues[0]?.path, 'limit');
});
