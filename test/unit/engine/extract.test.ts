/**
 * The response tap reads `model` and `usage` from the top level of a JSON body without parsing the
 * output text. It must agree with JSON.parse on every well-formed body, and refuse (so the tap falls
 * back to a full parse) anything it cannot read with certainty.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ResponseTap, topLevelValues } from '../../../electron/engine/extract.ts';

const KEYS = new Set(['model', 'usage']);
const pick = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([k]) => KEYS.has(k)));

test('agrees with JSON.parse on arbitrary objects, compact or pretty-printed', () => {
  const key = fc.oneof(fc.constantFrom('model', 'usage', 'choices', 'id', 'usage_x', 'mod"el', 'us\\age'), fc.string());
  fc.assert(fc.property(fc.dictionary(key, fc.jsonValue()), fc.constantFrom(undefined, 2, '\t'), (obj, indent) => {
    const text = JSON.stringify(obj, null, indent);
    const parsed = JSON.parse(text) as Record<string, unknown>; // -0, duplicate keys: compare with what JSON.parse makes
    assert.deepEqual(topLevelValues(Buffer.from(text), KEYS), pick(parsed));
  }), { numRuns: 2000 });
});

test('only top-level keys count, whatever the output text contains', () => {
  const body = {
    id: 'chatcmpl-1', model: 'gpt-4o-mini-2024-07-18',
    choices: [{ message: { content: 'he said "usage": {"prompt_tokens": 999} and \\"model\\": x', usage: { prompt_tokens: 1 } }, model: 'nested' }],
    usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 },
    system_fingerprint: 'fp_x',
  };
  assert.deepEqual(topLevelValues(Buffer.from(JSON.stringify(body)), KEYS), { model: body.model, usage: body.usage });
});

test('refuses what is not one well-formed object', () => {
  for (const bad of ['', '[]', '"usage"', '{"usage":{"a":1}', '{"usage":{"a":1}} trailing', '{"usage" {"a":1}}', '{"a":1,}x', '{"a":"unterminated}']) {
    assert.equal(topLevelValues(Buffer.from(bad), KEYS), null, bad);
  }
  assert.throws(() => topLevelValues(Buffer.from('{"usage":{"a":01}}'), KEYS));
});

test('the tap prices a response split across chunks the same as a whole one', () => {
  const body = Buffer.from(JSON.stringify({ model: 'claude-sonnet-4-5', content: [{ type: 'text', text: 'x'.repeat(5000) }], usage: { input_tokens: 10, output_tokens: 20, cache_read_input_tokens: 5 } }));
  const whole = new ResponseTap('messages', 'application/json', undefined);
  whole.write(body);
  const split = new ResponseTap('messages', 'application/json', undefined);
  for (let i = 0; i < body.length; i += 700) split.write(body.subarray(i, i + 700));
  const a = whole.finish(), b = split.finish();
  assert.ok(!(a instanceof Promise) && !(b instanceof Promise));
  assert.deepEqual(a, b);
  assert.equal(a.model, 'claude-sonnet-4-5');
  assert.deepEqual(a.usage, { inputTokens: 10, outputTokens: 20, cacheReadTokens: 5 });
});

test('a response that is not JSON reports why instead of a usage', () => {
  const tap = new ResponseTap('chat.completions', 'application/json', undefined);
  tap.write(Buffer.from('{"model":"gpt-4o","usage":{"prompt_tokens":1'));
  const r = tap.finish() as { usage: unknown; parseError: string | null };
  assert.equal(r.usage, null);
  assert.match(r.parseError ?? '', /not complete JSON/);
});

test('invalid usage inside a stream (plain or gzip) is reported, never thrown out of the tap', async () => {
  const { gzipSync } = await import('node:zlib');
  const sse = Buffer.from('data: {"model":"gpt-4o-mini","choices":[{"delta":{"content":"hi"}}]}\n\n'
    + 'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":9}}}\n\n');
  const plain = new ResponseTap('chat.completions', 'text/event-stream', undefined);
  assert.doesNotThrow(() => plain.write(sse));
  const a = plain.finish() as { usage: unknown; parseError: string | null };
  assert.equal(a.usage, null);
  assert.match(a.parseError ?? '', /stream's usage is invalid: prompt_tokens: details \(9\) exceed the total \(5\)/);
  const gz = new ResponseTap('chat.completions', 'text/event-stream', 'gzip');
  gz.write(gzipSync(sse));
  const b = await gz.finish();
  assert.equal(b.usage, null);
  assert.match(b.parseError ?? '', /invalid/);
});

test('an SSE line too long to hold stops the tap with a reason instead of growing without bound', () => {
  const tap = new ResponseTap('chat.completions', 'text/event-stream', undefined);
  const chunk = Buffer.alloc(8 * 1024 * 1024, 0x61); // 8 MB of "a", no newline
  tap.write(Buffer.from('data: {"x":"'));
  for (let i = 0; i < 9; i++) assert.doesNotThrow(() => tap.write(chunk)); // 72 MB in one line
  const r = tap.finish() as { usage: unknown; parseError: string | null };
  assert.equal(r.usage, null);
  assert.match(r.parseError ?? '', /longer than 64 MB/);
});
