/**
 * Security settings of the app window, as data (no electron import), so tests pin them.
 *
 * The renderer is untrusted content: it gets no Node, runs sandboxed and context-isolated,
 * reaches the engine only through the preload's `window.tollgate` bridge, may not navigate
 * away from the app's own page, and may not open windows (https links go to the browser).
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The subset of Electron.WebPreferences we set; main.ts checks it against Electron's type. */
export interface SecureWebPreferences {
  preload: string;
  contextIsolation: true;
  sandbox: true;
  nodeIntegration: false;
  nodeIntegrationInWorker: false;
  nodeIntegrationInSubFrames: false;
  webSecurity: true;
  allowRunningInsecureContent: false;
  webviewTag: false;
  experimentalFeatures: false;
  navigateOnDragDrop: false;
  spellcheck: false;
  safeDialogs: true;
}

export function secureWebPreferences(preloadPath: string): SecureWebPreferences {
  return {
    preload: preloadPath,
    contextIsolation: true,
    sandbox: true,
    nodeIntegration: false,
    nodeIntegrationInWorker: false,
    nodeIntegrationInSubFrames: false,
    webSecurity: true,
    allowRunningInsecureContent: false,
    webviewTag: false,
    experimentalFeatures: false,
    navigateOnDragDrop: false,
    spellcheck: false,
    safeDialogs: true,
  };
}

/** Where the UI comes from: the built index.html, or the Vite dev server in development. */
export type AppLocation = { kind: 'file'; indexHtml: string } | { kind: 'dev'; url: string };

export function appEntryUrl(loc: AppLocation): string {
  return loc.kind === 'file' ? pathToFileURL(loc.indexHtml).href : new URL(loc.url).href;
}

function parse(url: string): URL | null {
  try {
    return new URL(url);
  } catch {
    return null;
  }
}

/**
 * True only for the app's own document: the same index.html (any hash/query), or any path
 * on the dev server's exact origin. Everything else (other files, http(s) sites,
 * javascript:, data:, blob:, about:) is refused.
 */
export function isAppUrl(url: string, loc: AppLocation): boolean {
  const u = parse(url);
  if (!u) return false;
  if (loc.kind === 'file') {
    if (u.protocol !== 'file:' || (u.host !== '' && u.host !== 'localhost')) return false;
    let asPath: string;
    try {
      asPath = fileURLToPath(u); // uses the pathname only: hash and query are ignored
    } catch {
      return false;
    }
    return path.resolve(asPath) === path.resolve(loc.indexHtml);
  }
  const dev = parse(loc.url);
  return dev !== null && (u.protocol === 'http:' || u.protocol === 'https:') && u.origin === dev.origin;
}

export function shouldAllowNavigation(url: string, loc: AppLocation): boolean {
  return isAppUrl(url, loc);
}

/**
 * `setWindowOpenHandler` decision: never a new Electron window. Plain https links (price
 * sources, provider docs) may be handed to the user's browser; nothing else is.
 */
export function shouldOpenWindow(url: string): { action: 'deny'; openExternal: boolean } {
  const u = parse(url);
  const external = u !== null && u.protocol === 'https:' && u.username === '' && u.password === '' && url.length <= 2_048;
  return { action: 'deny', openExternal: external };
}

/** Permission requests (camera, notifications from the page, geolocation…): all refused. */
export function shouldGrantPermission(_permission: string): boolean {
  return false;
}

/**
 * The Content-Security-Policy of the app page. The UI talks to the engine over IPC, so it
 * needs no network at all in production; dev adds the Vite server and its HMR socket.
 * `style-src 'unsafe-inline'` is for chart libraries that set inline styles.
 */
export function contentSecurityPolicy(opts: { devServerUrl?: string | null } = {}): string {
  const dev = opts.devServerUrl ? parse(opts.devServerUrl) : null;
  const devOrigin = dev ? dev.origin : '';
  const devWs = dev ? `${dev.protocol === 'https:' ? 'wss' : 'ws'}://${dev.host}` : '';
  const directives: [string, string][] = [
    ['default-src', "'none'"],
    ['script-src', dev ? `'self' 'unsafe-inline' ${devOrigin}` : "'self'"],
    ['style-src', "'self' 'unsafe-inline'"],
    ['img-src', "'self' data: blob:"],
    ['font-src', "'self' data:"],
    ['connect-src', dev ? `'self' ${devOrigin} ${devWs}` : "'self'"],
    ['worker-src', "'self' blob:"],
    ['base-uri', "'none'"],
    ['form-action', "'none'"],
    ['frame-src', "'none'"],
    ['frame-ancestors', "'none'"],
    ['object-src', "'none'"],
  ];
  return directives.map(([k, v]) => `${k} ${v}`).join('; ');
}
