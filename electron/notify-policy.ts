/**
 * Which engine events become native notifications. Pure (no electron import), with its
 * memory in an injected small JSON store so restarts do not repeat notifications.
 *
 *  - threshold alerts: at most one per cap + threshold + period (`periodKey`);
 *  - hard blocks: one per block *episode*. An episode opens on the first block signal for a
 *    cap (a `blocked` alert, or a call blocked by that cap) and closes when a `caps` event
 *    shows the cap unblocked or gone, or a block arrives for a new period. Every further
 *    blocked call inside the episode is silent;
 *  - calls blocked while everything is paused are the user's own doing: silent;
 *  - do-not-disturb suppresses the notification but still records it as handled, so turning
 *    DND off does not replay stale alerts.
 */
import type { Alert, CapStatus, EngineEvent } from '../shared/api.ts';
import { capLabel } from './tray-model.ts';
import { formatUsd } from '../shared/money.ts';

export interface NotificationModel {
  title: string;
  body: string;
  capId: string;
  kind: 'threshold' | 'blocked';
}

/** A tiny synchronous persistence port (electron/json-store.ts writes a file; tests use memory). */
export interface JsonStore {
  load(): unknown;
  save(value: unknown): void;
}

interface Episode {
  periodKey: string | null;
  since: number;
}

interface PersistedState {
  v: 1;
  /** "capId|threshold|periodKey" → when it was handled (UTC ms). */
  thresholds: Record<string, number>;
  /** capId → open block episode. */
  episodes: Record<string, Episode>;
}

export interface NotifyPolicyOptions {
  store: JsonStore;
  doNotDisturb?: boolean;
  now?: () => number;
  locale?: string;
  /** Oldest threshold records are forgotten beyond this many (old periods never recur). */
  maxThresholdRecords?: number;
}

export interface NotifyPolicy {
  /** Feed every engine event; returns the notification to show, if any. */
  decide(event: EngineEvent): NotificationModel | null;
  setDoNotDisturb(on: boolean): void;
  readonly doNotDisturb: boolean;
}

export function emptyState(): PersistedState {
  return { v: 1, thresholds: Object.create(null) as Record<string, number>, episodes: Object.create(null) as Record<string, Episode> };
}

/** Accepts whatever the store returns; anything malformed is dropped, never trusted. */
export function sanitizeState(raw: unknown): PersistedState {
  const state = emptyState();
  if (!raw || typeof raw !== 'object') return state;
  const r = raw as { v?: unknown; thresholds?: unknown; episodes?: unknown };
  if (r.v !== 1) return state;
  if (r.thresholds && typeof r.thresholds === 'object') {
    for (const [k, v] of Object.entries(r.thresholds)) {
      if (typeof v === 'number' && Number.isFinite(v) && k.length <= 500) state.thresholds[k] = v;
    }
  }
  if (r.episodes && typeof r.episodes === 'object') {
    for (const [k, v] of Object.entries(r.episodes)) {
      const e = v as Partial<Episode> | null;
      if (e && typeof e === 'object' && typeof e.since === 'number' && (typeof e.periodKey === 'string' || e.periodKey === null)) {
        state.episodes[k] = { periodKey: e.periodKey, since: e.since };
      }
    }
  }
  return state;
}

export function createNotifyPolicy(opts: NotifyPolicyOptions): NotifyPolicy {
  const now = opts.now ?? Date.now;
  const maxRecords = opts.maxThresholdRecords ?? 2_000;
  const money = (usd: string): string => formatUsd(usd, { locale: opts.locale ?? 'en-US' });
  let dnd = opts.doNotDisturb ?? false;
  let state: PersistedState;
  try {
    state = sanitizeState(opts.store.load());
  } catch {
    state = emptyState();
  }
  let paused = false;
  const knownCaps = new Map<string, CapStatus>();

  const persist = (): void => {
    const keys = Object.keys(state.thresholds);
    if (keys.length > maxRecords) {
      keys
        .sort((a, b) => (state.thresholds[a] ?? 0) - (state.thresholds[b] ?? 0))
        .slice(0, keys.length - maxRecords)
        .forEach((k) => delete state.thresholds[k]);
    }
    try {
      opts.store.save(state);
    } catch {
      // Losing dedupe memory is better than crashing the shell over a full disk.
    }
  };

  const deliver = (n: NotificationModel): NotificationModel | null => (dnd ? null : n);

  function onThreshold(alert: Alert): NotificationModel | null {
    const key = `${alert.capId}|${alert.threshold}|${alert.periodKey}`;
    if (key in state.thresholds) return null;
    state.thresholds[key] = now();
    persist();
    return deliver({
      kind: 'threshold',
      capId: alert.capId,
      title: `${alert.capLabel}: ${alert.threshold}% of the cap`,
      body: `${money(alert.spent)} spent of ${money(alert.limit)}.`,
    });
  }

  function onBlock(capId: string, periodKey: string | null, label: string, detail: string): NotificationModel | null {
    const open = state.episodes[capId];
    // Same episode unless both sides know the period and it changed.
    if (open && (open.periodKey === null || periodKey === null || open.periodKey === periodKey)) {
      if (open.periodKey === null && periodKey !== null) {
        open.periodKey = periodKey;
        persist();
      }
      return null;
    }
    state.episodes[capId] = { periodKey, since: now() };
    persist();
    return deliver({ kind: 'blocked', capId, title: `${label}: cap reached, calls blocked`, body: detail });
  }

  function onCaps(caps: readonly CapStatus[]): void {
    knownCaps.clear();
    for (const c of caps) knownCaps.set(c.cap.id, c);
    let changed = false;
    for (const capId of Object.keys(state.episodes)) {
      const status = knownCaps.get(capId);
      if (!status || !status.blocked) {
        delete state.episodes[capId];
        changed = true;
      }
    }
    if (changed) persist();
  }

  return {
    get doNotDisturb() {
      return dnd;
    },
    setDoNotDisturb(on: boolean) {
      dnd = on;
    },
    decide(event: EngineEvent): NotificationModel | null {
      switch (event.type) {
        case 'alert': {
          const a = event.alert;
          if (a.kind === 'threshold') return onThreshold(a);
          // prepaid credits: the engine fires each once per grant and threshold
          if (a.kind === 'credit') return deliver({ kind: 'threshold', capId: a.capId, title: 'Credits', body: a.message ?? a.capLabel });
          return onBlock(a.capId, a.periodKey, a.capLabel, `${money(a.spent)} spent of ${money(a.limit)}. New calls are refused until the period resets or you raise the cap.`);
        }
        case 'call': {
          const c = event.call;
          // blockedBy is a cap id, or "pause" / an E_ code for non-cap refusals (engine.ts)
          if (c.status !== 'blocked' || !c.blockedBy || paused || c.blockedBy === 'pause' || c.blockedBy.startsWith('E_')) return null;
          const status = knownCaps.get(c.blockedBy);
          if (!status && knownCaps.size > 0) return null; // blocked by something that is not a cap (e.g. pause)
          const label = status ? capLabel(status.cap) : 'A hard cap';
          const detail = status
            ? `${money(status.spent)} spent of ${money(status.cap.limit)}. A ${c.model ?? c.provider} call was refused.`
            : `A ${c.model ?? c.provider} call was refused.`;
          return onBlock(c.blockedBy, null, label, detail);
        }
        case 'caps':
          onCaps(event.caps);
          return null;
        case 'paused':
          paused = event.paused;
          return null;
        default:
          return null;
      }
    },
  };
}
