import { create } from 'zustand';
import type { EngineEvent, Overview, Settings, TollgateBridge } from '../../shared/api.ts';
import type { ConnectionState } from './bridge/http.ts';
import { toApiCallError } from './bridge/errors.ts';

export const VIEWS = [
  { id: 'overview', label: 'Overview', key: '1' },
  { id: 'calls', label: 'Calls', key: '2' },
  { id: 'compare', label: 'Compare', key: '3' },
  { id: 'quote', label: 'Quote', key: '4' },
  { id: 'budgets', label: 'Budgets', key: '5' },
  { id: 'keys', label: 'Projects & keys', key: '6' },
  { id: 'prices', label: 'Prices', key: '7' },
  { id: 'settings', label: 'Settings', key: '8' },
  { id: 'credits', label: 'Credits', key: '9' },
  { id: 'statements', label: 'Statements', key: '0' },
] as const;
export type ViewId = (typeof VIEWS)[number]['id'];

export type GroupBy = 'model' | 'provider' | 'project';
export type Granularity = 'hour' | 'day';

/** Handoff between views, e.g. "set price" on an unpriced model opens the override editor prefilled. */
export interface PriceDraft {
  provider: string;
  model: string;
}

interface AppState {
  bridge: TollgateBridge | null;
  transport: 'ipc' | 'http' | null;
  view: ViewId;
  settings: Settings | null;
  overview: Overview | null;
  overviewError: string | null;
  overviewLoading: boolean;
  groupBy: GroupBy;
  granularity: Granularity;
  paused: boolean;
  connection: ConnectionState | 'local';
  unauthorized: boolean;
  lastEventAt: number | null;
  priceDraft: PriceDraft | null;
  locale: string | undefined;
  /** Compare's model picks per model kind, kept while the user visits other views */
  comparePicks: Partial<Record<string, string[]>>;
  setComparePicks(kind: string, picks: string[]): void;

  init(bridge: TollgateBridge, transport: 'ipc' | 'http'): () => void;
  setView(view: ViewId): void;
  setGroupBy(g: GroupBy): void;
  setGranularity(g: Granularity): void;
  loadOverview(): Promise<void>;
  scheduleOverviewRefresh(): void;
  loadSettings(): Promise<void>;
  setSettings(s: Settings): void;
  setPaused(p: boolean): Promise<void>;
  setConnection(c: ConnectionState): void;
  setUnauthorized(): void;
  setPriceDraft(d: PriceDraft | null): void;
}

const REFRESH_DEBOUNCE_MS = 150;
let refreshTimer: ReturnType<typeof setTimeout> | null = null;
let overviewSeq = 0;
/** The newest request whose answer is on screen: older answers never overwrite newer ones. */
let overviewShown = 0;

/** Each view has its own URL: `#/calls`, `#/prices` … (Back, Forward and bookmarks work). */
export function viewFromHash(hash: string): ViewId | null {
  const m = /^#\/([a-z]+)/.exec(hash);
  const v = m ? VIEWS.find((x) => x.id === m[1]) : undefined;
  return v ? v.id : null;
}

function initialView(): ViewId {
  return (typeof window !== 'undefined' ? viewFromHash(window.location.hash) : null) ?? 'overview';
}

export const useApp = create<AppState>()((set, get) => ({
  bridge: null,
  transport: null,
  view: initialView(),
  settings: null,
  overview: null,
  overviewError: null,
  overviewLoading: false,
  groupBy: 'model',
  granularity: 'day',
  paused: false,
  connection: 'connecting',
  unauthorized: false,
  lastEventAt: null,
  priceDraft: null,
  comparePicks: {},
  setComparePicks(kind, picks) {
    set({ comparePicks: { ...get().comparePicks, [kind]: picks } });
  },
  locale: typeof navigator !== 'undefined' ? navigator.language : undefined,

  init(bridge, transport) {
    set({ bridge, transport, connection: transport === 'http' ? get().connection : 'local' });
    void get().loadSettings();
    void get().loadOverview();
    const onEvent = (e: EngineEvent) => {
      set({ lastEventAt: Date.now() });
      switch (e.type) {
        case 'paused':
          set({ paused: e.paused });
          get().scheduleOverviewRefresh();
          break;
        case 'caps': {
          const ov = get().overview;
          if (ov) set({ overview: { ...ov, caps: e.caps } });
          get().scheduleOverviewRefresh();
          break;
        }
        case 'call':
        case 'alert':
          get().scheduleOverviewRefresh();
          break;
        case 'hello':
          // (re)connected: anything may have happened while we were away
          get().scheduleOverviewRefresh();
          break;
      }
    };
    return bridge.subscribe(onEvent);
  },

  setView(view) {
    set({ view });
    // a new history entry per view change, so Back returns to the previous view
    if (typeof window !== 'undefined' && viewFromHash(window.location.hash) !== view) window.location.hash = `/${view}`;
  },
  setGroupBy(groupBy) {
    set({ groupBy });
    void get().loadOverview();
  },
  setGranularity(granularity) {
    set({ granularity });
    void get().loadOverview();
  },

  async loadOverview() {
    const { bridge, groupBy, granularity } = get();
    if (!bridge) return;
    const seq = ++overviewSeq;
    set({ overviewLoading: true });
    try {
      const overview = await bridge.overview({ groupBy, granularity });
      // Show any answer newer than the one on screen, even if a later request is still in
      // flight: dropping it made the first paint wait for the refresh that SSE's hello triggers.
      if (seq < overviewShown) return;
      overviewShown = seq;
      set({ overview, overviewError: null, overviewLoading: seq !== overviewSeq, paused: overview.paused });
    } catch (err) {
      if (seq < overviewShown || seq !== overviewSeq) return;
      set({ overviewError: toApiCallError(err).message, overviewLoading: false });
    }
  },

  scheduleOverviewRefresh() {
    if (refreshTimer) clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      void get().loadOverview();
    }, REFRESH_DEBOUNCE_MS);
  },

  async loadSettings() {
    const { bridge } = get();
    if (!bridge) return;
    try {
      set({ settings: await bridge.settings({}) });
    } catch {
      /* shown by views that need it */
    }
  },
  setSettings(settings) {
    set({ settings });
  },

  async setPaused(p) {
    const { bridge } = get();
    if (!bridge) return;
    const res = p ? await bridge.pause({}) : await bridge.resume({});
    set({ paused: res.paused });
    get().scheduleOverviewRefresh();
  },

  setConnection(connection) {
    if (get().transport !== 'http' && get().transport !== null) return;
    set({ connection });
  },
  setUnauthorized() {
    set({ unauthorized: true });
  },
  setPriceDraft(priceDraft) {
    set({ priceDraft });
  },
}));

/** The bridge, for views (rendered only after init). */
export function useBridge(): TollgateBridge {
  const b = useApp((s) => s.bridge);
  if (!b) throw new Error('bridge not initialised');
  return b;
}
