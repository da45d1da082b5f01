/**
 * Tollgate desktop shell: main process.
 *
 * WHERE THE ENGINE RUNS: in this main process, not in a utilityProcess. Why:
 *  - The proxy is I/O bound: forwarding and SSE streaming are socket work the event loop
 *    interleaves; a second process would add an IPC hop to nothing CPU-heavy.
 *  - better-sqlite3 is synchronous, but the engine's writes are group-committed off the
 *    request path (one short transaction per batch, not per call), and its reads are indexed
 *    queries of a few ms. That is the same budget as any other main-process work; the page
 *    keeps painting either way (Chromium renders in the renderer process).
 *  - safeStorage (the OS keychain) exists only in the main process. With the engine in a
 *    utilityProcess every key decrypt would need an RPC back here.
 *  - The UI reaches the engine with a direct `engine.api` call per IPC request. A
 *    utilityProcess needs a MessagePort RPC layer plus an event relay that duplicates
 *    TollgateApi a third time, and its own lifecycle/restart handling.
 * The cost: a slow synchronous query (a year-long report) briefly stalls the main thread
 * (window drag, menus). engine-host.ts logs when the main loop's p99 delay passes 100 ms;
 * it is also the single seam to move the engine to a utilityProcess if that ever happens.
 *
 * The rest of this file is thin glue; the decisions live in pure, unit-tested modules:
 * tray-model.ts, notify-policy.ts, ipc-policy.ts, window-policy.ts.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BrowserWindow,
  Menu,
  Notification,
  Tray,
  app,
  clipboard,
  dialog,
  ipcMain,
  nativeImage,
  safeStorage,
  session,
  shell,
} from 'electron';
import type { MenuItemConstructorOptions, NativeImage, WebPreferences } from 'electron';
import { API_METHODS } from '../shared/api.ts';
import type { Alert, EngineEvent, Overview } from '../shared/api.ts';
import { createEngineHost, defaultDataDir } from './engine-host.ts';
import type { EngineHost } from './engine-host.ts';
import { createFileSecretStore, createLayeredSecretStore } from './engine/secret-store.ts';
import type { SecretStore } from './engine/secret-store.ts';
import { createSafeStorageSecretStore, safeStorageIsStrong } from './secret-store-electron.ts';
import { EVENT_CHANNEL, NAVIGATE_CHANNEL, channelFor, handleIpcRequest } from './ipc-policy.ts';
import type { NavigateRequest } from './ipc-policy.ts';
import { createNotifyPolicy } from './notify-policy.ts';
import type { NotificationModel } from './notify-policy.ts';
import { createJsonFileStore, loadDesktopPrefs } from './json-store.ts';
import type { DesktopPrefs } from './json-store.ts';
import { buildTrayModel } from './tray-model.ts';
import type { MenuItemModel, TrayAction, TrayIconState, TrayModel } from './tray-model.ts';
import {
  appEntryUrl,
  contentSecurityPolicy,
  isAppUrl,
  secureWebPreferences,
  shouldAllowNavigation,
  shouldGrantPermission,
  shouldOpenWindow,
} from './window-policy.ts';
import type { AppLocation } from './window-policy.ts';
import { trayIconPng } from './icons.ts';

const here = path.dirname(fileURLToPath(import.meta.url)); // dist-electron/electron
const isDev = !app.isPackaged;
const isMac = process.platform === 'darwin';
const canStartAtLogin = process.platform === 'darwin' || process.platform === 'win32';

// Development/test overrides; ignored in a packaged app.
const envDataDir = isDev ? process.env.TOLLGATE_DATA_DIR : undefined;
const envPort = isDev && process.env.TOLLGATE_PORT ? Number.parseInt(process.env.TOLLGATE_PORT, 10) : undefined;
const devServerUrl = isDev ? (process.env.TOLLGATE_DEV_SERVER_URL ?? null) : null;
const e2e = isDev && process.env.TOLLGATE_E2E === '1';

// A test data dir gets its own Chromium profile too, so the single-instance lock (keyed on
// userData) does not collide with a real running Tollgate.
if (envDataDir) app.setPath('userData', path.join(envDataDir, 'electron-user-data'));
if (process.platform === 'win32') app.setAppUserModelId('dev.tollgate.app');

const location: AppLocation = devServerUrl
  ? { kind: 'dev', url: devServerUrl }
  : { kind: 'file', indexHtml: path.join(app.getAppPath(), 'dist', 'renderer', 'index.html') };

let host: EngineHost | null = null;
let win: BrowserWindow | null = null;
let tray: Tray | null = null;
let quitting = false;
let engineStopped = false;
let overview: Overview | null = null;
let paused = false;
let lastAlert: Alert | null = null;
let engineError: string | null = null;
let prefs: DesktopPrefs = { startAtLogin: false, doNotDisturb: false };
let currentTray: TrayModel | null = null;
const liveNotifications = new Set<Notification>(); // keep references: click handlers die with GC
const shownNotifications: NotificationModel[] = []; // for the e2e hook

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('second-instance', () => showWindow());
  app.on('window-all-closed', () => {
    /* a tray app keeps running with no window */
  });
  app.on('activate', () => showWindow());
  app.on('before-quit', () => {
    quitting = true;
  });
  app.on('will-quit', (event) => {
    if (engineStopped || !host) return;
    event.preventDefault(); // stop the engine cleanly (flush the ledger) before exiting
    void host.stop().finally(() => {
      engineStopped = true;
      tray?.destroy();
      app.quit();
    });
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => app.quit());
  app.on('web-contents-created', (_event, contents) => {
    contents.on('will-attach-webview', (e) => e.preventDefault());
    contents.setWindowOpenHandler(({ url }) => {
      if (shouldOpenWindow(url).openExternal) void shell.openExternal(url);
      return { action: 'deny' };
    });
  });
  app.whenReady().then(main, (err: unknown) => fatal(err));
}

async function main(): Promise<void> {
  hardenSession();
  const userData = app.getPath('userData');
  const prefsStore = createJsonFileStore(path.join(userData, 'desktop.json'));
  prefs = loadDesktopPrefs(prefsStore);
  const savePrefs = (): void => prefsStore.save(prefs);

  const policy = createNotifyPolicy({
    store: createJsonFileStore(path.join(userData, 'notifications.json')),
    doNotDisturb: prefs.doNotDisturb,
    locale: app.getLocale() || 'en-US',
  });

  const dataDir = envDataDir ?? defaultDataDir();
  host = createEngineHost({ dataDir, port: envPort, secretStore: pickSecretStore(dataDir), uiDir: path.join(app.getAppPath(), 'dist', 'renderer') });
  const engineHost = host;

  for (const method of API_METHODS) {
    const channel = channelFor(method);
    ipcMain.handle(channel, (event, payload: unknown) =>
      handleIpcRequest(engineHost.api, channel, payload, {
        senderUrl: event.senderFrame?.url ?? null,
        isTrustedSender: (url) => isAppUrl(url, location),
      }),
    );
  }

  engineHost.subscribe((event) => onEngineEvent(event, policy));

  tray = new Tray(trayImage('normal'));
  if (!isMac) tray.on('click', () => showWindow());
  renderTray(); // "Starting…"

  const startHidden = process.argv.includes('--hidden') || (isMac && app.getLoginItemSettings().wasOpenedAtLogin);
  createWindow(!startHidden);

  try {
    const engine = await engineHost.start();
    engineError = null;
    void engine;
  } catch (err) {
    engineError = describeStartError(err);
    renderTray();
    dialog.showErrorBox('Tollgate could not start its engine', engineError);
    app.quit();
    return;
  }
  await refreshTray();
  applyLoginItem();

  const onTrayAction = async (action: TrayAction, capId?: string): Promise<void> => {
    switch (action) {
      case 'pause':
        await engineHost.api.pause({});
        break;
      case 'resume':
        await engineHost.api.resume({});
        break;
      case 'open':
        showWindow();
        break;
      case 'openCap':
        showWindow();
        navigate({ view: 'budgets', ...(capId ? { capId } : {}) });
        break;
      case 'copyProxyUrl':
        if (engineHost.engine) clipboard.writeText(engineHost.engine.url);
        break;
      case 'toggleStartAtLogin':
        prefs = { ...prefs, startAtLogin: !prefs.startAtLogin };
        savePrefs();
        applyLoginItem();
        break;
      case 'toggleDoNotDisturb':
        prefs = { ...prefs, doNotDisturb: !prefs.doNotDisturb };
        policy.setDoNotDisturb(prefs.doNotDisturb);
        savePrefs();
        break;
      case 'quit':
        app.quit();
        return;
    }
    await refreshTray();
  };
  trayActionHandler = (action, capId) => {
    onTrayAction(action, capId).catch((err: unknown) => console.warn(`tray action ${action} failed: ${String(err)}`));
  };
  renderTray();

  if (e2e) installE2eHook(policy, onTrayAction);
}

// ---------------------------------------------------------------------------------------------
// Engine events → window, tray, notifications

let refreshTimer: NodeJS.Timeout | null = null;
function scheduleTrayRefresh(): void {
  refreshTimer ??= setTimeout(() => {
    refreshTimer = null;
    void refreshTray();
  }, 1_000); // at most one overview query per second, however busy the proxy is
}

function onEngineEvent(event: EngineEvent, policy: ReturnType<typeof createNotifyPolicy>): void {
  if (win && !win.isDestroyed()) win.webContents.send(EVENT_CHANNEL, event);
  switch (event.type) {
    case 'paused':
      paused = event.paused;
      renderTray();
      break;
    case 'alert':
      lastAlert = event.alert;
      renderTray();
      break;
    default:
      break;
  }
  if (event.type !== 'hello') scheduleTrayRefresh();
  const n = policy.decide(event);
  if (n) showNotification(n);
}

async function refreshTray(): Promise<void> {
  if (!host?.engine) return renderTray();
  try {
    overview = await host.api.overview({});
    paused = overview.paused;
  } catch (err) {
    console.warn(`tray refresh failed: ${String(err)}`);
  }
  renderTray();
}

// ---------------------------------------------------------------------------------------------
// Tray

let trayActionHandler: (action: TrayAction, capId?: string) => void = (action) => {
  if (action === 'open') showWindow();
  if (action === 'quit') app.quit();
};
const trayImages = new Map<TrayIconState, NativeImage>();

function trayImage(state: TrayIconState): NativeImage {
  let img = trayImages.get(state);
  if (!img) {
    img = nativeImage.createEmpty();
    img.addRepresentation({ scaleFactor: 1, width: 16, height: 16, buffer: trayIconPng(state, 16) });
    img.addRepresentation({ scaleFactor: 2, width: 32, height: 32, buffer: trayIconPng(state, 32) });
    trayImages.set(state, img);
  }
  return img;
}

function renderTray(): void {
  if (!tray || tray.isDestroyed()) return;
  const model = buildTrayModel({
    overview,
    paused,
    lastAlert,
    proxyUrl: host?.engine?.url ?? null,
    startAtLogin: prefs.startAtLogin,
    doNotDisturb: prefs.doNotDisturb,
    canStartAtLogin,
    locale: app.getLocale() || 'en-US',
    engineError,
  });
  if (currentTray?.icon !== model.icon) tray.setImage(trayImage(model.icon));
  if (currentTray?.tooltip !== model.tooltip) tray.setToolTip(model.tooltip);
  tray.setContextMenu(Menu.buildFromTemplate(model.menu.map(toMenuItem)));
  currentTray = model;
}

function toMenuItem(item: MenuItemModel): MenuItemConstructorOptions {
  switch (item.kind) {
    case 'separator':
      return { type: 'separator' };
    case 'info':
      return { label: item.label, enabled: false };
    case 'checkbox':
      return { type: 'checkbox', label: item.label, checked: item.checked, click: () => trayActionHandler(item.id) };
    case 'action':
      return { label: item.label, enabled: item.enabled, click: () => trayActionHandler(item.id, item.capId) };
  }
}

// ---------------------------------------------------------------------------------------------
// Window

function createWindow(show: boolean): BrowserWindow {
  const webPreferences = secureWebPreferences(path.join(here, 'preload.cjs')) satisfies WebPreferences;
  const w = new BrowserWindow({
    width: 1240,
    height: 820,
    minWidth: 820,
    minHeight: 560,
    show: false,
    title: 'Tollgate',
    autoHideMenuBar: true,
    webPreferences,
  });
  w.once('ready-to-show', () => {
    if (show) w.show();
  });
  w.on('close', (event) => {
    if (quitting) return;
    event.preventDefault(); // closing hides to the tray; Quit is in the tray menu
    w.hide();
  });
  w.on('closed', () => {
    if (win === w) win = null;
  });
  w.webContents.on('will-navigate', (event) => {
    if (!shouldAllowNavigation(event.url, location)) event.preventDefault();
  });
  w.webContents.on('will-redirect', (event) => {
    if (!shouldAllowNavigation(event.url, location)) event.preventDefault();
  });
  w.webContents.on('did-finish-load', () => {
    w.webContents.send(EVENT_CHANNEL, { type: 'hello', version: app.getVersion() } satisfies EngineEvent);
    flushPendingNavigation();
  });
  void w.loadURL(appEntryUrl(location)).catch((err: unknown) => console.warn(`could not load the UI: ${String(err)}`));
  win = w;
  return w;
}

function showWindow(): void {
  const w = win && !win.isDestroyed() ? win : createWindow(true);
  if (w.isMinimized()) w.restore();
  w.show();
  w.focus();
}

let pendingNavigation: NavigateRequest | null = null;
function navigate(request: NavigateRequest): void {
  pendingNavigation = request;
  if (win && !win.isDestroyed() && !win.webContents.isLoading()) flushPendingNavigation();
}
function flushPendingNavigation(): void {
  if (!pendingNavigation || !win || win.isDestroyed()) return;
  win.webContents.send(NAVIGATE_CHANNEL, pendingNavigation);
  pendingNavigation = null;
}

function hardenSession(): void {
  const ses = session.defaultSession;
  ses.setPermissionRequestHandler((_wc, permission, callback) => callback(shouldGrantPermission(permission)));
  ses.setPermissionCheckHandler((_wc, permission) => shouldGrantPermission(permission));
  // Applies to http(s) responses (the Vite dev server); the built index.html carries the
  // same policy in its <meta http-equiv="Content-Security-Policy">.
  const csp = contentSecurityPolicy({ devServerUrl });
  ses.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [csp] } });
  });
  if (!isMac && !isDev) Menu.setApplicationMenu(null);
}

// ---------------------------------------------------------------------------------------------
// Notifications, login item, secrets

function showNotification(n: NotificationModel): void {
  shownNotifications.push(n);
  if (!Notification.isSupported()) return;
  const notification = new Notification({ title: n.title, body: n.body, urgency: n.kind === 'blocked' ? 'critical' : 'normal' });
  liveNotifications.add(notification);
  const release = (): void => {
    liveNotifications.delete(notification);
  };
  notification.on('click', () => {
    release();
    showWindow();
    navigate({ view: 'budgets', capId: n.capId });
  });
  notification.on('close', release);
  notification.show();
}

function applyLoginItem(): void {
  if (!canStartAtLogin) return; // Linux: no API; the .deb/AppImage user adds an autostart entry
  if (!app.isPackaged) return; // never register the development Electron binary as a login item
  app.setLoginItemSettings({ openAtLogin: prefs.startAtLogin, args: ['--hidden'] });
}

/**
 * The OS keychain when it really protects (see safeStorageIsStrong), layered so keys stored
 * earlier by headless `tollgate serve` (file store, same data dir) stay readable.
 */
function pickSecretStore(dataDir: string): SecretStore {
  const fileStore = createFileSecretStore(dataDir);
  if (!safeStorageIsStrong(safeStorage)) {
    console.warn('OS keychain encryption unavailable or weak here; provider keys are encrypted with the file key store.');
    return fileStore;
  }
  return createLayeredSecretStore(createSafeStorageSecretStore(safeStorage), [fileStore]);
}

function describeStartError(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  const message = typeof e?.message === 'string' ? e.message : String(err);
  if (e?.code === 'EADDRINUSE') {
    return `${message}\n\nThe proxy port is already in use. Is \`tollgate serve\` (or another Tollgate) running? Stop it, or choose another port.`;
  }
  return message;
}

function fatal(err: unknown): void {
  console.error(err);
  dialog.showErrorBox('Tollgate failed', String(err));
  app.exit(1);
}

// ---------------------------------------------------------------------------------------------
// E2E hook: only with TOLLGATE_E2E=1 in an unpackaged app. Playwright cannot click an OS tray
// or notification, so the test reads the tray model and drives the same handlers.

function installE2eHook(
  policy: ReturnType<typeof createNotifyPolicy>,
  onTrayAction: (action: TrayAction, capId?: string) => Promise<void>,
): void {
  (globalThis as Record<string, unknown>).__tollgateE2E = {
    tray: () => currentTray,
    notifications: () => shownNotifications.slice(),
    emit: (event: EngineEvent) => onEngineEvent(event, policy),
    trayAction: (action: TrayAction, capId?: string) => onTrayAction(action, capId),
    refreshTray: () => refreshTray().then(() => currentTray),
    windowVisible: () => (win && !win.isDestroyed() ? win.isVisible() : false),
    clickNotification: (capId: string) => {
      showWindow();
      navigate({ view: 'budgets', capId });
    },
    proxyUrl: () => host?.engine?.url ?? null,
  };
}
