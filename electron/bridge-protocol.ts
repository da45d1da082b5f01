/**
 * The wire protocol between preload and main, with no runtime dependencies (the sandboxed
 * preload is bundled into one CommonJS file and should stay tiny: no zod, no node:*).
 *
 *   renderer → main:  ipcRenderer.invoke(`tollgate:<method>`, arg)  →  IpcReply envelope
 *   main → renderer:  'tollgate:event'    EngineEvent
 *                     'tollgate:navigate' NavigateRequest (a notification was clicked)
 */
import type { ApiError, ApiMethod } from '../shared/api.ts';

export const IPC_PREFIX = 'tollgate:';
export const EVENT_CHANNEL = 'tollgate:event';
export const NAVIGATE_CHANNEL = 'tollgate:navigate';

/** A bare value is never sent, because results can contain an `error` field (CallRecord.error). */
export type IpcReply = { ok: true; result: unknown } | { ok: false; error: ApiError };

/** Sent on NAVIGATE_CHANNEL; exposed to the page as `window.tollgateDesktop.onNavigate`. */
export interface NavigateRequest {
  view: 'budgets' | 'overview' | 'settings';
  capId?: string;
}

export function channelFor<M extends ApiMethod>(method: M): `tollgate:${M}` {
  return `tollgate:${method}`;
}

/** Turns a reply into the value, or an Error carrying the ApiError (see formatBridgeError). */
export function unwrapIpcReply(reply: unknown): unknown {
  if (reply && typeof reply === 'object' && 'ok' in reply) {
    const r = reply as IpcReply;
    if (r.ok) return r.result;
    throw new Error(formatBridgeError(r.error));
  }
  throw new Error(formatBridgeError({ code: 'E_INTERNAL', message: 'malformed IPC reply' }));
}

/**
 * contextBridge copies only the *message* of a rejected Error (custom properties such as
 * `code` and `issues` are lost), so the whole ApiError travels as JSON in the message:
 * '{"error":{"code":"E_VALIDATION","message":"…","issues":[…]}}'. The renderer's IPC
 * bridge (renderer/src/bridge/ipc.ts) parses that back into an ApiCallError.
 */
export function formatBridgeError(error: ApiError): string {
  return JSON.stringify({ error });
}

export function parseBridgeError(message: string): ApiError | null {
  const start = message.indexOf('{');
  if (start < 0) return null;
  try {
    const parsed = JSON.parse(message.slice(start)) as { error?: ApiError };
    return parsed.error && typeof parsed.error.code === 'string' ? parsed.error : null;
  } catch {
    return null;
  }
}
