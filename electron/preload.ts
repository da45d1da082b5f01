/**
 * Preload: the only bridge between the sandboxed page and the main process.
 *
 * Runs in a sandboxed renderer, so it is bundled into ONE CommonJS file
 * (dist-electron/electron/preload.cjs, see electron/build.mjs): sandboxed preloads cannot be
 * ESM and may `require` only a few modules ('electron' among them). Keep its imports to
 * shared/api.ts constants and bridge-protocol.ts.
 *
 * Exposes:
 *   window.tollgate         TollgateBridge, one generic invoke per API method
 *   window.tollgateDesktop  { onNavigate } for notification clicks ("open Budgets at cap X")
 * The page never sees ipcRenderer or an IpcRendererEvent (whose `sender` would leak it).
 */
import { contextBridge, ipcRenderer } from 'electron';
import type { IpcRendererEvent } from 'electron';
import { API_METHODS } from '../shared/api.ts';
import type { ApiArg, ApiMethod, ApiResult, EngineEvent, TollgateApi, TollgateBridge } from '../shared/api.ts';
import { EVENT_CHANNEL, NAVIGATE_CHANNEL, channelFor, unwrapIpcReply } from './bridge-protocol.ts';
import type { NavigateRequest } from './bridge-protocol.ts';

function invoker<M extends ApiMethod>(method: M): (arg: ApiArg<M>) => Promise<ApiResult<M>> {
  const channel = channelFor(method);
  return async (arg) => unwrapIpcReply(await ipcRenderer.invoke(channel, arg ?? {})) as ApiResult<M>;
}

const api = Object.fromEntries(API_METHODS.map((m) => [m, invoker(m)])) as unknown as TollgateApi;

function listen<T>(channel: string, listener: (payload: T) => void): () => void {
  if (typeof listener !== 'function') throw new TypeError('listener must be a function');
  const handler = (_event: IpcRendererEvent, payload: T): void => listener(payload);
  ipcRenderer.on(channel, handler);
  return () => {
    ipcRenderer.removeListener(channel, handler);
  };
}

const bridge = {
  ...api,
  subscribe: (listener: (event: EngineEvent) => void) => listen<EngineEvent>(EVENT_CHANNEL, listener),
} satisfies TollgateBridge;

const desktop = {
  onNavigate: (listener: (request: NavigateRequest) => void) => listen<NavigateRequest>(NAVIGATE_CHANNEL, listener),
};

contextBridge.exposeInMainWorld('tollgate', bridge);
contextBridge.exposeInMainWorld('tollgateDesktop', desktop);

export type TollgateDesktop = typeof desktop;
