import type { TollgateBridge } from '../../../shared/api.ts';
import { createHttpBridge, type ConnectionState } from './http.ts';
import { ipcBridge } from './ipc.ts';

export { ApiCallError, toApiCallError } from './errors.ts';
export type { ConnectionState } from './http.ts';

const TOKEN_KEY = 'tollgate.token';

export type BridgeChoice =
  | { kind: 'ipc'; bridge: TollgateBridge }
  | { kind: 'http'; bridge: TollgateBridge }
  | { kind: 'no-token' };

export interface BridgeHooks {
  onConnection?: (state: ConnectionState, detail?: string) => void;
  onUnauthorized?: () => void;
}

/**
 * Read `#token=…` from the URL fragment once, keep it in sessionStorage, and scrub the fragment
 * from the address bar (and history) so the token is not left lying around.
 */
export function takeTokenFromUrl(): string | null {
  const params = new URLSearchParams(window.location.hash.replace(/^#/, ''));
  const fromHash = params.get('token');
  if (fromHash) {
    try {
      sessionStorage.setItem(TOKEN_KEY, fromHash);
    } catch {
      /* storage disabled: keep it in memory only */
    }
    params.delete('token');
    const rest = params.toString();
    history.replaceState(history.state, '', window.location.pathname + window.location.search + (rest ? '#' + rest : ''));
    return fromHash;
  }
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function forgetToken(): void {
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* ignore */
  }
}

/** Electron preload bridge if present; else HTTP + SSE with the token. (No mock: the UI always talks to a real engine.) */
export async function chooseBridge(hooks: BridgeHooks = {}): Promise<BridgeChoice> {
  const ipc = ipcBridge();
  if (ipc) return { kind: 'ipc', bridge: ipc };
  const token = takeTokenFromUrl();
  if (!token) return { kind: 'no-token' };
  const bridge = createHttpBridge({
    token,
    ...(hooks.onConnection ? { onConnection: hooks.onConnection } : {}),
    ...(hooks.onUnauthorized ? { onUnauthorized: hooks.onUnauthorized } : {}),
  });
  return { kind: 'http', bridge };
}
