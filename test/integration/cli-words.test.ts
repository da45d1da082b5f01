/** The CLI as a newcomer meets it: defaults and words shared with the UI, exit codes, times. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { tempDir } from '../fixtures/engine.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

function tollgate(dataDir: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/tollgate.js'), '--data-dir', dataDir, ...args], { encoding: 'utf8', env: { ...process.env, TZ: 'Asia/Kolkata' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('a cap made without flags blocks at its limit, as one made in Budgets does; --alert-only only alerts', () => {
  const dir = tempDir();
  assert.equal(tollgate(dir, 'cap', 'set', '--scope', 'global', '--limit', '5').code, 0);
  assert.equal(tollgate(dir, 'cap', 'set', '--scope', 'provider:openai', '--limit', '2', '--alert-only').code, 0);
  const caps = JSON.parse(tollgate(dir, 'cap', 'list', '--json').out) as { cap: { scope: string; hard: boolean } }[];
  assert.deepEqual(caps.map((c) => [c.cap.scope, c.cap.hard]).sort(), [['global', true], ['provider', false]]);
  const both = tollgate(dir, 'cap', 'set', '--scope', 'global', '--limit', '5', '--hard', '--alert-only');
  assert.equal(both.code, 2);
  assert.match(both.err, /contradict/);
});

test('invalid option values exit 2 (bad input), in subcommands too', () => {
  const dir = tempDir();
  for (const args of [['report', '--period', 'fortnight'], ['report', '--by', 'colour'], ['export', '--format', 'json'], ['cap', 'set', '--scope', 'global', '--limit', 'lots'], ['calls', '--limit', 'many'], ['nonsense']]) {
    const r = tollgate(dir, ...args);
    assert.equal(r.code, 2, `${args.join(' ')} → exit ${r.code}\n${r.err}`);
  }
});

test('report takes the same period words as caps (day, total) as well as today/all', () => {
  const dir = tempDir();
  for (const p of ['day', 'today', 'week', 'month', 'total', 'all']) assert.equal(tollgate(dir, 'report', '--period', p, '--json').code, 0, p);
});

test('times are local, with the zone named', () => {
  const dir = tempDir();
  assert.equal(tollgate(dir, 'cap', 'set', '--scope', 'global', '--period', 'day', '--limit', '5').code, 0);
  const r = tollgate(dir, 'cap', 'list');
  assert.match(r.out, /resets \(Asia\/(Kolkata|Calcutta)\)/);
  // Kolkata's midnight is 18:30 UTC; the table shows the local 00:00.
  assert.match(r.out, /\d{4}-\d{2}-\d{2} 00:00/);
});
