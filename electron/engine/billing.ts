/**
 * Credits, settlement statements and reconciliation over the ledger (the pure math is in
 * shared/credits.ts, shared/statements.ts and shared/reconcile.ts).
 *
 * - Balances are derived, never stored: grants + the spend per UTC day and provider (spend_days,
 *   kept by the ledger writer with each call; today from the hourly rollups): one spend total per
 *   interval between grant boundaries (see balancesAt). A call synced from another device is one
 *   more row (and spend increment) and changes the derivation like any other call; a top-up with an
 *   earlier effective date re-derives everything after it.
 * - Statements are made from statement_lines (the exact sums of every line per project and UTC day,
 *   kept by the ledger writer in the same transaction as each call, migration 6), never from a
 *   scan of the calls; only the late calls of closed periods are read. Once the period is past
 *   its grace time (48 h unless set for the project) the statement is frozen on first use: its rendered CSV, JSON and HTML are
 *   stored with a SHA-256 over its call ids and totals, and returned byte for byte from then on.
 *   The freeze records the highest call rowid it saw (`closed_seq`): a call of that period written
 *   later (late sync) has a higher rowid and lands in the next statement still open, as a
 *   prior-period adjustment. `accounted` (calls of the period already on some frozen statement) is
 *   compared with the rollups' call count, so a period without late calls costs one sum, not a scan.
 *   (Rowids of the calls table must not be renumbered: no VACUUM of it.)
 * - A period with calls still in flight is not frozen until they end.
 */
import crypto from 'node:crypto';
import type Database from 'better-sqlite3';
import type { Engine } from './engine.ts';
import { newCallId } from './ids.ts';
import {
  balancesAt, dateStart, deriveMovements, dueCreditAlerts, expiryDate, expiryFromDate, projectRunway, DAY_MS,
  type CreditGrant, type GrantBalance, type ProviderBalance, type Runway,
} from '../../shared/credits.ts';
import {
  addStoredLines, aggregateCalls, emptyAggregate, finishStatement, hashInput, isClosed, nextPeriod, parsePeriod, periodOf, renderCsv, renderHtml, renderJson, DEFAULT_GRACE_MS,
  type BillingTerms, type PeriodKind, type Statement, type StatementCall, type StatementPeriod, type StoredLine,
} from '../../shared/statements.ts';
import { parseExport, reconcile as compare, reconcileGenerations, ReconcileError, type LedgerAmount, type LedgerGeneration, type ReconcileProvider, type ReconcileResult } from '../../shared/reconcile.ts';
import { canonicalProvider } from '../../shared/catalog.ts';
import { priceCall } from '../../shared/pricing.ts';
import { formatUsd, nanoToUsd, usdToNanoExact } from '../../shared/money.ts';
import type { Alert, CreditGrantInfo, CreditMovement, CreditInput, CreditProviderStatus, CreditsStatus, StatementFormat, StatementResult, StatementSummary } from '../../shared/api.ts';

type Row = Record<string, unknown>;

export class BillingError extends Error {
  constructor(readonly code: 'E_VALIDATION' | 'E_NOT_FOUND' | 'E_CLOSED', message: string) {
    super(message);
  }
}

interface Frozen {
  project: string;
  period: string;
  kind: PeriodKind;
  start: number;
  end: number;
  closedAt: number;
  closedSeq: number;
  accounted: number;
  markup: string | null;
  fee: string | null;
  calls: number;
  costNano: bigint;
  total: string;
  hash: string;
}

function frozenFromDb(r: Row): Frozen {
  return {
    project: String(r.project), period: String(r.period), kind: r.kind as PeriodKind, start: Number(r.period_start), end: Number(r.period_end),
    closedAt: Number(r.closed_at), closedSeq: Number(r.closed_seq), accounted: Number(r.accounted), markup: (r.markup as string) ?? null,
    fee: (r.fee as string) ?? null, calls: Number(r.calls), costNano: BigInt(r.cost_nano as bigint), total: String(r.total), hash: String(r.hash),
  };
}

/** The grain of statement_ids (and of the backfill of statement_lines): the rollups' hour. */
const HOUR_MS = 3_600_000;

const usd = (n: bigint) => formatUsd(n);

export class Billing {
  /** Alerts fire only from a serving engine (set by Engine.start). */
  serving = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly e: Engine) {}

  private get db() {
    return this.e.ledger.db;
  }

  // ---- credits ----

  grants(): CreditGrant[] {
    return liveGrants(this.db);
  }

  addGrant(input: CreditInput): CreditGrantInfo {
    const now = this.e.now();
    const effective = input.effective ? dateStart(input.effective) : Math.floor(now / DAY_MS) * DAY_MS;
    const expires = expiryFromDate(input.expires);
    if (expires <= effective) throw new BillingError('E_VALIDATION', `the expiry date ${input.expires} is before the effective date ${new Date(effective).toISOString().slice(0, 10)}`);
    const g: CreditGrant = {
      id: 'cr_' + newCallId().replace(/-/g, '').slice(-12), provider: canonicalProvider(input.provider), amountNano: usdToNanoExact(input.amount),
      effective, expires, priority: input.priority ?? 50, promo: input.promo ?? false, note: input.note ?? null, createdAt: now,
    };
    // synced = 0: in the grants outbox (sync.ts pushes it with the next pass)
    this.db.prepare('INSERT INTO credit_grants (id, provider, amount_nano, effective_ts, expires_ts, priority, promo, note, created_at, device, synced) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, 0)')
      .run(g.id, g.provider, g.amountNano, g.effective, g.expires, g.priority, g.promo ? 1 : 0, g.note, g.createdAt);
    this.checkSoon();
    const st = this.status().providers.find((p) => p.provider === g.provider)!;
    return st.grants.find((x) => x.id === g.id)!;
  }

  /** Remove a grant: a tombstone (credit_grant_removals), synced to the other devices; the grant's row stays. */
  removeGrant(id: string): boolean {
    return removeGrantRow(this.db, id, this.e.now(), null, 0);
  }

  /** Spend per provider and UTC day with from <= day < today, from spend_days (a few rows per day). */
  private spendBefore(from: number, today: number): Map<string, Map<number, bigint>> {
    const map = new Map<string, Map<number, bigint>>();
    for (const r of this.db.prepare('SELECT provider, day, cost_nano FROM spend_days WHERE day >= ? AND day < ?').raw(true).safeIntegers(true).iterate(from, today) as Iterable<[string, bigint, bigint]>) {
      let m = map.get(r[0]);
      if (!m) map.set(r[0], (m = new Map()));
      m.set(Number(r[1]), r[2]);
    }
    return map;
  }

  private compute(now: number): { balance: ProviderBalance; runway: Runway }[] {
    this.e.flushQuietly();
    const grants = this.grants();
    if (!grants.length) return [];
    const today = Math.floor(now / DAY_MS) * DAY_MS;
    const spend = this.spendFn(grants, today);
    return balancesAt(grants, now, spend).map((balance) => {
      // trailing 7 days: the 6 UTC days before today, and today so far
      const burn = spend(balance.provider, today - 6 * DAY_MS, now + 1);
      return { balance, runway: projectRunway(balance, burn, now) };
    });
  }

  /** Spend of a provider with a <= ts < b: whole days before today from spend_days, the rest from the rollups. */
  private spendFn(grants: readonly CreditGrant[], today: number): (provider: string, a: number, b: number) => bigint {
    const from = Math.min(today - 7 * DAY_MS, ...grants.map((g) => g.effective));
    const past = this.spendBefore(from, today);
    return (provider: string, a: number, b: number): bigint => {
      let sum = 0n;
      const days = past.get(provider);
      if (days) for (let d = Math.max(a, from); d < Math.min(b, today); d += DAY_MS) sum += days.get(d) ?? 0n;
      if (a < from) sum += this.e.ledger.spend({ provider, from: a, to: Math.min(b, from) }).cost;
      if (b > today) sum += this.e.ledger.spend({ provider, from: Math.max(a, today), to: b }).cost;
      return sum;
    };
  }

  /**
   * The movements of the calls of the last `days` UTC days (today included), newest last: one per
   * grant a call drew from, and one with no grant for what no grant covered. The grants' balances at
   * the start of that window come from the spend totals (balancesAt), then the calls from there on,
   * ordered by (ts, id), draw in burn order (deriveMovements): the same movements on every device.
   */
  movements(arg: { provider?: string; days?: number; limit?: number }): CreditMovement[] {
    const now = this.e.now();
    this.e.flushQuietly();
    const grants = this.grants().filter((g) => !arg.provider || g.provider === canonicalProvider(arg.provider));
    if (!grants.length) return [];
    const today = Math.floor(now / DAY_MS) * DAY_MS;
    const start = today - (Math.max(1, arg.days ?? 1) - 1) * DAY_MS;
    const at = new Map(balancesAt(grants, start, this.spendFn(grants, today)).flatMap((p) => p.grants.map((g) => [g.grant.id, g] as const)));
    const opening = grants.map((g) => ({ ...g, amountNano: at.get(g.id)!.state === 'expired' ? 0n : at.get(g.id)!.remainingNano }));
    const providers = [...new Set(grants.map((g) => g.provider))];
    const rows = this.db.prepare(`SELECT id, ts, provider, model, cost_nano FROM calls WHERE ts >= ? AND ts <= ? AND status NOT IN ('blocked', 'pending') AND cost_nano <> 0 AND provider IN (${providers.map(() => '?').join(', ')}) ORDER BY ts, id`)
      .safeIntegers(true).all(start, now, ...providers) as Row[];
    const meta = new Map(rows.map((r) => [String(r.id), { provider: String(r.provider), model: (r.model as string) ?? null }]));
    const calls = rows.map((r) => ({ id: String(r.id), ts: Number(r.ts), provider: String(r.provider), costNano: BigInt(r.cost_nano as bigint) }));
    const out: CreditMovement[] = [];
    for (const m of deriveMovements(opening, calls)) {
      const c = meta.get(m.callId)!;
      out.push({ callId: m.callId, ts: m.ts, provider: c.provider, model: c.model, grantId: m.grantId, amount: nanoToUsd(m.amountNano) });
    }
    const limit = Math.min(Math.max(arg.limit ?? 1000, 1), 10_000);
    return out.slice(-limit);
  }

  status(): CreditsStatus {
    const now = this.e.now();
    return { asOf: now, providers: this.compute(now).map(({ balance, runway }) => providerStatus(balance, runway, now)) };
  }

  /** Check the credit alerts shortly (coalesced): after a call, a grant added, at start. */
  checkSoon(delayMs = 200): void {
    if (!this.serving || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      try {
        this.checkAlerts();
      } catch (e) {
        this.e.log(`could not check credit alerts: ${(e as Error).message}`);
      }
    }, delayMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    if (this.warmTimer) clearTimeout(this.warmTimer);
    this.timer = this.warmTimer = null;
    this.serving = false;
  }

  private hasGrants(): boolean {
    return this.db.prepare('SELECT 1 FROM credit_grants WHERE id NOT IN (SELECT id FROM credit_grant_removals) LIMIT 1').get() !== undefined;
  }

  /**
   * Each alert once per grant and threshold (the alerts table remembers, across processes): of the
   * thresholds newly crossed for a grant and kind, the most severe notifies, the rest are recorded quietly.
   */
  checkAlerts(): Alert[] {
    if (!this.hasGrants()) return [];
    const now = this.e.now();
    const out: Alert[] = [];
    const firedStmt = this.db.prepare(`SELECT threshold FROM alerts WHERE cap_id = ? AND period_key = ? AND kind = 'credit'`);
    for (const { balance, runway } of this.compute(now)) {
      const due = dueCreditAlerts(balance, runway, now, usd);
      const byKey = new Map<string, typeof due>();
      for (const d of due) {
        const k = `${d.grantId}\u0000${d.kind}`;
        byKey.set(k, [...(byKey.get(k) ?? []), d]);
      }
      for (const list of byKey.values()) {
        const first = list[0]!;
        const fired = new Set((firedStmt.all(first.grantId, first.kind) as Row[]).map((r) => Number(r.threshold)));
        const fresh = list.filter((d) => !fired.has(d.threshold));
        fresh.forEach((d, i) => {
          const gb = balance.grants.find((g) => g.grant.id === d.grantId)!;
          const alert: Alert = {
            id: newCallId(), capId: d.grantId, capLabel: d.message, threshold: d.threshold, periodKey: d.kind,
            spent: nanoToUsd(gb.drawnNano), limit: nanoToUsd(gb.grant.amountNano), ts: now, kind: 'credit', message: d.message,
          };
          if (i > 0) return void this.e.ledger.insertAlert(alert, 'skipped');
          if (this.e.ledger.insertAlert(alert)) {
            this.e.log(`credit alert: ${d.message}`);
            this.e.emit({ type: 'alert', alert });
            out.push(alert);
          }
        });
      }
    }
    return out;
  }

  // ---- statements ----

  private frozen(project: string, period: string): Frozen | null {
    const r = this.db.prepare('SELECT * FROM statements WHERE project = ? AND period = ?').safeIntegers(true).get(project, period) as Row | undefined;
    return r ? frozenFromDb(r) : null;
  }

  /**
   * How long the periods of a project stay open after they end, so late syncs land in them: 48 h
   * unless set for the project (`tollgate statement --grace HOURS`). A statement already closed
   * stays closed whatever the grace becomes.
   */
  graceMs(project: string): number {
    const saved = this.e.ledger.setting(`statementGrace:${project}`);
    const hours = saved === null ? NaN : Number(saved);
    return Number.isInteger(hours) && hours >= 0 ? hours * 3_600_000 : DEFAULT_GRACE_MS;
  }

  private setGrace(project: string, hours: number | undefined): void {
    if (hours === undefined) return;
    if (!Number.isInteger(hours) || hours < 0 || hours > 2160) throw new BillingError('E_VALIDATION', 'the grace time must be a whole number of hours from 0 to 2160 (90 days)');
    if (hours * 3_600_000 === DEFAULT_GRACE_MS) this.e.ledger.deleteSetting(`statementGrace:${project}`);
    else this.e.ledger.setSetting(`statementGrace:${project}`, String(hours));
  }

  private terms(project: string, arg: { markup?: string | null; fee?: string | null }): BillingTerms {
    const saved = this.e.ledger.setting(`statementTerms:${project}`);
    const t: BillingTerms = saved ? JSON.parse(saved) : { markupPct: null, fee: null };
    if (arg.markup !== undefined || arg.fee !== undefined) {
      if (arg.markup !== undefined) t.markupPct = arg.markup && !/^0(\.0+)?$/.test(arg.markup) ? arg.markup : null;
      if (arg.fee !== undefined) t.fee = arg.fee && !/^0(\.0+)?$/.test(arg.fee) ? arg.fee : null;
      // remembered as the project's terms for its later statements
      this.e.ledger.setSetting(`statementTerms:${project}`, JSON.stringify(t));
    }
    return t;
  }

  /**
   * Build a statement in one snapshot: the period's own lines from statement_lines (summed over its
   * days), the late calls of earlier closed statements as adjustments (read from the calls). With
   * `withIds` (closing it), the content hash's entries too: per hour with calls
   * "hour:YYYY-MM-DDTHH:COUNT:SHA-256 of its sorted call ids" (cached per project-hour by count in
   * statement_ids; the rest read from the calls), then each adjustment as "id@original-period".
   */
  private build(project: string, p: StatementPeriod, terms: BillingTerms, closedAt: number | null, withIds = false): {
    statement: Statement; ids: string[]; seq: number; pending: number; own: number; absorbed: Map<string, number>;
  } {
    // hours with calls from before migration 6 get their lines once, from the calls
    for (const h of this.e.ledger.backfillPending(project, p.start, p.end)) this.e.ledger.backfillHour(h.project, h.hour);
    const fresh: { hour: number; calls: number; sha: string }[] = [];
    const result = this.db.transaction(() => {
      const seq = Number(this.db.prepare('SELECT COALESCE(MAX(rowid), 0) FROM calls').pluck().get());
      // calls in flight are few: read them by the partial index of pending calls, not the period's calls
      const pending = Number(this.db.prepare(`SELECT COUNT(*) FROM calls INDEXED BY calls_pending WHERE status = 'pending' AND project = ? AND ts >= ? AND ts < ?`).pluck().get(project, p.start, p.end));
      const lines: StoredLine[] = [];
      for (const r of this.db.prepare('SELECT provider, model, workflow, node, label, unit, per, unit_price, n, calls, q, cost_nano FROM statement_lines WHERE project = ? AND day >= ? AND day < ?')
        .raw(true).safeIntegers(true).iterate(project, p.start, p.end) as Iterable<unknown[]>) {
        lines.push({ provider: r[0] as string, model: r[1] as string, workflow: r[2] as string, node: r[3] as string, label: r[4] as string, unit: r[5] as string,
          per: Number(r[6]), unitPrice: r[7] as string, n: Number(r[8]), calls: Number(r[9]), quantity: r[10] as string, costNano: r[11] as bigint });
      }
      const agg = addStoredLines(emptyAggregate(), lines);
      const own = agg.calls;
      const ids: string[] = [];
      if (withIds) {
        const perHour = new Map((this.db.prepare('SELECT bucket, SUM(calls) FROM rollups WHERE project = ? AND bucket >= ? AND bucket < ? GROUP BY bucket').raw(true)
          .all(project, p.start, p.end) as [number, number][]).filter((r) => r[1] > 0));
        const counted = [...perHour.values()].reduce((a, b) => a + b, 0);
        if (counted !== own) throw new Error(`the statement lines of ${project} for ${p.key} count ${own} calls, the rollups ${counted}`);
        const cached = new Map((this.db.prepare('SELECT hour, calls, ids_sha256 FROM statement_ids WHERE project = ? AND hour >= ? AND hour < ?').raw(true)
          .all(project, p.start, p.end) as [number, number, string][]).map((r) => [r[0], r]));
        const missing = [...perHour].filter(([h, n]) => cached.get(h)?.[1] !== n).map(([h]) => h);
        const read = this.hashHours(project, missing);
        for (const [hour, n] of [...perHour].sort((a, b) => a[0] - b[0])) {
          let sha = cached.get(hour)?.[2];
          if (cached.get(hour)?.[1] !== n) {
            const h = read.get(hour) ?? { calls: 0, sha: '' };
            if (h.calls !== n) throw new Error(`the rollups of ${project} for ${new Date(hour).toISOString().slice(0, 13)}h count ${n} calls, the ledger ${h.calls}`);
            sha = h.sha;
            fresh.push({ hour, calls: n, sha });
          }
          ids.push(`hour:${new Date(hour).toISOString().slice(0, 13)}:${n}:${sha}`);
        }
      }
      const absorbed = new Map<string, number>();
      const frozenList = (this.db.prepare('SELECT * FROM statements WHERE project = ? AND kind = ? AND period_end <= ? ORDER BY period_start').safeIntegers(true).all(project, p.kind, p.start) as Row[]).map(frozenFromDb);
      const frozenByKey = new Map(frozenList.map((f) => [f.period, f]));
      for (const r of frozenList) {
        const inRange = Number(this.db.prepare(`SELECT COALESCE(SUM(calls), 0) FROM rollups WHERE project = ? AND bucket >= ? AND bucket < ?`).pluck().get(project, r.start, r.end));
        if (inRange === r.accounted) continue;
        for (const { call, rowid } of this.callsOf(project, r.start, r.end, r.closedSeq)) {
          // the first statement after r that was still open when this call was written
          let s = nextPeriod(parsePeriod(r.period));
          for (;;) {
            const f = frozenByKey.get(s.key);
            if (!f || f.closedSeq >= rowid) break;
            s = nextPeriod(s);
          }
          if (s.key !== p.key) continue;
          aggregateCalls(agg, [call], 'adjustment', r.period, ids);
          absorbed.set(r.period, (absorbed.get(r.period) ?? 0) + 1);
        }
      }
      const statement = finishStatement({ project, period: p, status: closedAt === null ? 'open' : 'closed', closedAt, terms }, agg);
      return { statement, ids, seq, pending, own, absorbed };
    })();
    this.cacheIds(project, fresh);
    return result;
  }

  /**
   * Per hour asked for: how many final calls of the project it has and the SHA-256 of their ids,
   * sorted (by their bytes, as SQLite's BINARY collation sorts them; the same as a JS sort for the
   * ASCII ids Tollgate makes) and joined by newlines. SQLite reads the calls(project, ts, status,
   * id) index, sorts by hour and id and concatenates per hour, so no call becomes a JS object: one
   * range scan when many hours are asked for, one per hour otherwise.
   */
  private hashHours(project: string, hours: number[]): Map<number, { calls: number; sha: string }> {
    const out = new Map<number, { calls: number; sha: string }>();
    if (!hours.length) return out;
    const wanted = new Set(hours);
    // the outer GROUP BY consumes the subquery in its (hour, id) order, so group_concat sees each hour's ids sorted
    const stmt = this.db.prepare(`SELECT h, COUNT(*), group_concat(id, char(10)) FROM (SELECT ts / ${HOUR_MS} AS h, id FROM calls
      WHERE project = ? AND ts >= ? AND ts < ? AND status NOT IN ('blocked', 'pending') ORDER BY 1, 2) GROUP BY h`).raw(true);
    const ranges = hours.length > 24 ? [[Math.min(...hours), Math.max(...hours) + HOUR_MS]] : hours.map((h) => [h, h + HOUR_MS]);
    for (const [a, b] of ranges) {
      for (const [h, n, ids] of stmt.iterate(project, a, b) as Iterable<[number, number, string]>) {
        const hour = h * HOUR_MS;
        if (wanted.has(hour)) out.set(hour, { calls: n, sha: crypto.createHash('sha256').update(ids).digest('hex') });
      }
    }
    return out;
  }

  private cacheIds(project: string, fresh: { hour: number; calls: number; sha: string }[]): void {
    if (!fresh.length) return;
    try {
      const put = this.db.prepare('INSERT INTO statement_ids (project, hour, calls, ids_sha256) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET calls = excluded.calls, ids_sha256 = excluded.ids_sha256');
      this.db.transaction(() => { for (const f of fresh) put.run(project, f.hour, f.calls, f.sha); })();
    } catch { /* a cache: the next closing reads the ids again */ }
  }

  private warmTimer: NodeJS.Timeout | null = null;

  /**
   * A serving engine prepares statements in the background, one project-hour per step (a step
   * blocks the event loop for one hour's calls of one project): first the statement lines of hours
   * written before migration 6 (newest first), then the id hashes of the past hours of the last 62
   * days, so closing a statement over a busy month reads cached hashes instead of every call id.
   */
  startWarming(firstMs = 5000, everyMs = 10 * 60_000): void {
    const step = (delay: number) => {
      this.warmTimer = setTimeout(() => {
        let more = false;
        try {
          more = this.warmStep();
        } catch (e) {
          this.e.log(`could not prepare statements: ${(e as Error).message}`);
        }
        if (this.serving) step(more ? 50 : everyMs);
      }, delay);
      this.warmTimer.unref();
    };
    step(firstMs);
  }

  /** Prepare one project-hour; false when nothing is left to do. */
  warmStep(): boolean {
    const current = Math.floor(this.e.now() / HOUR_MS) * HOUR_MS; // the current hour still changes
    this.e.flushQuietly();
    const todo = this.e.ledger.backfillPending(null, 0, Number.MAX_SAFE_INTEGER, 1)[0];
    if (todo) return this.e.ledger.backfillHour(todo.project, todo.hour) || true;
    const next = this.db.transaction(() => {
      // one scan finds every project-hour whose id hash is stale; each step then hashes one hour
      if (!this.warmQueue.length) {
        const counts = this.db.prepare(`SELECT project, bucket, SUM(calls) AS c FROM rollups WHERE bucket >= ? AND bucket < ? AND project != '' GROUP BY project, bucket`)
          .raw(true).all(current - 62 * DAY_MS, current) as [string, number, number][];
        const have = new Map((this.db.prepare('SELECT project, hour, calls FROM statement_ids WHERE hour >= ?').raw(true).all(current - 62 * DAY_MS) as [string, number, number][])
          .map((r) => [`${r[0]}\u0000${r[1]}`, r[2]]));
        this.warmQueue = counts.filter((r) => have.get(`${r[0]}\u0000${r[1]}`) !== r[2]).map((r) => ({ project: r[0], hour: r[1] }));
        if (!this.warmQueue.length) return null;
      }
      const q = this.warmQueue.shift()!;
      const h = this.hashHours(q.project, [q.hour]).get(q.hour);
      return { project: q.project, hour: q.hour, calls: h?.calls ?? 0, sha: h?.sha ?? '' };
    })();
    if (!next) return false;
    if (next.calls) this.cacheIds(next.project, [next]);
    return true;
  }

  private warmQueue: { project: string; hour: number }[] = [];

  private callsOf(project: string, from: number, to: number, afterSeq: number): { call: StatementCall; rowid: number }[] {
    return this.e.ledger.statementCalls(project, from, to, 'rowid > ?', [afterSeq]);
  }

  private finish(s: Statement, ids: string[]): Statement {
    s.hash = crypto.createHash('sha256').update(hashInput(s, ids)).digest('hex');
    return s;
  }

  private freeze(project: string, p: StatementPeriod, terms: BillingTerms): Frozen | null {
    const now = this.e.now();
    const built = this.build(project, p, terms, now, true);
    if (built.pending > 0) return null;
    const s = this.finish(built.statement, built.ids);
    const write = this.db.transaction(() => {
      if (this.frozen(project, p.key)) return; // frozen meanwhile by another process
      this.db.prepare(`INSERT INTO statements (project, period, kind, period_start, period_end, closed_at, closed_seq, pending_ids, own_calls, accounted, markup, fee, calls, cost_nano, total, hash, json, csv, html)
        VALUES (?, ?, ?, ?, ?, ?, ?, '[]', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
        .run(project, p.key, p.kind, p.start, p.end, now, built.seq, built.own, built.own, terms.markupPct, terms.fee, s.calls, usdToNanoExact(s.cost), s.total, s.hash, renderJson(s), renderCsv(s), renderHtml(s));
      for (const [period, n] of built.absorbed) this.db.prepare('UPDATE statements SET accounted = accounted + ? WHERE project = ? AND period = ?').run(n, project, period);
    });
    write.immediate();
    return this.frozen(project, p.key);
  }

  statement(arg: { project: string; period: string; markup?: string | null; fee?: string | null; format?: StatementFormat; graceHours?: number }): StatementResult {
    let p: StatementPeriod;
    try {
      p = parsePeriod(arg.period);
    } catch (e) {
      throw new BillingError('E_VALIDATION', (e as Error).message);
    }
    const format = arg.format ?? 'json';
    const now = this.e.now();
    this.e.flushQuietly();
    this.setGrace(arg.project, arg.graceHours);
    let f = this.frozen(arg.project, p.key);
    if (f && (arg.markup !== undefined || arg.fee !== undefined)) {
      const norm = (v: string | null | undefined) => (v && !/^0(\.0+)?$/.test(v) ? v : null);
      if ((arg.markup !== undefined && norm(arg.markup) !== f.markup) || (arg.fee !== undefined && norm(arg.fee) !== f.fee)) {
        throw new BillingError('E_CLOSED', `the statement of ${arg.project} for ${p.key} is closed (hash ${f.hash.slice(0, 12)}…) with markup ${f.markup ?? 0} % and fee $${f.fee ?? 0}: closed statements never change; late calls land in the next open statement`);
      }
    }
    if (!f && isClosed(p, now, this.graceMs(arg.project))) f = this.freeze(arg.project, p, this.terms(arg.project, arg));
    if (f) {
      const col = format === 'json' ? 'json' : format === 'csv' ? 'csv' : 'html';
      const r = this.db.prepare(`SELECT json, ${col} AS content FROM statements WHERE project = ? AND period = ?`).get(arg.project, p.key) as Row;
      return { statement: JSON.parse(String(r.json)) as Statement, format, content: String(r.content) };
    }
    // open: running totals, no hash (a hash names a closed statement)
    const s = this.build(arg.project, p, this.terms(arg.project, arg), null).statement;
    return { statement: s, format, content: format === 'json' ? renderJson(s) : format === 'csv' ? renderCsv(s) : renderHtml(s) };
  }

  /**
   * Closed statements, and per project with calls in the last 62 days the periods still open (the
   * current month, plus the current period of every kind the project was already billed by);
   * periods past their grace time are frozen here.
   */
  statements(arg: { project?: string }): StatementSummary[] {
    const now = this.e.now();
    this.e.flushQuietly();
    const projects = arg.project ? [arg.project] : (this.db.prepare(`SELECT DISTINCT project FROM rollups WHERE bucket >= ? AND project != '' ORDER BY project`).pluck().all(now - 62 * DAY_MS) as string[]);
    const open: StatementSummary[] = [];
    for (const project of projects) {
      const grace = this.graceMs(project);
      const kinds = new Set<PeriodKind>(['month', ...(this.db.prepare('SELECT DISTINCT kind FROM statements WHERE project = ?').pluck().all(project) as PeriodKind[])]);
      for (const kind of kinds) {
        const cur = periodOf(kind, now);
        const prev = periodOf(kind, cur.start - 1);
        for (const p of [prev, cur]) {
          if (this.frozen(project, p.key)) continue;
          const terms = this.terms(project, {});
          if (isClosed(p, now, grace)) {
            const has = this.db.prepare('SELECT 1 FROM calls WHERE project = ? AND ts >= ? AND ts < ? LIMIT 1').get(project, p.start, p.end) !== undefined;
            if (has) this.freeze(project, p, terms);
            if (this.frozen(project, p.key)) continue;
          }
          const built = this.build(project, p, terms, null);
          if (p === prev && built.statement.calls === 0) continue;
          const s = built.statement;
          open.push({ project, period: p.key, kind, status: 'open', from: s.from, to: s.to, calls: s.calls, cost: s.cost, total: s.total, hash: null, closedAt: null, closesAt: new Date(p.end + grace).toISOString() });
        }
      }
    }
    const closed = (this.db.prepare(`SELECT * FROM statements ${arg.project ? 'WHERE project = ?' : ''} ORDER BY project, period_start DESC`).safeIntegers(true).all(...(arg.project ? [arg.project] : [])) as Row[]).map(frozenFromDb);
    return [...open, ...closed.map((f): StatementSummary => ({
      project: f.project, period: f.period, kind: f.kind, status: 'closed', from: new Date(f.start).toISOString(), to: new Date(f.end).toISOString(),
      calls: f.calls, cost: nanoToUsd(f.costNano), total: f.total, hash: f.hash, closedAt: new Date(f.closedAt).toISOString(), closesAt: new Date(Math.min(f.closedAt, f.end + this.graceMs(f.project))).toISOString(),
    }))];
  }

  // ---- reconciliation ----

  reconcile(arg: { provider: ReconcileProvider; csv: string }): ReconcileResult {
    const catalog = this.e.catalog;
    const parsed = parseExport(arg.provider, arg.csv, (model, usage) => {
      const resolved = catalog.resolve(arg.provider, model);
      if (!resolved.token && !resolved.media) return null;
      const p = priceCall(usage, resolved, {}, `${arg.provider}:${model}`);
      return p.unpriced ? null : p.cost;
    });
    if (!parsed.amounts.length) throw new ReconcileError(`the ${parsed.label} has a header but no rows. Nothing was imported.`);
    this.e.flushQuietly();
    const first = dateStart(parsed.amounts[0]!.day);
    const last = dateStart(parsed.amounts[parsed.amounts.length - 1]!.day) + DAY_MS;
    if (parsed.generations) return compareGenerations(this.db, arg.provider, parsed, first, last);
    const rows = this.db.prepare('SELECT bucket, model, SUM(calls) AS calls, SUM(cost_nano) AS cost FROM rollups WHERE provider = ? AND bucket >= ? AND bucket < ? GROUP BY bucket, model')
      .safeIntegers(true).all(arg.provider, first, last) as Row[];
    const amounts: LedgerAmount[] = rows.map((r) => ({
      day: new Date(Number(r.bucket)).toISOString().slice(0, 10), model: String(r.model || '(unknown)'), costNano: BigInt(r.cost as bigint), calls: Number(r.calls),
    }));
    return compare(arg.provider, parsed, amounts);
  }
}

/**
 * The OpenRouter activity export joined per generation id: the metered calls of the export's days,
 * and any call elsewhere whose response id is in the export (a generation near midnight).
 */
function compareGenerations(db: Database.Database, provider: ReconcileProvider, parsed: ReturnType<typeof parseExport>, first: number, last: number): ReconcileResult {
  const toGen = (r: Row): LedgerGeneration => ({
    callId: String(r.id), upstreamId: (r.upstream_id as string) ?? null, day: new Date(Number(r.ts)).toISOString().slice(0, 10),
    model: String(r.model ?? '(unknown)'), costNano: BigInt(r.cost_nano as bigint),
  });
  const cols = 'id, ts, model, cost_nano, upstream_id';
  const calls = (db.prepare(`SELECT ${cols} FROM calls WHERE provider = ? AND ts >= ? AND ts < ? AND status NOT IN ('blocked', 'pending')`).safeIntegers(true).all(provider, first, last) as Row[]).map(toGen);
  const have = new Set(calls.map((c) => c.upstreamId).filter((x): x is string => x !== null));
  const missing = (parsed.generations ?? []).map((g) => g.id).filter((id) => !have.has(id));
  for (let i = 0; i < missing.length; i += 500) {
    const ids = missing.slice(i, i + 500);
    // provider as a literal: the partial index calls_upstream_id holds OpenRouter's calls only
    const more = db.prepare(`SELECT ${cols} FROM calls WHERE upstream_id IN (${ids.map(() => '?').join(', ')}) AND provider = 'openrouter' AND status NOT IN ('blocked', 'pending')`).safeIntegers(true).all(...ids) as Row[];
    calls.push(...more.map(toGen));
  }
  return reconcileGenerations(provider, parsed, calls);
}

function grantInfo(b: GrantBalance): CreditGrantInfo {
  const g = b.grant;
  return {
    id: g.id, provider: g.provider, amount: nanoToUsd(g.amountNano), effective: new Date(g.effective).toISOString().slice(0, 10), expires: expiryDate(g.expires),
    priority: g.priority, promo: g.promo, note: g.note, createdAt: g.createdAt, state: b.state,
    drawn: nanoToUsd(b.drawnNano), remaining: nanoToUsd(b.remainingNano), expiredUnused: nanoToUsd(b.expiredUnusedNano),
  };
}

export function providerStatus(balance: ProviderBalance, runway: Runway, now: number): CreditProviderStatus {
  const p = balance.provider;
  const unused = runway.expiringUnused.reduce((s, x) => s + x.amountNano, 0n);
  const firstExpiry = runway.expiringUnused[0];
  let summary = runway.runsOutAt === null
    ? `No ${p} spend in the last 7 days: ${usd(balance.balanceNano)} of credits left.`
    : runway.runsOutAt <= now
      ? `Your ${p} credits are used up: spend now goes beyond them.`
      : `At this week's pace your ${p} credits last ${runway.runwayDays} day${runway.runwayDays === 1 ? '' : 's'}.`;
  if (unused > 0n && firstExpiry) summary += ` ${usd(unused)} of them expire${runway.expiringUnused.length === 1 ? ` on ${expiryDate(firstExpiry.expires)}` : ''} unused.`;
  if (balance.uncoveredNano > 0n) summary += ` ${usd(balance.uncoveredNano)} of spend is not covered by credits.`;
  return {
    provider: p, balance: nanoToUsd(balance.balanceNano), uncovered: nanoToUsd(balance.uncoveredNano), burn7d: nanoToUsd(runway.burn7dNano),
    burnPerDay: nanoToUsd(runway.burnPerDayNano), runwayDays: runway.runwayDays, runsOutAt: runway.runsOutAt,
    expiringUnused: runway.expiringUnused.map((x) => ({ grantId: x.grantId, expires: expiryDate(x.expires), amount: nanoToUsd(x.amountNano) })),
    summary, grants: balance.grants.map(grantInfo),
  };
}

// ---- grant storage and its sync outbox (sync.ts pushes and pulls these; ledger/README.md, protocol 2) ----

/** A grant as the sync protocol carries it: money as a decimal string, times as UTC ms. */
export interface SyncedGrant {
  id: string;
  provider: string;
  amount: string;
  effective: number;
  expires: number;
  priority: number;
  promo: boolean;
  note: string | null;
  created_at: number;
}

export type GrantSyncEvent = { kind: 'add'; grant: SyncedGrant } | { kind: 'remove'; id: string; removed_at: number };

/** The grants in force: every grant this ledger knows that has no tombstone. */
export function liveGrants(db: Database.Database): CreditGrant[] {
  return (db.prepare('SELECT * FROM credit_grants WHERE id NOT IN (SELECT id FROM credit_grant_removals) ORDER BY created_at, id').safeIntegers(true).all() as Row[]).map((r) => ({
    id: String(r.id), provider: String(r.provider), amountNano: BigInt(r.amount_nano as bigint), effective: Number(r.effective_ts), expires: Number(r.expires_ts),
    priority: Number(r.priority), promo: Number(r.promo) === 1, note: (r.note as string) ?? null, createdAt: Number(r.created_at),
  }));
}

/** Write a grant's tombstone once; false when the grant is unknown here or already removed. */
function removeGrantRow(db: Database.Database, id: string, at: number, device: string | null, synced: number): boolean {
  return db.transaction(() => {
    if (!db.prepare('SELECT 1 FROM credit_grants WHERE id = ?').get(id)) return false;
    return db.prepare('INSERT INTO credit_grant_removals (id, removed_at, device, synced) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING').run(id, at, device, synced).changes > 0;
  }).immediate();
}

/** What this device has not pushed yet, adds (oldest first) before removals: at most `limit` events. */
export function grantOutbox(db: Database.Database, limit: number): GrantSyncEvent[] {
  const adds = (db.prepare('SELECT * FROM credit_grants WHERE synced = 0 AND device IS NULL ORDER BY created_at, id LIMIT ?').safeIntegers(true).all(limit) as Row[]).map((r): GrantSyncEvent => ({
    kind: 'add',
    grant: {
      id: String(r.id), provider: String(r.provider), amount: nanoToUsd(BigInt(r.amount_nano as bigint)), effective: Number(r.effective_ts), expires: Number(r.expires_ts),
      priority: Number(r.priority), promo: Number(r.promo) === 1, note: (r.note as string) ?? null, created_at: Number(r.created_at),
    },
  }));
  if (adds.length >= limit) return adds;
  const removals = (db.prepare('SELECT id, removed_at FROM credit_grant_removals WHERE synced = 0 AND device IS NULL ORDER BY removed_at, id LIMIT ?').all(limit - adds.length) as Row[])
    .map((r): GrantSyncEvent => ({ kind: 'remove', id: String(r.id), removed_at: Number(r.removed_at) }));
  return [...adds, ...removals];
}

export function grantOutboxCount(db: Database.Database): number {
  return Number(db.prepare('SELECT (SELECT COUNT(*) FROM credit_grants WHERE synced = 0 AND device IS NULL) + (SELECT COUNT(*) FROM credit_grant_removals WHERE synced = 0 AND device IS NULL)').pluck().get());
}

/** Mark pushed events: 1 stored or held by the service, 2 the service holds another version (conflict), 3 refused. */
export function markGrantEvents(db: Database.Database, events: { kind: 'add' | 'remove'; id: string }[], state: 1 | 2 | 3): void {
  const add = db.prepare('UPDATE credit_grants SET synced = ? WHERE id = ?');
  const rm = db.prepare('UPDATE credit_grant_removals SET synced = ? WHERE id = ?');
  db.transaction(() => { for (const e of events) (e.kind === 'add' ? add : rm).run(state, e.id); })();
}

/** After joining an account: this device's own grants and removals are pushed again (the service is idempotent by id). */
export function resetGrantOutbox(db: Database.Database): void {
  db.transaction(() => {
    db.prepare('UPDATE credit_grants SET synced = 0 WHERE device IS NULL AND synced != 0').run();
    db.prepare('UPDATE credit_grant_removals SET synced = 0 WHERE device IS NULL AND synced != 0').run();
  })();
}

/**
 * Grant events pulled from the service (other devices'), in the service's order, in one
 * transaction: a grant is inserted once by id (a grant already here is kept as it is); a removal
 * writes the tombstone once (before its grant arrives, too). Returns how many changed something.
 */
export function applyPulledGrants(db: Database.Database, events: ({ device: string } & GrantSyncEvent)[]): number {
  const ins = db.prepare(`INSERT INTO credit_grants (id, provider, amount_nano, effective_ts, expires_ts, priority, promo, note, created_at, device, synced)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1) ON CONFLICT (id) DO NOTHING`);
  const rm = db.prepare('INSERT INTO credit_grant_removals (id, removed_at, device, synced) VALUES (?, ?, ?, 1) ON CONFLICT (id) DO NOTHING');
  let changed = 0;
  db.transaction(() => {
    for (const e of events) {
      if (e.kind === 'remove') {
        changed += rm.run(e.id, e.removed_at, e.device).changes;
        continue;
      }
      const g = e.grant;
      let nano: bigint;
      try {
        nano = usdToNanoExact(g.amount);
      } catch {
        continue; // the service checked it; a grant this build cannot read stays out
      }
      if (nano <= 0n || !(g.expires > g.effective) || !Number.isInteger(g.priority) || g.priority < 0 || g.priority > 100) continue;
      changed += ins.run(g.id, g.provider, nano, g.effective, g.expires, g.priority, g.promo ? 1 : 0, g.note ?? null, g.created_at, e.device).changes;
    }
  }).immediate();
  return changed;
}
