import {
  API_METHODS,
  CONTROL_PREFIX,
  TOKEN_HEADER,
  type ApiArg,
  type ApiMethod,
  type ApiResult,
  type EngineEvent,
  type TollgateApi,
  type TollgateBridge,
} from '../../../shared/api.ts';
import { ApiCallError, isApiError, isErrorEnvelope } from './errors.ts';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting';

export interface HttpBridgeOptions {
  /** origin of the control API; '' (default) = same origin as the page */
  baseUrl?: string;
  token: string;
  /** SSE connection state changes (for a status indicator) */
  onConnection?: (state: ConnectionState, detail?: string) => void;
  /** called when the engine rejects the token (401/403) */
  onUnauthorized?: () => void;
  /** injectable for tests */
  fetch?: typeof fetch;
}

const MIN_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 15_000;

/**
 * The HTTP + SSE transport. Every method `m` is `POST {CONTROL_PREFIX}/rpc/{m}` with the JSON
 * argument as body and the token in a header; events come from `GET {CONTROL_PREFIX}/events`
 * read with fetch (so the token is a header, never part of a URL).
 */
export function createHttpBridge(opts: HttpBridgeOptions): TollgateBridge {
  const base = (opts.baseUrl ?? '').replace(/\/+$/, '');
  const doFetch = opts.fetch ?? globalThis.fetch.bind(globalThis);

  async function rpc<M extends ApiMethod>(method: M, arg: ApiArg<M>): Promise<ApiResult<M>> {
    let res: Response;
    try {
      res = await doFetch(`${base}${CONTROL_PREFIX}/rpc/${method}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', [TOKEN_HEADER]: opts.token },
        body: JSON.stringify(arg ?? {}),
        cache: 'no-store',
      });
    } catch (err) {
      throw new ApiCallError({ code: 'E_NETWORK', message: `Cannot reach the Tollgate engine (${(err as Error).message ?? err})` });
    }
    let body: unknown = null;
    const text = await res.text();
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = null;
      }
    }
    if (!res.ok) {
      if (res.status === 401 || res.status === 403) opts.onUnauthorized?.();
      if (isErrorEnvelope(body)) throw new ApiCallError(body.error, res.status);
      if (isApiError(body)) throw new ApiCallError(body, res.status);
      throw new ApiCallError({ code: res.status === 401 ? 'E_UNAUTHORIZED' : 'E_HTTP', message: `HTTP ${res.status} ${res.statusText}`.trim() }, res.status);
    }
    if (isErrorEnvelope(body)) throw new ApiCallError(body.error, res.status);
    return body as ApiResult<M>;
  }

  // The method table, built generically from API_METHODS.
  const api = {} as Record<ApiMethod, (arg: unknown) => Promise<unknown>>;
  for (const method of API_METHODS) {
    api[method] = (arg: unknown) => rpc(method, arg as ApiArg<typeof method>);
  }

  // One shared SSE connection, ref-counted across subscribers.
  const listeners = new Set<(event: EngineEvent) => void>();
  let controller: AbortController | null = null;

  function dispatch(event: EngineEvent): void {
    for (const l of [...listeners]) {
      try {
        l(event);
      } catch (err) {
        console.error('tollgate event listener failed', err);
      }
    }
  }

  async function runStream(ctrl: AbortController): Promise<void> {
    let backoff = MIN_BACKOFF_MS;
    let first = true;
    while (!ctrl.signal.aborted) {
      opts.onConnection?.(first ? 'connecting' : 'reconnecting');
      first = false;
      try {
        const res = await doFetch(`${base}${CONTROL_PREFIX}/events`, {
          headers: { accept: 'text/event-stream', [TOKEN_HEADER]: opts.token },
          cache: 'no-store',
          signal: ctrl.signal,
        });
        if (res.status === 401 || res.status === 403) opts.onUnauthorized?.();
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        opts.onConnection?.('open');
        backoff = MIN_BACKOFF_MS;
        await readSse(res.body, ctrl.signal, dispatch);
        if (!ctrl.signal.aborted) opts.onConnection?.('reconnecting', 'stream ended');
      } catch (err) {
        if (ctrl.signal.aborted) return;
        opts.onConnection?.('reconnecting', (err as Error).message);
      }
      if (ctrl.signal.aborted) return;
      // exponential backoff with jitter
      const wait = backoff + Math.floor(Math.random() * (backoff / 2));
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      await sleep(wait, ctrl.signal);
    }
  }

  function subscribe(listener: (event: EngineEvent) => void): () => void {
    listeners.add(listener);
    if (!controller) {
      const ctrl = new AbortController();
      controller = ctrl;
      void runStream(ctrl);
    }
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0 && controller) {
        controller.abort();
        controller = null;
      }
    };
  }

  return { ...(api as unknown as TollgateApi), subscribe };
}

/** Parse a `text/event-stream` body: events separated by a blank line, `data:` lines joined by "\n". */
export async function readSse(
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal,
  onEvent: (event: EngineEvent) => void,
): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const onAbort = () => void reader.cancel().catch(() => undefined);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, '\n');
      let sep: number;
      while ((sep = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, sep);
        buffer = buffer.slice(sep + 2);
        const event = parseSseBlock(block);
        if (event) onEvent(event);
      }
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

export function parseSseBlock(block: string): EngineEvent | null {
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue; // comment / keep-alive
    if (line.startsWith('data:')) data.push(line.slice(line[5] === ' ' ? 6 : 5));
  }
  if (data.length === 0) return null;
  try {
    const parsed = JSON.parse(data.join('\n')) as unknown;
    if (typeof parsed === 'object' && parsed !== null && typeof (parsed as { type?: unknown }).type === 'string') {
      return parsed as EngineEvent;
    }
  } catch {
    /* malformed event: skip */
  }
  return null;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
