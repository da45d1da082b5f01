#!/usr/bin/env node
// `npm start`: the desktop app when Electron's binary is installed, otherwise the headless
// engine with the UI in the default browser. Extra arguments are passed through
// (`npm start -- --port 5000`). TOLLGATE_HEADLESS=1 forces the browser mode.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const args = process.argv.slice(2);

/** { path } of the Electron executable, or { reason } why there is none. */
function findElectron() {
  if (process.env.TOLLGATE_HEADLESS === '1') return { reason: 'TOLLGATE_HEADLESS=1' };
  let resolved;
  try {
    resolved = require('electron'); // the npm package exports the binary's path
  } catch (err) {
    void err; // "Electron failed to install correctly…": the package is there, its binary is not
    return { reason: 'node_modules/electron has no downloaded binary; its install step needs the network' };
  }
  if (typeof resolved !== 'string' || !fs.existsSync(resolved)) {
    return { reason: `require('electron') points to ${String(resolved)}, which does not exist` };
  }
  return { path: resolved };
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
  const r = spawnSync(process.execPath, cmdArgs, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`${label} failed (exit ${r.status ?? r.signal}).`);
    process.exit(r.status ?? 1);
  }
}

const electron = findElectron();
if (electron.path) {
  if (!fs.existsSync(path.join(root, 'dist', 'renderer', 'index.html'))) {
    buildStep('building the UI', [path.join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', 'renderer/vite.config.ts']);
  }
  buildStep('building the Electron shell', [path.join(root, 'electron', 'build.mjs')]); // esbuild, ~100 ms
  const env = { ...process.env };
  delete env.ELECTRON_RUN_AS_NODE; // would make Electron behave as plain Node
  run(electron.path, [root, ...args], env);
} else {
  console.log(`Electron's binary is not installed here (${electron.reason}); starting the headless engine and opening the UI in your browser instead.`);
  run(process.execPath, [path.join(root, 'bin', 'tollgate.js'), 'serve', '--open', ...args]);
}
