#!/usr/bin/env node
/**
 * Builds the Electron shell into dist-electron/ with esbuild (offline, ~100 ms):
 *   electron/main.ts    → dist-electron/electron/main.js     ESM (package.json "main")
 *   electron/preload.ts → dist-electron/electron/preload.cjs CommonJS, fully bundled
 * Why bundle rather than tsc-emit: sources import each other with `.ts` extensions, and a
 * sandboxed preload cannot be ESM nor `require` anything but a few Electron-provided
 * modules, so it must be one self-contained CommonJS file.
 * npm dependencies stay external in main (native better-sqlite3, pino's worker transports);
 * electron-builder ships them from node_modules.
 *
 * Usage: node electron/build.mjs [--watch]
 */
import { build, context } from 'esbuild';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = path.join(root, 'dist-electron', 'electron');
const watch = process.argv.includes('--watch');

/** @type {import('esbuild').BuildOptions} */
const common = {
  bundle: true,
  platform: 'node',
  target: 'node22',
  sourcemap: 'linked',
  logLevel: 'warning',
  absWorkingDir: root,
};

/** @type {import('esbuild').BuildOptions[]} */
const builds = [
  {
    ...common,
    entryPoints: ['electron/main.ts'],
    outfile: path.join(out, 'main.js'),
    format: 'esm',
    packages: 'external',
    // Bundled first-party code may still call require(): give ESM a real one.
    banner: { js: "import { createRequire as __tgCreateRequire } from 'node:module'; const require = __tgCreateRequire(import.meta.url);" },
  },
  {
    ...common,
    entryPoints: ['electron/preload.ts'],
    outfile: path.join(out, 'preload.cjs'),
    format: 'cjs',
    external: ['electron'],
  },
];

if (watch) {
  for (const options of builds) await (await context(options)).watch();
  console.log('watching electron/ …');
} else {
  await Promise.all(builds.map((options) => build(options)));
}
