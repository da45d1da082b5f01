/**
 * The ONE file of the shell that imports the engine (electron/engine/engine.ts). The engine
 * runs in the main process (see the note at the top of main.ts); if that decision is ever
 * reversed, this is the seam: replace `startEngine` with a utilityProcess + MessagePort
 * client exposing the same `EngineHost`.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { EngineEvent, TollgateApi } from '../shared/api.ts';
import { API_METHODS } from '../shared/api.ts';
import { defaultDataDir, startEngine } from './engine/engine.ts';
import type { Engine, EngineOptions } from './engine/engine.ts';

export { defaultDataDir };
export type { Engine, EngineOptions };

export interface EngineHost {
  /** Calls wait for the engine to be up; they reject if it failed to start. */
  readonly api: TollgateApi;
  readonly engine: Engine | null;
  start(): Promise<Engine>;
  /** Works before start: listeners are attached to the engine once it is up. */
  subscribe(listener: (e: EngineEvent) => void): () => void;
  /** Idempotent; resolves within `timeoutMs` even if the engine hangs. */
  stop(timeoutMs?: number): Promise<void>;
}

export function createEngineHost(opts: EngineOptions, log: (msg: string) => void = console.warn): EngineHost {
  let engine: Engine | null = null;
  let starting: Promise<Engine> | null = null;
  let stopping: Promise<void> | null = null;
  const listeners = new Set<(e: EngineEvent) => void>();
  let unsubscribeEngine: (() => void) | null = null;
  let stopLagMonitor: (() => void) | null = null;

  const fanOut = (e: EngineEvent): void => {
    for (const l of listeners) {
      try {
        l(e);
      } catch (err) {
        log(`engine event listener failed: ${String(err)}`);
      }
    }
  };

  const start = (): Promise<Engine> => {
    if (starting) return starting;
    starting = startEngine(opts).then((e: Engine) => {
      engine = e;
      unsubscribeEngine = e.subscribe(fanOut);
      stopLagMonitor = watchEventLoopLag(log);
      return e;
    });
    return starting;
  };

  const ready = (): Promise<Engine> => {
    if (stopping) return Promise.reject(Object.assign(new Error('the engine is stopping'), { code: 'E_STOPPING' }));
    return starting ?? Promise.reject(Object.assign(new Error('the engine has not been started'), { code: 'E_NOT_READY' }));
  };

  const api = Object.fromEntries(
    API_METHODS.map((m) => [
      m,
      async (arg: unknown) => {
        const e = await ready();
        return (e.api[m] as (a: unknown) => Promise<unknown>).call(e.api, arg);
      },
    ]),
  ) as unknown as TollgateApi;

  return {
    api,
    get engine() {
      return engine;
    },
    start,
    subscribe(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    stop(timeoutMs = 5_000) {
      stopping ??= (async () => {
        stopLagMonitor?.();
        unsubscribeEngine?.();
        const e = engine ?? (starting ? await starting.catch(() => null) : null);
        if (!e) return;
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            log(`engine did not stop within ${timeoutMs} ms; quitting anyway`);
            resolve();
          }, timeoutMs);
        });
        try {
          await Promise.race([e.stop(), timeout]);
        } finally {
          clearTimeout(timer);
        }
      })();
      return stopping;
    },
  };
}

/**
 * Keeps the main-process decision honest: if synchronous engine work (SQLite, tokenizing)
 * ever stalls the main thread noticeably, say so in the log.
 */
function watchEventLoopLag(log: (msg: string) => void): () => void {
  const h = monitorEventLoopDelay({ resolution: 20 });
  h.enable();
  const timer = setInterval(() => {
    const p99ms = h.percentile(99) / 1e6;
    if (p99ms > 100) {
      log(`main-process event loop p99 delay ${p99ms.toFixed(0)} ms over the last minute: consider moving the engine to a utilityProcess (electron/engine-host.ts)`);
    }
    h.reset();
  }, 60_000);
  timer.unref();
  return () => {
    clearInterval(timer);
    h.disable();
  };
}
