/** Where Tollgate keeps its data, per OS convention (XDG on Linux, Application Support, AppData). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const DEFAULT_PORT = 7411;

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  if (env.TOLLGATE_DATA_DIR) return path.resolve(env.TOLLGATE_DATA_DIR);
  const home = os.homedir();
  if (platform === 'darwin') return path.join(home, 'Library', 'Application Support', 'Tollgate');
  if (platform === 'win32') return path.join(env.APPDATA ?? path.join(home, 'AppData', 'Roaming'), 'Tollgate');
  return path.join(env.XDG_CONFIG_HOME ?? path.join(home, '.config'), 'tollgate');
}

export function defaultPort(env: NodeJS.ProcessEnv = process.env): number {
  const p = env.TOLLGATE_PORT ? Number(env.TOLLGATE_PORT) : DEFAULT_PORT;
  if (!Number.isInteger(p) || p < 0 || p > 65535) throw new Error(`TOLLGATE_PORT must be a port number, got "${env.TOLLGATE_PORT}"`);
  return p;
}

/**
 * Create the data dir private to its user (0700), or tighten it when it exists with group or
 * other access: it holds the ledger, the control token and the encrypted keys. Not on Windows
 * (ACLs, not modes) and not a directory another user owns.
 */
export function ensurePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (process.platform === 'win32') return;
  try {
    const st = fs.statSync(dir);
    if ((st.mode & 0o077) !== 0 && st.uid === process.getuid?.()) fs.chmodSync(dir, st.mode & 0o700);
  } catch { /* best effort: the files inside are 0600 anyway */ }
}

/** Make a file private to its user (0600) if it exists. */
export function makePrivate(file: string): void {
  if (process.platform === 'win32') return;
  try {
    if ((fs.statSync(file).mode & 0o077) !== 0) fs.chmodSync(file, 0o600);
  } catch { /* not there */ }
}
