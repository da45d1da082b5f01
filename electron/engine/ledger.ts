/**
 * The local ledger: SQLite (better-sqlite3 12) in WAL mode. Owns the database file.
 *
 * Writes are group-committed off the request path: call starts and completions are queued and
 * written together, in one transaction, at most FLUSH_MS later (and on close), by a writer thread
 * with its own connection (see WRITER_WORKER); this connection keeps the reads and the rare other
 * writes (caps, keys, settings). A call row and its rollup rows are written in the same
 * transaction, so dashboards read rollups, never raw calls.
 * A call still `pending` when the process died is marked `interrupted` at the next open, with its
 * expected quote booked as an estimated cost, so budgets keep seeing it.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { DROP_OUTBOX_TRIGGERS, MIGRATIONS, OUTBOX_TRIGGERS } from './migrations.ts';
import { ensurePrivateDir, makePrivate } from './paths.ts';
import { nanoToUsd, parseDecimal, ratioToDecimal, usdToNanoExact } from '../../shared/money.ts';
import { aggregateCalls, emptyAggregate, storedLines, type StatementCall, type StoredLine } from '../../shared/statements.ts';
import type { Alert, Cap, CallRecord, CallStatus, CallsQuery, LineItem, LocalKey, PriceOverride, RateLock, ReportGroup, RunSummary, UnpricedModel, VolumeTierPlan } from '../../shared/api.ts';

const require = createRequire(import.meta.url);

export const FLUSH_MS = 25;
/** How long a call runs before it is journaled as pending (see Ledger.recordStart). */
export const START_GRACE_MS = 25;
const RETRY_MS = 500;

/**
 * Exact sum of two plain decimal strings ("12", "-0.5"), in plain JS for the writer thread (the
 * engine's own connection uses addDecimal below, which does the same with shared/money.ts).
 */
const ADD_DECIMAL_JS = `function addDecimal(a, b) {
  if (a.indexOf('.') < 0 && b.indexOf('.') < 0) return (BigInt(a) + BigInt(b)).toString();
  const dec = (s) => { const neg = s.charCodeAt(0) === 45; if (neg) s = s.slice(1); const i = s.indexOf('.'); const f = i < 0 ? '' : s.slice(i + 1); const n = BigInt((i < 0 ? s : s.slice(0, i)) + f); return [neg ? -n : n, f.length]; };
  const [x, ex] = dec(a), [y, ey] = dec(b), e = Math.max(ex, ey);
  const n = x * 10n ** BigInt(e - ex) + y * 10n ** BigInt(e - ey), neg = n < 0n;
  const t = (neg ? -n : n).toString().padStart(e + 1, '0');
  const frac = t.slice(t.length - e).replace(/0+$/, '');
  return (neg ? '-' : '') + t.slice(0, t.length - e) + (frac ? '.' + frac : '');
}`;

export function addDecimal(a: string, b: string): string {
  const x = parseDecimal(a), y = parseDecimal(b);
  const den = x.den > y.den ? x.den : y.den; // powers of ten: one divides the other
  return ratioToDecimal({ num: x.num * (den / x.den) + y.num * (den / y.den), den });
}

/**
 * The writer thread: its own connection to the ledger. The engine's event loop hands it each
 * group-committed batch (calls, rollup increments, totals) and goes on proxying; the thread
 * commits the batch, publishes the batch number it committed in shared memory (so a read that
 * needs the latest calls can wait for it), and checkpoints the WAL at most every `everyMs` after
 * a write. A failed commit keeps its batches and is retried; nothing runs while nothing is written.
 */
const WRITER_WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(${JSON.stringify(require.resolve('better-sqlite3'))});
const db = new Database(workerData.file);
db.pragma('busy_timeout = 5000');
db.pragma('synchronous = NORMAL');
db.pragma('wal_autocheckpoint = 0');
const state = new Int32Array(workerData.shared); // [0] committed batch, [1] 1 while failing
const sql = workerData.sql;
const st = { upsertCall: db.prepare(sql.upsertCall), insertStart: db.prepare(sql.insertStart), rollup: db.prepare(sql.rollup), totals: db.prepare(sql.totals),
  day: db.prepare(sql.day), getLine: db.prepare(sql.getLine).pluck(), putLine: db.prepare(sql.putLine) };
${ADD_DECIMAL_JS}
const write = db.transaction((batches) => {
  for (const b of batches) {
    for (const r of b.starts) st.insertStart.run(r);
    for (const r of b.ends) st.upsertCall.run(r);
    for (const r of b.rollups) st.rollup.run(r);
    if (b.totals) st.totals.run(b.totals);
    for (const r of b.days) st.day.run(r);
    // a line's quantity is an exact decimal: summed here (a new array: a failed batch is retried as it came)
    for (const r of b.lines) {
      const cur = st.getLine.get(r.slice(0, 10));
      st.putLine.run(cur === undefined ? r : [...r.slice(0, 12), addDecimal(cur, r[12]), r[13]]);
    }
  }
});
let backlog = [], retry = null, checkpoint = null;
function drain() {
  if (!backlog.length) return;
  try {
    write(backlog);
    const seq = backlog[backlog.length - 1].seq;
    backlog = [];
    Atomics.store(state, 1, 0);
    Atomics.store(state, 0, seq);
    Atomics.notify(state, 0);
    parentPort.postMessage({ committed: seq });
    if (!checkpoint) checkpoint = setTimeout(() => { checkpoint = null; try { db.pragma('wal_checkpoint(PASSIVE)'); } catch {} }, workerData.everyMs);
  } catch (e) {
    Atomics.store(state, 1, 1);
    Atomics.notify(state, 0);
    parentPort.postMessage({ error: String(e && e.message || e) });
    if (!retry) retry = setTimeout(() => { retry = null; drain(); }, workerData.retryMs);
  }
}
parentPort.on('message', (m) => {
  if (m.batch) { backlog.push(m.batch); if (!retry) drain(); }
  else if (m.close) {
    clearTimeout(checkpoint); clearTimeout(retry); retry = null; drain();
    try { if (!backlog.length) db.pragma('wal_checkpoint(TRUNCATE)'); } catch {}
    db.close();
    Atomics.store(state, 2, 1);
    Atomics.notify(state, 2);
  }
});
`;
/** How long a read waits for the writer thread to commit what was queued before it. */
const WRITER_WAIT_MS = 10_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

export class LedgerError extends Error {
  constructor(readonly code: 'E_LEDGER_NEWER' | 'E_LEDGER_WRITE' | 'E_LEDGER_OPEN', message: string) {
    super(message);
  }
}

/** A call as the engine holds it: money in bigint nano-USD. */
export interface CallRow {
  id: string;
  ts: number;
  provider: string;
  model: string | null;
  endpoint: string;
  project: string | null;
  workflow: string | null;
  run: string | null;
  node: string | null;
  keyId: string | null;
  keyFingerprint: string | null;
  keyName: string | null;
  status: CallStatus;
  httpStatus: number | null;
  stream: boolean;
  durationMs: number | null;
  ttfbMs: number | null;
  usage: Record<string, number | string>;
  items: LineItem[];
  costNano: bigint;
  reservedNano: bigint;
  quoteMaxNano: bigint | null;
  quoteExpectedNano: bigint | null;
  estimated: boolean;
  unpriced: boolean;
  unpricedReason: string | null;
  priceSource: string | null;
  error: string | null;
  blockedBy: string | null;
  prompt: string | null;
  /** The device that made the call (its name), for calls pulled from the sync service; null/absent: this device. */
  device?: string | null;
  /** Ids of the service leases this call spent from (caps across devices), or null. */
  leases?: string[] | null;
  /** The id of an earlier call this record corrects (a batch's estimate replaced by its actual cost); only a correction may cost less than $0. */
  corrects?: string | null;
  /** The provider's own id of the response (OpenRouter "gen-…"), or null. */
  upstreamId?: string | null;
}

type Row = Record<string, unknown>;

export function toCallRecord(r: CallRow): CallRecord {
  return {
    id: r.id, ts: r.ts, provider: r.provider, model: r.model, endpoint: r.endpoint, project: r.project, workflow: r.workflow,
    run: r.run, node: r.node, keyFingerprint: r.keyFingerprint, keyName: r.keyName, status: r.status, httpStatus: r.httpStatus,
    stream: r.stream, durationMs: r.durationMs, ttfbMs: r.ttfbMs, usage: r.usage, items: r.items, cost: nanoToUsd(r.costNano),
    reserved: nanoToUsd(r.reservedNano), estimated: r.estimated, unpriced: r.unpriced, unpricedReason: r.unpricedReason,
    priceSource: r.priceSource, error: r.error, blockedBy: r.blockedBy,
    ...(r.device !== undefined ? { device: r.device } : {}),
    ...(r.corrects ? { corrects: r.corrects } : {}),
    // only when known: a call recorded without one keeps the exact content it was first synced with
    ...(r.upstreamId ? { upstreamId: r.upstreamId } : {}),
  };
}

function fromDb(r: Row): CallRow {
  return {
    id: r.id as string, ts: Number(r.ts), provider: r.provider as string, model: (r.model as string) ?? null, endpoint: r.endpoint as string,
    project: (r.project as string) ?? null, workflow: (r.workflow as string) ?? null, run: (r.run as string) ?? null, node: (r.node as string) ?? null,
    keyId: (r.key_id as string) ?? null, keyFingerprint: (r.key_fp as string) ?? null, keyName: (r.key_name as string) ?? null,
    status: r.status as CallStatus, httpStatus: r.http_status === null ? null : Number(r.http_status), stream: Number(r.stream) === 1,
    durationMs: r.duration_ms === null ? null : Number(r.duration_ms), ttfbMs: r.ttfb_ms === null ? null : Number(r.ttfb_ms),
    usage: r.usage ? JSON.parse(r.usage as string) : {}, items: r.items ? JSON.parse(r.items as string) : [],
    costNano: BigInt(r.cost_nano as bigint), reservedNano: BigInt(r.reserved_nano as bigint),
    quoteMaxNano: r.quote_max_nano === null ? null : BigInt(r.quote_max_nano as bigint),
    quoteExpectedNano: r.quote_expected_nano === null ? null : BigInt(r.quote_expected_nano as bigint),
    estimated: Number(r.estimated) === 1, unpriced: Number(r.unpriced) === 1, unpricedReason: (r.unpriced_reason as string) ?? null,
    priceSource: (r.price_source as string) ?? null, error: (r.error as string) ?? null, blockedBy: (r.blocked_by as string) ?? null,
    prompt: (r.prompt as string) ?? null, device: (r.device as string) ?? null, leases: r.leases ? JSON.parse(r.leases as string) as string[] : null,
    corrects: (r.corrects as string) ?? null,
    upstreamId: (r.upstream_id as string) ?? null,
  };
}

const CALL_COLUMNS = ['id', 'ts', 'provider', 'model', 'endpoint', 'project', 'workflow', 'run', 'node', 'key_id', 'key_fp', 'key_name', 'status',
  'http_status', 'stream', 'duration_ms', 'ttfb_ms', 'usage', 'items', 'cost_nano', 'reserved_nano', 'quote_max_nano', 'quote_expected_nano',
  'estimated', 'unpriced', 'unpriced_reason', 'price_source', 'error', 'blocked_by', 'prompt', 'leases', 'corrects', 'upstream_id'] as const;

/** The columns of a pushed call, in the order outboxRaw() returns them (sync.ts pushJson reads them by position). */
export const OUTBOX_COLUMNS = ['id', 'ts', 'provider', 'model', 'endpoint', 'project', 'workflow', 'run', 'node', 'key_fp', 'key_name', 'status',
  'http_status', 'stream', 'duration_ms', 'ttfb_ms', 'usage', 'items', 'cost_nano', 'reserved_nano', 'estimated', 'unpriced', 'unpriced_reason',
  'price_source', 'error', 'blocked_by', 'leases', 'corrects', 'upstream_id'] as const;

function toDb(c: CallRow): unknown[] {
  return [c.id, c.ts, c.provider, c.model, c.endpoint, c.project, c.workflow, c.run, c.node, c.keyId, c.keyFingerprint, c.keyName, c.status,
    c.httpStatus, c.stream ? 1 : 0, c.durationMs, c.ttfbMs, JSON.stringify(c.usage), JSON.stringify(c.items), c.costNano, c.reservedNano,
    c.quoteMaxNano, c.quoteExpectedNano, c.estimated ? 1 : 0, c.unpriced ? 1 : 0, c.unpricedReason, c.priceSource, c.error, c.blockedBy, c.prompt, c.leases?.length ? JSON.stringify(c.leases) : null, c.corrects ?? null, c.upstreamId ?? null];
}

export interface RollupFilter {
  from: number;
  to: number;
  provider?: string;
  model?: string;
  project?: string;
  keyFp?: string;
  workflow?: string;
}

/** One group commit, as statement parameters: what the writer thread (or this connection) runs. */
interface Batch {
  seq: number;
  starts: unknown[][];
  ends: unknown[][];
  rollups: unknown[][];
  totals: unknown[] | null;
  /** spend_days increments: day, provider, calls, cost, unpriced */
  days: unknown[][];
  /** statement_lines increments (see lineParams) */
  lines: unknown[][];
}

/** A statement_lines row's parameters: the key (10), then n, calls, quantity, cost. */
function lineParams(project: string, day: number, l: StoredLine, sign: 1 | -1 = 1): unknown[] {
  const neg = sign < 0;
  return [project, day, l.provider, l.model, l.workflow, l.node, l.label, l.unit, l.per, l.unitPrice,
    neg ? -l.n : l.n, neg ? -l.calls : l.calls, neg ? (l.quantity.startsWith('-') ? l.quantity.slice(1) : l.quantity === '0' ? '0' : '-' + l.quantity) : l.quantity, neg ? -l.costNano : l.costNano];
}

/**
 * The statement lines of final calls, per project and UTC day (calls without a project are on no
 * statement): what statement_lines gains when they are written (sign -1: what it loses).
 */
export function statementLineParams(rows: Iterable<StatementCall & { project: string | null }>, sign: 1 | -1 = 1): unknown[][] {
  const byDay = new Map<string, { project: string; day: number; calls: StatementCall[] }>();
  for (const r of rows) {
    if (!r.project) continue;
    const day = Math.floor(r.ts / DAY) * DAY;
    const k = r.project + '\u0000' + day;
    let d = byDay.get(k);
    if (!d) byDay.set(k, (d = { project: r.project, day, calls: [] }));
    d.calls.push(r);
  }
  const out: unknown[][] = [];
  for (const d of byDay.values()) for (const l of storedLines(aggregateCalls(emptyAggregate(), d.calls))) out.push(lineParams(d.project, d.day, l, sign));
  return out;
}

/** spend_days increments of final calls: per UTC day and provider. */
function dayParams(rows: Iterable<{ ts: number; provider: string; costNano: bigint; unpriced: boolean; corrects?: string | null }>): unknown[][] {
  const m = new Map<string, unknown[]>();
  for (const r of rows) {
    const day = Math.floor(r.ts / DAY) * DAY;
    const k = day + '\u0000' + r.provider;
    const d = m.get(k);
    const n = r.corrects ? 0 : 1; // a correction adds its signed cost, not a call
    if (d) {
      (d[2] as number) += n;
      d[3] = (d[3] as bigint) + r.costNano;
      (d[4] as number) += r.unpriced ? 1 : 0;
    } else m.set(k, [day, r.provider, n, r.costNano, r.unpriced ? 1 : 0]);
  }
  return [...m.values()];
}

function toBatch(batch: { kind: 'start' | 'end'; row: CallRow }[]): Batch {
  const ended = new Set<CallRow>();
  for (const b of batch) if (b.kind === 'end') ended.add(b.row);
  const starts: unknown[][] = [], ends: unknown[][] = [];
  // Rollup increments are summed per key first: calls sharing hour and dimensions in one batch
  // cost one upsert. Same transaction as the call rows, so the two never disagree.
  const rollups = new Map<string, unknown[]>();
  const final: CallRow[] = [];
  let calls = 0, cost = 0n, unpriced = 0;
  for (const b of batch) {
    const r = b.row;
    if (b.kind === 'start') {
      if (!ended.has(r)) starts.push(toDb(r));
      continue;
    }
    ends.push(toDb(r));
    if (r.status === 'blocked') continue;
    const bucket = Math.floor(r.ts / HOUR) * HOUR;
    const key = `${bucket}\u0000${r.provider}\u0000${r.model ?? ''}\u0000${r.project ?? ''}\u0000${r.keyFingerprint ?? ''}\u0000${r.workflow ?? ''}`;
    const up = r.unpriced ? 1 : 0;
    const n = r.corrects ? 0 : 1; // a correction adds its signed cost, not a call
    const agg = rollups.get(key);
    if (agg) {
      (agg[6] as number) += n;
      agg[7] = (agg[7] as bigint) + r.costNano;
      (agg[8] as number) += up;
    } else rollups.set(key, [bucket, r.provider, r.model ?? '', r.project ?? '', r.keyFingerprint ?? '', r.workflow ?? '', n, r.costNano, up]);
    final.push(r);
    calls += n;
    cost += r.costNano;
    unpriced += up;
  }
  // the statement lines and the spend per day of the same calls, same transaction (migration 6)
  return { seq: 0, starts, ends, rollups: [...rollups.values()], totals: calls || cost !== 0n ? [calls, cost, unpriced] : null, days: dayParams(final), lines: statementLineParams(final) };
}

const LINE_KEY = ['project', 'day', 'provider', 'model', 'workflow', 'node', 'label', 'unit', 'per', 'unit_price'] as const;

export class Ledger {
  readonly db: Database.Database;
  readonly file: string;
  private queue: { kind: 'start' | 'end'; row: CallRow }[] = [];
  /** Calls started but not yet journaled (see recordStart). */
  private readonly pending = new Set<CallRow>(); // by identity: cheaper than hashing ids
  private timer: NodeJS.Timeout | null = null;
  private failed: Error | null = null;
  private readonly stmts;
  private readonly flushListeners = new Set<() => void>();
  /** The writer thread (see WRITER_WORKER); null: this connection writes calls itself. */
  private writer: Worker | null = null;
  private readonly writerState = new Int32Array(new SharedArrayBuffer(12));
  private posted = 0;

  constructor(dataDir: string, opts: { readonly?: boolean; writerThread?: boolean } = {}) {
    ensurePrivateDir(dataDir);
    this.file = path.join(dataDir, 'ledger.sqlite');
    try {
      // 0600: SQLite creates the -wal and -shm files with the database file's own mode
      if (!opts.readonly && !fs.existsSync(this.file)) fs.closeSync(fs.openSync(this.file, 'a', 0o600));
      for (const f of [this.file, this.file + '-wal', this.file + '-shm']) makePrivate(f);
      this.db = new Database(this.file, { readonly: opts.readonly ?? false });
    } catch (e) {
      throw new LedgerError('E_LEDGER_OPEN', `cannot open the ledger ${this.file}: ${(e as Error).message}`);
    }
    try {
      const st = fs.statSync(this.file);
      this.identity = { dev: st.dev, ino: st.ino };
    } catch { /* checked by watchFile */ }
    this.db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode: a commit is durable across a process crash (kill -9); only an OS crash
    // or power loss can lose the last commits.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    if (!opts.readonly) {
      this.migrate();
      // a device that never joined a ledger keeps no outbox: its writes do not run the outbox's triggers
      const triggers = Number((this.db.prepare(`SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'trigger' AND name IN ('calls_outbox_insert', 'calls_outbox_final')`).get() as Row).n);
      if (triggers > 0 && this.syncState('outbox') === null) this.db.exec(DROP_OUTBOX_TRIGGERS);
    }
    else this.checkVersion();
    const cols = CALL_COLUMNS.join(', ');
    const params = CALL_COLUMNS.map(() => '?').join(', ');
    const updates = CALL_COLUMNS.filter((c) => c !== 'id').map((c) => `${c} = excluded.${c}`).join(', ');
    this.stmts = opts.readonly ? null : {
      upsertCall: this.db.prepare(`INSERT INTO calls (${cols}) VALUES (${params}) ON CONFLICT(id) DO UPDATE SET ${updates}`),
      insertStart: this.db.prepare(`INSERT OR IGNORE INTO calls (${cols}) VALUES (${params})`),
      rollup: this.db.prepare(`INSERT INTO rollups (bucket, provider, model, project, key_fp, workflow, calls, cost_nano, unpriced) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT DO UPDATE SET calls = calls + excluded.calls, cost_nano = cost_nano + excluded.cost_nano, unpriced = unpriced + excluded.unpriced`),
      totals: this.db.prepare('UPDATE totals SET calls = calls + ?, cost_nano = cost_nano + ?, unpriced = unpriced + ? WHERE id = 1'),
      day: this.db.prepare(`INSERT INTO spend_days (day, provider, calls, cost_nano, unpriced) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT DO UPDATE SET calls = calls + excluded.calls, cost_nano = cost_nano + excluded.cost_nano, unpriced = unpriced + excluded.unpriced`),
      getLine: this.db.prepare(`SELECT q FROM statement_lines WHERE ${LINE_KEY.map((c) => `${c} = ?`).join(' AND ')}`).pluck(),
      // q arrives summed already (see putLines): a quantity is an exact decimal, added in JS
      putLine: this.db.prepare(`INSERT INTO statement_lines (${LINE_KEY.join(', ')}, n, calls, q, cost_nano) VALUES (${LINE_KEY.map(() => '?').join(', ')}, ?, ?, ?, ?)
        ON CONFLICT DO UPDATE SET n = n + excluded.n, calls = calls + excluded.calls, q = excluded.q, cost_nano = cost_nano + excluded.cost_nano`),
    };
    this.useWriterThread = !!this.stmts && (opts.writerThread ?? true);
  }

  private readonly useWriterThread: boolean;

  /**
   * The writer thread, started with the first batch of calls (a CLI command that never writes calls
   * never starts one). Calls are written by a thread of their own, off the proxy's event loop: an
   * insert and its share of the WAL checkpoint (SQLite's automatic one fsyncs inside a commit) are
   * tens of microseconds per call here. This connection keeps the reads and the rare other writes.
   */
  private startWriter(): Worker | null {
    if (this.writer || !this.useWriterThread || this.writerFailed) return this.writer;
    this.db.pragma('wal_autocheckpoint = 0');
    const sql = Object.fromEntries(Object.entries(this.stmts!).map(([k, v]) => [k, v.source]));
    const w = new Worker(WRITER_WORKER, { eval: true, workerData: { file: this.file, shared: this.writerState.buffer, sql, everyMs: 1000, retryMs: RETRY_MS } });
    w.unref();
    w.on('message', (m: { committed?: number; error?: string }) => {
      if (m.error !== undefined) this.failed = new LedgerError('E_LEDGER_WRITE', `cannot write the ledger ${this.file}: ${m.error}`);
      else {
        if (Atomics.load(this.writerState, 1) === 0) this.failed = null;
        for (const l of this.flushListeners) l();
      }
    });
    w.on('error', () => {
      // the thread could not run (or died): this connection writes calls itself from now on
      this.writerFailed = true;
      this.writer = null;
      this.db.pragma('wal_autocheckpoint = 1000');
    });
    this.writer = w;
    return w;
  }

  private writerFailed = false;

  /** The ledger file as opened (device and inode), to notice it being deleted or replaced. */
  private identity: { dev: number; ino: number } | null = null;
  /** Set, for good, once the file was deleted or replaced while open: everything written since is lost. */
  private lost: LedgerError | null = null;
  private watchTimer: NodeJS.Timeout | null = null;

  /**
   * Check the ledger file every `everyMs` (a timer, never on the request path): when it is gone or
   * replaced, `failure` reports it from then on (the engine refuses calls) and `onLost` is called once.
   */
  watchFile(onLost: (e: LedgerError) => void, everyMs = 1000): void {
    if (this.watchTimer || this.db.readonly) return;
    this.watchTimer = setInterval(() => {
      if (this.lost) return;
      let why: string | null = null;
      try {
        const st = fs.statSync(this.file);
        if (this.identity && (st.ino !== this.identity.ino || st.dev !== this.identity.dev)) why = 'was replaced by another file';
      } catch (e) {
        why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'was deleted' : `cannot be checked (${(e as Error).message})`;
      }
      if (!why) return;
      this.lost = new LedgerError('E_LEDGER_WRITE', `the ledger file ${this.file} ${why} while Tollgate was running: calls recorded since then would be lost`);
      onLost(this.lost);
    }, everyMs);
    this.watchTimer.unref();
  }

  private checkVersion(): number {
    const v = this.db.pragma('user_version', { simple: true }) as number;
    if (v > MIGRATIONS.length) {
      throw new LedgerError('E_LEDGER_NEWER', `the ledger ${this.file} is at schema version ${v}, newer than this Tollgate (${MIGRATIONS.length}); update Tollgate instead of downgrading`);
    }
    return v;
  }

  private migrate(): void {
    const v = this.checkVersion();
    for (let i = v; i < MIGRATIONS.length; i++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[i]!);
        this.db.pragma(`user_version = ${i + 1}`);
      }).immediate();
    }
  }

  get schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  private configVersionStmt: Database.Statement | null = null;
  /** Bumped by every change to caps, keys, prices or settings, from any process: polled, so a prepared statement. */
  configVersion(): number {
    this.configVersionStmt ??= this.db.prepare('SELECT v FROM config_version WHERE id = 1').pluck();
    return this.configVersionStmt.get() as number;
  }

  /** The last write error, or null when the ledger is writing fine. */
  /** The error set when the ledger file was deleted or replaced while open (see watchFile), or null. */
  get lostFile(): LedgerError | null {
    return this.lost;
  }

  get failure(): Error | null {
    if (this.lost) return this.lost;
    // the writer thread flags a failed commit in shared memory before its message arrives
    if (!this.failed && this.writer && Atomics.load(this.writerState, 1) === 1) return new LedgerError('E_LEDGER_WRITE', `cannot write the ledger ${this.file}`);
    return this.failed;
  }

  // ---- writes (group commit) ----

  /**
   * A call has started. It is journaled as `pending` once it has been in flight for
   * START_GRACE_MS, so a crash after that leaves an `interrupted` record; a call that ends
   * sooner is written once, complete (most calls: this halves the ledger's writes).
   */
  recordStart(row: CallRow): void {
    // The live row, not a copy: the engine calls `ending` before it mutates the row to finish it,
    // so a row still here is in its pending state.
    this.pending.add(row);
    if (!this.timer) this.timer = setTimeout(() => this.backgroundFlush(), START_GRACE_MS);
  }

  /** A call is finishing: it no longer needs a pending journal entry (its end record follows). */
  ending(row: CallRow): void {
    this.pending.delete(row);
  }

  recordEnd(row: CallRow): void {
    if (row.costNano < 0n && !row.corrects) throw new LedgerError('E_LEDGER_WRITE', `call ${row.id} has a negative cost; only a correction (corrects) may`);
    this.pending.delete(row);
    this.enqueue({ kind: 'end', row });
  }

  private enqueue(item: { kind: 'start' | 'end'; row: CallRow }): void {
    this.queue.push(item);
    if (this.queue.length >= 2000) this.backgroundFlush();
    else if (!this.timer) this.timer = setTimeout(() => this.backgroundFlush(), FLUSH_MS);
  }

  /**
   * A flush nobody waits for (the timer, a full queue). A failure must not throw into the event
   * loop: the rows stay queued, `healthy` reports the error (so the engine refuses new calls
   * unless fail-open is set), and the write is retried.
   */
  private backgroundFlush(): void {
    try {
      this.flush(false, false);
    } catch {
      if (!this.timer) this.timer = setTimeout(() => this.backgroundFlush(), RETRY_MS);
    }
  }

  onFlush(l: () => void): () => void {
    this.flushListeners.add(l);
    return () => this.flushListeners.delete(l);
  }

  /**
   * Write everything queued, and journal calls in flight for START_GRACE_MS (all of them with
   * `all`), in one transaction. With `wait` (the default), return only once it is committed, so a
   * read that follows sees it. Throws (and marks the ledger failed) on error.
   */
  flush(all = false, wait = true): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.pending.size) {
      const due = Date.now() - START_GRACE_MS;
      for (const row of this.pending) {
        if (all || row.ts <= due) {
          this.queue.push({ kind: 'start', row });
          this.pending.delete(row);
        }
      }
      if (this.pending.size && !this.timer) this.timer = setTimeout(() => this.backgroundFlush(), START_GRACE_MS);
    }
    if (this.queue.length && this.stmts) {
      const batch = this.queue;
      this.queue = [];
      const b = toBatch(batch);
      const writer = this.startWriter();
      if (writer) {
        b.seq = ++this.posted;
        writer.postMessage({ batch: b });
      } else this.writeInline(b, batch);
    }
    if (wait && this.writer) this.waitForWriter();
  }

  /** Block until the writer thread has committed every batch posted so far (reads need them). */
  private waitForWriter(): void {
    const deadline = Date.now() + WRITER_WAIT_MS;
    for (;;) {
      const committed = Atomics.load(this.writerState, 0);
      if (committed >= this.posted) return;
      if (Atomics.load(this.writerState, 1) === 1) throw this.failure!;
      if (Date.now() > deadline || !this.writer) throw new LedgerError('E_LEDGER_WRITE', `cannot write the ledger ${this.file}: its writer did not answer in ${WRITER_WAIT_MS / 1000} s`);
      Atomics.wait(this.writerState, 0, committed, 50);
    }
  }

  private writeInline(b: Batch, batch: { kind: 'start' | 'end'; row: CallRow }[]): void {
    const s = this.stmts!;
    try {
      this.db.transaction(() => {
        for (const r of b.starts) s.insertStart.run(r);
        for (const r of b.ends) s.upsertCall.run(r);
        for (const r of b.rollups) s.rollup.run(r);
        if (b.totals) s.totals.run(b.totals);
        for (const r of b.days) s.day.run(r);
        this.putLines(b.lines);
      })();
      this.failed = null;
    } catch (e) {
      this.failed = e as Error;
      this.queue = batch.concat(this.queue); // keep them: nothing is dropped silently
      throw new LedgerError('E_LEDGER_WRITE', `cannot write the ledger ${this.file}: ${(e as Error).message}`);
    }
    for (const l of this.flushListeners) l();
  }

  /** Calls left pending by a crash become `interrupted`, booked at their expected quote (estimated). */
  recoverInterrupted(): number {
    const rows = this.db.prepare(`SELECT * FROM calls WHERE status = 'pending'`).safeIntegers(true).all() as Row[];
    if (rows.length === 0) return 0;
    const s = this.stmts!;
    const final: CallRow[] = [];
    this.db.transaction(() => {
      for (const raw of rows) {
        const r = fromDb(raw);
        r.status = 'interrupted';
        r.estimated = true;
        r.costNano = r.quoteExpectedNano ?? 0n;
        r.unpriced = r.quoteExpectedNano === null;
        r.unpricedReason = r.unpriced ? 'interrupted before the provider answered; no quote was available' : null;
        r.error = 'Tollgate stopped while this call was in flight; the provider may have billed it. Cost is the expected quote.';
        r.items = r.quoteExpectedNano === null ? [] : [{ cost: nanoToUsd(r.quoteExpectedNano), label: 'Interrupted call (expected quote)', per: 1, quantity: '1', source: 'quote', unit: 'call', unitPrice: nanoToUsd(r.quoteExpectedNano) }];
        s.upsertCall.run(...toDb(r));
        s.rollup.run(Math.floor(r.ts / HOUR) * HOUR, r.provider, r.model ?? '', r.project ?? '', r.keyFingerprint ?? '', r.workflow ?? '', 1, r.costNano, r.unpriced ? 1 : 0);
        s.totals.run(1, r.costNano, r.unpriced ? 1 : 0);
        final.push(r);
      }
      for (const d of dayParams(final)) s.day.run(d);
      this.putLines(statementLineParams(final));
    })();
    return rows.length;
  }

  close(): void {
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.watchTimer = null;
    try {
      this.flush(true);
    } finally {
      const w = this.writer;
      this.writer = null;
      if (w) {
        // the thread commits what it holds, checkpoints and closes its connection
        w.postMessage({ close: true });
        Atomics.wait(this.writerState, 2, 0, WRITER_WAIT_MS);
        void w.terminate();
      }
      try {
        if (!this.db.readonly) this.db.pragma('wal_checkpoint(TRUNCATE)');
      } catch { /* another connection holds the WAL: it is checkpointed later */ }
      this.db.close();
    }
  }

  // ---- reads ----

  call(id: string): CallRow | null {
    const r = this.db.prepare('SELECT * FROM calls WHERE id = ?').safeIntegers(true).get(id) as Row | undefined;
    return r ? fromDb(r) : null;
  }

  calls(q: CallsQuery, range?: { from: number; to: number }): CallRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.beforeId) { where.push('id < ?'); args.push(q.beforeId); }
    if (range) { where.push('ts >= ? AND ts < ?'); args.push(range.from, range.to); }
    const like = (v: string) => '%' + v.replace(/[\\%_]/g, (c) => '\\' + c) + '%';
    if (q.modelContains) { where.push(`model LIKE ? ESCAPE '\\'`); args.push(like(q.modelContains)); }
    if (q.projectContains) { where.push(`project LIKE ? ESCAPE '\\'`); args.push(like(q.projectContains)); }
    for (const [k, col] of [['provider', 'provider'], ['model', 'model'], ['project', 'project'], ['status', 'status'], ['workflow', 'workflow']] as const) {
      const v = q[k];
      if (v) { where.push(`${col} = ?`); args.push(v); }
    }
    const limit = Math.min(Math.max(q.limit ?? 50, 1), 1000);
    const sql = `SELECT * FROM calls ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ${limit}`;
    return (this.db.prepare(sql).safeIntegers(true).all(...args) as Row[]).map(fromDb);
  }

  *iterateCalls(from = 0, to = Number.MAX_SAFE_INTEGER): Generator<CallRow> {
    for (const r of this.db.prepare('SELECT * FROM calls WHERE ts >= ? AND ts < ? ORDER BY ts, id').safeIntegers(true).iterate(from, to)) yield fromDb(r as Row);
  }

  private rollupWhere(f: RollupFilter): { sql: string; args: unknown[] } {
    const where = ['bucket >= ?', 'bucket < ?'];
    const args: unknown[] = [Math.floor(f.from / HOUR) * HOUR, f.to];
    for (const [k, col] of [['provider', 'provider'], ['model', 'model'], ['project', 'project'], ['keyFp', 'key_fp'], ['workflow', 'workflow']] as const) {
      const v = f[k];
      if (v !== undefined) { where.push(`${col} = ?`); args.push(v); }
    }
    return { sql: where.join(' AND '), args };
  }

  /** Total spend (nano) and calls in a window from the rollups. */
  spend(f: RollupFilter): { cost: bigint; calls: number; unpriced: number } {
    const w = this.rollupWhere(f);
    const r = this.db.prepare(`SELECT COALESCE(SUM(cost_nano), 0) AS cost, COALESCE(SUM(calls), 0) AS calls, COALESCE(SUM(unpriced), 0) AS unpriced FROM rollups WHERE ${w.sql}`)
      .safeIntegers(true).get(...w.args) as Row;
    return { cost: BigInt(r.cost as bigint), calls: Number(r.calls), unpriced: Number(r.unpriced) };
  }

  group(by: 'model' | 'provider' | 'project' | 'key_fp' | 'workflow' | 'bucket', f: RollupFilter, limit = 1000): { key: string; calls: number; cost: bigint; unpriced: number }[] {
    const w = this.rollupWhere(f);
    const keyExpr = by === 'model' ? `provider || ':' || model` : by;
    const rows = this.db.prepare(`SELECT ${keyExpr} AS k, SUM(calls) AS calls, SUM(cost_nano) AS cost, COALESCE(SUM(unpriced), 0) AS unpriced FROM rollups WHERE ${w.sql} GROUP BY k ORDER BY cost DESC LIMIT ${limit}`)
      .safeIntegers(true).all(...w.args) as Row[];
    return rows.map((r) => ({ key: String(r.k), calls: Number(r.calls), cost: BigInt(r.cost as bigint), unpriced: Number(r.unpriced) }));
  }

  series(by: 'model' | 'provider' | 'project', f: RollupFilter): { bucket: number; key: string; cost: bigint }[] {
    const w = this.rollupWhere(f);
    const keyExpr = by === 'model' ? 'model' : by;
    return (this.db.prepare(`SELECT bucket, ${keyExpr} AS k, SUM(cost_nano) AS cost FROM rollups WHERE ${w.sql} GROUP BY bucket, k ORDER BY bucket`)
      .safeIntegers(true).all(...w.args) as Row[]).map((r) => ({ bucket: Number(r.bucket), key: String(r.k), cost: BigInt(r.cost as bigint) }));
  }

  /** All-time totals, kept with every flush (migration 2). */
  totals(): { calls: number; cost: bigint; unpriced: number } {
    const r = this.db.prepare('SELECT calls, cost_nano, unpriced FROM totals WHERE id = 1').safeIntegers(true).get() as Row | undefined;
    return r ? { calls: Number(r.calls), cost: BigInt(r.cost_nano as bigint), unpriced: Number(r.unpriced) } : { calls: 0, cost: 0n, unpriced: 0 };
  }

  unpricedModels(): UnpricedModel[] {
    return (this.db.prepare(`SELECT provider, model, COUNT(*) AS calls, MAX(ts) AS last, MAX(unpriced_reason) AS reason FROM calls WHERE unpriced = 1 GROUP BY provider, model ORDER BY last DESC`).all() as Row[])
      .map((r) => ({ provider: String(r.provider), model: String(r.model ?? '(unknown)'), calls: Number(r.calls), lastSeen: Number(r.last), reason: String(r.reason ?? '') }));
  }

  runs(limit = 50): RunSummary[] {
    const runs = this.db.prepare(`SELECT run, MAX(workflow) AS workflow, MIN(ts) AS started, COUNT(*) AS calls, SUM(cost_nano) AS cost FROM calls WHERE run IS NOT NULL GROUP BY run ORDER BY started DESC LIMIT ?`)
      .safeIntegers(true).all(limit) as Row[];
    const nodeStmt = this.db.prepare(`SELECT COALESCE(node, '(none)') AS node, COUNT(*) AS calls, SUM(cost_nano) AS cost, SUM(quote_expected_nano) AS quoted, COUNT(quote_expected_nano) AS nq FROM calls WHERE run = ? GROUP BY node ORDER BY MIN(ts)`).safeIntegers(true);
    return runs.map((r) => {
      const rows = nodeStmt.all(r.run) as Row[];
      let quoted: bigint | null = null;
      const nodes = rows.map((n) => {
        if (n.quoted !== null) quoted = (quoted ?? 0n) + BigInt(n.quoted as bigint);
        return {
          node: String(n.node), calls: Number(n.calls), cost: nanoToUsd(BigInt(n.cost as bigint)),
          quoted: Number(n.nq) > 0 ? nanoToUsd(BigInt(n.quoted as bigint)) : null,
        };
      });
      return {
        run: String(r.run), workflow: (r.workflow as string) ?? null, started: Number(r.started), calls: Number(r.calls),
        cost: nanoToUsd(BigInt(r.cost as bigint)), quoted: quoted === null ? null : nanoToUsd(quoted), nodes,
      };
    });
  }

  observedOutputMedian(provider: string, model: string, since: number): number | null {
    const rows = this.db.prepare(`SELECT json_extract(usage, '$.outputTokens') AS o FROM calls WHERE provider = ? AND model = ? AND ts >= ? AND status = 'ok' AND json_extract(usage, '$.outputTokens') IS NOT NULL ORDER BY id DESC LIMIT 200`).all(provider, model, since) as Row[];
    if (rows.length < 5) return null;
    const v = rows.map((r) => Number(r.o)).sort((a, b) => a - b);
    return v[Math.floor(v.length / 2)]!;
  }

  // ---- caps, alerts ----

  caps(): Cap[] {
    return (this.db.prepare('SELECT * FROM caps ORDER BY created_at').safeIntegers(true).all() as Row[]).map((r) => ({
      id: String(r.id), scope: r.scope as Cap['scope'], scopeValue: (r.scope_value as string) ?? null, period: r.period as Cap['period'],
      limit: nanoToUsd(BigInt(r.limit_nano as bigint)), alerts: JSON.parse(String(r.alerts)), hard: Number(r.hard) === 1, createdAt: Number(r.created_at),
      ...(Number(r.all_devices) === 1 ? { allDevices: true } : {}),
    }));
  }

  putCap(c: Cap, limitNano: bigint): void {
    this.db.prepare(`INSERT INTO caps (id, scope, scope_value, period, limit_nano, alerts, hard, created_at, all_devices) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT(id) DO UPDATE SET scope = excluded.scope, scope_value = excluded.scope_value, period = excluded.period, limit_nano = excluded.limit_nano, alerts = excluded.alerts, hard = excluded.hard, all_devices = excluded.all_devices`)
      .run(c.id, c.scope, c.scopeValue, c.period, limitNano, JSON.stringify(c.alerts), c.hard ? 1 : 0, c.createdAt, c.allDevices ? 1 : 0);
  }

  removeCap(id: string): boolean {
    return this.db.prepare('DELETE FROM caps WHERE id = ?').run(id).changes > 0;
  }

  firedThresholds(capId: string, periodKey: string): Set<number> {
    return new Set((this.db.prepare(`SELECT threshold FROM alerts WHERE cap_id = ? AND period_key = ? AND kind = 'threshold'`).all(capId, periodKey) as Row[]).map((r) => Number(r.threshold)));
  }

  /** Insert an alert once; returns false when it already exists (fired before, maybe by another process). */
  insertAlert(a: Alert, episode = ''): boolean {
    return this.db.prepare(`INSERT OR IGNORE INTO alerts (id, cap_id, cap_label, period_key, threshold, kind, episode, spent_nano, limit_nano, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(a.id, a.capId, a.capLabel, a.periodKey, a.threshold, a.kind, episode, usdToNanoExact(a.spent), usdToNanoExact(a.limit), a.ts).changes > 0;
  }

  alerts(limit = 100): Alert[] {
    return (this.db.prepare('SELECT * FROM alerts WHERE episode != \'skipped\' ORDER BY ts DESC LIMIT ?').safeIntegers(true).all(limit) as Row[]).map((r) => ({
      id: String(r.id), capId: String(r.cap_id), capLabel: String(r.cap_label), threshold: Number(r.threshold), periodKey: String(r.period_key),
      spent: nanoToUsd(BigInt(r.spent_nano as bigint)), limit: nanoToUsd(BigInt(r.limit_nano as bigint)), ts: Number(r.ts), kind: r.kind as Alert['kind'],
    }));
  }

  // ---- keys ----

  /** Spend, call count and last call per local key (by key id) or per project, from the calls themselves. */
  usageBy(by: 'key' | 'project'): { key: string; calls: number; cost: bigint; unpriced: number; lastUsed: number }[] {
    const col = by === 'key' ? 'key_id' : 'project';
    const rows = this.db.prepare(`SELECT ${col} AS k, SUM(status NOT IN ('blocked', 'pending')) AS calls, COALESCE(SUM(cost_nano), 0) AS cost, SUM(unpriced = 1 AND status NOT IN ('blocked', 'pending')) AS unpriced, MAX(ts) AS last FROM calls WHERE ${col} IS NOT NULL GROUP BY ${col}`)
      .safeIntegers(true).all() as Row[];
    return rows.map((r) => ({ key: String(r.k), calls: Number(r.calls), cost: BigInt(r.cost as bigint), unpriced: Number(r.unpriced), lastUsed: Number(r.last) }));
  }

  keys(): LocalKey[] {
    return (this.db.prepare('SELECT * FROM keys ORDER BY created_at').all() as Row[]).map(keyFromDb);
  }

  keyByTokenHash(hash: string): (LocalKey & { secret: Buffer }) | null {
    const r = this.db.prepare('SELECT * FROM keys WHERE token_hash = ?').get(hash) as Row | undefined;
    return r ? { ...keyFromDb(r), secret: r.secret as Buffer } : null;
  }

  insertKey(k: LocalKey, tokenHash: string, secret: Buffer): void {
    this.db.prepare('INSERT INTO keys (id, name, provider, project, prefix, token_hash, fingerprint, secret, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)')
      .run(k.id, k.name, k.provider, k.project, k.prefix, tokenHash, k.fingerprint, secret, k.createdAt);
  }

  revokeKey(idOrName: string, now: number): boolean {
    return this.db.prepare('UPDATE keys SET revoked_at = ? WHERE (id = ? OR name = ?) AND revoked_at IS NULL').run(now, idOrName, idOrName).changes > 0;
  }

  // ---- prices: overrides, locks, tiers ----

  overrides(): PriceOverride[] {
    return (this.db.prepare('SELECT * FROM overrides ORDER BY created_at').all() as Row[]).map((r) => ({
      id: String(r.id), provider: String(r.provider), model: String(r.model), prices: JSON.parse(String(r.prices)), note: (r.note as string) ?? null, createdAt: Number(r.created_at),
    }));
  }

  /**
   * Unpriced calls of `provider:model` that a price set later can still price here: this device's
   * own finished calls, not yet sent to a sync service (the service holds them as they were), and
   * not in a client statement that has closed (its bytes never change). `skipped` counts the rest.
   */
  unpricedCalls(provider: string, model: string): { calls: CallRow[]; skipped: { synced: number; closed: number } } {
    this.flush(true);
    // pushed: a conflict or refusal, or not in the outbox of a device that keeps one (migration 9)
    // (one scan of the outbox, joined to the calls by id: re-pricing is rare, the outbox has no call_id index)
    const waiting = this.syncState('outbox') === null ? null : new Set(this.db.prepare(`SELECT o.call_id FROM outbox o JOIN calls c ON c.id = o.call_id
      WHERE c.unpriced = 1 AND c.provider = ? AND c.model = ?`).pluck().all(provider, model) as string[]);
    const rows = this.db.prepare(`SELECT c.*, EXISTS (SELECT 1 FROM statements s WHERE s.project = c.project AND c.ts >= s.period_start AND c.ts < s.period_end) AS in_closed
      FROM calls c WHERE c.unpriced = 1 AND c.provider = ? AND c.model = ? AND c.status IN ('ok', 'error', 'aborted') AND c.device IS NULL ORDER BY c.ts, c.id`)
      .safeIntegers(true).all(provider, model) as Row[];
    const calls: CallRow[] = [];
    const skipped = { synced: 0, closed: 0 };
    for (const r of rows) {
      if (Number(r.synced ?? 0) !== 0 || (waiting && !waiting.has(String(r.id)))) skipped.synced++;
      else if (Number(r.in_closed) !== 0) skipped.closed++;
      else calls.push(fromDb(r));
    }
    return { calls, skipped };
  }

  /**
   * Book prices for calls that were unpriced (re-pricing after the user set a price), in one
   * transaction with their rollups and the all-time totals, so every report, cap and statement
   * agrees. Only calls still unpriced are changed: running it twice prices nothing twice.
   */
  repriceCalls(priced: { row: CallRow; costNano: bigint; items: LineItem[]; priceSource: string; estimated: boolean }[]): { count: number; costNano: bigint } {
    const upd = this.db.prepare('UPDATE calls SET cost_nano = ?, items = ?, unpriced = 0, unpriced_reason = NULL, price_source = ?, estimated = ? WHERE id = ? AND unpriced = 1');
    const roll = this.db.prepare('UPDATE rollups SET cost_nano = cost_nano + ?, unpriced = unpriced - 1 WHERE bucket = ? AND provider = ? AND model = ? AND project = ? AND key_fp = ? AND workflow = ?');
    const tot = this.db.prepare('UPDATE totals SET cost_nano = cost_nano + ?, unpriced = unpriced - 1 WHERE id = 1');
    const day = this.db.prepare('UPDATE spend_days SET cost_nano = cost_nano + ?, unpriced = unpriced - 1 WHERE day = ? AND provider = ?');
    let count = 0;
    let costNano = 0n;
    this.db.transaction(() => {
      const before: CallRow[] = [], after: CallRow[] = [];
      for (const p of priced) {
        const r = p.row;
        // an hour whose statement lines are still to be made from the calls gets them now, from the calls as they were
        if (r.project) this.backfillHour(r.project, Math.floor(r.ts / HOUR) * HOUR);
        if (upd.run(p.costNano, JSON.stringify(p.items), p.priceSource, p.estimated ? 1 : 0, r.id).changes === 0) continue;
        roll.run(p.costNano, Math.floor(r.ts / HOUR) * HOUR, r.provider, r.model ?? '', r.project ?? '', r.keyFingerprint ?? '', r.workflow ?? '');
        tot.run(p.costNano);
        day.run(p.costNano, Math.floor(r.ts / DAY) * DAY, r.provider);
        before.push(r);
        after.push({ ...r, costNano: p.costNano, items: p.items, unpriced: false });
        count++;
        costNano += p.costNano;
      }
      // the calls leave their unpriced lines and join the priced ones
      this.putLines([...statementLineParams(before, -1), ...statementLineParams(after)]);
    }).immediate(); // it reads (the backfill, a line's quantity) before it writes: take the write lock first
    return { count, costNano };
  }

  /**
   * Add statement_lines increments (this connection; the writer thread does the same): a line's
   * quantity is an exact decimal, summed here; a line no call contributes to any more is removed.
   */
  private putLines(rows: unknown[][]): void {
    if (!rows.length) return;
    const s = this.stmts!;
    const emptied = new Set<string>();
    for (const r of rows) {
      const cur = s.getLine.get(...r.slice(0, 10)) as string | undefined;
      s.putLine.run(...(cur === undefined ? r : [...r.slice(0, 12), addDecimal(cur, r[12] as string), r[13]]));
      if ((r[10] as number) < 0) emptied.add(JSON.stringify([r[0], r[1]]));
    }
    const del = this.db.prepare('DELETE FROM statement_lines WHERE project = ? AND day = ? AND n <= 0');
    for (const k of emptied) del.run(...(JSON.parse(k) as [string, number]));
  }

  /**
   * A project's calls in [from, to) as a statement reads them (final calls only), with their rowids;
   * `where` adds conditions on the calls table (e.g. 'rowid > ?') with their `args`.
   */
  statementCalls(project: string, from: number, to: number, where = '', args: unknown[] = []): { call: StatementCall; rowid: number }[] {
    const sql = `SELECT rowid, id, ts, provider, model, workflow, node, cost_nano, unpriced, items FROM calls WHERE project = ? AND ts >= ? AND ts < ? AND status NOT IN ('blocked', 'pending')${where ? ' AND ' + where : ''}`;
    const out: { call: StatementCall; rowid: number }[] = [];
    for (const r of this.db.prepare(sql).raw(true).safeIntegers(true).iterate(project, from, to, ...args) as Iterable<unknown[]>) {
      const items = r[9] as string | null;
      out.push({
        rowid: Number(r[0]),
        call: {
          id: r[1] as string, ts: Number(r[2]), provider: r[3] as string, model: r[4] as string | null, workflow: r[5] as string | null, node: r[6] as string | null,
          costNano: r[7] as bigint, unpriced: Number(r[8]) === 1, items: items && items !== '[]' ? (JSON.parse(items) as LineItem[]) : [],
        },
      });
    }
    return out;
  }

  /**
   * Statement lines for the calls written before migration 6 (listed per project and hour in
   * statement_backfill, with the highest rowid then), made once from the calls; false when the
   * hour had nothing to do. Runs inside the caller's transaction or its own.
   */
  backfillHour(project: string, hour: number): boolean {
    const todo = this.db.prepare('SELECT max_rowid FROM statement_backfill WHERE project = ? AND hour = ?').pluck().get(project, hour) as number | undefined;
    if (todo === undefined) return false;
    this.db.transaction(() => {
      // calls still pending at the migration are counted when they end, by the writer: skipped here
      const calls = this.statementCalls(project, hour, hour + HOUR, 'rowid <= ? AND id NOT IN (SELECT id FROM statement_backfill_skip)', [todo]).map((x) => ({ ...x.call, project }));
      this.putLines(statementLineParams(calls));
      this.db.prepare('DELETE FROM statement_backfill WHERE project = ? AND hour = ?').run(project, hour);
    }).immediate();
    return true;
  }

  /** Hours of `project` in [from, to) (every project's with null) whose statement lines are still to be made; up to `limit`. */
  backfillPending(project: string | null, from: number, to: number, limit = 1_000_000): { project: string; hour: number }[] {
    return (this.db.prepare('SELECT project, hour FROM statement_backfill WHERE (? IS NULL OR project = ?) AND hour >= ? AND hour < ? ORDER BY hour DESC LIMIT ?')
      .all(project, project, from, to, limit) as Row[]).map((r) => ({ project: String(r.project), hour: Number(r.hour) }));
  }

  putOverride(o: PriceOverride): void {
    this.db.prepare(`INSERT INTO overrides (id, provider, model, prices, note, created_at) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT(provider, model) DO UPDATE SET prices = excluded.prices, note = excluded.note`).run(o.id, o.provider, o.model, JSON.stringify(o.prices), o.note, o.createdAt);
  }

  removeOverride(id: string): boolean {
    return this.db.prepare('DELETE FROM overrides WHERE id = ? OR (provider || \':\' || model) = ?').run(id, id).changes > 0;
  }

  locks(): RateLock[] {
    return (this.db.prepare('SELECT * FROM locks ORDER BY created_at').all() as Row[]).map((r) => ({
      id: String(r.id), provider: String(r.provider), model: (r.model as string) ?? null, catalog: String(r.catalog), prices: JSON.parse(String(r.prices)),
      from: r.from_ts === null ? null : Number(r.from_ts), to: r.to_ts === null ? null : Number(r.to_ts), createdAt: Number(r.created_at),
    }));
  }

  putLock(l: RateLock): void {
    this.db.prepare('INSERT INTO locks (id, provider, model, catalog, prices, from_ts, to_ts, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(l.id, l.provider, l.model, l.catalog, JSON.stringify(l.prices), l.from, l.to, l.createdAt);
  }

  removeLock(id: string): boolean {
    return this.db.prepare('DELETE FROM locks WHERE id = ?').run(id).changes > 0;
  }

  tierPlans(): VolumeTierPlan[] {
    return (this.db.prepare('SELECT * FROM tier_plans ORDER BY created_at').all() as Row[]).map((r) => ({
      id: String(r.id), provider: String(r.provider), model: (r.model as string) ?? null, unit: r.unit as VolumeTierPlan['unit'], mode: r.mode as VolumeTierPlan['mode'],
      period: r.period as VolumeTierPlan['period'], tiers: JSON.parse(String(r.tiers)), createdAt: Number(r.created_at),
    }));
  }

  putTierPlan(p: VolumeTierPlan): void {
    this.db.prepare(`INSERT INTO tier_plans (id, provider, model, unit, mode, period, tiers, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT(id) DO UPDATE SET provider = excluded.provider, model = excluded.model, unit = excluded.unit, mode = excluded.mode, period = excluded.period, tiers = excluded.tiers`)
      .run(p.id, p.provider, p.model, p.unit, p.mode, p.period, JSON.stringify(p.tiers), p.createdAt);
  }

  removeTierPlan(id: string): boolean {
    return this.db.prepare('DELETE FROM tier_plans WHERE id = ?').run(id).changes > 0;
  }

  /** Units a tier plan has used this period (images, requests or seconds), from the calls. */
  tierUnits(provider: string, model: string | null, unit: string, from: number): number {
    const field = unit === 'image' ? 'images' : unit === 'second' ? 'videoSeconds' : 'requests';
    const r = this.db.prepare(`SELECT COALESCE(SUM(COALESCE(json_extract(usage, '$.${field}'), ${unit === 'request' ? 1 : 0})), 0) AS n FROM calls WHERE provider = ? AND (? IS NULL OR model = ?) AND ts >= ? AND status NOT IN ('blocked', 'pending')`)
      .get(provider, model, model, from) as Row;
    return Number(r.n);
  }

  /**
   * Calls of `provider` since `from` whose usage has `field` (a tool-fee count such as
   * groundedPrompts), this call excepted: how much of a provider's free allowance is used.
   */
  toolFeeCalls(provider: string, field: 'groundedPrompts' | 'groundingQueries', from: number, exceptId: string): number {
    const r = this.db.prepare(`SELECT COUNT(*) AS n FROM calls WHERE provider = ? AND ts >= ? AND id != ? AND status NOT IN ('blocked', 'pending') AND json_extract(usage, '$.${field}') > 0`)
      .get(provider, from, exceptId) as Row;
    return Number(r.n);
  }

  // ---- sync (see sync.ts): the outbox table (migration 9), filled by triggers on calls ----

  /** Final local calls not pushed yet, in the order they became final, after outbox seq `afterSeq`. */
  outbox(afterSeq: number, limit: number): CallRow[] {
    return (this.db.prepare(`SELECT c.* FROM outbox o JOIN calls c ON c.id = o.call_id WHERE o.seq > ? ORDER BY o.seq LIMIT ?`)
      .safeIntegers(true).all(afterSeq, limit) as Row[]).map(fromDb);
  }

  /**
   * The same page as outbox(), as raw rows of OUTBOX_COLUMNS (money as exact decimal text of nano-USD)
   * followed by the outbox seq: what the pusher serializes, without building a CallRow per call.
   */
  outboxRaw(afterSeq: number, limit: number): unknown[][] {
    this.outboxRawStmt ??= this.db.prepare(`SELECT ${OUTBOX_COLUMNS.map((c) => (c === 'cost_nano' || c === 'reserved_nano' ? `CAST(c.${c} AS TEXT)` : `c.${c}`)).join(', ')}, o.seq
      FROM outbox o JOIN calls c ON c.id = o.call_id WHERE o.seq > ? ORDER BY o.seq LIMIT ?`).raw(true);
    return this.outboxRawStmt.all(afterSeq, limit) as unknown[][];
  }
  private outboxRawStmt: Database.Statement | null = null;

  outboxCount(): number {
    return Number((this.db.prepare('SELECT COUNT(*) AS n FROM outbox').get() as Row).n);
  }

  /** A pushed page leaves the outbox: the seqs from `first` to `last` (a page is a contiguous range). */
  outboxDone(first: number, last: number): void {
    this.db.prepare('DELETE FROM outbox WHERE seq >= ? AND seq <= ?').run(first, last);
  }

  /** Conflicts (2) or refused calls (3): marked on the call, and out of the outbox. */
  markSynced(ids: readonly string[], state: 2 | 3): void {
    const mark = this.db.prepare('UPDATE calls SET synced = ? WHERE id = ? AND device IS NULL');
    const out = this.db.prepare('DELETE FROM outbox WHERE call_id = ?');
    this.db.transaction(() => {
      for (const id of ids) {
        mark.run(state, id);
        out.run(id);
      }
    })();
  }

  /**
   * Every final local call goes (back) into the outbox, once each, and this device keeps an outbox
   * from now on (joining an account: its history is pushed; duplicates are harmless). One
   * transaction: a call the writer commits before it is in the SELECT, one committed after is added
   * by the trigger.
   */
  resetOutbox(): void {
    this.flush(true);
    this.db.transaction(() => {
      this.db.prepare(`INSERT INTO sync_state (key, value) VALUES ('outbox', '1') ON CONFLICT(key) DO NOTHING`).run();
      this.db.exec(OUTBOX_TRIGGERS);
      this.db.prepare('DELETE FROM outbox').run();
      this.db.prepare(`INSERT INTO outbox (call_id) SELECT id FROM calls WHERE device IS NULL AND status != 'pending' ORDER BY id`).run();
    }).immediate();
  }

  /**
   * Calls pulled from other devices: inserted once (by id, so a call already here is never
   * counted again) with their rollups and totals, in one transaction. Returns how many were new.
   */
  insertPulled(rows: readonly { row: CallRow; device: string; deviceId: string }[]): number {
    const cols = [...CALL_COLUMNS, 'device', 'device_id', 'synced'];
    const ins = this.db.prepare(`INSERT OR IGNORE INTO calls (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`);
    const s = this.stmts!;
    let n = 0;
    this.db.transaction(() => {
      const final: CallRow[] = [];
      // rollup increments summed per bucket and dimensions, the totals once: the same sums, fewer writes
      const rollups = new Map<string, unknown[]>();
      let calls = 0, cost = 0n, unpriced = 0;
      for (const p of rows) {
        const r = p.row;
        if (ins.run(...toDb(r), p.device, p.deviceId, 1).changes === 0) continue;
        n++;
        if (r.status === 'blocked' || r.status === 'pending') continue;
        const up = r.unpriced ? 1 : 0;
        const c = r.corrects ? 0 : 1; // a correction adds its signed cost, not a call
        const dims = [Math.floor(r.ts / HOUR) * HOUR, r.provider, r.model ?? '', r.project ?? '', r.keyFingerprint ?? '', r.workflow ?? ''];
        const key = JSON.stringify(dims);
        const acc = rollups.get(key);
        if (acc) {
          (acc[6] as number) += c;
          acc[7] = (acc[7] as bigint) + r.costNano;
          (acc[8] as number) += up;
        } else rollups.set(key, [...dims, c, r.costNano, up]);
        calls += c;
        cost += r.costNano;
        unpriced += up;
        final.push(r);
      }
      for (const v of rollups.values()) s.rollup.run(...v);
      if (calls || cost !== 0n) s.totals.run(calls, cost, unpriced);
      for (const d of dayParams(final)) s.day.run(d);
      this.putLines(statementLineParams(final));
    })();
    return n;
  }

  /** Spend per device in a window, from the calls (rollups are not kept per device). `self` names this device. */
  groupByDevice(from: number, to: number, self: string): { key: string; calls: number; cost: bigint; unpriced: number }[] {
    const rows = this.db.prepare(`SELECT COALESCE(device, ?) AS k, COUNT(*) - COUNT(corrects) AS calls, COALESCE(SUM(cost_nano), 0) AS cost, COALESCE(SUM(unpriced), 0) AS unpriced
      FROM calls WHERE ts >= ? AND ts < ? AND status NOT IN ('blocked', 'pending') GROUP BY k ORDER BY cost DESC`).safeIntegers(true).all(self, from, to) as Row[];
    return rows.map((r) => ({ key: String(r.k), calls: Number(r.calls), cost: BigInt(r.cost as bigint), unpriced: Number(r.unpriced) }));
  }

  /** What this device spent from a lease: the cost of its calls that name it (exact after a restart too). */
  leaseUsed(leaseId: string): bigint {
    const r = this.db.prepare(`SELECT COALESCE(SUM(cost_nano), 0) AS s FROM calls WHERE device IS NULL AND leases IS NOT NULL AND EXISTS (SELECT 1 FROM json_each(calls.leases) WHERE value = ?)`)
      .safeIntegers(true).get(leaseId) as Row;
    return BigInt(r.s as bigint);
  }

  syncState(key: string): string | null {
    const r = this.db.prepare('SELECT value FROM sync_state WHERE key = ?').get(key) as Row | undefined;
    return r ? String(r.value) : null;
  }

  setSyncState(values: Record<string, string | null>): void {
    const put = this.db.prepare('INSERT INTO sync_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');
    const del = this.db.prepare('DELETE FROM sync_state WHERE key = ?');
    this.db.transaction(() => {
      for (const [k, v] of Object.entries(values)) {
        if (v === null) del.run(k);
        else put.run(k, v);
      }
    })();
  }

  // ---- settings ----

  setting(key: string): string | null {
    const r = this.db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as Row | undefined;
    return r ? String(r.value) : null;
  }

  setSetting(key: string, value: string): void {
    this.db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  deleteSetting(key: string): void {
    this.db.prepare('DELETE FROM settings WHERE key = ?').run(key);
  }
}

function keyFromDb(r: Row): LocalKey {
  return {
    id: String(r.id), name: String(r.name), provider: String(r.provider), project: (r.project as string) ?? null, prefix: String(r.prefix),
    fingerprint: String(r.fingerprint), createdAt: Number(r.created_at), revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
  };
}
