/** Where Tollgate keeps its data, per OS convention (XDG on Linux, Application Support, AppData). */
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
