/**
 * The sync client (issue 12): pushes this device's finished calls to a tollgate-ledger service
 * and pulls every other device's calls into the local ledger (ledger/README.md, protocol 1).
 *
 * - The outbox is a table (migration 9): a trigger lists a call there in the transaction that makes
 *   it final (the writer thread's), once this device has joined a ledger, so the proxy's hot path
 *   does nothing extra. The pusher reads it from this connection in pages of at most 1,000 calls,
 *   off the request path (timers), with up to PUSH_CONCURRENCY batches in flight; a pushed page
 *   leaves the outbox by its seq range (one small delete, nothing written to the calls).
 *   Pushing is idempotent on the service (keyed by call id), so a batch retried after a lost
 *   response, a crash before marking, or a re-join is never counted twice.
 * - The puller pages by the service's sequence (`after`/`limit`/`has_more`), never by clocks;
 *   pulled calls are inserted once by id, with their rollups and totals, tagged with the device.
 *   Calls this device pushed are skipped (and would be ignored by id anyway).
 * - Failures back off exponentially with full jitter (1 s … 5 min); offline for weeks is just a
 *   long outbox, pushed in order when the service is back.
 * - The device token lives in the secret store (encrypted in sync_state), never in clear, never logged.
 */
import zlib from 'node:zlib';
import { request as undiciRequest, type Dispatcher } from 'undici';
import { promisify } from 'node:util';
import { OUTBOX_COLUMNS, type CallRow, type Ledger } from './ledger.ts';
import { NOT_PLAIN, sortedPlain } from '../../shared/canonical.ts';
import type { SecretStore } from './secret-store.ts';
import { LeaseBook } from './leases.ts';
import { applyPulledGrants, grantOutbox, grantOutboxCount, markGrantEvents, resetGrantOutbox, type GrantSyncEvent, type SyncedGrant } from './billing.ts';
import { nanoToUsd, usdToNanoExact } from '../../shared/money.ts';
import { performance } from 'node:perf_hooks';
import type { Alert, CallRecord, CallStatus, Cap, SyncDevice, SyncStatus } from '../../shared/api.ts';

const gzip = promisify(zlib.gzip);

/** Protocol 2: protocol 1 (calls, caps, leases) and credit grants (ledger/README.md). */
export const PROTOCOL = 2;
const GRANT_BATCH = 500;
export const MAX_BATCH = 1000;
const PULL_LIMIT = 1000;
/** Background sync waits while the event loop is busier than this (see tick). */
const BUSY_ELU = 0.9;
const BUSY_RECHECK_MS = 100;
const MAX_DEFER_MS = 30_000;
/** Pull pages asked for ahead of the one being written. */
const PULL_AHEAD = 3;
const PUSH_CONCURRENCY = 8;
/** Where Ledger.outboxRaw puts a row's outbox seq: after the OUTBOX_COLUMNS. */
const OUTBOX_SEQ = OUTBOX_COLUMNS.length;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 5 * 60_000;
const REQUEST_TIMEOUT_MS = 60_000;
/** A device not heard from for this long: its spend may be missing from the totals. */
export const SILENT_MS = 24 * 3_600_000;
const DEVICES_EVERY_MS = 60_000;

/** A request body already serialized. */
class JsonText {
  constructor(readonly text: string) {}
}

export class SyncError extends Error {
  constructor(readonly code: string, message: string, readonly status = 0) {
    super(message);
  }
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\]|::1)$/i;

/** A service URL the engine may talk to: https anywhere, plain http only on loopback unless `insecure`. */
const isLoopbackUrl = (url: string): boolean => {
  try {
    return LOOPBACK.test(new URL(url).hostname);
  } catch {
    return false;
  }
};

export function checkServiceUrl(raw: string, insecure: boolean): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new SyncError('E_SYNC_URL', `"${raw}" is not a URL (e.g. https://ledger.example.com or http://127.0.0.1:7412)`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new SyncError('E_SYNC_URL', `${raw}: only http(s) URLs can be a ledger service`);
  if (u.protocol === 'http:' && !LOOPBACK.test(u.hostname) && !insecure) {
    throw new SyncError('E_SYNC_INSECURE', `${raw} is plain http:// on another machine: the device token and every call would cross the network in clear. Use https:// (the service with --tls-cert/--tls-key, or behind a TLS proxy), or pass --insecure if this network is trusted.`);
  }
  if (u.username || u.password) throw new SyncError('E_SYNC_URL', `${u.protocol}//${u.host}: put no credentials in the URL`);
  return u.toString().replace(/\/+$/, '');
}

export interface SyncHost {
  ledger: Ledger;
  secrets: SecretStore;
  now(): number;
  log(message: string): void;
  /** Calls from other devices were added to the ledger (refresh caps, tell the UI). */
  pulled?(count: number): void;
  /** The all-devices caps changed (pulled from the service): reload caps. */
  capsChanged?(): void;
  /** The time zone new all-devices caps count their periods in. */
  timeZone?(): string;
  /** An all-devices cap crossed a threshold (the service decides, once per cap and period for the account). */
  alert?(a: Alert): void;
  /** Credit grants (or their removals) from other devices were added: balances change. */
  grantsChanged?(count: number): void;
}

/** A cap as the service keeps it (GET /v1/caps). */
export interface ServiceCap { id: string; scope: Cap['scope']; scope_value: string | null; period: Cap['period']; limit: string; alerts: number[]; tz: string }

export interface SyncOptions {
  /** How often the background loop pushes and pulls when all is well. */
  intervalMs?: number;
  /** How long the background loop may put a pass off while the proxy is saturated (see tick). */
  maxDeferMs?: number;
}

interface Config { url: string; deviceId: string; deviceName: string; account: string; tokenBlob: string }

export interface SyncProgress { pushed: number; total: number; pulled: number }

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** `v` with every object's keys in ascending order (the same value when they already are; as it is when it is not plain JSON data). */
function sortedKeys<T>(v: T): T {
  const sorted = sortedPlain(v);
  return (sorted === NOT_PLAIN ? v : sorted) as T;
}

/**
 * The push body for one call: the engine's CallRecord (toCallRecord) without the local-only `device`
 * field, plus its `leases`. Keys are written in ascending order at every depth: the service's
 * canonical form of the call, which it then does not have to rebuild (the content is the same in any order).
 */
export function pushRecord(row: CallRow): CallRecord & { leases?: string[] } {
  const r = {
    blockedBy: row.blockedBy, ...(row.corrects ? { corrects: row.corrects } : {}), cost: nanoToUsd(row.costNano), durationMs: row.durationMs, endpoint: row.endpoint, error: row.error, estimated: row.estimated,
    httpStatus: row.httpStatus, id: row.id, items: sortedKeys(row.items), keyFingerprint: row.keyFingerprint, keyName: row.keyName,
  } as CallRecord & { leases?: string[] };
  if (row.leases?.length) r.leases = row.leases;
  r.model = row.model; r.node = row.node; r.priceSource = row.priceSource; r.project = row.project; r.provider = row.provider;
  r.reserved = nanoToUsd(row.reservedNano); r.run = row.run; r.status = row.status; r.stream = row.stream; r.ts = row.ts; r.ttfbMs = row.ttfbMs;
  r.unpriced = row.unpriced; r.unpricedReason = row.unpricedReason;
  // only when known: a call recorded without one keeps the exact content it was first synced with
  if (row.upstreamId) r.upstreamId = row.upstreamId;
  r.usage = sortedKeys(row.usage); r.workflow = row.workflow;
  return r;
}

const js = (v: unknown): string => (v === null || v === undefined ? 'null' : JSON.stringify(v));
const flag = (v: unknown): string => (Number(v) === 1 ? 'true' : 'false');

/**
 * The push body of one call (the content of pushRecord(row)) for a raw outbox row (Ledger.outboxRaw,
 * OUTBOX_COLUMNS order), written directly: the pusher's hot path, with no CallRow or record object
 * per call. Top-level keys are in ascending order; `usage` and `items` are the ledger's stored JSON
 * text, as it is (not parsed here): the service writes each object's keys in canonical order where
 * they are not already, so the content and its hash are the same either way.
 */
export function pushJson(r: unknown[]): string {
  const leases = r[26] ? JSON.parse(r[26] as string) as string[] : null;
  // a correction's `corrects` and the provider's response id go only where present (as toCallRecord does)
  return `{"blockedBy":${js(r[25])},${r[27] ? `"corrects":${js(r[27])},` : ''}"cost":"${nanoToUsd(BigInt(r[18] as string))}","durationMs":${js(r[14])},"endpoint":${js(r[4])},"error":${js(r[24])},`
    + `"estimated":${flag(r[20])},"httpStatus":${js(r[12])},"id":${js(r[0])},"items":${(r[17] as string | null) || '[]'},"keyFingerprint":${js(r[9])},`
    + `"keyName":${js(r[10])},${leases?.length ? `"leases":${JSON.stringify(leases)},` : ''}"model":${js(r[3])},"node":${js(r[8])},"priceSource":${js(r[23])},`
    + `"project":${js(r[5])},"provider":${js(r[2])},"reserved":"${nanoToUsd(BigInt(r[19] as string))}","run":${js(r[7])},"status":${js(r[11])},`
    + `"stream":${flag(r[13])},"ts":${js(r[1])},"ttfbMs":${js(r[15])},"unpriced":${flag(r[21])},"unpricedReason":${js(r[22])},`
    + `${r[28] ? `"upstreamId":${js(r[28])},` : ''}"usage":${(r[16] as string | null) || '{}'},"workflow":${js(r[6])}}`;
}

const STATUSES = new Set<CallStatus>(['ok', 'error', 'blocked', 'interrupted', 'aborted']);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
function nano(v: unknown): bigint {
  try {
    return typeof v === 'string' ? usdToNanoExact(v) : 0n;
  } catch {
    return 0n;
  }
}

/** A pulled call as a local row; null when it cannot be one (the service validated the essentials). */
export function rowFromPulled(c: Record<string, unknown>): CallRow | null {
  const id = str(c.id), ts = num(c.ts), provider = str(c.provider);
  if (!id || ts === null || !provider || typeof c.cost !== 'string') return null;
  const status = (STATUSES.has(c.status as CallStatus) ? c.status : 'ok') as CallStatus;
  return {
    id, ts, provider, model: str(c.model), endpoint: str(c.endpoint) ?? 'unknown', project: str(c.project), workflow: str(c.workflow),
    run: str(c.run), node: str(c.node), keyId: null, keyFingerprint: str(c.keyFingerprint), keyName: str(c.keyName), status,
    httpStatus: num(c.httpStatus), stream: c.stream === true, durationMs: num(c.durationMs), ttfbMs: num(c.ttfbMs),
    usage: c.usage && typeof c.usage === 'object' && !Array.isArray(c.usage) ? c.usage as Record<string, number | string> : {},
    items: Array.isArray(c.items) ? c.items as CallRow['items'] : [], costNano: nano(c.cost), reservedNano: nano(c.reserved),
    quoteMaxNano: null, quoteExpectedNano: null, estimated: c.estimated === true, unpriced: c.unpriced === true,
    unpricedReason: str(c.unpricedReason), priceSource: str(c.priceSource), error: str(c.error), blockedBy: str(c.blockedBy), prompt: null,
    corrects: str(c.corrects),
    upstreamId: typeof c.upstreamId === 'string' && c.upstreamId.length <= 200 ? c.upstreamId : null,
  };
}

export class SyncClient {
  private timer: NodeJS.Timeout | null = null;
  private active = false;
  /** The event loop's utilization at the last tick, and when the last background pass began (see tick). */
  private elu = performance.eventLoopUtilization();
  private lastPassAt = 0;
  /** Background passes put off while the proxy was saturated (see tick). */
  deferred = 0;
  private busy: Promise<SyncProgress> | null = null;
  private failures = 0;
  private token: string | null = null;
  private progress: SyncProgress | null = null;
  private lastDevicesAt = 0;
  /** Aborted on stop: a request hanging on a dead network never holds up the engine's shutdown. */
  private aborter = new AbortController();
  readonly intervalMs: number;
  readonly maxDeferMs: number;
  /** Leases for the all-devices caps (leases.ts). */
  readonly leases: LeaseBook;

  constructor(private readonly host: SyncHost, opts: SyncOptions = {}) {
    this.intervalMs = opts.intervalMs ?? Number(process.env.TOLLGATE_SYNC_INTERVAL_MS ?? 5000);
    this.maxDeferMs = opts.maxDeferMs ?? MAX_DEFER_MS;
    this.leases = new LeaseBook({ request: (m, p, b) => this.authed(m, p, b as Record<string, unknown> | undefined) }, host.ledger, (m) => host.log(m));
  }

  /** One authenticated request to the joined service (the protocol field added to a body). */
  private async authed<T>(method: string, p: string, body?: Record<string, unknown>): Promise<T> {
    const c = this.config();
    if (!c) throw new SyncError('E_SYNC_NOT_JOINED', 'this device has not joined a ledger service: `npx tollgate sync join URL CODE`');
    return this.request<T>(c, await this.tokenFor(c), method, p, body === undefined ? undefined : { protocol: PROTOCOL, ...body });
  }

  // ---- caps across devices ----

  async createRemoteCap(c: { scope: Cap['scope']; scopeValue: string | null; period: Cap['period']; limit: string; alerts: number[] }): Promise<ServiceCap> {
    const r = await this.authed<{ cap: ServiceCap }>('POST', '/v1/caps', {
      scope: c.scope, scope_value: c.scopeValue, period: c.period, limit: c.limit, alerts: c.alerts, tz: this.host.timeZone?.() ?? 'UTC',
    });
    return r.cap;
  }

  async removeRemoteCap(id: string): Promise<void> {
    await this.authed('DELETE', `/v1/caps/${encodeURIComponent(id)}`).catch((e: SyncError) => {
      if (e.code !== 'no_such_cap' && e.code !== 'not_found') throw e;
    });
  }

  /** Mirror the service's caps into the local caps table (all_devices = 1); true when something changed. */
  private async refreshCaps(): Promise<boolean> {
    const r = await this.authed<{ caps?: ServiceCap[] }>('GET', `/v1/caps?protocol=${PROTOCOL}`);
    const remote = new Map((r.caps ?? []).map((c) => [c.id, c]));
    const local = this.L.caps().filter((c) => c.allDevices);
    let changed = false;
    for (const l of local) {
      if (!remote.has(l.id)) {
        this.L.removeCap(l.id);
        changed = true;
      }
    }
    for (const c of remote.values()) {
      const limitNano = usdToNanoExact(c.limit);
      const have = local.find((l) => l.id === c.id);
      const cap: Cap = { id: c.id, scope: c.scope, scopeValue: c.scope_value, period: c.period, limit: c.limit, alerts: c.alerts, hard: true, allDevices: true, createdAt: have?.createdAt ?? this.host.now() };
      if (have && have.scope === cap.scope && have.scopeValue === cap.scopeValue && have.period === cap.period && usdToNanoExact(have.limit) === limitNano && JSON.stringify(have.alerts) === JSON.stringify(cap.alerts)) continue;
      this.L.putCap(cap, limitNano);
      changed = true;
    }
    return changed;
  }

  private get L(): Ledger {
    return this.host.ledger;
  }

  private config(): Config | null {
    const g = (k: string) => this.L.syncState(k);
    const url = g('url'), deviceId = g('device_id'), deviceName = g('device_name'), account = g('account'), tokenBlob = g('token');
    return url && deviceId && deviceName && account && tokenBlob ? { url, deviceId, deviceName, account, tokenBlob } : null;
  }

  get joined(): boolean {
    return this.config() !== null;
  }

  private async tokenFor(c: Config): Promise<string> {
    this.token ??= await this.host.secrets.decrypt(Buffer.from(c.tokenBlob, 'base64'));
    return this.token;
  }

  private async request<T>(c: { url: string }, token: string | null, method: string, p: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    let data: Buffer | string | undefined;
    if (body !== undefined) {
      const json = body instanceof JsonText ? body.text : JSON.stringify(body);
      headers['content-type'] = 'application/json';
      // gzip pays on a network; to a service on this machine it only costs CPU on both ends
      // (a string body is written to the socket as it is: no copy into a Buffer first)
      if (json.length < 1024 || isLoopbackUrl(c.url)) data = json;
      else {
        data = await gzip(json, { level: 1 });
        headers['content-encoding'] = 'gzip';
      }
    }
    // undici's request(), not fetch(): the same client without WHATWG streams, which cost more CPU
    // than the JSON itself on a page of 1,000 calls
    let res: Dispatcher.ResponseData;
    try {
      res = await undiciRequest(c.url + p, { method: method as Dispatcher.HttpMethod, headers, body: data, signal: AbortSignal.any([AbortSignal.timeout(REQUEST_TIMEOUT_MS), this.aborter.signal]) });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new SyncError('E_SYNC_OFFLINE', `cannot reach the ledger service ${c.url}: ${(e as { code?: string }).code ?? cause?.code ?? cause?.message ?? (e as Error).message}`);
    }
    let text: string;
    try {
      text = await res.body.text();
    } catch (e) {
      throw new SyncError('E_SYNC_OFFLINE', `the ledger service ${c.url} cut the answer: ${(e as Error).message}`);
    }
    const status = res.statusCode;
    const json = parseJson(text) as { error?: { code?: string; message?: string } } | null;
    if (status < 200 || status > 299) {
      const code = json?.error?.code ?? `http_${status}`;
      throw new SyncError(code, `the ledger service answered ${status} ${code}: ${json?.error?.message ?? text.slice(0, 200)}`, status);
    }
    if (json === null || typeof json !== 'object') throw new SyncError('E_SYNC_PROTOCOL', `the ledger service ${c.url} did not answer JSON for ${method} ${p.split('?')[0]}`);
    return json as T;
  }

  // ---- join, leave ----

  async join(rawUrl: string, code: string, name: string | undefined, insecure = false): Promise<SyncStatus> {
    const url = checkServiceUrl(rawUrl, insecure);
    const r = await this.request<{ token: string; device: { id: string; name: string }; account: string }>({ url }, null, 'POST', '/v1/enrol', { protocol: PROTOCOL, code, name });
    if (typeof r.token !== 'string' || !r.device?.id) throw new SyncError('E_SYNC_PROTOCOL', 'the ledger service answered the enrolment without a token');
    const blob = (await this.host.secrets.encrypt(r.token)).toString('base64');
    await this.stopLoop();
    this.token = r.token;
    this.L.setSyncState({
      url, insecure: insecure ? '1' : '0', device_id: r.device.id, device_name: r.device.name, account: r.account, token: blob,
      pull_after: '0', grants_after: '0', last_push_at: null, last_pull_at: null, last_error: null, devices: null, conflicts: '0', refused: '0', joined_at: String(this.host.now()), alerts_after: null,
    });
    // this device's history joins the account (pushing is idempotent: nothing counts twice)
    this.L.resetOutbox();
    resetGrantOutbox(this.L.db);
    this.failures = 0;
    this.host.log(`sync: joined account "${r.account}" at ${url} as device "${r.device.name}" (${r.device.id}).`);
    if (this.active) this.schedule(0);
    return this.status(false);
  }

  async leave(): Promise<SyncStatus> {
    await this.stopLoop();
    const c = this.config();
    // give back the leases, and drop the caps kept on that service: nothing would grant them any more
    if (c) await Promise.race([this.leases.returnAll(), new Promise((r) => setTimeout(r, 3000).unref())]);
    let capsGone = false;
    for (const cap of this.L.caps()) if (cap.allDevices) capsGone = this.L.removeCap(cap.id) || capsGone;
    if (capsGone) this.host.capsChanged?.();
    this.token = null;
    this.L.setSyncState(Object.fromEntries(['url', 'insecure', 'device_id', 'device_name', 'account', 'token', 'pull_after', 'last_push_at', 'last_pull_at',
      'last_error', 'devices', 'devices_at', 'conflicts', 'refused', 'joined_at', 'last_contact_at', 'alerts_after', 'grants_after'].map((k) => [k, null])));
    if (c) this.host.log(`sync: left account "${c.account}" (${c.url}); calls already synced stay in this ledger.`);
    if (this.active) this.schedule(this.intervalMs);
    return this.status(false);
  }

  // ---- the background loop ----

  /** Run the loop in the background (an engine that serves). */
  start(): void {
    if (this.active) return;
    this.active = true;
    this.elu = performance.eventLoopUtilization(); // how busy the loop is, from now on
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.active = false;
    this.aborter.abort();
    await this.stopLoop();
    this.aborter = new AbortController();
    if (this.joined && this.leases.list().length) {
      // give back what is not in flight (an unreturned lease holds its allowance until the service sees it returned)
      await Promise.race([this.leases.returnAll(), new Promise((r) => setTimeout(r, 3000).unref())]);
    }
  }

  private async stopLoop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.busy?.catch(() => {});
    await this.next?.catch(() => {});
  }

  private schedule(ms: number): void {
    if (!this.active) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), ms);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    this.timer = null;
    if (!this.joined) return this.schedule(this.intervalMs);
    // Background sync yields to the proxy: while the event loop has been busier than BUSY_ELU since
    // the last look (the proxy saturated), the pass waits for a quieter moment, looked for every
    // BUSY_RECHECK_MS, for at most MAX_DEFER_MS since the last pass; then it runs whatever the load.
    // Nothing waits on it: calls are in the outbox, and leases are topped up by the proxy itself.
    const elu = performance.eventLoopUtilization(this.elu);
    this.elu = performance.eventLoopUtilization();
    if (elu.utilization > BUSY_ELU && Date.now() - this.lastPassAt < this.maxDeferMs) {
      this.deferred++;
      return this.schedule(Math.min(this.intervalMs, BUSY_RECHECK_MS));
    }
    this.lastPassAt = Date.now();
    try {
      await (this.busy ?? this.startPass()); // the background joins a pass under way
      if (this.failures) this.host.log(`sync: the ledger service answers again; ${this.L.outboxCount()} call(s) left to push.`);
      this.failures = 0;
      this.schedule(this.intervalMs);
    } catch (e) {
      if (!this.active) return;
      const err = e as SyncError;
      if (err.code === 'revoked' || err.code === 'unauthorized') {
        this.host.log(`sync: the ledger service refused this device (${err.code}); join again with a new code (\`npx tollgate sync join\`).`);
        this.schedule(BACKOFF_MAX_MS);
        return;
      }
      // said once when it starts failing, not at every retry (offline for weeks must not flood the log)
      if (this.failures === 0) this.host.log(`sync: ${err.message}; calls are kept and pushed when it answers again (retrying with backoff).`);
      this.failures++;
      // exponential backoff with full jitter: devices coming back together do not stampede
      const cap = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(this.failures, 20));
      this.schedule(Math.max(BACKOFF_MIN_MS / 2, Math.random() * cap));
    }
  }

  /**
   * Push the outbox, then pull: everything recorded before the call is pushed when it resolves. A
   * pass already under way may have read the outbox before the caller's latest calls, so one more
   * pass follows it, shared by every caller that asks meanwhile.
   */
  syncNow(onProgress?: (p: SyncProgress) => void): Promise<SyncProgress> {
    if (!this.busy) return this.startPass(onProgress);
    const ignore = () => {};
    this.next ??= this.busy.then(ignore, ignore).then(() => {
      this.next = null;
      return this.busy ?? this.startPass(onProgress);
    });
    return this.next;
  }

  private next: Promise<SyncProgress> | null = null;

  private startPass(onProgress?: (p: SyncProgress) => void): Promise<SyncProgress> {
    const run = this.pass(onProgress).finally(() => { this.busy = null; this.progress = null; });
    this.busy = run;
    return run;
  }

  private async pass(onProgress?: (p: SyncProgress) => void): Promise<SyncProgress> {
    const c = this.config();
    if (!c) throw new SyncError('E_SYNC_NOT_JOINED', 'this device has not joined a ledger service: `npx tollgate sync join URL CODE`');
    const p: SyncProgress = { pushed: 0, total: this.L.outboxCount(), pulled: 0 };
    this.progress = p;
    try {
      const token = await this.tokenFor(c);
      await this.push(c, token, p, onProgress);
      await this.pull(c, token, p, onProgress);
      await this.syncGrants(c, token);
      if (this.host.now() - this.lastDevicesAt > DEVICES_EVERY_MS || p.pulled > 0) await this.refreshDevices(c, token).catch(() => {});
      if (await this.refreshCaps()) this.host.capsChanged?.();
      if (this.leases.hasCaps) {
        this.leases.serviceAnswered(); // the service answers again: asks for leases need not wait out a backoff
        await this.leases.housekeep();
        await this.leases.topUpAll();
        await this.pullAlerts();
      }
      this.L.setSyncState({ last_error: null });
      return p;
    } catch (e) {
      this.L.setSyncState({ last_error: (e as Error).message, last_error_at: String(this.host.now()) });
      throw e;
    }
  }

  private async push(c: Config, token: string, p: SyncProgress, onProgress?: (p: SyncProgress) => void): Promise<void> {
    let batch = MAX_BATCH;
    for (;;) {
      // a pipeline: PUSH_CONCURRENCY workers each take the next keyset page of the outbox (read
      // synchronously, so pages never overlap: each is a contiguous range of outbox seqs) and push
      // it; a batch in flight never waits for another one to be read or answered
      let cursor = 0, failure: unknown = null, again = false;
      const worker = async () => {
        while (!failure && !again) {
          const rows = this.L.outboxRaw(cursor, batch);
          if (!rows.length) return;
          cursor = rows[rows.length - 1]![OUTBOX_SEQ] as number;
          try {
            await this.pushBatch(c, token, rows);
            p.pushed += rows.length;
            this.L.setSyncState({ last_push_at: String(this.host.now()), last_contact_at: String(this.host.now()) });
            onProgress?.(p);
          } catch (e) {
            const err = e as SyncError;
            if (err.code === 'body_too_large' && batch > 1) batch = Math.max(1, batch >> 1); // split and retry
            else if (err.code !== 'E_SYNC_REFUSED_ONE') failure ??= err; // a refused call was set aside: the rest goes again
            again = true;
          }
        }
      };
      await Promise.all(Array.from({ length: PUSH_CONCURRENCY }, worker));
      if (failure) throw failure;
      if (!again) return;
    }
  }

  private async pushBatch(c: Config, token: string, raw: unknown[][]): Promise<void> {
    let r: { results?: { id: string; status: string }[] };
    const rows = raw.map((x) => ({ id: x[0] as string }));
    try {
      r = await this.request(c, token, 'POST', '/v1/push', new JsonText(`{"protocol":${PROTOCOL},"calls":[${raw.map(pushJson).join(',')}]}`));
    } catch (e) {
      const err = e as SyncError;
      const m = err.code === 'invalid_call' ? /calls\[(\d+)\]/.exec(err.message) : null;
      if (m && rows[Number(m[1])]) {
        const bad = rows[Number(m[1])]!;
        this.L.markSynced([bad.id], 3);
        this.bump('refused');
        this.host.log(`sync: the ledger service refused call ${bad.id} (${err.message}); it stays in this ledger only.`);
        throw new SyncError('E_SYNC_REFUSED_ONE', err.message, err.status);
      }
      throw err;
    }
    const conflicts = (r.results ?? []).filter((x) => x.status === 'conflict').map((x) => x.id);
    this.L.outboxDone(raw[0]![OUTBOX_SEQ] as number, raw[raw.length - 1]![OUTBOX_SEQ] as number);
    if (conflicts.length) {
      this.L.markSynced(conflicts, 2);
      this.bump('conflicts', conflicts.length);
      this.host.log(`sync: CONFLICT: the ledger service already holds a different version of ${conflicts.length} call(s) (${conflicts.slice(0, 3).join(', ')}${conflicts.length > 3 ? ', …' : ''}); the service kept its original, nothing was merged.`);
    }
  }

  private bump(key: 'conflicts' | 'refused', n = 1): void {
    this.L.setSyncState({ [key]: String(Number(this.L.syncState(key) ?? 0) + n) });
  }

  private async pull(c: Config, token: string, p: SyncProgress, onProgress?: (p: SyncProgress) => void): Promise<void> {
    type Page = { calls?: { seq: number; device: string; device_name?: string; call: Record<string, unknown> }[]; next?: number; has_more?: boolean };
    const page = (after: number) => this.request<Page>(c, token, 'GET', `/v1/pull?after=${after}&limit=${PULL_LIMIT}&others=1&protocol=${PROTOCOL}`);
    let after = Number(this.L.syncState('pull_after') ?? 0);
    // Pages in flight ahead of the one being written. The service's sequence numbers are gap-free, so
    // a full page ends PULL_LIMIT further on: the next pages are asked for at the cursor they will
    // most likely start at, and one asked for at any other cursor than the last page's `next` is
    // dropped and asked for again (only speed depends on the guess, never what is written).
    const ahead: { after: number; page: Promise<Page> }[] = [];
    const ask = (a: number) => {
      const pg = page(a);
      pg.catch(() => {});
      ahead.push({ after: a, page: pg });
    };
    ask(after);
    while (ahead.length) {
      const asked = ahead.shift()!;
      if (asked.after !== after) {
        ahead.length = 0;
        ask(after);
        continue;
      }
      const r: Page = await asked.page;
      const next = typeof r.next === 'number' && r.next >= after ? r.next : after;
      const more = r.has_more === true && next !== after;
      if (!more) ahead.length = 0;
      else {
        if (ahead.length && ahead[0]!.after !== next) ahead.length = 0;
        for (let a = ahead.length ? ahead[ahead.length - 1]!.after + PULL_LIMIT : next; ahead.length < PULL_AHEAD; a += PULL_LIMIT) ask(a);
      }
      const calls = Array.isArray(r.calls) ? r.calls : [];
      const rows: { row: CallRow; device: string; deviceId: string }[] = [];
      for (const x of calls) {
        if (!x || x.device === c.deviceId) continue; // this device's own calls: already here
        const row = x.call && typeof x.call === 'object' ? rowFromPulled(x.call) : null;
        if (row) rows.push({ row, device: String(x.device_name ?? x.device), deviceId: String(x.device) });
      }
      const added = rows.length ? this.L.insertPulled(rows) : 0;
      p.pulled += added;
      // the cursor moves only after the page is in the ledger: a crash in between re-pulls it (ignored by id)
      this.L.setSyncState({ pull_after: String(next), last_pull_at: String(this.host.now()), last_contact_at: String(this.host.now()) });
      if (added) this.host.pulled?.(added);
      onProgress?.(p);
      after = next;
    }
  }

  private async refreshDevices(c: Config, token: string): Promise<void> {
    const r = await this.request<{ devices?: { id: string; name: string; last_seen_at: number | null; revoked_at: number | null }[] }>(c, token, 'GET', `/v1/devices?protocol=${PROTOCOL}`);
    this.lastDevicesAt = this.host.now();
    this.L.setSyncState({ devices: JSON.stringify(r.devices ?? []), devices_at: String(this.lastDevicesAt) });
  }

  /** Threshold alerts of the all-devices caps, fired by the service: shown here once each (the tray, notifications, the log). */
  private async pullAlerts(): Promise<void> {
    const first = this.L.syncState('alerts_after') === null;
    let after = Number(this.L.syncState('alerts_after') ?? 0);
    const caps = new Map(this.L.caps().map((c) => [c.id, c]));
    for (;;) {
      const r = await this.authed<{ alerts?: { id: number; cap: string; threshold: number; period_start: number; spent: string; limit: string; fired_at: number }[]; next?: number; has_more?: boolean }>(
        'GET', `/v1/alerts?after=${after}&limit=100&protocol=${PROTOCOL}`);
      for (const x of r.alerts ?? []) {
        const cap = caps.get(x.cap);
        const a: Alert = {
          id: `svc_${this.L.syncState('account') ?? ''}_${x.id}`, capId: x.cap, capLabel: cap ? `${cap.scope}${cap.scopeValue ? ':' + cap.scopeValue : ''} ${cap.period} (all devices)` : `${x.cap} (all devices)`,
          threshold: x.threshold, periodKey: String(x.period_start), spent: x.spent, limit: x.limit, ts: x.fired_at, kind: 'threshold',
        };
        // alerts fired before this device joined are recorded, not notified
        if (this.L.insertAlert(a) && !first) this.host.alert?.(a);
      }
      const next = typeof r.next === 'number' && r.next > after ? r.next : after;
      this.L.setSyncState({ alerts_after: String(next) });
      if (!r.has_more || next === after) return;
      after = next;
    }
  }

  // ---- credit grants (protocol 2): the grants outbox and the grant events of the other devices ----

  private grantsUnsupported = false;

  /** Push this device's grant events, then pull the other devices'. A service without the grant endpoints is said once and skipped (calls still sync). */
  private async syncGrants(c: Config, token: string): Promise<void> {
    try {
      await this.pushGrants(c, token);
      await this.pullGrants(c, token);
      this.grantsUnsupported = false;
    } catch (e) {
      if ((e as SyncError).code !== 'unsupported_protocol' && (e as SyncError).status !== 404) throw e;
      if (!this.grantsUnsupported) this.host.log(`sync: the ledger service ${c.url} does not serve credit grants (${(e as Error).message}); calls sync, grants stay on this device until the service is upgraded.`);
      this.grantsUnsupported = true;
    }
  }

  private async pushGrants(c: Config, token: string): Promise<void> {
    for (;;) {
      const events = grantOutbox(this.L.db, GRANT_BATCH);
      if (!events.length) return;
      const wire = events.map((e) => (e.kind === 'add' ? { kind: 'add', grant: e.grant } : { kind: 'remove', id: e.id, removed_at: e.removed_at }));
      const key = (e: GrantSyncEvent) => ({ kind: e.kind, id: e.kind === 'add' ? e.grant.id : e.id });
      let r: { results?: { kind: 'add' | 'remove'; id: string; status: string }[] };
      try {
        r = await this.request(c, token, 'POST', '/v1/grants', { protocol: PROTOCOL, events: wire });
      } catch (e) {
        const err = e as SyncError;
        const m = err.code === 'invalid_grant' ? /events\[(\d+)\]/.exec(err.message) : null;
        if (!m || !events[Number(m[1])]) throw err;
        const bad = key(events[Number(m[1])]!);
        markGrantEvents(this.L.db, [bad], 3);
        this.host.log(`sync: the ledger service refused credit ${bad.kind === 'add' ? 'grant' : 'removal'} ${bad.id} (${err.message}); it stays on this device only.`);
        continue;
      }
      const results = r.results ?? [];
      const conflicts = results.filter((x) => x.status === 'conflict');
      const ok = events.map(key).filter((k) => !conflicts.some((x) => x.kind === k.kind && x.id === k.id));
      markGrantEvents(this.L.db, ok, 1);
      if (conflicts.length) {
        markGrantEvents(this.L.db, conflicts, 2);
        this.host.log(`sync: CONFLICT: the ledger service already holds a different grant under ${conflicts.map((x) => x.id).join(', ')}; the service kept its original, nothing was merged.`);
      }
    }
  }

  private async pullGrants(c: Config, token: string): Promise<void> {
    let after = Number(this.L.syncState('grants_after') ?? 0);
    for (;;) {
      const r = await this.request<{ events?: { seq: number; kind: string; id: string; device: string; device_name?: string; grant?: SyncedGrant; removed_at?: number }[]; next?: number; has_more?: boolean }>(
        c, token, 'GET', `/v1/grants?after=${after}&limit=${PULL_LIMIT}&protocol=${PROTOCOL}`);
      const events: ({ device: string } & GrantSyncEvent)[] = [];
      for (const x of Array.isArray(r.events) ? r.events : []) {
        if (!x || x.device === c.deviceId) continue; // this device's own: already here
        const device = String(x.device_name ?? x.device);
        if (x.kind === 'add' && x.grant && typeof x.grant === 'object' && typeof x.grant.id === 'string' && typeof x.grant.amount === 'string') {
          events.push({ kind: 'add', grant: x.grant, device });
        } else if (x.kind === 'remove' && typeof x.id === 'string') {
          events.push({ kind: 'remove', id: x.id, removed_at: typeof x.removed_at === 'number' ? x.removed_at : this.host.now(), device });
        }
      }
      const changed = events.length ? applyPulledGrants(this.L.db, events) : 0;
      const next = typeof r.next === 'number' && r.next >= after ? r.next : after;
      // the cursor moves only after the page is applied: a crash in between pulls it again (applied once by id)
      this.L.setSyncState({ grants_after: String(next) });
      if (changed) this.host.grantsChanged?.(changed);
      if (!r.has_more || next === after) return;
      after = next;
    }
  }

  // ---- status ----

  /** This device's sync state; with `refresh`, the device list is fetched from the service first (offline: the last one known). */
  async status(refresh = true): Promise<SyncStatus> {
    const c = this.config();
    let refreshError: string | null = null;
    if (c && refresh) {
      try {
        await this.refreshDevices(c, await this.tokenFor(c));
        this.L.setSyncState({ last_contact_at: String(this.host.now()) });
      } catch (e) {
        refreshError = (e as Error).message;
      }
    }
    const g = (k: string) => this.L.syncState(k);
    const n = (k: string) => (g(k) === null ? null : Number(g(k)));
    const now = this.host.now();
    const raw = (parseJson(g('devices') ?? '[]') ?? []) as { id: string; name: string; last_seen_at: number | null; revoked_at: number | null }[];
    const devices: SyncDevice[] = raw.map((d) => ({
      id: d.id, name: d.name, lastSeenAt: d.last_seen_at, revoked: d.revoked_at !== null, self: d.id === c?.deviceId,
      silent: d.revoked_at === null && d.id !== c?.deviceId && (d.last_seen_at === null || now - d.last_seen_at > SILENT_MS),
    }));
    return {
      joined: !!c, url: c?.url ?? null, account: c?.account ?? null, device: c ? { id: c.deviceId, name: c.deviceName } : null,
      pending: this.L.outboxCount(), pendingGrants: grantOutboxCount(this.L.db), lastPushAt: n('last_push_at'), lastPullAt: n('last_pull_at'), lastContactAt: n('last_contact_at'),
      pulledSeq: n('pull_after') ?? 0, lastError: refreshError ?? g('last_error'), conflicts: n('conflicts') ?? 0, refused: n('refused') ?? 0,
      background: this.active, syncing: this.progress ? { ...this.progress } : null,
      devices, devicesAt: n('devices_at'), silentDevices: devices.filter((d) => d.silent).map((d) => d.name),
      leases: this.leases.list().map((l) => ({
        cap: l.cap, amount: nanoToUsd(l.amount), used: nanoToUsd(l.used), reserved: nanoToUsd(l.reserved), expiresInMs: Math.max(0, Math.round(l.expiresAt - performance.now())),
      })),
    };
  }
}
