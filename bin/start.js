#!/usr/bin/env node
// `npm start`: the desktop app when Electron's binary is installed, otherwise the headless
// engine with the UI in the default browser. Extra arguments are passed through
// (`npm start -- --port 5000`). TOLLGATE_HEADLESS=1 forces the browser mode.
//
// `npm install` does not run Electron's own download step (package.json allowScripts: it fetches
// the binary from GitHub, and a failed install step would abort the whole install). So the first
// `npm start` fetches it, once; where that is not possible (offline, GitHub blocked) it says so in
// one line and runs the headless engine instead. A failed fetch is not retried for a day.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const FETCH_MARKER = path.join(root, 'node_modules', '.cache', 'tollgate', 'electron-fetch-failed');
const RETRY_AFTER_MS = 24 * 3600_000;

/** The Electron executable's path, or null when the package or its binary is not there. */
function electronPath() {
  try {
    const p = require('electron'); // the npm package exports the binary's path, or throws without it
    return typeof p === 'string' && fs.existsSync(p) ? p : null;
  } catch {
    return null;
  }
}

/** { path } of the Electron executable, or { reason } why there is none. */
function findElectron() {
  if (process.env.TOLLGATE_HEADLESS === '1') return { reason: 'TOLLGATE_HEADLESS=1' };
  let pkgDir;
  try {
    pkgDir = path.dirname(require.resolve('electron/package.json'));
  } catch {
    return { reason: 'the electron package is not installed (it is optional)' };
  }
  const found = electronPath();
  if (found) return { path: found };
  try {
    const failedAt = Number(fs.readFileSync(FETCH_MARKER, 'utf8'));
    if (Date.now() - failedAt < RETRY_AFTER_MS && process.env.TOLLGATE_FETCH_ELECTRON !== '1') {
      return { reason: `its download failed at ${new Date(failedAt).toLocaleString()}; \`TOLLGATE_FETCH_ELECTRON=1 npm start\` tries again` };
    }
  } catch { /* never tried */ }
  console.log("Fetching Electron's binary (once, about 100 MB from GitHub)…");
  const env = { ...process.env };
  delete env.ELECTRON_SKIP_BINARY_DOWNLOAD;
  const r = spawnSync(process.execPath, [path.join(pkgDir, 'install.js')], { cwd: pkgDir, env, encoding: 'utf8', timeout: 180_000 });
  const again = electronPath();
  if (r.status === 0 && again) return { path: again };
  fs.mkdirSync(path.dirname(FETCH_MARKER), { recursive: true });
  fs.writeFileSync(FETCH_MARKER, String(Date.now()));
  const why = (r.error?.message ?? `${r.stderr ?? ''}`.split('\n').find((l) => /error/i.test(l)) ?? `exit ${r.status}`).trim();
  return { reason: `its download failed (${why.slice(0, 160)})` };
}

function run(cmd, cmdArgs, env = process.env) {
  const child = spawn(cmd, cmdArgs, { cwd: root, stdio: 'inherit', env });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      if (child.exitCode === null) child.kill(signal);
    });
  }
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
  child.on('error', (err) => {
    console.error(`could not start ${cmd}: ${err.message}`);
    process.exit(1);
  });
}

function buildStep(label, cmdArgs) {
  console.log(`${label}…`);
  const r = spawnSync(process.execPath, cmdArgs, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`${label} failed (exit ${r.status ?? r.signal}).`);
    process.exit(r.status ?? 1);
  }
}

/** The UI is built from source on first start (a fresh clone has no dist/). */
function ensureUi() {
  if (!fs.existsSync(path.join(root, 'dist', 'renderer', 'index.html'))) {
    buildStep('Building the UI (first start only, about half a minute)', [path.join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', 'renderer/vite.config.ts', '--logLevel', 'warn']);
  }
}

const electron = findElectron();
if (electron.path) {
  ensureUi();
  buildStep('Building the Electron shell', [path.join(root, 'electron', 'build.mjs')]); // esbuild, ~100 ms
  const env = { ...process.env };
  delete env.ELECTRON_RUN_AS_NODE; // would make Electron behave as plain Node
  run(electron.path, [root, ...args], env);
} else {
  console.log(`No desktop app here: Electron's binary is not installed (${electron.reason}). Starting the headless engine instead, with the UI in your browser.`);
  ensureUi();
  run(process.execPath, [path.join(root, 'bin', 'tollgate.js'), 'serve', '--open', ...args]);
}
