/**
 * Volume-discount tiers over a period's usage (e.g. a month's image count).
 *
 * graduated: each unit is priced by the tier it falls in (1–1,000 @ a, 1,001–10,000 @ b, ...).
 * volume:    every unit of the period is priced at the tier the period total falls in — so a
 *            volume plan has a cliff: crossing a threshold re-prices the whole period.
 *
 * A call's cost under a plan is total(before + units) − total(before), so the costs of a period's
 * calls always add up to exactly the plan's price for the period's total (the difference can be
 * negative at a volume cliff; that credit is itemized).
 */
import { lineCost, parseDecimal, type Nano, type Ratio } from './money.ts';

export interface Tier {
  upTo: number | null; // inclusive upper bound, null = unbounded (must be last)
  price: string;       // USD per unit
}
export type TierMode = 'graduated' | 'volume';

export interface TierSegment {
  from: number;        // first unit number in this tier (1-based)
  to: number;          // last unit number
  units: number;
  price: string;
  cost: Nano;
}

export class TierError extends Error {
  readonly code = 'E_TIERS';
}

interface Compiled { upTo: number | null; price: Ratio; text: string }
const compiledCache = new WeakMap<readonly Tier[], Compiled[]>();

function compile(tiers: readonly Tier[]): Compiled[] {
  let c = compiledCache.get(tiers);
  if (c) return c;
  if (tiers.length === 0) throw new TierError('a tier plan needs at least one tier');
  let prev = 0;
  c = tiers.map((t, i) => {
    if (t.upTo === null && i !== tiers.length - 1) throw new TierError('only the last tier may be unbounded');
    if (t.upTo !== null && (!Number.isSafeInteger(t.upTo) || t.upTo <= prev)) throw new TierError(`tier bounds must increase: ${t.upTo} after ${prev}`);
    prev = t.upTo ?? prev;
    const price = parseDecimal(t.price);
    if (price.num < 0n) throw new TierError('tier prices cannot be negative');
    return { upTo: t.upTo, price, text: t.price };
  });
  compiledCache.set(tiers, c);
  return c;
}

/** The itemized price of `units` units in one period. Each segment is rounded once (half-even). */
export function tierSegments(mode: TierMode, tiers: readonly Tier[], units: number): TierSegment[] {
  if (!Number.isSafeInteger(units) || units < 0) throw new TierError(`units must be a whole number ≥ 0, got ${units}`);
  const c = compile(tiers);
  if (units === 0) return [];
  if (mode === 'volume') {
    const tier = c.find((t) => t.upTo === null || units <= t.upTo) ?? c[c.length - 1]!;
    return [{ from: 1, to: units, units, price: tier.text, cost: lineCost({ num: BigInt(units), den: 1n }, tier.price) }];
  }
  const out: TierSegment[] = [];
  let lower = 0;
  for (const t of c) {
    const upper = t.upTo === null ? units : Math.min(units, t.upTo);
    if (upper > lower) {
      const n = upper - lower;
      out.push({ from: lower + 1, to: upper, units: n, price: t.text, cost: lineCost({ num: BigInt(n), den: 1n }, t.price) });
    }
    if (t.upTo === null || units <= t.upTo) break;
    lower = t.upTo;
  }
  if (lower < units && out.length && out[out.length - 1]!.to < units) {
    // units beyond the last bounded tier are priced at the last tier
    const last = c[c.length - 1]!;
    const n = units - out[out.length - 1]!.to;
    out.push({ from: units - n + 1, to: units, units: n, price: last.text, cost: lineCost({ num: BigInt(n), den: 1n }, last.price) });
  }
  return out;
}

export function tierTotal(mode: TierMode, tiers: readonly Tier[], units: number): Nano {
  let total = 0n;
  for (const s of tierSegments(mode, tiers, units)) total += s.cost;
  return total;
}

/** The cost of `units` more units when the period already used `before`. */
export function tierIncrement(mode: TierMode, tiers: readonly Tier[], before: number, units: number): Nano {
  return tierTotal(mode, tiers, before + units) - tierTotal(mode, tiers, before);
}
