/**
 * Cap math, pure: period boundaries in the user's time zone, which caps a call falls under,
 * admission against spend + open reservations, and which alert threshold a spend crosses.
 */
import type { Cap, CapPeriod, LocalKey } from './api.ts';

export interface CallScope {
  provider: string;
  model: string | null;
  project: string | null;
  keyFingerprint: string | null;
  keyId: string | null;
  /** The local key's name (caps name keys as the UI and CLI show them). */
  keyName?: string | null;
  workflow: string | null;
}

/**
 * A `key:VALUE` cap names a key by id, name or fingerprint (the UI and CLI ask for its name). The
 * ids and fingerprints it covers: every local key whose id, name or fingerprint is VALUE (a name
 * reused after a revocation covers both keys), plus VALUE itself (a provider key's fingerprint).
 */
export function keyCapMatcher(value: string, keys: readonly Pick<LocalKey, 'id' | 'name' | 'fingerprint'>[]): Set<string> {
  const out = new Set<string>([value]);
  for (const k of keys) {
    if (k.id === value || k.name === value || k.fingerprint === value) {
      out.add(k.id);
      out.add(k.fingerprint);
    }
  }
  return out;
}

export function capApplies(cap: Pick<Cap, 'scope' | 'scopeValue'>, c: CallScope): boolean {
  switch (cap.scope) {
    case 'global': return true;
    case 'provider': return c.provider === cap.scopeValue;
    case 'project': return c.project === cap.scopeValue;
    case 'model': return c.model === cap.scopeValue || (c.model !== null && `${c.provider}:${c.model}` === cap.scopeValue);
    case 'key': return c.keyId === cap.scopeValue || c.keyFingerprint === cap.scopeValue || (c.keyName != null && c.keyName === cap.scopeValue);
    case 'workflow': return c.workflow === cap.scopeValue;
  }
}

export function capLabel(cap: Pick<Cap, 'scope' | 'scopeValue' | 'period'>): string {
  return `${cap.scope === 'global' ? 'all spend' : `${cap.scope}:${cap.scopeValue}`} per ${cap.period}`;
}

const dtfCache = new Map<string, Intl.DateTimeFormat>();
function parts(ts: number, tz: string): { y: number; m: number; d: number; h: number; mi: number; s: number; wd: number } {
  let f = dtfCache.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric', weekday: 'short' });
    dtfCache.set(tz, f);
  }
  const o: Record<string, string> = {};
  for (const p of f.formatToParts(ts)) o[p.type] = p.value;
  const wd = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'].indexOf(o.weekday!) + 1;
  return { y: +o.year!, m: +o.month!, d: +o.day!, h: +o.hour!, mi: +o.minute!, s: +o.second!, wd };
}

function offsetAt(ts: number, tz: string): number {
  const p = parts(ts, tz);
  return Date.UTC(p.y, p.m - 1, p.d, p.h, p.mi, p.s) - Math.floor(ts / 1000) * 1000;
}

/** UTC ms of local midnight of the given local calendar date in `tz`. */
export function localMidnight(y: number, m: number, d: number, tz: string): number {
  const guess = Date.UTC(y, m - 1, d);
  let ts = guess - offsetAt(guess, tz);
  ts = guess - offsetAt(ts, tz); // second pass settles DST transitions
  return ts;
}

export interface PeriodBounds {
  start: number;
  end: number | null;  // exclusive; null for 'total'
  key: string;         // "2026-11-25", "2026-W48", "2026-11", "total"
}

/** The period containing `now` in time zone `tz`; weeks start on `weekStart` (1 = Monday, 7 = Sunday). */
export function periodBounds(period: CapPeriod, now: number, tz: string, weekStart: 1 | 7 = 1): PeriodBounds {
  const p = parts(now, tz);
  const pad = (n: number) => String(n).padStart(2, '0');
  switch (period) {
    case 'total': return { start: 0, end: null, key: 'total' };
    case 'day': {
      const next = new Date(Date.UTC(p.y, p.m - 1, p.d + 1));
      return { start: localMidnight(p.y, p.m, p.d, tz), end: localMidnight(next.getUTCFullYear(), next.getUTCMonth() + 1, next.getUTCDate(), tz), key: `${p.y}-${pad(p.m)}-${pad(p.d)}` };
    }
    case 'week': {
      const back = (p.wd - weekStart + 7) % 7;
      const s = new Date(Date.UTC(p.y, p.m - 1, p.d - back));
      const e = new Date(Date.UTC(p.y, p.m - 1, p.d - back + 7));
      const start = localMidnight(s.getUTCFullYear(), s.getUTCMonth() + 1, s.getUTCDate(), tz);
      return { start, end: localMidnight(e.getUTCFullYear(), e.getUTCMonth() + 1, e.getUTCDate(), tz), key: weekStart === 1 ? isoWeekKey(p.y, p.m, p.d) : `${s.getUTCFullYear()}-${pad(s.getUTCMonth() + 1)}-${pad(s.getUTCDate())}/week` };
    }
    case 'month': {
      const ny = p.m === 12 ? p.y + 1 : p.y;
      const nm = p.m === 12 ? 1 : p.m + 1;
      return { start: localMidnight(p.y, p.m, 1, tz), end: localMidnight(ny, nm, 1, tz), key: `${p.y}-${pad(p.m)}` };
    }
  }
}

/** The period before the one containing `now` (for "change vs previous"). */
export function previousPeriod(period: Exclude<CapPeriod, 'total'>, now: number, tz: string, weekStart: 1 | 7 = 1): PeriodBounds {
  const cur = periodBounds(period, now, tz, weekStart);
  return periodBounds(period, cur.start - 1, tz, weekStart);
}

function isoWeekKey(y: number, m: number, d: number): string {
  const date = new Date(Date.UTC(y, m - 1, d));
  const day = date.getUTCDay() || 7;
  date.setUTCDate(date.getUTCDate() + 4 - day);
  const yearStart = Date.UTC(date.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((date.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${date.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

export interface Admission {
  admit: boolean;
  /** The first hard cap that refuses the call. */
  blockedBy: string | null;
}

/**
 * A hard cap admits a call only if spent + open reservations + this call's worst case ≤ limit.
 * All in integer nano-USD. Called synchronously, so check and reserve cannot interleave.
 */
export function admits(limit: bigint, spent: bigint, reserved: bigint, reservation: bigint): boolean {
  return spent + reserved + reservation <= limit;
}

/**
 * The highest alert threshold (percent) that `spent` has reached and that has not fired yet in this
 * period, or null. Thresholds below it count as fired too: only the highest crossed one notifies.
 */
export function crossedThreshold(limit: bigint, spent: bigint, thresholds: readonly number[], fired: ReadonlySet<number>): number | null {
  if (limit <= 0n) return null;
  let best: number | null = null;
  for (const t of thresholds) {
    // spent / limit ≥ t / 100, in integers
    if (spent * 100n >= limit * BigInt(t) && !fired.has(t) && (best === null || t > best)) best = t;
  }
  if (best !== null) for (const t of fired) if (t > best) return null;
  return best;
}

/** Percent for display only (one decimal), computed in integers. */
export function percentOf(spent: bigint, limit: bigint): number {
  if (limit <= 0n) return 0;
  return Number((spent * 1000n) / limit) / 10;
}
