/**
 * The IPC door into the engine, as pure functions (no electron import).
 *
 * Channel `tollgate:<method>` must name a method in API_METHODS, the payload must pass the
 * same zod schema the control API and CLI use (shared/schemas.ts), and the sender must be
 * the app's own page. The reply is an envelope, never a bare value, because results can
 * legitimately contain an `error` field (CallRecord.error):
 *   { ok: true, result } | { ok: false, error: ApiError }
 * The preload unwraps it and rejects with an Error for `ok: false` (formatBridgeError).
 */
import { API_METHODS } from '../shared/api.ts';
import type { ApiError, ApiMethod, TollgateApi } from '../shared/api.ts';
import { ValidationError, isApiMethod, parseApiArg } from '../shared/schemas.ts';
import { IPC_PREFIX, channelFor } from './bridge-protocol.ts';
import type { IpcReply } from './bridge-protocol.ts';

export { EVENT_CHANNEL, NAVIGATE_CHANNEL, IPC_PREFIX, channelFor, unwrapIpcReply, formatBridgeError, parseBridgeError } from './bridge-protocol.ts';
export type { IpcReply, NavigateRequest } from './bridge-protocol.ts';

export const API_CHANNELS: readonly string[] = API_METHODS.map(channelFor);

/** The method a channel names, or null for anything else (including `tollgate:event`). */
export function methodFromChannel(channel: unknown): ApiMethod | null {
  if (typeof channel !== 'string' || channel.length > 64 || !channel.startsWith(IPC_PREFIX)) return null;
  const m = channel.slice(IPC_PREFIX.length);
  return isApiMethod(m) ? m : null;
}

/** Normalizes anything thrown by the engine into the wire shape; internals are not leaked. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ValidationError) return err.toJSON();
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; message?: unknown; issues?: unknown };
    const code = typeof e.code === 'string' && /^E_[A-Z0-9_]{1,40}$/.test(e.code) ? e.code : 'E_INTERNAL';
    const message = typeof e.message === 'string' && e.message ? e.message.slice(0, 2_000) : 'internal error';
    const out: ApiError = { code, message };
    if (Array.isArray(e.issues)) out.issues = e.issues as ApiError['issues'];
    return out;
  }
  return { code: 'E_INTERNAL', message: typeof err === 'string' ? err.slice(0, 2_000) : 'internal error' };
}

export interface IpcRequestContext {
  /** URL of the frame that sent the message (event.senderFrame.url). */
  senderUrl?: string | null;
  /** From window-policy: is this URL the app's own page? */
  isTrustedSender?: (url: string) => boolean;
}

/** Validate and dispatch one IPC request. Never throws: failures become `{ ok: false, error }`. */
export async function handleIpcRequest(
  api: TollgateApi,
  channel: string,
  payload: unknown,
  ctx: IpcRequestContext = {},
): Promise<IpcReply> {
  if (ctx.isTrustedSender) {
    const url = ctx.senderUrl ?? '';
    if (!url || !ctx.isTrustedSender(url)) {
      return { ok: false, error: { code: 'E_FORBIDDEN', message: 'IPC from an untrusted frame was refused' } };
    }
  }
  const method = methodFromChannel(channel);
  if (!method) {
    return {
      ok: false,
      error: { code: 'E_UNKNOWN_METHOD', message: `unknown IPC channel ${JSON.stringify(String(channel).slice(0, 64))}` },
    };
  }
  let arg: unknown;
  try {
    arg = parseApiArg(method, payload);
  } catch (err) {
    return { ok: false, error: toApiError(err) };
  }
  try {
    const fn = api[method] as (a: unknown) => Promise<unknown>;
    const result = await fn.call(api, arg);
    return { ok: true, result };
  } catch (err) {
    return { ok: false, error: toApiError(err) };
  }
}
