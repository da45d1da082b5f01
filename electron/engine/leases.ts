/**
 * Caps across devices (issue 12): an `--all-devices` cap is kept on the sync service, and this
 * device spends against it only from leases, allowances the service grants from what remains of
 * the limit (ledger/README.md, "Caps across devices and leases").
 *
 * - `reserve` runs synchronously in the engine's admission (no I/O on the request path): a call
 *   reserves its worst case on one unexpired lease with room, or is refused with the usual 402.
 * - `settle` books the call's cost on that lease; the call row names the lease (calls.leases) and
 *   is pushed with it, so the service counts the spend against the lease.
 * - Leases are topped up ahead of need (the sync loop, and the proxy's async `warm` step when one
 *   runs low), and returned with what was spent once they expire (15 min, counted on this device's
 *   monotonic clock) and nothing is in flight on them. Offline, nothing new is granted: the device
 *   spends what its unexpired leases still hold, then blocks.
 * - After a restart, the service's open leases of this device are returned with the spend its
 *   ledger records against them (`Ledger.leaseUsed`), so nothing stays held for the period.
 */
import { performance } from 'node:perf_hooks';
import { nanoToUsd, usdToNanoExact } from '../../shared/money.ts';
import type { Ledger } from './ledger.ts';

export interface LocalLease {
  id: string;
  cap: string;
  amount: bigint;
  used: bigint;
  reserved: bigint;
  /** performance.now() when it stops being spendable. */
  expiresAt: number;
}

export interface LeaseTransport {
  /** null when this device has not joined a service. */
  request<T>(method: string, path: string, body?: unknown): Promise<T>;
}

interface CapInfo { limitNano: bigint }

/** Ask for this share of the cap's limit at a time (or the reservation that did not fit, if larger). */
const SHARE = 10n;
/** Do not ask again for this long after the service had nothing left (or could not be reached). */
const RETRY_EMPTY_MS = 1000;

export class LeaseBook {
  private readonly leases = new Map<string, LocalLease>();
  private caps = new Map<string, CapInfo>();
  private inflight = new Map<string, Promise<void>>();
  private emptyUntil = new Map<string, number>();
  private wanted = new Map<string, bigint>();
  /** Failed grant requests in a row (the service unreachable): the wait before asking again doubles, up to a minute. */
  private failures = 0;
  /** Caps whose next ask waits out that backoff (not a "nothing left" answer): lifted when the service answers again. */
  private backingOff = new Set<string>();
  private recovered = false;
  /** Leases this process gave back (the service has them returned). */
  private returned = new Set<string>();
  /** Leases this process will never spend from: open on the service, unknown here when it looked (see housekeep). */
  private disowned = new Set<string>();
  readonly ttlMs: number | undefined;

  constructor(private readonly t: LeaseTransport, private readonly ledger: Ledger, private readonly log: (m: string) => void) {
    const env = Number(process.env.TOLLGATE_LEASE_TTL_MS);
    this.ttlMs = Number.isFinite(env) && env > 0 ? env : undefined;
  }

  /** The all-devices caps the engine enforces now (called when caps are loaded). */
  setCaps(caps: { id: string; limitNano: bigint }[]): void {
    this.caps = new Map(caps.map((c) => [c.id, { limitNano: c.limitNano }]));
  }

  get hasCaps(): boolean {
    return this.caps.size > 0;
  }

  private live(l: LocalLease, now = performance.now()): boolean {
    return now < l.expiresAt;
  }

  /** What unexpired leases of a cap still hold for new calls. */
  remaining(capId: string): bigint {
    const now = performance.now();
    let sum = 0n;
    for (const l of this.leases.values()) if (l.cap === capId && this.live(l, now)) sum += l.amount - l.used - l.reserved > 0n ? l.amount - l.used - l.reserved : 0n;
    return sum;
  }

  /** Can a call reserve `amount` on this cap now? (Admission checks every cap before reserving on any.) */
  canReserve(capId: string, amount: bigint): boolean {
    return this.pick(capId, amount) !== null;
  }

  private pick(capId: string, amount: bigint): LocalLease | null {
    const now = performance.now();
    let best: LocalLease | null = null;
    for (const l of this.leases.values()) {
      if (l.cap !== capId || !this.live(l, now) || l.amount - l.used - l.reserved < amount) continue;
      if (!best || l.expiresAt < best.expiresAt) best = l; // spend the soonest-expiring first
    }
    return best;
  }

  /** Reserve on a lease (synchronous); null when no lease has room: the call is refused. Asks for more in the background when low. */
  reserve(capId: string, amount: bigint): string | null {
    const l = this.pick(capId, amount);
    if (!l) {
      const w = this.wanted.get(capId) ?? 0n;
      if (amount > w) this.wanted.set(capId, amount);
      void this.topUp(capId).catch(() => {});
      return null;
    }
    l.reserved += amount;
    if (this.low(capId)) void this.topUp(capId).catch(() => {});
    return l.id;
  }

  /** The cap's period ended: its leases belong to the old period, so they take no new calls (returned once drained). */
  retire(capId: string): void {
    const now = performance.now();
    for (const l of this.leases.values()) if (l.cap === capId && l.expiresAt > now) l.expiresAt = now;
  }

  /** A call on this lease ended: release its reservation and book its cost. */
  settle(leaseId: string, reserved: bigint, cost: bigint): void {
    const l = this.leases.get(leaseId);
    if (!l) return;
    l.reserved -= reserved;
    l.used += cost;
    if (!this.live(l) && l.reserved === 0n) void this.returnLease(l).catch(() => {});
  }

  private chunk(capId: string): bigint {
    const c = this.caps.get(capId);
    if (!c) return 0n;
    const share = c.limitNano / SHARE;
    const want = this.wanted.get(capId) ?? 0n;
    return (want * 2n > share ? want * 2n : share) || 1n;
  }

  /** Below half a chunk of room: time to ask for another lease. */
  private low(capId: string): boolean {
    return this.remaining(capId) * 2n < this.chunk(capId);
  }

  /** Some cap runs low and the service may have more: the proxy waits for a top-up before admission. */
  needsTopUp(): boolean {
    const now = performance.now();
    for (const id of this.caps.keys()) if (this.low(id) && (this.emptyUntil.get(id) ?? 0) <= now) return true;
    return false;
  }

  /**
   * The service answered (a sync pass got through): the backoff kept after failed asks is over, so
   * a device back online asks for leases at once instead of refusing calls for up to a minute more.
   * A "nothing left" answer keeps its own short wait.
   */
  serviceAnswered(): void {
    this.failures = 0;
    for (const id of this.backingOff) this.emptyUntil.delete(id);
    this.backingOff.clear();
  }

  /** Ask the service for a lease on every cap that runs low (single flight per cap). */
  async topUpAll(): Promise<void> {
    await Promise.all([...this.caps.keys()].filter((id) => this.low(id)).map((id) => this.topUp(id).catch(() => {})));
  }

  topUp(capId: string): Promise<void> {
    const running = this.inflight.get(capId);
    if (running) return running;
    if ((this.emptyUntil.get(capId) ?? 0) > performance.now()) return Promise.resolve();
    const p = this.grant(capId).finally(() => this.inflight.delete(capId));
    this.inflight.set(capId, p);
    return p;
  }

  private async grant(capId: string): Promise<void> {
    const amount = this.chunk(capId);
    if (amount <= 0n) return;
    let r: { granted?: string; lease?: { id: string; amount: string; ttl_ms: number } | null };
    const asked = performance.now();
    try {
      r = await this.t.request('POST', '/v1/leases', { cap: capId, amount: nanoToUsd(amount), ...(this.ttlMs ? { ttl_ms: this.ttlMs } : {}) });
    } catch (e) {
      this.failures++;
      this.emptyUntil.set(capId, performance.now() + Math.min(60_000, RETRY_EMPTY_MS * 2 ** Math.min(this.failures - 1, 6)));
      this.backingOff.add(capId);
      throw e;
    }
    this.failures = 0;
    this.backingOff.delete(capId);
    if (!r.lease) {
      this.emptyUntil.set(capId, performance.now() + RETRY_EMPTY_MS);
      return;
    }
    this.wanted.delete(capId);
    // an answer that comes after housekeep found the lease open and gave it back (or that repeats one
    // held): not spendable, whatever it says
    if (this.disowned.has(r.lease.id) || this.returned.has(r.lease.id) || this.leases.has(r.lease.id)) return;
    // the TTL counts from when we asked: never later than the service thinks
    this.leases.set(r.lease.id, { id: r.lease.id, cap: capId, amount: usdToNanoExact(r.lease.amount), used: 0n, reserved: 0n, expiresAt: asked + r.lease.ttl_ms });
  }

  private returning = new Set<string>();

  private async returnLease(l: LocalLease): Promise<void> {
    if (this.returning.has(l.id)) return;
    this.returning.add(l.id);
    try {
      await this.t.request('POST', `/v1/leases/${l.id}/return`, { used: nanoToUsd(l.used) });
      this.returned.add(l.id);
      this.leases.delete(l.id);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'no_such_lease' || code === 'lease_returned') {
        this.returned.add(l.id);
        this.leases.delete(l.id);
      } else throw e;
    } finally {
      this.returning.delete(l.id);
    }
  }

  /**
   * Return what is done with: expired leases with nothing in flight, and leases of caps no longer
   * enforced. Then every lease the service has open for this device that this process does not
   * hold: after a restart, those an earlier run held (returned with the spend the ledger records
   * against them); later, those granted to this process whose answer never arrived (a dropped or
   * duplicated grant request), returned unused: otherwise each would hold its allowance for the
   * rest of the cap's period. Such a lease is disowned before it is returned, so a grant answer
   * arriving afterwards is not spent from.
   */
  async housekeep(): Promise<void> {
    const now = performance.now();
    for (const l of [...this.leases.values()]) {
      if (l.reserved === 0n && (!this.live(l, now) || !this.caps.has(l.cap))) await this.returnLease(l).catch(() => {});
    }
    const first = !this.recovered;
    let open: { id: string; cap: string }[];
    try {
      open = (await this.t.request<{ leases?: { id: string; cap: string }[] }>('GET', '/v1/leases')).leases ?? [];
    } catch (e) {
      if (first) throw e;
      return; // looked again at the next pass
    }
    for (const x of open) {
      if (this.leases.has(x.id) || this.returned.has(x.id)) continue;
      // a grant for this cap is under way: its answer may be this lease (if it is lost, the next pass returns it)
      if (!first && this.inflight.has(x.cap)) continue;
      this.disowned.add(x.id);
      const used = this.ledger.leaseUsed(x.id);
      try {
        await this.t.request('POST', `/v1/leases/${x.id}/return`, { used: nanoToUsd(used) }).catch((e: { code?: string }) => {
          if (e.code !== 'no_such_lease' && e.code !== 'lease_returned') throw e;
        });
      } catch (e) {
        if (first) throw e;
        continue; // still open: returned at a later pass
      }
      this.returned.add(x.id);
      this.log(first
        ? `sync: returned lease ${x.id} of cap ${x.cap} left open by an earlier run (spent ${nanoToUsd(used)} USD)`
        : `sync: returned lease ${x.id} of cap ${x.cap}, granted to this device but its answer was lost`);
    }
    this.recovered = true;
  }

  /** Stopping: return every lease with nothing in flight (best effort; an unreturned one expires on the service). */
  async returnAll(): Promise<void> {
    for (const l of [...this.leases.values()]) if (l.reserved === 0n) await this.returnLease(l).catch(() => {});
  }

  /** For status: leases held now. */
  list(): LocalLease[] {
    return [...this.leases.values()].map((l) => ({ ...l }));
  }
}
