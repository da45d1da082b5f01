#!/usr/bin/env node
/**
 * Packages the desktop app WITHOUT touching the repository's node_modules (see the comment at
 * the top of electron-builder.yml for why):
 *   1. stage release/.stage: package.json, dist-electron/, dist/renderer/, build/, the
 *      builder config and guard, and a copy of the production dependency closure (packages
 *      in package-lock.json not marked "dev"), plus the .tollgate-stage marker;
 *   2. run electron-builder with projectDir = the stage, so its @electron/rebuild of
 *      better-sqlite3 happens in the staging copy.
 * Extra arguments go to electron-builder: `node electron/package.mjs --linux`, `--mac`, `--win`.
 * Needs the network (Electron zip, better-sqlite3 Electron prebuild or headers), and macOS
 * for dmg, Windows (or wine) for nsis.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const stage = path.join(root, 'release', '.stage');
const need = ['dist-electron/electron/main.js', 'dist-electron/electron/preload.cjs', 'dist/renderer/index.html'];
const missing = need.filter((p) => !fs.existsSync(path.join(root, p)));
if (missing.length) {
  console.error(`missing ${missing.join(', ')}: run \`npm run build:renderer && node electron/build.mjs\` first`);
  process.exit(1);
}

const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8'));
const production = Object.entries(lock.packages ?? {})
  .filter(([p, meta]) => p.startsWith('node_modules/') && !meta.dev && !meta.link)
  .map(([p]) => p);

fs.rmSync(stage, { recursive: true, force: true });
fs.mkdirSync(stage, { recursive: true });
const copy = (rel) => {
  const from = path.join(root, rel);
  if (fs.existsSync(from)) fs.cpSync(from, path.join(stage, rel), { recursive: true, verbatimSymlinks: true });
};
for (const rel of ['package.json', 'package-lock.json', 'electron-builder.yml', 'electron/builder-guard.cjs', 'build', 'dist-electron', 'dist/renderer']) copy(rel);
// Nested production packages are copied with their parents; copy each top-level one once.
for (const p of production) if (!production.some((q) => q !== p && p.startsWith(`${q}/`))) copy(p);
// Electron itself is a devDependency and is not staged: pin its exact version instead.
const electronVersion = JSON.parse(fs.readFileSync(path.join(root, 'node_modules', 'electron', 'package.json'), 'utf8')).version;
fs.writeFileSync(path.join(stage, '.tollgate-stage'), 'staging copy made by electron/package.mjs\n');
console.log(`staged ${production.length} production packages in ${path.relative(root, stage)}`);

const bin = path.join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'electron-builder.cmd' : 'electron-builder');
const result = spawnSync(
  bin,
  ['--projectDir', stage, '--config', 'electron-builder.yml', `-c.directories.output=${path.join(root, 'release')}`, `-c.electronVersion=${electronVersion}`, ...process.argv.slice(2)],
  { cwd: stage, stdio: 'inherit', shell: process.platform === 'win32' }, // hooks resolve against cwd
);
process.exit(result.status ?? 1);
