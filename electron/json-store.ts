/**
 * A small synchronous JSON file (notification memory, desktop preferences). Writes go to a
 * temp file renamed over the target, so a crash never leaves half a file. No electron import.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { JsonStore } from './notify-policy.ts';

export function createJsonFileStore(file: string): JsonStore {
  return {
    load(): unknown {
      try {
        return JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
      } catch {
        return undefined; // missing or corrupt: start fresh
      }
    },
    save(value: unknown): void {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(value), { mode: 0o600 });
      fs.renameSync(tmp, file);
    },
  };
}

export function createMemoryJsonStore(initial?: unknown): JsonStore & { value: unknown } {
  const store = {
    value: initial === undefined ? undefined : (JSON.parse(JSON.stringify(initial)) as unknown),
    load(): unknown {
      return store.value === undefined ? undefined : (JSON.parse(JSON.stringify(store.value)) as unknown);
    },
    save(value: unknown): void {
      store.value = JSON.parse(JSON.stringify(value)) as unknown;
    },
  };
  return store;
}

/** Desktop-only preferences that are not engine settings. */
export interface DesktopPrefs {
  startAtLogin: boolean;
  doNotDisturb: boolean;
}

export function loadDesktopPrefs(store: JsonStore): DesktopPrefs {
  const raw = store.load() as Partial<Record<keyof DesktopPrefs, unknown>> | undefined;
  return {
    startAtLogin: raw?.startAtLogin === true,
    doNotDisturb: raw?.doNotDisturb === true,
  };
}
