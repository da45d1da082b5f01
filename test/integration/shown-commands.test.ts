/**
 * Every `npx tollgate …` command that the README or the UI shows a user runs as written.
 *
 * The commands are extracted from the README (its ```sh blocks and inline code) and from the
 * renderer's sources (Settings and snippets), then run one by one, in a shell, from a scratch
 * folder holding the files the README refers to (body.json, data.json, shots.yaml from the README's own
 * workflow example), against a real `serve` started by the README's own serve line. The only
 * substitutions: `npx tollgate` → this checkout's bin, `--port N` → `--port 0` (tests never take a
 * fixed port), and CAP_ID → the id of the cap the README created.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from '../fixtures/engine.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = `${JSON.stringify(process.execPath)} ${JSON.stringify(path.join(ROOT, 'bin/tollgate.js'))}`;
const SUBCOMMANDS = 'serve|open|start|prices|quote|compare|cap|pause|resume|key|report|calls|runs|export|sync|statement|credits';

function readmeCommands(): string[] {
  const md = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const out: string[] = [];
  for (const block of md.matchAll(/```sh\n([^]*?)```/g)) {
    for (const line of block[1]!.split('\n')) {
      const cmd = line.replace(/\s+#.*$/, '').trim();
      if (cmd.includes('npx tollgate')) out.push(cmd);
    }
  }
  for (const m of md.matchAll(/`(npx tollgate [^`]*)`/g)) if (!m[1]!.includes('…')) out.push(m[1]!);
  return [...new Set(out)];
}

function rendererFiles(dir = path.join(ROOT, 'renderer/src')): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => e.isDirectory() ? rendererFiles(path.join(dir, e.name)) : /\.tsx?$/.test(e.name) ? [path.join(dir, e.name)] : []);
}

function uiCommands(): { commands: string[]; withoutNpx: string[] } {
  const commands: string[] = [];
  const withoutNpx: string[] = [];
  const bare = new RegExp(`(?<![\\w/-]|npx )tollgate (${SUBCOMMANDS})\\b[^\`'"<\\n]*`, 'g');
  for (const file of rendererFiles()) {
    if (file.includes(`${path.sep}bridge${path.sep}`)) continue; // not shown to users
    const src = fs.readFileSync(file, 'utf8');
    for (const m of src.matchAll(/npx tollgate [^`'"<\n{}]*/g)) commands.push(m[0].trim());
    for (const m of src.matchAll(bare)) withoutNpx.push(`${path.relative(ROOT, file)}: ${m[0]}`);
  }
  return { commands: [...new Set(commands)], withoutNpx };
}

interface Run { code: number | null; stdout: string; stderr: string }

function sh(cmd: string, cwd: string, env: NodeJS.ProcessEnv): Run {
  const r = spawnSync('bash', ['-c', cmd.replaceAll('npx tollgate', BIN)], { cwd, env, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Start a `serve` line; resolves with its URL once it is metering. */
async function startServe(cmd: string, cwd: string, env: NodeJS.ProcessEnv) {
  const line = cmd.replaceAll('npx tollgate', BIN).replace(/--port \d+/, '--port 0') + (/--port/.test(cmd) ? '' : ' --port 0');
  const child = spawn('bash', ['-c', `exec ${line}`], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d; });
  child.stderr.on('data', (d: Buffer) => { out += d; });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`\`${cmd}\` did not start in 30 s:\n${out}`)), 30_000);
    const check = () => {
      const m = /metering on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]!); }
    };
    child.stdout.on('data', check);
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`\`${cmd}\` exited ${code}:\n${out}`)); });
  });
  return {
    url, output: () => out,
    async stop() {
      child.removeAllListeners('exit');
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      return exited;
    },
  };
}

function scratch(): { cwd: string; env: NodeJS.ProcessEnv; browserLog: string } {
  const cwd = tempDir('tollgate-readme-');
  const md = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const yaml = /```yaml\n([^]*?)```/.exec(md);
  assert.ok(yaml, 'the README shows a workflow file');
  fs.writeFileSync(path.join(cwd, 'shots.yaml'), yaml[1]!);
  fs.writeFileSync(path.join(cwd, 'body.json'), JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 1024, messages: [{ role: 'user', content: 'Write a haiku about invoices.' }] }));
  // a genai-prices data file, as `prices update --from data.json` loads it
  fs.copyFileSync(path.join(ROOT, 'test/fixtures/price-data/genai-prices-newer.json'), path.join(cwd, 'data.json'));
  // A stand-in browser: records what it was asked to open.
  const browserLog = path.join(cwd, 'browser.log');
  const browser = path.join(cwd, 'fake-browser.sh');
  fs.writeFileSync(browser, `#!/bin/sh\nprintf '%s\\n' "$@" >> ${JSON.stringify(browserLog)}\n`, { mode: 0o755 });
  const env: NodeJS.ProcessEnv = { ...process.env, TOLLGATE_DATA_DIR: path.join(cwd, 'data'), OPENAI_API_KEY: 'sk-readme-test-0000000000000000', BROWSER: browser };
  delete env.TOLLGATE_PORT;
  return { cwd, env, browserLog };
}

test('every npx tollgate command in the README runs as written', async () => {
  const commands = readmeCommands();
  assert.ok(commands.length >= 20, `found only ${commands.length} commands in the README`);
  // No `[--optional]` syntax, no placeholders, and no `a | b` alternatives after a tollgate command
  // (pasted into a shell, `|` pipes one command into the next).
  for (const c of commands) assert.doesNotMatch(c, /\[--|…|npx tollgate[^|]*\|/, `not runnable as written: ${c}`);
  const { cwd, env, browserLog } = scratch();
  const serves = commands.filter((c) => /^npx tollgate serve\b/.test(c));
  const main = serves.find((c) => !c.includes('--open') && !c.includes('--upstream'));
  assert.ok(main, 'the README shows how to start the engine');
  const engine = await startServe(main, cwd, env);
  const failures: string[] = [];
  try {
    for (const cmd of commands) {
      if (cmd === main) continue;
      if (/^npx tollgate serve\b/.test(cmd)) {
        // Other serve lines get their own data dir: one engine per data dir.
        const other = await startServe(cmd, cwd, { ...env, TOLLGATE_DATA_DIR: path.join(cwd, `data-${Math.random().toString(36).slice(2)}`) });
        const code = await other.stop();
        if (code !== 0) failures.push(`${cmd}\n  exit ${code} after SIGTERM\n${other.output()}`);
        continue;
      }
      let line = cmd;
      if (line.includes('CAP_ID')) {
        const caps = JSON.parse(sh('npx tollgate cap list --json', cwd, env).stdout) as { cap: { id: string } }[];
        assert.ok(caps.length, 'the README creates a cap before removing one');
        line = line.replace('CAP_ID', caps[0]!.cap.id);
      }
      const r = sh(line, cwd, env);
      if (r.code !== 0) failures.push(`${cmd}\n  exit ${r.code}\n${r.stdout}${r.stderr}`);
    }
  } finally {
    const code = await engine.stop();
    assert.equal(code, 0, `serve exits cleanly on SIGTERM:\n${engine.output()}`);
  }
  assert.deepEqual(failures, [], failures.join('\n\n'));
  // `npx tollgate open` handed the browser a file, never the token itself.
  const opened = fs.readFileSync(browserLog, 'utf8').trim().split('\n');
  for (const arg of opened) {
    // The page lives in the data dir of the engine it opens (README's `serve --open` has its own).
    const token = fs.readFileSync(path.join(path.dirname(arg), 'control.token'), 'utf8').trim();
    assert.ok(!arg.includes(token), 'the token is never on a command line');
    assert.ok(fs.readFileSync(arg, 'utf8').includes(`#token=${token}`), 'the redirect page carries the token in the fragment');
    assert.equal(fs.statSync(arg).mode & 0o077, 0, 'the redirect page is readable by the user only');
  }
  assert.ok(opened.length >= 1, 'the README\'s `open` reached the browser');
});

test('the serve output gives the signed-in link, and --open never claims a browser it did not open', async () => {
  const { cwd, env } = scratch();
  const engine = await startServe('npx tollgate serve --open', cwd, { ...env, BROWSER: 'none' });
  try {
    await new Promise((r) => setTimeout(r, 200));
    const token = fs.readFileSync(path.join(env.TOLLGATE_DATA_DIR!, 'control.token'), 'utf8').trim();
    assert.ok(engine.output().includes(`${engine.url}/#token=${token}`), engine.output());
    assert.match(engine.output(), /Did not open a browser \(BROWSER=none\)/);
    assert.doesNotMatch(engine.output(), /Opened/);
    const r = sh('npx tollgate open', cwd, { ...env, BROWSER: 'none' });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /Could not open a browser \(BROWSER=none\)\. Open this link yourself/);
    assert.ok(r.stdout.includes(`#token=${token}`));
  } finally {
    await engine.stop();
  }
});

test('every tollgate command the UI shows runs as written', async () => {
  const { commands, withoutNpx } = uiCommands();
  assert.deepEqual(withoutNpx, [], 'commands in the UI are shown as they run from a checkout (npx tollgate …)');
  assert.ok(commands.length >= 2, `found ${commands.length} commands in the UI`);
  const { cwd, env } = scratch();
  const failures: string[] = [];
  // The UI is only ever shown by a running engine, so its commands run next to one (`open` needs it).
  const engine = await startServe('npx tollgate serve', cwd, { ...env, BROWSER: 'true' });
  try {
    for (const cmd of commands) {
      if (cmd.includes('…')) {
        failures.push(`${cmd}\n  has a placeholder (…): show a command that runs`);
        continue;
      }
      if (/^npx tollgate serve\b/.test(cmd)) {
        // its own data dir: one engine per data dir
        const e = await startServe(cmd, cwd, { ...env, TOLLGATE_DATA_DIR: path.join(cwd, `data-${Math.random().toString(36).slice(2)}`) });
        const code = await e.stop();
        if (code !== 0) failures.push(`${cmd}\n  exit ${code}`);
        continue;
      }
      const r = sh(cmd, cwd, { ...env, BROWSER: 'true' });
      if (r.code !== 0) failures.push(`${cmd}\n  exit ${r.code}\n${r.stdout}${r.stderr}`);
    }
  } finally {
    await engine.stop();
  }
  assert.deepEqual(failures, [], failures.join('\n\n'));
});
