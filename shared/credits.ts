/**
 * Prepaid credits, pure: which grant each call draws from, balances, burn rate and runway.
 *
 * Nothing here is stored state: movements and balances are a function of the grants and the calls
 * (ordered by (ts, id)), so every device that holds the same calls and grants computes the same
 * movements and balances to the nano, whatever order the calls arrived in. A call re-priced later,
 * a call synced from another device, or a top-up recorded after the fact (an earlier effective
 * date) changes the derivation from that point on; nothing already derived is ever edited in
 * place, because nothing is kept: it is derived again. Closed statements are frozen separately.
 *
 * Burn order (documented, total, deterministic): among the grants usable at the call's time
 * (effective <= ts < expires, remaining > 0):
 *   1. priority, lower number first (0–100, default 50; as Stripe credit grants)
 *   2. soonest expiry first
 *   3. promotional before paid
 *   4. oldest first (earliest effective date)
 *   5. id (lexicographic)
 * A call draws from the first grant until it is empty, then the next, and so on: one movement per
 * grant it drew from. What no grant covers is "not covered by credits".
 *
 * Dates: a grant is usable from 00:00 UTC of its effective date to 00:00 UTC of the day after its
 * expiry date (it can be spent on its expiry day). UTC, so every device agrees.
 */

export const DAY_MS = 86_400_000;
export const WEEK_MS = 7 * DAY_MS;

export interface CreditGrant {
  id: string;
  provider: string;
  amountNano: bigint;
  /** usable from (UTC ms, inclusive) */
  effective: number;
  /** usable until (UTC ms, exclusive) */
  expires: number;
  /** 0–100, lower burns first */
  priority: number;
  promo: boolean;
  note: string | null;
  createdAt: number;
}

/** Compare two grants in burn order (negative: `a` burns first). */
export function burnOrder(a: CreditGrant, b: CreditGrant): number {
  if (a.priority !== b.priority) return a.priority - b.priority;
  if (a.expires !== b.expires) return a.expires - b.expires;
  if (a.promo !== b.promo) return a.promo ? -1 : 1;
  if (a.effective !== b.effective) return a.effective - b.effective;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export interface CallCost {
  id: string;
  ts: number;
  provider: string;
  costNano: bigint;
}

export interface Movement {
  callId: string;
  ts: number;
  /** null: the part of the call no grant covered */
  grantId: string | null;
  amountNano: bigint;
}

/** Sort calls the way every device does: by (ts, id). */
export function callOrder(a: { ts: number; id: string }, b: { ts: number; id: string }): number {
  return a.ts - b.ts || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * The movements of calls (which must come in (ts, id) order) against the grants of their provider.
 * Calls of a provider without grants and free calls draw nothing. A negative cost (a correction:
 * a batch's estimate taken back once its actual cost is known) gives back, as negative movements,
 * what this derivation drew, last drawn first: first what no grant covered, then the grants usable
 * at its time in reverse burn order (each at most what it drew here); what is left (the corrected
 * draw happened before this derivation started) is a negative movement with no grant.
 */
export function* deriveMovements(grants: readonly CreditGrant[], calls: Iterable<CallCost>): Generator<Movement> {
  const byProvider = new Map<string, CreditGrant[]>();
  for (const g of [...grants].sort(burnOrder)) {
    const l = byProvider.get(g.provider) ?? [];
    l.push(g);
    byProvider.set(g.provider, l);
  }
  const remaining = new Map<string, bigint>(grants.map((g) => [g.id, g.amountNano]));
  // what this derivation drew: per grant, and not covered per provider (what a correction gives back)
  const drawn = new Map<string, bigint>();
  const uncovered = new Map<string, bigint>();
  let last: { ts: number; id: string } | null = null;
  for (const c of calls) {
    if (last && callOrder(last, c) > 0) throw new Error('deriveMovements: calls must be ordered by (ts, id)');
    last = c;
    const list = byProvider.get(c.provider);
    if (!list || c.costNano === 0n) continue;
    if (c.costNano < 0n) {
      let back = -c.costNano;
      const u = uncovered.get(c.provider) ?? 0n;
      const fromUncovered = u < back ? u : back;
      if (fromUncovered > 0n) {
        uncovered.set(c.provider, u - fromUncovered);
        back -= fromUncovered;
        yield { callId: c.id, ts: c.ts, grantId: null, amountNano: -fromUncovered };
      }
      for (let i = list.length - 1; i >= 0 && back > 0n; i--) {
        const g = list[i]!;
        if (c.ts < g.effective || c.ts >= g.expires) continue;
        const d = drawn.get(g.id) ?? 0n;
        if (d <= 0n) continue;
        const give = d < back ? d : back;
        drawn.set(g.id, d - give);
        remaining.set(g.id, remaining.get(g.id)! + give);
        back -= give;
        yield { callId: c.id, ts: c.ts, grantId: g.id, amountNano: -give };
      }
      if (back > 0n) yield { callId: c.id, ts: c.ts, grantId: null, amountNano: -back };
      continue;
    }
    let left = c.costNano;
    for (const g of list) {
      if (left === 0n) break;
      if (c.ts < g.effective || c.ts >= g.expires) continue;
      const r = remaining.get(g.id)!;
      if (r <= 0n) continue;
      const take = r < left ? r : left;
      remaining.set(g.id, r - take);
      drawn.set(g.id, (drawn.get(g.id) ?? 0n) + take);
      left -= take;
      yield { callId: c.id, ts: c.ts, grantId: g.id, amountNano: take };
    }
    if (left > 0n) {
      uncovered.set(c.provider, (uncovered.get(c.provider) ?? 0n) + left);
      yield { callId: c.id, ts: c.ts, grantId: null, amountNano: left };
    }
  }
}

export interface GrantBalance {
  grant: CreditGrant;
  drawnNano: bigint;
  remainingNano: bigint;
  state: 'pending' | 'active' | 'used' | 'expired';
  /** left on the grant when it expired (only once expired) */
  expiredUnusedNano: bigint;
}

export interface ProviderBalance {
  provider: string;
  grants: GrantBalance[];
  /** usable now: the remaining balance of active grants */
  balanceNano: bigint;
  /** spend since the first grant's effective date that no grant covered */
  uncoveredNano: bigint;
}

/**
 * Balances at `now` from spend totals, without visiting calls: between two consecutive grant
 * boundaries (effective dates, expiries) the usable grants and their order are fixed, and a run of
 * calls drawing greedily in a fixed order takes exactly what their total would take. So the draws
 * equal those of deriveMovements over the same calls (a property test checks it), at the cost of
 * one spend total per interval. `spend(provider, from, to)` sums call costs with from <= ts < to.
 */
export function balancesAt(grants: readonly CreditGrant[], now: number, spend: (provider: string, from: number, to: number) => bigint): ProviderBalance[] {
  const providers = [...new Set(grants.map((g) => g.provider))].sort();
  return providers.map((provider) => {
    const list = grants.filter((g) => g.provider === provider).sort(burnOrder);
    const remaining = new Map(list.map((g) => [g.id, g.amountNano]));
    const expiredUnused = new Map<string, bigint>();
    const bounds = [...new Set(list.flatMap((g) => [g.effective, g.expires]).filter((t) => t < now).concat([now]))].sort((a, b) => a - b);
    let uncovered = 0n;
    for (let i = 0; i + 1 < bounds.length; i++) {
      const from = bounds[i]!, to = bounds[i + 1]!;
      // grants expiring at `from` keep what they had left
      for (const g of list) if (g.expires === from) expiredUnused.set(g.id, remaining.get(g.id)!);
      let left = spend(provider, from, to);
      if (left <= 0n) continue;
      for (const g of list) {
        if (left === 0n) break;
        if (from < g.effective || from >= g.expires) continue;
        const r = remaining.get(g.id)!;
        if (r <= 0n) continue;
        const take = r < left ? r : left;
        remaining.set(g.id, r - take);
        left -= take;
      }
      uncovered += left;
    }
    for (const g of list) if (g.expires <= now && !expiredUnused.has(g.id)) expiredUnused.set(g.id, remaining.get(g.id)!);
    let balance = 0n;
    const out: GrantBalance[] = list.map((g) => {
      const r = remaining.get(g.id)!;
      const state: GrantBalance['state'] = g.expires <= now ? 'expired' : g.effective > now ? 'pending' : r === 0n ? 'used' : 'active';
      if (state === 'active') balance += r;
      return { grant: g, drawnNano: g.amountNano - r, remainingNano: state === 'expired' ? 0n : r, state, expiredUnusedNano: state === 'expired' ? expiredUnused.get(g.id) ?? r : 0n };
    });
    return { provider, grants: out, balanceNano: balance, uncoveredNano: uncovered };
  });
}

export interface Runway {
  /** spend over the trailing 7 days */
  burn7dNano: bigint;
  /** average spend per day over the trailing 7 days */
  burnPerDayNano: bigint;
  /** when the credits usable now and later run out at this pace; null: never (no spend) */
  runsOutAt: number | null;
  /** days from now until then (one decimal, display only); null: never */
  runwayDays: number | null;
  /** per grant, what would be left at its expiry at this pace */
  expiringUnused: { grantId: string; expires: number; amountNano: bigint }[];
}

/**
 * Project the current pace forward: from `now`, spend `burn7d / 7 days` per unit of time, drawn in
 * burn order across future grant boundaries. The credits run out when no usable grant is left
 * while spend continues (a grant that becomes effective later restarts nothing: the first gap is
 * the runway). Exact integer math; the day count is for display.
 */
export function projectRunway(balance: ProviderBalance, burn7dNano: bigint, now: number): Runway {
  const list = balance.grants.filter((g) => g.state === 'active' || g.state === 'pending').map((g) => g.grant);
  const remaining = new Map(balance.grants.map((g) => [g.grant.id, g.remainingNano]));
  const burnPerDayNano = burn7dNano / 7n;
  const expiringUnused: Runway['expiringUnused'] = [];
  const bounds = [...new Set([now, ...list.flatMap((g) => [g.effective, g.expires]).filter((t) => t > now)])].sort((a, b) => a - b);
  let runsOutAt: number | null = null;
  for (let i = 0; i + 1 < bounds.length; i++) {
    const from = bounds[i]!, to = bounds[i + 1]!;
    const usable = list.filter((g) => from >= g.effective && from < g.expires && remaining.get(g.id)! > 0n);
    const available = usable.reduce((s, g) => s + remaining.get(g.id)!, 0n);
    let need = burn7dNano > 0n ? (burn7dNano * BigInt(to - from)) / BigInt(WEEK_MS) : 0n;
    if (runsOutAt === null && burn7dNano > 0n && need >= available) {
      runsOutAt = from + Number((available * BigInt(WEEK_MS)) / burn7dNano);
    }
    for (const g of usable) {
      if (need === 0n) break;
      const r = remaining.get(g.id)!;
      const take = r < need ? r : need;
      remaining.set(g.id, r - take);
      need -= take;
    }
    for (const g of list) if (g.expires === to && remaining.get(g.id)! > 0n) expiringUnused.push({ grantId: g.id, expires: g.expires, amountNano: remaining.get(g.id)! });
  }
  if (runsOutAt === null && burn7dNano > 0n) runsOutAt = bounds[bounds.length - 1]!;
  if (balance.balanceNano === 0n && burn7dNano > 0n) runsOutAt = now;
  return {
    burn7dNano, burnPerDayNano, runsOutAt,
    runwayDays: runsOutAt === null ? null : Math.round(((runsOutAt - now) / DAY_MS) * 10) / 10,
    expiringUnused,
  };
}

export interface CreditAlertDue {
  grantId: string;
  provider: string;
  /** balance: percent left (50/20/10); runway: days (7); expiry: days before expiry (30/7) */
  kind: 'balance' | 'runway' | 'expiry';
  threshold: number;
  message: string;
}

export const BALANCE_THRESHOLDS = [50, 20, 10] as const;
export const EXPIRY_DAYS = [30, 7] as const;
export const RUNWAY_DAYS = 7;

/**
 * Which credit alerts are due now (each is meant to fire once per grant and threshold; the caller
 * remembers which fired). Only grants usable now count. Lower crossed thresholds are listed too,
 * most severe first: the caller notifies the first new one and records the rest silently.
 */
export function dueCreditAlerts(balance: ProviderBalance, runway: Runway, now: number, fmt: (nano: bigint) => string): CreditAlertDue[] {
  const out: CreditAlertDue[] = [];
  for (const b of balance.grants) {
    const g = b.grant;
    if (b.state !== 'active' && b.state !== 'used') continue;
    const label = `${g.provider} credit ${g.id}${g.note ? ` (${g.note})` : ''}`;
    for (const t of [...BALANCE_THRESHOLDS].sort((x, y) => x - y)) {
      // remaining <= t % of the amount, exactly
      if (b.remainingNano * 100n <= g.amountNano * BigInt(t)) {
        out.push({ grantId: g.id, provider: g.provider, kind: 'balance', threshold: t, message: `${label}: ${fmt(b.remainingNano)} of ${fmt(g.amountNano)} left (${t} % or less)` });
      }
    }
    if (b.state !== 'active') continue;
    for (const d of [...EXPIRY_DAYS].sort((x, y) => x - y)) {
      if (g.expires - now <= d * DAY_MS) {
        out.push({ grantId: g.id, provider: g.provider, kind: 'expiry', threshold: d, message: `${label}: ${fmt(b.remainingNano)} expire${d === 7 ? ' within a week' : ' within 30 days'}, on ${new Date(g.expires - 1).toISOString().slice(0, 10)}` });
      }
    }
    if (runway.runsOutAt !== null && runway.runsOutAt - now < RUNWAY_DAYS * DAY_MS) {
      out.push({ grantId: g.id, provider: g.provider, kind: 'runway', threshold: RUNWAY_DAYS, message: `${g.provider} credits run out in ${runway.runwayDays} day(s) at this week's pace (${fmt(runway.burnPerDayNano)} a day)` });
    }
  }
  return out;
}

/** "2027-11-30" → the UTC ms a grant with that expiry date stops being usable (the next midnight). */
export function expiryFromDate(date: string): number {
  return dateStart(date) + DAY_MS;
}

/** "2026-11-01" → 00:00 UTC of that day; throws on anything that is not a real calendar date. */
export function dateStart(date: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!m) throw new RangeError(`"${date}" is not a date (YYYY-MM-DD)`);
  const ts = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!);
  if (new Date(ts).toISOString().slice(0, 10) !== date) throw new RangeError(`"${date}" is not a calendar date`);
  return ts;
}

/** The expiry date as the user gave it (the last usable day). */
export function expiryDate(expires: number): string {
  return new Date(expires - DAY_MS).toISOString().slice(0, 10);
}
