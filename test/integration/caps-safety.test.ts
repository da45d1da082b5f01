/** Caps under concurrency, alerts, kill -9 recovery, the control API's defences, local keys. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile as execFileCb, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { startRig, eventually, tempDir } from '../fixtures/engine.ts';
import { startFakeUpstream } from '../fixtures/fake-upstream/index.ts';
import { Ledger } from '../../electron/engine/ledger.ts';
import { MIGRATIONS } from '../../electron/engine/migrations.ts';
import { startEngine } from '../../electron/engine/engine.ts';
import { usdToNano } from '../../shared/money.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(ROOT, 'bin/tollgate.js');
const execFileP = promisify(execFileCb);
/** Run the CLI without blocking this process's event loop (the engine under test lives here). */
async function cli(args: string[], input?: string): Promise<string> {
  if (input === undefined) return (await execFileP(process.execPath, [CLI, ...args], { encoding: 'utf8' })).stdout;
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '', err = '';
    c.stdout.on('data', (d: Buffer) => { out += d; });
    c.stderr.on('data', (d: Buffer) => { err += d; });
    c.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}: ${err}`))));
    c.stdin.end(input);
  });
}

test('200 parallel calls against a nearly spent hard cap never end above the limit', async () => {
  const rig = await startRig(['openai']);
  try {
    // the provider reports fewer input tokens than the proxy counted and the full max output
    rig.fakes.openai!.setDefault({ usage: { prompt_tokens: 100, completion_tokens: 1000 }, delayMs: 20 });
    const cap = await rig.engine.api.setCap({ scope: 'global', period: 'month', limit: '0.05', hard: true, alerts: [50, 80, 100] });
    const client = new OpenAI({ apiKey: 'sk-x', baseURL: `${rig.url}/openai/v1`, maxRetries: 0 });
    const results = await Promise.allSettled(Array.from({ length: 200 }, () =>
      client.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 1000, messages: [{ role: 'user', content: 'x'.repeat(3000) }] })));
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    const blocked = results.filter((r) => r.status === 'rejected');
    assert.ok(ok > 0 && blocked.length > 0, `some admitted (${ok}), some blocked (${blocked.length})`);
    const err = (blocked[0] as PromiseRejectedResult).reason as InstanceType<typeof OpenAI.APIError>;
    assert.equal(err.status, 402, 'a status the SDK does not retry');
    assert.match(err.message, /Blocked by Tollgate cap/);
    assert.equal(err.headers?.get?.('x-tollgate-blocked-by') ?? (err.headers as unknown as Record<string, string>)['x-tollgate-blocked-by'], cap.id);
    await eventually(async () => (await rig.engine.api.caps({}))[0]!.reserved === '0', 'reservations released');
    const [s] = await rig.engine.api.caps({});
    assert.ok(usdToNano(s!.spent) <= usdToNano('0.05'), `spent ${s!.spent} ≤ 0.05`);
    assert.equal(rig.fakes.openai!.requests.length, ok, 'blocked calls never reached the provider');
    // alerts: each threshold fired once as spend crossed it
    const alerts = await rig.engine.api.alerts({});
    const fired = alerts.filter((a) => a.kind === 'threshold').map((a) => a.threshold).sort((a, b) => a - b);
    assert.deepEqual(fired, [...new Set(fired)], 'no threshold fires twice');
    assert.ok(fired.includes(50) && fired.includes(80), `fired ${fired.join(',')}`);
    assert.equal(alerts.filter((a) => a.kind === 'blocked').length, 1, 'one block notification per episode, not per blocked call');
  } finally {
    await rig.close();
  }
});

test('several thresholds crossed by one call: only the highest notifies', async () => {
  const rig = await startRig(['openai']);
  try {
    rig.fakes.openai!.setDefault({ usage: { prompt_tokens: 0, completion_tokens: 1500 } });
    await rig.engine.api.setCap({ scope: 'global', period: 'day', limit: '0.001', hard: false, alerts: [50, 80, 100] });
    const events: number[] = [];
    rig.engine.subscribe((e) => { if (e.type === 'alert') events.push(e.alert.threshold); });
    const client = new OpenAI({ apiKey: 'sk-x', baseURL: `${rig.url}/openai/v1`, maxRetries: 0 });
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }); // 1500 × 0.6/M = $0.0009 = 90 %
    await eventually(() => events.length > 0, 'an alert');
    assert.deepEqual(events, [80]);
    const listed = (await rig.engine.api.alerts({})).map((a) => a.threshold);
    assert.deepEqual(listed, [80]);
  } finally {
    await rig.close();
  }
});

test('pause blocks everything at once; a cap set from the CLI applies to the next call', async () => {
  const rig = await startRig(['openai']);
  try {
    const client = new OpenAI({ apiKey: 'sk-x', baseURL: `${rig.url}/openai/v1`, maxRetries: 0 });
    await cli(['--data-dir', rig.dataDir, 'pause']);
    await assert.rejects(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }), /paused/);
    await cli(['--data-dir', rig.dataDir, 'resume']);
    await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    await cli(['--data-dir', rig.dataDir, 'cap', 'set', '--scope', 'provider:openai', '--period', 'day', '--limit', '0.000001', '--hard']);
    await assert.rejects(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }), (e: { status?: number }) => e.status === 402);
  } finally {
    await rig.close();
  }
});

test('kill -9: completed calls survive, the call in flight reappears as interrupted', async () => {
  const fake = await startFakeUpstream('openai', { quiet: true });
  const dataDir = tempDir();
  try {
    const child = spawn(process.execPath, [CLI, '--data-dir', dataDir, 'serve', '--port', '0', '--no-ui', '--upstream', `openai=${fake.url}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /metering on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.once('exit', (c) => reject(new Error(`serve exited ${c}: ${out}`)));
    });
    const client = new OpenAI({ apiKey: 'sk-x', baseURL: `${url}/openai/v1`, maxRetries: 0 });
    for (let i = 0; i < 3; i++) await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    fake.next({ delayMs: 5000 });
    const inflight = client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'slow' }] }).catch((e: Error) => e);
    await new Promise((r) => setTimeout(r, 300)); // the 3 calls completed > 100 ms ago; the 4th is in flight
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    await inflight;
    const out = execFileSync(process.execPath, [CLI, '--data-dir', dataDir, 'calls', '--json'], { encoding: 'utf8' });
    const calls = JSON.parse(out) as { status: string; estimated: boolean }[];
    assert.equal(calls.filter((c) => c.status === 'ok').length, 3);
    const interrupted = calls.filter((c) => c.status === 'interrupted');
    assert.equal(interrupted.length, 1);
    assert.equal(interrupted[0]!.estimated, true);
  } finally {
    await fake.close();
  }
});

test('control API: token required, foreign Host and Origin refused', async () => {
  const rig = await startRig(['openai']);
  try {
    const rpc = (headers: Record<string, string>) => fetch(`${rig.url}/_tollgate/rpc/caps`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{}' });
    assert.equal((await rpc({})).status, 401);
    assert.equal((await rpc({ 'x-tollgate-token': 'wrong' })).status, 401);
    assert.equal((await rpc({ 'x-tollgate-token': rig.engine.token })).status, 200);
    assert.equal((await rpc({ 'x-tollgate-token': rig.engine.token, origin: 'https://evil.example' })).status, 403);
    // DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends Host: evil.example
    const http = await import('node:http');
    const status = await new Promise<number>((resolve) => {
      http.request({ host: '127.0.0.1', port: rig.engine.port, path: '/_tollgate/rpc/caps', method: 'POST', headers: { host: 'evil.example:7411', 'x-tollgate-token': rig.engine.token } }, (r) => resolve(r.statusCode!)).end('{}');
    });
    assert.equal(status, 403);
    const bad = await rpc({ 'x-tollgate-token': rig.engine.token }).then(() => fetch(`${rig.url}/_tollgate/rpc/setCap`, { method: 'POST', headers: { 'x-tollgate-token': rig.engine.token }, body: JSON.stringify({ scope: 'global', period: 'month', limit: '-5' }) }));
    assert.equal(bad.status, 400);
    const tokenFile = path.join(rig.dataDir, 'control.token');
    assert.equal(fs.statSync(tokenFile).mode & 0o777, 0o600);
  } finally {
    await rig.close();
  }
});

test('local tgk_ keys: swapped for the real key, revocation is immediate, the real key is never stored in clear', async () => {
  const rig = await startRig(['openai']);
  const secret = 'sk-REAL-SECRET-' + 'q'.repeat(24);
  try {
    const out = await cli(['--data-dir', rig.dataDir, 'key', 'add', '--name', 'laptop', '--provider', 'openai', '--project', 'acme'], secret);
    const token = out.trim();
    assert.match(token, /^tgk_/);
    const client = new OpenAI({ apiKey: token, baseURL: `${rig.url}/openai/v1`, maxRetries: 0 });
    const { response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    assert.equal(rig.fakes.openai!.requests.at(-1)!.headers.authorization, `Bearer ${secret}`, 'the provider got the real key');
    const rec = await eventually(async () => { const c = await rig.engine.api.call({ id: response.headers.get('x-tollgate-call-id')! }); return c?.status === 'ok' ? c : null; });
    assert.equal(rec.project, 'acme');
    assert.equal(rec.keyName, 'laptop');
    await cli(['--data-dir', rig.dataDir, 'key', 'revoke', 'laptop']);
    await assert.rejects(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }), (e: { status?: number; message: string }) => e.status === 401 && /revoked/.test(e.message));
    rig.engine.flushQuietly();
    // scan everything in the data dir for the secret
    for (const f of fs.readdirSync(rig.dataDir)) {
      const bytes = fs.readFileSync(path.join(rig.dataDir, f));
      assert.equal(bytes.includes(Buffer.from(secret)), false, `${f} must not contain the key in clear`);
      assert.equal(bytes.includes(Buffer.from('REAL-SECRET')), false, `${f} must not contain part of the key`);
    }
  } finally {
    await rig.close();
  }
});

test('a ledger from a newer Tollgate is refused with both versions named', () => {
  const dir = tempDir();
  const L = new Ledger(dir);
  L.db.pragma('user_version = 99');
  L.close();
  assert.throws(() => new Ledger(dir), new RegExp(`schema version 99, newer than this Tollgate \\(${MIGRATIONS.length}\\)`));
});

test('a silent upstream is cut after the idle limit: a timeout error, and its reservation is released', async () => {
  const rig = await startRig(['openai'], { upstreamIdleMs: 300 });
  try {
    await rig.engine.api.setCap({ scope: 'global', period: 'month', limit: '10', hard: true });
    rig.fakes.openai!.next({ delayMs: 3000 });
    const client = new OpenAI({ apiKey: 'sk-x', baseURL: `${rig.url}/openai/v1`, maxRetries: 0 });
    await assert.rejects(client.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] }),
      (e: { status?: number; message: string }) => e.status === 504 && /gave up waiting/.test(e.message));
    const [cap] = await rig.engine.api.caps({});
    assert.equal(cap!.reserved, '0');
    const [call] = await rig.engine.api.calls({ limit: 1 });
    assert.equal(call!.status, 'error');
    assert.match(call!.error ?? '', /upstream timeout/);
  } finally {
    await rig.close();
  }
});

test('headers named in Connection are hop-by-hop and not forwarded', async () => {
  const rig = await startRig(['openai']);
  try {
    const http = await import('node:http');
    const body = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    const status = await new Promise<number>((resolve) => {
      http.request({ host: '127.0.0.1', port: rig.engine.port, path: '/openai/v1/chat/completions', method: 'POST',
        headers: { connection: 'keep-alive, x-private-hop', 'x-private-hop': 'secret', 'x-end-to-end': 'kept', 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (r) => { r.resume(); r.on('end', () => resolve(r.statusCode!)); }).end(body);
    });
    assert.equal(status, 200);
    const seen = rig.fakes.openai!.requests.at(-1)!.headers;
    assert.equal(seen['x-private-hop'], undefined);
    assert.equal(seen['x-end-to-end'], 'kept');
  } finally {
    await rig.close();
  }
});

test('headers an upstream names in its Connection header do not reach the client', async () => {
  const http = await import('node:http');
  const upstream = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const body = JSON.stringify({ id: 'x', object: 'chat.completion', model: 'gpt-4o-mini', choices: [], usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 } });
      res.writeHead(200, ['Content-Type', 'application/json', 'Connection', 'keep-alive, X-Upstream-Hop', 'X-Upstream-Hop', 'secret', 'X-End-To-End', 'kept', 'Content-Length', String(Buffer.byteLength(body))]);
      res.end(body);
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  const engine = await startEngine({ dataDir: tempDir(), port: 0, quiet: true, upstreams: { openai: `http://127.0.0.1:${(upstream.address() as { port: number }).port}` } });
  try {
    const res = await fetch(`${engine.url}/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer sk-x' }, body: JSON.stringify({ model: 'gpt-4o-mini', messages: [] }) });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-upstream-hop'), null);
    assert.equal(res.headers.get('x-end-to-end'), 'kept');
    assert.ok(res.headers.get('x-tollgate-call-id'));
    await res.text();
  } finally {
    await engine.stop();
    upstream.close();
  }
});

test('migrations are forward-only and carry data: a version-1 ledger gains all-time totals from its rollups', async () => {
  const dir = tempDir();
  const Database = (await import('better-sqlite3')).default;
  const db = new Database(path.join(dir, 'ledger.sqlite'));
  db.exec(MIGRATIONS[0]!);
  db.pragma('user_version = 1');
  db.prepare(`INSERT INTO rollups VALUES (0, 'openai', 'gpt-4o-mini', '', '', '', 3, 1500, 1), (3600000, 'anthropic', 'claude', 'acme', '', '', 2, 2500, 0)`).run();
  db.close();
  const L = new Ledger(dir);
  try {
    assert.equal(L.schemaVersion, MIGRATIONS.length);
    assert.deepEqual(L.totals(), { calls: 5, cost: 4000n, unpriced: 1 });
  } finally {
    L.close();
  }
});

test('a stored key this engine cannot decrypt gets a clear 401 in the client format, not a crash', async () => {
  const rig = await startRig(['anthropic']);
  try {
    const { token } = await rig.engine.api.addKey({ name: 'from-desktop', provider: 'anthropic', secret: 'sk-ant-real' });
    // what `tollgate serve` sees for a key the desktop app wrote with the OS keychain: a blob
    // another store wrote (here: the same blob with its store tag changed)
    rig.engine.ledger.db.prepare("UPDATE keys SET secret = X'02' || substr(secret, 2) WHERE name = 'from-desktop'").run();
    const res = await fetch(`${rig.url}/anthropic/v1/messages`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-api-key': token, 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 401);
    const body = await res.json() as { type: string; error: { type: string; message: string } };
    assert.equal(body.type, 'error');
    assert.match(body.error.message, /cannot decrypt the real key behind "from-desktop"/);
    assert.equal(rig.fakes.anthropic!.requests.length, 0);
  } finally {
    await rig.close();
  }
});
