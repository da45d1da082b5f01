import { API_METHODS, type ApiMethod, type TollgateApi, type TollgateBridge } from '../../../shared/api.ts';
import { ApiCallError, isApiError, isErrorEnvelope } from './errors.ts';

declare global {
  interface Window {
    /** exposed by electron/preload.ts via contextBridge */
    tollgate?: TollgateBridge;
    /** desktop extras from the preload: notification clicks ask the UI to open a view */
    tollgateDesktop?: { onNavigate(listener: (request: { view: string; capId?: string }) => void): () => void };
  }
}

/**
 * Wrap the preload's `window.tollgate` so errors look the same as over HTTP: a resolved
 * `{ error: ApiError }` envelope, or a rejected Error whose message carries one
 * ("Error invoking remote method 'tollgate:x': ..."), becomes an ApiCallError.
 */
export function wrapIpcBridge(raw: TollgateBridge): TollgateBridge {
  const api = {} as Record<ApiMethod, (arg: unknown) => Promise<unknown>>;
  for (const method of API_METHODS) {
    const fn = raw[method] as unknown as (arg: unknown) => Promise<unknown>;
    api[method] = async (arg: unknown) => {
      let result: unknown;
      try {
        result = await fn.call(raw, arg ?? {});
      } catch (err) {
        throw fromIpcError(err);
      }
      if (isErrorEnvelope(result)) throw new ApiCallError(result.error);
      return result;
    };
  }
  return { ...(api as unknown as TollgateApi), subscribe: (listener) => raw.subscribe(listener) };
}

function fromIpcError(err: unknown): ApiCallError {
  if (err instanceof ApiCallError) return err;
  if (isApiError(err)) return new ApiCallError(err);
  const message = err instanceof Error ? err.message : String(err);
  const json = message.indexOf('{');
  if (json >= 0) {
    try {
      const parsed = JSON.parse(message.slice(json)) as unknown;
      if (isErrorEnvelope(parsed)) return new ApiCallError(parsed.error);
      if (isApiError(parsed)) return new ApiCallError(parsed);
    } catch {
      /* not JSON */
    }
  }
  return new ApiCallError({ code: 'E_IPC', message: message.replace(/^Error invoking remote method '[^']+': (Error: )?/, '') });
}

export function ipcBridge(): TollgateBridge | null {
  return typeof window !== 'undefined' && window.tollgate ? wrapIpcBridge(window.tollgate) : null;
}
