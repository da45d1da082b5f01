/**
 * Money and caps safety (issue 10): reservations released exactly once whatever happens to their
 * caps, one engine per data dir, a deleted ledger fails closed, caps that cannot be bypassed (a
 * key's bound project, key caps by name, unpriced models under a hard cap), private ledger files,
 * and headless alert lines. Driven as a user would: the official OpenAI SDK against the fake
 * upstream, the engine's API, real `tollgate serve` processes and the CLI.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile as execFileCb, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { startRig, eventually, tempDir } from '../fixtures/engine.ts';
import { startFakeUpstream } from '../fixtures/fake-upstream/index.ts';
import { usdToNano } from '../../shared/money.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(ROOT, 'bin/tollgate.js');
const execFileP = promisify(execFileCb);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Run the CLI without blocking this process's event loop; resolves with its exit code and output. */
async function cli(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    c.stdout.on('data', (d: Buffer) => { stdout += d; });
    c.stderr.on('data', (d: Buffer) => { stderr += d; });
    c.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    c.stdin.end(input ?? '');
  });
}
async function cliOk(args: string[], input?: string): Promise<string> {
  const r = await cli(args, input);
  assert.equal(r.code, 0, `tollgate ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

interface Served {
  child: ChildProcessWithoutNullStreams;
  url: string;
  stderr: () => string;
}

/** `tollgate serve` as a user runs it; resolves once it listens, rejects with its output if it exits first. */
function serve(dataDir: string, upstream: string): Promise<Served> {
  const child = spawn(process.execPath, [CLI, '--data-dir', dataDir, 'serve', '--port', '0', '--no-ui', '--upstream', `openai=${upstream}`], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /metering on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) resolve({ child, url: m[1]!, stderr: () => err });
    });
    child.once('exit', (code) => reject(Object.assign(new Error(`serve exited ${code}: ${out}${err}`), { exitCode: code, stderr: err })));
  });
}

async function kill(c: ChildProcessWithoutNullStreams, sig: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const gone = new Promise((r) => c.once('exit', r));
  c.kill(sig);
  await gone;
}

const chat = (client: OpenAI, model = 'gpt-4o-mini', max_tokens = 100) =>
  client.chat.completions.create({ model, max_tokens, messages: [{ role: 'user', content: 'hi' }] });

test('reservations belong to their calls: editing, adding, removing caps and pausing mid-flight releases each exactly once', async () => {
  const rig = await startRig(['openai']);
  try {
    rig.fakes.openai!.setDefault({ delayMs: 3000, usage: { prompt_tokens: 10, completion_tokens: 10 } });
    const cap = await rig.engine.api.setCap({ scope: 'global', period: 'month', limit: '100', hard: true, alerts: [50, 80, 100] });
    const doomed = await rig.engine.api.setCap({ scope: 'provider', scopeValue: 'openai', period: 'day', limit: '500', hard: true });
    const client = new OpenAI({ apiKey: 'sk-x', baseURL: `${rig.url}/openai/v1`, maxRetries: 0 });
    // gpt-4o with max_tokens 10,000: each call reserves about $0.11, $22 for the 200
    const settled = Promise.allSettled(Array.from({ length: 200 }, () => chat(client, 'gpt-4o', 10_000)));
    await eventually(() => rig.fakes.openai!.requests.length === 200, 'all 200 calls in flight', 20_000);
    const before = (await rig.engine.api.caps({})).find((s) => s.cap.id === cap.id)!;
    assert.ok(usdToNano(before.reserved) > usdToNano('10'), `reserved while in flight: ${before.reserved}`);
    // change everything about the caps while the calls are in flight
    await rig.engine.api.setCap({ id: cap.id, scope: 'global', period: 'month', limit: '90', hard: true });
    await rig.engine.api.removeCap({ id: doomed.id });
    const added = await rig.engine.api.setCap({ scope: 'provider', scopeValue: 'openai', period: 'week', limit: '1000', hard: true });
    await rig.engine.api.pause({});
    await rig.engine.api.resume({});
    await rig.engine.api.setCap({ id: cap.id, scope: 'global', period: 'month', limit: '95', hard: true });
    const mid = await rig.engine.api.caps({});
    const results = await settled;
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 200);
    await eventually(async () => (await rig.engine.api.caps({})).every((s) => s.reserved === '0'), 'every reservation released', 5000)
      .catch(async (e: Error) => assert.fail(`${e.message}: ${JSON.stringify((await rig.engine.api.caps({})).map((s) => s.reserved))}`));
    assert.equal(mid.find((s) => s.cap.id === cap.id)!.reserved, before.reserved, 'an edited cap keeps them, once');
    assert.equal(mid.find((s) => s.cap.id === added.id)!.reserved, before.reserved, 'a cap added mid-flight counts the open reservations too');
    // with nothing in flight, a $10 limit admits a call: no phantom reservation is left
    await rig.engine.api.setCap({ id: cap.id, scope: 'global', period: 'month', limit: '10', hard: true });
    rig.fakes.openai!.setDefault({});
    const ok = await chat(client, 'gpt-4o', 1000);
    assert.ok(ok.id);
    const [s] = (await rig.engine.api.caps({})).filter((x) => x.cap.id === cap.id);
    assert.equal(s!.reserved, '0');
  } finally {
    await rig.close();
  }
});

test('one engine per data dir: a second `tollgate serve` exits 1 naming the first, touches nothing; the lock dies with kill -9', async () => {
  const fake = await startFakeUpstream('openai', { quiet: true });
  const dataDir = tempDir();
  const children: ChildProcessWithoutNullStreams[] = [];
  try {
    const a = await serve(dataDir, fake.url);
    children.push(a.child);
    const client = new OpenAI({ apiKey: 'sk-x', baseURL: `${a.url}/openai/v1`, maxRetries: 0 });
    await chat(client);
    fake.next({ delayMs: 8000 });
    const inflight = chat(client).then((r) => r, (e: Error) => e);
    await sleep(400); // journaled as pending by now
    // the offline CLI (here: engine.json gone, as the second engine used to leave it) never
    // recovers calls the live engine owns
    fs.renameSync(path.join(dataDir, 'engine.json'), path.join(dataDir, 'engine.json.bak'));
    const offline = JSON.parse(await cliOk(['--data-dir', dataDir, 'calls', '--json'])) as { status: string }[];
    fs.renameSync(path.join(dataDir, 'engine.json.bak'), path.join(dataDir, 'engine.json'));
    assert.equal(offline.filter((c) => c.status === 'interrupted').length, 0, 'the offline CLI marked a live call interrupted');
    assert.equal(offline.filter((c) => c.status === 'pending').length, 1, 'the call was still in flight when the CLI looked');
    // the second engine
    const second = await serve(dataDir, fake.url).then((b) => { children.push(b.child); return null; }, (e: { exitCode: number; stderr: string }) => e);
    assert.ok(second, 'the second engine must not start');
    assert.equal(second.exitCode, 1);
    assert.match(second.stderr, new RegExp(`already running on this data dir .* at ${a.url.replace(/\./g, '\\.')} \\(pid ${a.child.pid}\\)`));
    const info = JSON.parse(fs.readFileSync(path.join(dataDir, 'engine.json'), 'utf8')) as { pid: number; url: string };
    assert.equal(info.pid, a.child.pid, 'engine.json still names the first engine');
    assert.equal((await cliOk(['--data-dir', dataDir, 'open', '--print-url'])).startsWith(`${a.url}/#token=`), true);
    assert.ok(!((await inflight) instanceof Error), 'the call in flight completes');
    const calls = await eventually(async () => {
      const rows = JSON.parse(await cliOk(['--data-dir', dataDir, 'calls', '--json'])) as { status: string; cost: string }[];
      return rows.length === 2 && rows.every((c) => c.status === 'ok') ? rows : null;
    }, 'both calls booked once, ok', 5000);
    assert.equal(calls.length, 2);
    // kill -9: the OS drops the lock, a new engine starts at once
    await kill(a.child);
    const c = await serve(dataDir, fake.url);
    children.push(c.child);
    const client2 = new OpenAI({ apiKey: 'sk-x', baseURL: `${c.url}/openai/v1`, maxRetries: 0 });
    await chat(client2);
    await kill(c.child, 'SIGTERM');
    assert.equal(fs.existsSync(path.join(dataDir, 'engine.json')), false, 'a clean stop removes its own engine.json');
    assert.match((await cli(['--data-dir', dataDir, 'open', '--print-url'])).stderr, /not running/);
  } finally {
    for (const ch of children) await kill(ch);
    await fake.close();
  }
});

test('a ledger file deleted while running: calls are refused (424, in the client format) instead of being lost', async () => {
  const rig = await startRig(['openai']);
  try {
    const client = new OpenAI({ apiKey: 'sk-x', baseURL: `${rig.url}/openai/v1`, maxRetries: 0 });
    await chat(client);
    rig.engine.flushQuietly(); // the call is written (and the ledger's writer thread has opened the file)
    fs.rmSync(path.join(rig.dataDir, 'ledger.sqlite'));
    const t0 = Date.now();
    // noticed within about a second (a timer checks the file, not each request)
    const err = await eventually(async () => {
      try {
        await chat(client);
        return null;
      } catch (e) {
        return e as InstanceType<typeof OpenAI.APIError>;
      }
    }, 'a refusal', 5000);
    assert.ok(Date.now() - t0 < 2500, `noticed after ${Date.now() - t0} ms`);
    assert.equal(err.status, 424);
    assert.match(err.message, /ledger file .*ledger\.sqlite was deleted while Tollgate was running/);
    assert.match(err.message, /restart Tollgate/);
    // from then on nothing reaches the provider
    const seen = rig.fakes.openai!.requests.length;
    await assert.rejects(chat(client), (e: { status?: number }) => e.status === 424);
    assert.equal(rig.fakes.openai!.requests.length, seen);
  } finally {
    await rig.close();
  }
});

test('a key bound to a project cannot move its calls to another project (header or /p/): refused with 403', async () => {
  const rig = await startRig(['openai']);
  try {
    const { token } = await rig.engine.api.addKey({ name: 'ci', provider: 'openai', project: 'projA', secret: 'sk-real-ci' });
    await rig.engine.api.setCap({ scope: 'project', scopeValue: 'projA', period: 'day', limit: '0.000001', hard: true });
    const plain = new OpenAI({ apiKey: token, baseURL: `${rig.url}/openai/v1`, maxRetries: 0 });
    const viaHeader = new OpenAI({ apiKey: token, baseURL: `${rig.url}/openai/v1`, maxRetries: 0, defaultHeaders: { 'x-tollgate-project': 'projB' } });
    const viaPath = new OpenAI({ apiKey: token, baseURL: `${rig.url}/p/projB/openai/v1`, maxRetries: 0 });
    const sameProject = new OpenAI({ apiKey: token, baseURL: `${rig.url}/p/projA/openai/v1`, maxRetries: 0 });
    await assert.rejects(chat(plain), (e: { status?: number; message: string }) => e.status === 402 && /project:projA/.test(e.message));
    await assert.rejects(chat(sameProject), (e: { status?: number }) => e.status === 402);
    for (const c of [viaHeader, viaPath]) {
      await assert.rejects(chat(c), (e: { status?: number; message: string }) => e.status === 403 && /bound to project "projA"/.test(e.message) && /"projB"/.test(e.message));
    }
    assert.equal(rig.fakes.openai!.requests.length, 0, 'nothing reached the provider');
  } finally {
    await rig.close();
  }
});

test('a cap on key:NAME (as the CLI asks for it) counts and blocks the calls made with that key', async () => {
  const rig = await startRig(['openai']);
  try {
    rig.fakes.openai!.setDefault({ usage: { prompt_tokens: 0, completion_tokens: 1000 } }); // $0.0006 a call
    const token = (await cliOk(['--data-dir', rig.dataDir, 'key', 'add', '--name', 'laptop', '--provider', 'openai'], 'sk-real-laptop')).trim();
    await cliOk(['--data-dir', rig.dataDir, 'cap', 'set', '--scope', 'key:laptop', '--period', 'day', '--limit', '1']);
    const client = new OpenAI({ apiKey: token, baseURL: `${rig.url}/openai/v1`, maxRetries: 0 });
    for (let i = 0; i < 10; i++) await chat(client);
    const listed = await eventually(async () => {
      const caps = JSON.parse(await cliOk(['--data-dir', rig.dataDir, 'cap', 'list', '--json'])) as { spent: string }[];
      return caps[0]!.spent === '0.006' ? caps : null;
    }, 'cap list shows the key\'s spend', 5000);
    assert.equal(listed[0]!.spent, '0.006');
    // a hard cap by name blocks the key
    await cliOk(['--data-dir', rig.dataDir, 'cap', 'set', '--scope', 'key:laptop', '--period', 'day', '--limit', '0.0065', '--hard']);
    await assert.rejects(client.chat.completions.create({ model: 'gpt-4o-mini', max_tokens: 1000, messages: [{ role: 'user', content: 'hi' }] }),
      (e: { status?: number; message: string }) => e.status === 402 && /key:laptop/.test(e.message));
    // another key is not covered by it
    const other = new OpenAI({ apiKey: 'sk-someone-else', baseURL: `${rig.url}/openai/v1`, maxRetries: 0 });
    await chat(other, 'gpt-4o-mini', 1000);
  } finally {
    await rig.close();
  }
});

test('fail-closed: an unpriced model under a hard cap is refused naming `tollgate prices set`; without a hard cap it runs and is booked unpriced', async () => {
  const rig = await startRig(['openai']);
  try {
    const client = new OpenAI({ apiKey: 'sk-x', baseURL: `${rig.url}/openai/v1`, maxRetries: 0 });
    // no hard cap: proceeds, recorded unpriced with a reason
    const soft = await rig.engine.api.setCap({ scope: 'global', period: 'month', limit: '10', hard: false });
    const { response } = await chat(client, 'my-finetune').withResponse();
    const id = response.headers.get('x-tollgate-call-id')!;
    const rec = await eventually(async () => { const c = await rig.engine.api.call({ id }); return c?.status === 'ok' ? c : null; }, 'the call booked');
    assert.equal(rec.unpriced, true);
    assert.match(rec.unpricedReason ?? '', /my-finetune/);
    // a hard cap: refused before anything is sent upstream
    await rig.engine.api.removeCap({ id: soft.id });
    const hard = await rig.engine.api.setCap({ scope: 'global', period: 'month', limit: '10', hard: true });
    const sent = rig.fakes.openai!.requests.length;
    await assert.rejects(chat(client, 'my-finetune'), (e: InstanceType<typeof OpenAI.APIError>) => {
      assert.equal(e.status, 402);
      assert.match(e.message, /openai:my-finetune has no price/);
      assert.match(e.message, /tollgate prices set openai:my-finetune input_mtok=/);
      assert.equal(e.headers?.get('x-tollgate-blocked-by'), hard.id);
      return true;
    });
    assert.equal(rig.fakes.openai!.requests.length, sent, 'never reached the provider');
    // a body sent as text/plain (a browser's simple request) is read as JSON all the same: the
    // unpriced model in it is refused like any other
    const plain = await fetch(`${rig.url}/openai/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'text/plain', authorization: 'Bearer sk-x' }, body: JSON.stringify({ model: 'my-finetune', max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] }) });
    assert.equal(plain.status, 402);
    assert.match(((await plain.json()) as { error: { message: string } }).error.message, /openai:my-finetune has no price/);
    assert.equal(rig.fakes.openai!.requests.length, sent, 'never reached the provider');
    // priced models still pass, and a price makes the unknown one pass too
    await chat(client);
    await rig.engine.api.setOverride({ provider: 'openai', model: 'my-finetune', prices: { input_mtok: '0.3', output_mtok: '1.2' }, note: null });
    await chat(client, 'my-finetune');
  } finally {
    await rig.close();
  }
});

test('ledger files are private: ledger.sqlite, -wal, -shm, engine.json and the lock are 0600, the data dir 0700', { skip: process.platform === 'win32' }, async () => {
  const parent = tempDir();
  const dataDir = path.join(parent, 'fresh');
  const old = process.umask(0o022);
  const rig = await startRig(['openai'], { dataDir });
  try {
    const client = new OpenAI({ apiKey: 'sk-x', baseURL: `${rig.url}/openai/v1`, maxRetries: 0 });
    await chat(client);
    rig.engine.flushQuietly();
    assert.equal(fs.statSync(dataDir).mode & 0o777, 0o700);
    for (const f of ['ledger.sqlite', 'ledger.sqlite-wal', 'ledger.sqlite-shm', 'engine.json', 'engine.lock', 'control.token']) {
      assert.equal(fs.statSync(path.join(dataDir, f)).mode & 0o777, 0o600, `${f} is 0600`);
    }
  } finally {
    await rig.close();
    process.umask(old);
  }
  // an existing ledger left 0644 by an older Tollgate is tightened when opened
  fs.chmodSync(path.join(dataDir, 'ledger.sqlite'), 0o644);
  fs.chmodSync(dataDir, 0o755);
  const again = await startRig(['openai'], { dataDir });
  try {
    assert.equal(fs.statSync(path.join(dataDir, 'ledger.sqlite')).mode & 0o777, 0o600);
    assert.equal(fs.statSync(dataDir).mode & 0o777, 0o700);
  } finally {
    await again.close();
  }
});

test('headless: a cap set past a threshold logs an alert at once, a block logs once, and no message mentions the tray', async () => {
  const fake = await startFakeUpstream('openai', { quiet: true });
  fake.setDefault({ usage: { prompt_tokens: 0, completion_tokens: 1000 } }); // $0.0006 a call
  const dataDir = tempDir();
  let a: Served | null = null;
  try {
    a = await serve(dataDir, fake.url);
    const client = new OpenAI({ apiKey: 'sk-x', baseURL: `${a.url}/openai/v1`, maxRetries: 0 });
    await chat(client, 'gpt-4o-mini', 1000);
    // $0.0006 of $0.0007 is 85 %: the 80 % alert fires when the cap is set, with no further call
    await cliOk(['--data-dir', dataDir, 'cap', 'set', '--scope', 'global', '--period', 'month', '--limit', '0.0007', '--hard']);
    const line = await eventually(() => a!.stderr().split('\n').find((l) => /alert: cap "all spend per month" .* reached 80 % of its limit/.test(l)), 'the alert line', 5000);
    assert.match(line, /spent \$0\.0006 of \$0\.0007/);
    for (let i = 0; i < 3; i++) await assert.rejects(chat(client, 'gpt-4o-mini', 1000), (e: { status?: number }) => e.status === 402);
    await eventually(() => /blocked: cap "all spend per month" .* refused a call/.test(a!.stderr()), 'the block line', 5000);
    assert.equal(a.stderr().match(/blocked: cap/g)!.length, 1, 'one block line per episode, not per refused call');
    await cliOk(['--data-dir', dataDir, 'pause']);
    await assert.rejects(chat(client), (e: { status?: number; message: string }) => e.status === 402 && /paused/.test(e.message) && !/tray/i.test(e.message));
    assert.doesNotMatch(a.stderr(), /tray/i);
  } finally {
    if (a) await kill(a.child);
    await fake.close();
  }
});

test('a cap set past a threshold while no engine runs alerts once when the engine starts', async () => {
  const fake = await startFakeUpstream('openai', { quiet: true });
  fake.setDefault({ usage: { prompt_tokens: 0, completion_tokens: 1000 } }); // $0.0006 a call
  const dataDir = tempDir();
  let a: Served | null = null;
  try {
    a = await serve(dataDir, fake.url);
    await chat(new OpenAI({ apiKey: 'sk-x', baseURL: `${a.url}/openai/v1`, maxRetries: 0 }), 'gpt-4o-mini', 1000);
    await kill(a.child, 'SIGTERM');
    await cliOk(['--data-dir', dataDir, 'cap', 'set', '--scope', 'global', '--period', 'month', '--limit', '0.001']); // 60 %
    a = await serve(dataDir, fake.url);
    await eventually(() => /alert: cap "all spend per month" .* reached 50 % of its limit/.test(a!.stderr()), 'the alert line at start', 5000);
    const caps = JSON.parse((await cliOk(['--data-dir', dataDir, 'cap', 'list', '--json']))) as { percent: number }[];
    assert.equal(caps[0]!.percent, 60);
  } finally {
    if (a) await kill(a.child);
    await fake.close();
  }
});
