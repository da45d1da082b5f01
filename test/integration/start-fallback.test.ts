/** `npm start` without Electron's binary: one line of explanation, then the headless engine. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from '../fixtures/engine.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

function electronBinary(): string | null {
  try {
    const p = createRequire(import.meta.url)('electron') as unknown;
    return typeof p === 'string' && fs.existsSync(p) ? p : null;
  } catch {
    return null;
  }
}

test('npm start falls back to tollgate serve with a one-line explanation when Electron is absent', async (t) => {
  const bin = electronBinary();
  if (bin) {
    t.skip(`Electron's binary is installed here (${bin}): npm start would launch the desktop app, covered by test/e2e/electron.test.ts`);
    return;
  }
  const dataDir = tempDir();
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/start.js'), '--port', '0'], { env: { ...process.env, TOLLGATE_DATA_DIR: dataDir, BROWSER: 'none' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d; });
  child.stderr.on('data', (d: Buffer) => { out += d; });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no engine after 30 s:\n${out}`)), 30_000);
      child.stdout.on('data', () => {
        const m = /metering on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (m) { clearTimeout(timer); resolve(m[1]!); }
      });
    });
    // One line says why there is no desktop app (after a one-time "Fetching Electron's binary" when
    // it has not been tried yet) and what runs instead.
    const lines = out.split('\n');
    const why = lines.findIndex((l) => /^No desktop app here: Electron's binary is not installed \(.+\)\. Starting the headless engine instead, with the UI in your browser\.$/.test(l));
    assert.ok(why === 0 || (why === 1 && /^Fetching Electron's binary/.test(lines[0]!)), out);
    const health = await fetch(`${url}/_tollgate/health`);
    assert.equal(health.status, 200);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
});
