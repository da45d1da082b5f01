/**
 * The metering engine: one object owning the ledger, the HTTP server (proxy + control API + UI),
 * the caps state and the event stream. Never imports `electron`: it runs inside the desktop
 * app's main process and headless under plain Node (`tollgate serve`).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { Agent } from 'undici';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { newCallId } from './ids.ts';
import { Ledger, toCallRecord, type CallRow } from './ledger.ts';
import { DEFAULT_UPSTREAMS, type BeginInput, type Begun, type Outcome, type ProxyHost } from './proxy.ts';
import { ProxyError } from './errors.ts';
import { audioFacts, BATCH_SUBMIT, isBatchResults, isBillable, multipartModel, unpricedEndpoint, type Endpoint } from './extract.ts';
import { BatchJobs } from './batches.ts';
import { createFileSecretStore, type SecretStore } from './secret-store.ts';
import { defaultDataDir, defaultPort, ensurePrivateDir } from './paths.ts';
import { DataDirLock } from './lock.ts';
import { handleRequest, ensureToken } from './control.ts';
import { EngineApi } from './api.ts';
import { Billing } from './billing.ts';
import { Catalog, bundledCatalog, canonicalProvider, type TokenModel } from '../../shared/catalog.ts';
import { loadPriceData } from './price-data.ts';
import type { GenaiData } from '../../shared/catalog.ts';
import { SyncClient } from './sync.ts';
import { groundingBilledBy, implausibleUsage, priceCall, toLineItems, type MediaParams, type PriceContext } from '../../shared/pricing.ts';
import { analyzeRequest, estimateBatch, priceBatchResults, quoteNano } from '../../shared/quote.ts';
import { usdToNanoExact, nanoToUsd, formatUsd } from '../../shared/money.ts';
import { admits, capApplies, capLabel, keyCapMatcher, crossedThreshold, percentOf, periodBounds, type CallScope, type PeriodBounds } from '../../shared/caps.ts';
import type { Alert, Cap, CapStatus, EngineEvent, PriceDataInfo, RepriceResult, TollgateApi, VolumeTierPlan } from '../../shared/api.ts';
import { resolveCacheLifetime, type Usage } from '../../shared/usage.ts';

export { defaultDataDir };

export interface EngineOptions {
  dataDir?: string;
  port?: number;
  upstreams?: Record<string, string>;
  secretStore?: SecretStore;
  uiDir?: string | null;
  /** Injected clock (tests). */
  now?: () => number;
  maxBodyBytes?: number;
  /** An upstream silent for this long (no headers, no bytes) is cut and its reservation released. */
  upstreamIdleMs?: number;
  quiet?: boolean;
  /**
   * A CLI command using the ledger directly (no engine serves this data dir): it needs no lock,
   * and recovers calls left pending by a crash only when it can take the lock for that moment, so
   * it never touches calls a live engine owns.
   */
  offline?: boolean;
  /** Where messages are shown: the desktop app (tray, notifications) or headless (`tollgate serve`). */
  surface?: 'desktop' | 'headless';
  /** How often the sync client pushes and pulls while joined (default 5 s, or $TOLLGATE_SYNC_INTERVAL_MS). */
  syncIntervalMs?: number;
  /** How long background sync may wait for a quieter moment while the proxy is saturated (default 30 s). */
  syncMaxDeferMs?: number;
}

interface CapState {
  cap: Cap;
  limitNano: bigint;
  bounds: PeriodBounds;
  spent: bigint;
  /** The sum of the open reservations counted on this cap (see Reservation). */
  reserved: bigint;
  /** For a key cap: the keys' ids and fingerprints its value names (by id, name or fingerprint). */
  keys: ReadonlySet<string> | null;
}

/**
 * A call's reservation, owned by the call (not by a cap): created in `begin`, released exactly once
 * in `finish`. `on` lists the cap states it is counted on now; when the caps are reloaded (a cap
 * set, edited or removed) every open reservation is counted again on the new cap states, so an
 * edit, a removal or a new cap can neither leak a reservation nor release it twice.
 */
interface Reservation {
  amount: bigint;
  scope: CallScope;
  on: CapState[];
  released: boolean;
  /** Service leases this call reserved on (all-devices caps), settled with it. */
  leases: string[];
}

const KEY_HEADERS = ['authorization', 'x-api-key', 'x-goog-api-key'] as const;

const VERSION_POLL_MS = 250;
const NO_CAPS: CapState[] = [];
/** The longest upstream id a call carries (the sync protocol drops longer ones). */
const MAX_UPSTREAM_ID = 200;

/** A correction record taking back `of`'s cost (a new record naming it, with the cost negated), attributed like it. */
function correctionRow(of: CallRow, now: number, label: string, why: string): CallRow {
  const back = -of.costNano;
  return {
    id: newCallId(), ts: now, provider: of.provider, model: of.model, endpoint: 'batch.correction', project: of.project, workflow: of.workflow,
    run: of.run, node: of.node, keyId: of.keyId, keyFingerprint: of.keyFingerprint, keyName: of.keyName, status: 'ok', httpStatus: null,
    stream: false, durationMs: 0, ttfbMs: null, usage: {},
    items: [{ cost: nanoToUsd(back), label, per: 1, quantity: '1', source: 'batch results', unit: 'correction', unitPrice: nanoToUsd(back) }],
    costNano: back, reservedNano: 0n, quoteMaxNano: null, quoteExpectedNano: null, estimated: false, unpriced: false, unpricedReason: null,
    priceSource: why, error: null, blockedBy: null, prompt: null, corrects: of.id,
  };
}
const MEDIA_ENDPOINTS = new Set<string>(['images', 'videos', 'fal', 'fal.submit', 'replicate.create', 'predict', 'predictLongRunning']);

const fingerprints = new Map<string, string>();
/** A provider key's fingerprint (never the key itself); memoized, as clients reuse one key. */
export function fingerprint(secret: string): string {
  let fp = fingerprints.get(secret);
  if (!fp) {
    fp = 'fp_' + crypto.createHash('sha256').update(secret).digest('hex').slice(0, 12);
    if (fingerprints.size > 1000) fingerprints.clear();
    fingerprints.set(secret, fp);
  }
  return fp;
}
export function tokenHash(token: string): string {
  return crypto.createHash('sha256').update(token).digest('hex');
}

export class Engine implements ProxyHost {
  readonly dataDir: string;
  readonly ledger: Ledger;
  readonly upstreams: Map<string, string>;
  readonly maxBodyBytes: number;
  readonly upstreamIdleMs: number;
  readonly upstreamClient: Agent;
  readonly secrets: SecretStore;
  readonly token: string;
  readonly api: TollgateApi;
  /** Credits, statements, reconciliation (billing.ts). */
  readonly billing: Billing;
  /** Sync with a tollgate-ledger service (sync.ts): runs in the background while the engine serves. */
  readonly sync: SyncClient;
  readonly now: () => number;
  readonly uiDir: string | null;
  catalog: Catalog;
  /** The token price data in use (bundled, or a file loaded with `tollgate prices update`). */
  priceData!: PriceDataInfo;
  private loadedPriceData: { data: GenaiData; info: PriceDataInfo; base: Catalog } | null = null;
  paused = false;
  timeZone: string;
  weekStart: 1 | 7 = 1;
  storePrompts = false;
  failOpen = false;
  private server: http.Server | null = null;
  private _port: number;
  private caps: CapState[] = [];
  private tierPlans: VolumeTierPlan[] = [];
  private configVersion = -1;
  private readonly listeners = new Set<(e: EngineEvent) => void>();
  private readonly keyCache = new Map<string, { id: string; name: string; provider: string; project: string | null; revoked: boolean; secret: string; fp: string }>();
  private readonly quiet: boolean;
  readonly surface: 'desktop' | 'headless';
  /** The data dir's lock (see lock.ts): held for the engine's life; null for an offline CLI. */
  private lock: DataDirLock | null;
  /** Calls in flight, with what they reserved. */
  private readonly inflight = new Set<Reservation>();
  /** Batches seen at submit and their results' bookings (batches.ts). */
  private readonly batchJobs: BatchJobs;
  /**
   * Alerts fire from a serving engine only: an offline CLI command that sets a cap past a
   * threshold leaves it to the engine, which alerts when it starts (or at once when it runs).
   */
  private alerting = false;

  constructor(opts: EngineOptions = {}) {
    this.dataDir = opts.dataDir ?? defaultDataDir();
    this.now = opts.now ?? Date.now;
    this.quiet = opts.quiet ?? false;
    this.surface = opts.surface ?? (process.versions.electron ? 'desktop' : 'headless');
    ensurePrivateDir(this.dataDir);
    // One engine per data dir: taken before the ledger is even opened, so a second engine touches nothing.
    this.lock = DataDirLock.tryAcquire(this.dataDir) ?? (opts.offline ? null : waitForLock(this.dataDir, 2000));
    if (!this.lock && !opts.offline) throw alreadyRunning(this.dataDir);
    try {
      this.ledger = new Ledger(this.dataDir);
    } catch (e) {
      this.releaseLock();
      throw e;
    }
    this.batchJobs = new BatchJobs(this.ledger.db);
    this.secrets = opts.secretStore ?? createFileSecretStore(this.dataDir);
    this.token = ensureToken(this.dataDir);
    this.upstreams = new Map(Object.entries({ ...DEFAULT_UPSTREAMS, ...this.storedHosts(), ...fromEnv(), ...(opts.upstreams ?? {}) }));
    this.maxBodyBytes = opts.maxBodyBytes ?? 32 * 1024 * 1024;
    // generous: reasoning models can think for minutes before the first byte
    this.upstreamIdleMs = opts.upstreamIdleMs ?? 15 * 60_000;
    // undici: keep-alive pools per upstream origin, no limit on connections (long streams must not
    // queue behind each other); an upstream silent for upstreamIdleMs before or between bytes is cut.
    this.upstreamClient = new Agent({ headersTimeout: this.upstreamIdleMs, bodyTimeout: this.upstreamIdleMs, keepAliveTimeout: 30_000 });
    this._port = opts.port ?? defaultPort();
    this.uiDir = opts.uiDir === undefined ? null : opts.uiDir;
    this.timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    this.catalog = bundledCatalog();
    // Pending calls are recovered only by whoever holds the lock: nobody else can own them.
    if (this.lock) {
      const recovered = this.ledger.recoverInterrupted();
      if (recovered) this.log(`${recovered} call(s) were in flight when Tollgate last stopped; recorded as interrupted.`);
    }
    if (opts.offline) this.releaseLock();
    this.reload(true);
    this.billing = new Billing(this);
    this.sync = new SyncClient({
      ledger: this.ledger, secrets: this.secrets, now: () => this.now(), log: (m) => this.log(m),
      // other devices' calls are in the rollups now: caps and the UI see them
      pulled: () => { this.settleBatchDuplicates(); if (this.server) this.changed(); },
      grantsChanged: () => { this.billing.checkSoon(); if (this.server) this.changed(); },
      capsChanged: () => this.changed(),
      timeZone: () => this.timeZone,
      alert: (a) => {
        this.log(`alert: cap "${a.capLabel}" (${a.capId}) reached ${a.threshold} % of its limit across all devices: spent ${formatUsd(a.spent)} of ${formatUsd(a.limit)}.`);
        this.emit({ type: 'alert', alert: a });
      },
    }, { intervalMs: opts.syncIntervalMs, maxDeferMs: opts.syncMaxDeferMs });
    this.loadCaps(); // again, now that the lease book exists
    this.api = new EngineApi(this);
  }

  private releaseLock(): void {
    this.lock?.release();
    this.lock = null;
  }

  /** A human-readable line on stderr (headless: the terminal running `tollgate serve`; desktop: its log). */
  log(message: string): void {
    if (!this.quiet) console.error(`tollgate: ${message}`);
  }

  get port(): number {
    return this._port;
  }
  get url(): string {
    return `http://127.0.0.1:${this._port}`;
  }

  private storedHosts(): Record<string, string> {
    const raw = this.ledger.setting('hosts');
    return raw ? (JSON.parse(raw) as Record<string, string>) : {};
  }

  private lastVersionCheck = 0;

  /**
   * Re-read what another process may have changed: caps, keys, prices, settings. Changes made
   * through this engine's API (which the CLI uses whenever the engine runs) refresh at once via
   * `changed()`; other writers to the ledger file are noticed within VERSION_POLL_MS.
   */
  reload(force = false): void {
    if (!force) {
      const t = performance.now();
      if (t - this.lastVersionCheck < VERSION_POLL_MS) return;
      this.lastVersionCheck = t;
    }
    const v = this.ledger.configVersion();
    if (!force && v === this.configVersion) return;
    this.configVersion = v;
    this.paused = this.ledger.setting('paused') === '1';
    this.timeZone = this.ledger.setting('timeZone') ?? this.timeZone;
    this.weekStart = this.ledger.setting('weekStart') === '7' ? 7 : 1;
    this.storePrompts = this.ledger.setting('storePrompts') === '1';
    this.failOpen = this.ledger.setting('failOpen') === '1';
    for (const [k, v2] of Object.entries(this.storedHosts())) this.upstreams.set(k, v2);
    this.catalog = this.baseCatalog().withUserData(this.ledger.overrides(), this.ledger.locks());
    this.tierPlans = this.ledger.tierPlans();
    // Keys keep their decrypted secret in memory; a revocation from anywhere applies on the next call.
    const revoked = new Map(this.ledger.keys().map((k) => [k.id, k.revokedAt !== null]));
    for (const [h, k] of this.keyCache) {
      const r = revoked.get(k.id);
      if (r === undefined) this.keyCache.delete(h);
      else k.revoked = r;
    }
    this.loadCaps();
    // A cap created, lowered or re-armed past a threshold alerts now, not at the next call.
    if (this.alerting) this.checkThresholdsQuietly();
  }

  /** The catalog without user data, over the price data in use (re-read only when its record changes). */
  private baseCatalog(): Catalog {
    const prev = this.loadedPriceData;
    const next = loadPriceData(this.dataDir, this.ledger, prev);
    if (prev && next.data === prev.data && next.info === prev.info) return prev.base;
    if (next.info.problem && next.info.problem !== prev?.info.problem) this.log(next.info.problem);
    const base = next.data.providers ? new Catalog({ genai: next.data }) : bundledCatalog();
    this.loadedPriceData = { ...next, base };
    this.priceData = next.info;
    return base;
  }

  /** Settings or data changed from inside this process (API calls): refresh at once. */
  changed(): void {
    this.reload(true);
    this.emit({ type: 'caps', caps: this.capStatuses() });
  }

  private loadCaps(): void {
    this.flushQuietly();
    const now = this.now();
    const keys = this.ledger.keys();
    this.caps = this.ledger.caps().map((cap) => {
      const bounds = periodBounds(cap.period, now, this.timeZone, this.weekStart);
      const matcher = cap.scope === 'key' ? keyCapMatcher(cap.scopeValue ?? '', keys) : null;
      return { cap, limitNano: usdToNanoExact(cap.limit), bounds, spent: this.spendFor(cap, bounds, matcher), reserved: 0n, keys: matcher };
    });
    this.sync?.leases.setCaps(this.caps.filter((c) => c.cap.allDevices && c.cap.hard).map((c) => ({ id: c.cap.id, limitNano: c.limitNano })));
    // Count every open reservation on the new cap states (and only there).
    for (const r of this.inflight) {
      r.on = this.caps.length ? this.caps.filter((c) => this.applies(c, r.scope)) : NO_CAPS;
      for (const c of r.on) c.reserved += r.amount;
    }
  }

  private applies(c: CapState, scope: CallScope): boolean {
    if (c.keys) return (scope.keyId !== null && c.keys.has(scope.keyId)) || (scope.keyFingerprint !== null && c.keys.has(scope.keyFingerprint));
    return capApplies(c.cap, scope);
  }

  private spendFor(cap: Cap, b: PeriodBounds, keys: ReadonlySet<string> | null = null): bigint {
    const f: Parameters<Ledger['spend']>[0] = { from: b.start, to: b.end ?? Number.MAX_SAFE_INTEGER };
    const v = cap.scopeValue ?? '';
    switch (cap.scope) {
      case 'provider': f.provider = v; break;
      case 'project': f.project = v; break;
      case 'workflow': f.workflow = v; break;
      case 'model': {
        const i = v.indexOf(':');
        if (i > 0) { f.provider = v.slice(0, i); f.model = v.slice(i + 1); } else f.model = v;
        break;
      }
      case 'key': {
        // rollups are kept per key fingerprint: sum over the fingerprints the cap names
        let sum = 0n;
        for (const fp of keys ?? [v]) if (fp.startsWith('fp_')) sum += this.ledger.spend({ ...f, keyFp: fp }).cost;
        return sum;
      }
      default: break;
    }
    return this.ledger.spend(f).cost;
  }

  private rollCaps(now: number): void {
    for (const c of this.caps) {
      if (c.bounds.end !== null && now >= c.bounds.end) {
        this.flushQuietly();
        c.bounds = periodBounds(c.cap.period, now, this.timeZone, this.weekStart);
        c.spent = this.spendFor(c.cap, c.bounds, c.keys);
        if (c.cap.allDevices) this.sync.leases.retire(c.cap.id); // leases are granted per period
      }
    }
  }

  capStatuses(): CapStatus[] {
    this.rollCaps(this.now());
    return this.caps.map((c) => ({
      cap: c.cap, spent: nanoToUsd(c.spent), reserved: nanoToUsd(c.reserved), percent: percentOf(c.spent, c.limitNano),
      periodStart: c.bounds.start, resetsAt: c.bounds.end, blocked: c.cap.hard && c.spent >= c.limitNano,
    }));
  }

  flushQuietly(): void {
    try {
      this.ledger.flush();
    } catch (e) {
      if (!this.quiet) console.error(`tollgate: ${(e as Error).message}`);
    }
  }

  // ---- events ----

  subscribe(listener: (e: EngineEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get hasListeners(): boolean {
    return this.listeners.size > 0;
  }

  emit(e: EngineEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch { /* a listener's failure is its own */ }
    }
  }

  // ---- keys ----

  private findClientKey(input: BeginInput): { header: string; value: string; token: string | null; scheme: string } | null {
    for (const h of KEY_HEADERS) {
      const v = input.headers[h];
      if (typeof v !== 'string' || !v) continue;
      const m = /^(Bearer|Key|Token)\s+(.+)$/i.exec(v);
      const token = m ? m[2]! : v;
      return { header: h, value: token, token: token.startsWith('tgk_') ? token : null, scheme: m ? m[1]! + ' ' : '' };
    }
    const q = input.route.path.split('?')[1];
    if (q) {
      const key = new URLSearchParams(q).get('key');
      if (key) return { header: '?key', value: key, token: key.startsWith('tgk_') ? key : null, scheme: '' };
    }
    return null;
  }

  /** Decrypt a local key's real secret before `begin` (the secret store is async); null when there is nothing to do. */
  warm(input: BeginInput): Promise<void> | null {
    const key = this.warmKey(input);
    // an all-devices cap running low on leased allowance: ask the service before admission (bounded wait)
    const lease = this.sync.leases.hasCaps && this.sync.leases.needsTopUp()
      ? Promise.race([this.sync.leases.topUpAll(), new Promise<void>((r) => setTimeout(r, 3000).unref())]).then(() => {})
      : null;
    if (!key) return lease;
    if (!lease) return key;
    return Promise.all([key, lease]).then(() => {});
  }

  private warmKey(input: BeginInput): Promise<void> | null {
    const ck = this.findClientKey(input);
    if (!ck?.token) return null;
    const h = tokenHash(ck.token);
    if (this.keyCache.has(h)) return null;
    const row = this.ledger.keyByTokenHash(h);
    if (!row) return null;
    return this.decryptKey(h, row);
  }

  private async decryptKey(h: string, row: NonNullable<ReturnType<Ledger['keyByTokenHash']>>): Promise<void> {
    let secret: string;
    try {
      secret = await this.secrets.decrypt(row.secret);
    } catch (e) {
      // e.g. a key the desktop app stored in the OS keychain, seen by a headless `tollgate serve`
      throw new ProxyError('E_KEY_UNREADABLE', `Tollgate cannot decrypt the real key behind "${row.name}" here (${(e as Error).message}). Use it through the desktop app that stored it, or add it again with \`npx tollgate key add\`.`);
    }
    this.keyCache.set(h, { id: row.id, name: row.name, provider: row.provider, project: row.project, revoked: row.revokedAt !== null, secret, fp: row.fingerprint });
  }

  private localKey(token: string) {
    return this.keyCache.get(tokenHash(token)) ?? null;
  }

  // ---- ProxyHost ----

  begin(input: BeginInput): Begun {
    this.reload();
    const now = this.now();
    this.rollCaps(now);
    const provider = input.route.provider;
    const cp = canonicalProvider(provider);
    const failure = this.ledger.failure;
    if (failure && !this.failOpen) {
      throw new ProxyError('E_LEDGER_WRITE', failure === this.ledger.lostFile
        ? `Tollgate's ledger is unavailable: ${failure.message}. Calls are refused so that nothing runs unrecorded; restart Tollgate (or restore ${this.ledger.file}).`
        : `Tollgate cannot write its ledger (${failure.message}); calls are refused so that nothing runs unrecorded. Free disk space or fix ${this.ledger.file}, or enable fail-open in Settings.`);
    }

    // Key: a local tgk_ key is swapped for the real one; a real key is only fingerprinted.
    const ck = this.findClientKey(input);
    let authHeaders: Record<string, string> = {};
    let query: string | null = null;
    let keyId: string | null = null, keyName: string | null = null, fp: string | null = null, keyProject: string | null = null;
    if (ck?.token) {
      const k = this.localKey(ck.token);
      if (!k) throw new ProxyError('E_KEY_UNKNOWN', 'This Tollgate key (tgk_…) is not known to this install. Create one with `npx tollgate key add`.');
      if (k.revoked) throw new ProxyError('E_KEY_REVOKED', `The Tollgate key "${k.name}" was revoked. Create a new one with \`npx tollgate key add\`.`);
      if (canonicalProvider(k.provider) !== cp && !(k.provider === 'fal' && provider === 'fal-queue')) throw new ProxyError('E_KEY_PROVIDER', `The Tollgate key "${k.name}" is for ${k.provider}, not ${provider}.`);
      keyId = k.id; keyName = k.name; fp = k.fp; keyProject = k.project;
      if (ck.header === '?key') {
        const params = new URLSearchParams(input.route.path.split('?')[1]);
        params.set('key', k.secret);
        query = '?' + params.toString();
      } else authHeaders = { [ck.header]: ck.scheme + k.secret };
    } else if (ck) fp = fingerprint(ck.value);
    // A key bound to a project spends for that project only: a header or /p/ naming another
    // project is refused (never silently moved out of the project's caps).
    const asked = input.attribution.project;
    if (keyProject !== null && asked !== null && asked !== keyProject) {
      throw new ProxyError('E_KEY_PROJECT', `The Tollgate key "${keyName}" is bound to project "${keyProject}", so its calls count for "${keyProject}"; this call asked for project "${asked}" (x-tollgate-project header or /p/ path). Drop the project from the call, or use a key for "${asked}".`);
    }

    const scope: CallScope = {
      provider: cp, model: null, project: keyProject ?? asked, keyFingerprint: fp, keyId, keyName, workflow: input.attribution.workflow,
    };
    // Quote before forwarding: the worst case is what a hard cap reserves.
    let model: string | null = null;
    let quoteMax: bigint | null = null, quoteExpected: bigint | null = null, inputTokens = 0;
    let unreadable: string | null = null;
    const billable = isBillable(input.endpoint);
    if (billable) {
      try {
        const a = analyzeRequest(cp, input.json ?? {}, input.route.path);
        model = a.model;
        inputTokens = a.inputTokens;
        const q = quoteNano(this.catalog, a, { at: new Date(now), observedOutput: this.observedOutputFn });
        if (q) {
          quoteMax = q.max;
          quoteExpected = q.expected;
        }
      } catch (e) {
        model = typeof input.json?.model === 'string' ? input.json.model : null;
        unreadable = (e as Error).message;
      }
    }
    scope.model = model;
    const row: CallRow = {
      id: newCallId(), ts: input.started, provider: cp === 'fal' ? 'fal' : cp, model, endpoint: input.endpoint, project: scope.project, workflow: scope.workflow,
      run: input.attribution.run, node: input.attribution.node, keyId, keyFingerprint: fp, keyName, status: 'pending', httpStatus: null,
      stream: input.json?.stream === true || input.endpoint === 'streamGenerateContent', durationMs: null, ttfbMs: null, usage: {}, items: [],
      costNano: 0n, reservedNano: quoteMax ?? 0n, quoteMaxNano: quoteMax, quoteExpectedNano: quoteExpected, estimated: false, unpriced: false,
      unpricedReason: null, priceSource: null, error: null, blockedBy: null, prompt: this.storePrompts && input.body.length < 1_000_000 ? input.body.toString('utf8') : null,
      // set later on some calls: present from the start, so every row keeps one shape
      leases: null, corrects: null, upstreamId: null,
    };

    if (this.paused) throw new ProxyError('E_PAUSED', `Tollgate is paused: every call is blocked until you resume (\`npx tollgate resume\`${this.surface === 'desktop' ? ', or Resume in the tray' : ', or Resume in the UI'}).`, { 'x-tollgate-blocked-by': 'pause' });
    // Admission: check every hard cap first, then reserve on all matching caps. This runs
    // synchronously on the event loop, so no other call can interleave between check and reserve.
    // 10 % headroom over the quote's max: input counts for non-OpenAI models are approximations.
    const reservation = quoteMax === null ? 0n : quoteMax + quoteMax / 10n;
    const matching = this.caps.length ? this.caps.filter((c) => this.applies(c, scope)) : NO_CAPS;
    // a batch's results are never refused by a cap: the batch has run and is billed; refusing its
    // results would save nothing (their cost is booked when they are read, see batchBooking)
    const results = isBatchResults(input.endpoint);
    for (const c of results ? NO_CAPS : matching) {
      // Fail closed: a call whose cost cannot be bounded (no price, or no model to price) is not
      // let past a hard cap with nothing reserved. Fail-open (Settings) lets it through unmetered.
      if (c.cap.hard && quoteMax === null && billable && !this.failOpen) {
        const name = `${row.provider}:${model ?? '(no model in the request)'}`;
        const example = MEDIA_ENDPOINTS.has(input.endpoint) ? 'image=… (or second=…, megapixel=…, request=…)' : 'input_mtok=… output_mtok=…';
        const priced = model !== null && unreadable === null && (() => { const r = this.catalog.resolve(row.provider, model, new Date(now)); return !!(r.token || r.media); })();
        const message = unreadable !== null || model === null
          ? `Blocked by Tollgate cap "${capLabel(c.cap)}" (${c.cap.id}): Tollgate could not read this request's model and size (${unreadable ?? 'no model in the request'}), so its cost cannot be bounded under a hard cap. Send a JSON body (content-type: application/json) naming the model, or allow such calls with fail-open in Settings.`
          : priced
          ? `Blocked by Tollgate cap "${capLabel(c.cap)}" (${c.cap.id}): ${name} is priced by what the request asks for (e.g. image size, resolution or duration), and this request does not say it, so its cost cannot be bounded under a hard cap. Add it to the request (e.g. image_size), or allow such calls with fail-open in Settings.`
          : `Blocked by Tollgate cap "${capLabel(c.cap)}" (${c.cap.id}): ${name} has no price, so this call's cost cannot be bounded under a hard cap. Set a price with \`npx tollgate prices set ${name} ${example}\`, or allow unpriced calls with fail-open in Settings.`;
        this.logOnce(`unbounded:${c.cap.id}:${name}`, `blocked: ${message.replace(/^Blocked by Tollgate /, '')}`);
        throw new ProxyError('E_CAP_BLOCKED', message, { 'x-tollgate-blocked-by': c.cap.id });
      }
      if (c.cap.hard && c.cap.allDevices && !this.sync.leases.canReserve(c.cap.id, reservation)) {
        this.blockedAlert(c);
        throw new ProxyError('E_CAP_BLOCKED',
          `Blocked by Tollgate cap "${capLabel(c.cap)}" (${c.cap.id}, across all devices): limit $${c.cap.limit}; this device spends it only from leases the ledger service grants from what remains, and its leases hold $${nanoToUsd(this.sync.leases.remaining(c.cap.id))} now, while this call could cost up to $${nanoToUsd(reservation)}. Either the limit is spent or held by other devices, or the service cannot be reached (\`npx tollgate sync status\`). Raise it with \`npx tollgate cap set\`.`,
          { 'x-tollgate-blocked-by': c.cap.id });
      }
      if (c.cap.hard && !admits(c.limitNano, c.spent, c.reserved, reservation)) {
        this.blockedAlert(c);
        const resets = c.bounds.end ? new Date(c.bounds.end).toISOString() : 'never (a total cap)';
        throw new ProxyError('E_CAP_BLOCKED',
          `Blocked by Tollgate cap "${capLabel(c.cap)}" (${c.cap.id}): limit $${c.cap.limit}, spent $${nanoToUsd(c.spent)}, reserved by calls in flight $${nanoToUsd(c.reserved)}, this call could cost up to $${nanoToUsd(reservation)}. It resets at ${resets}. Raise it with \`npx tollgate cap set\` or in Budgets.`,
          { 'x-tollgate-blocked-by': c.cap.id });
      }
    }
    row.reservedNano = reservation;
    const leases: string[] = [];
    for (const c of results ? NO_CAPS : matching) {
      if (c.cap.hard && c.cap.allDevices) leases.push(this.sync.leases.reserve(c.cap.id, reservation)!); // checked above, synchronously
    }
    if (leases.length) row.leases = leases;
    this.ledger.recordStart(row);
    // The reservation travels with the call and is released exactly once, in `finish`.
    const r: Reservation = { amount: reservation, scope, on: matching, released: false, leases };
    for (const c of matching) c.reserved += reservation;
    this.inflight.add(r);
    return { row, authHeaders, query, reservation, quoteInputTokens: inputTokens, input, reservedOn: r };
  }

  /**
   * Release a call's reservation (once, whatever happened to its caps since) and book its cost.
   * `reattributed`: the call's cost belongs to another scope than the one it was admitted under (a
   * batch's results booked to the batch's submit call's project, workflow and key): it is spent on
   * the caps of that scope.
   */
  private settle(r: Reservation, row: CallRow, reattributed = false): void {
    if (r.released) return;
    r.released = true;
    this.inflight.delete(r);
    for (const id of r.leases) this.sync.leases.settle(id, r.amount, row.costNano);
    for (const c of r.on) {
      c.reserved -= r.amount;
      if (!reattributed && row.ts >= c.bounds.start && (c.bounds.end === null || row.ts < c.bounds.end)) c.spent += row.costNano;
    }
    if (reattributed) this.spendOnCaps(row);
  }

  /** Count a booked call's cost (signed: a correction's is negative) on the caps of its own scope. */
  private spendOnCaps(row: CallRow): CapState[] {
    const scope: CallScope = { provider: row.provider, model: row.model, project: row.project, keyFingerprint: row.keyFingerprint, keyId: row.keyId, keyName: row.keyName, workflow: row.workflow };
    const on = this.caps.filter((c) => this.applies(c, scope));
    for (const c of on) if (row.ts >= c.bounds.start && (c.bounds.end === null || row.ts < c.bounds.end)) c.spent += row.costNano;
    return on;
  }

  private readonly observed = new Map<string, { at: number; value: number | null }>();
  private readonly observedOutputFn = (provider: string, model: string): number | null => this.observedOutput(provider, model, this.now());
  /** Median output of recent calls, cached for a minute: a ledger query must not sit on the request path. */
  private observedOutput(provider: string, model: string, now: number): number | null {
    const key = `${provider}:${model}`;
    const hit = this.observed.get(key);
    if (hit && now - hit.at < 60_000) return hit.value;
    const value = this.ledger.observedOutputMedian(provider, model, now - 30 * 86_400_000);
    this.observed.set(key, { at: now, value });
    return value;
  }

  refuse(input: BeginInput, err: ProxyError): CallRow {
    const model = typeof input.json?.model === 'string' ? input.json.model : null;
    const row: CallRow = {
      id: newCallId(), ts: input.started, provider: canonicalProvider(input.route.provider), model, endpoint: input.endpoint,
      project: input.attribution.project, workflow: input.attribution.workflow, run: input.attribution.run, node: input.attribution.node,
      keyId: null, keyFingerprint: null, keyName: null, status: 'blocked', httpStatus: err.status, stream: false, durationMs: 0, ttfbMs: null,
      usage: {}, items: [], costNano: 0n, reservedNano: 0n, quoteMaxNano: null, quoteExpectedNano: null, estimated: false, unpriced: false,
      unpricedReason: null, priceSource: null, error: err.message, blockedBy: err.extraHeaders['x-tollgate-blocked-by'] ?? err.code, prompt: null,
    };
    try {
      this.ledger.recordEnd(row);
    } catch { /* the ledger is failing: the refusal is still answered */ }
    this.emit({ type: 'call', call: toCallRecord(row) });
    return row;
  }

  finish(b: Begun, o: Outcome): void {
    const r = b.reservedOn as Reservation;
    const row = b.row;
    this.ledger.ending(row);
    row.status = o.status;
    row.httpStatus = o.httpStatus;
    row.ttfbMs = o.ttfbMs;
    row.durationMs = o.durationMs;
    row.error = o.error;
    row.upstreamId = o.extracted?.upstreamId ?? null;
    try {
      this.price(b, o);
    } catch (e) {
      row.unpriced = true;
      row.unpricedReason = `could not price this call: ${(e as Error).message}`;
    }
    let batch: { reattributed: boolean; correction: CallRow | null } = NOT_A_BATCH;
    try {
      batch = this.batchBooking(b, o);
    } catch (e) {
      this.log(`could not book the batch results of call ${row.id}: ${(e as Error).message}`);
    }
    // settle: release the reservation, book the actual cost
    let caps = r.on;
    this.settle(r, row, batch.reattributed);
    if (batch.reattributed) caps = this.caps.filter((c) => this.applies(c, { provider: row.provider, model: row.model, project: row.project, keyFingerprint: row.keyFingerprint, keyId: row.keyId, keyName: row.keyName, workflow: row.workflow }));
    try {
      this.ledger.recordEnd(row);
    } catch (e) {
      if (!this.quiet) console.error(`tollgate: ${(e as Error).message}`);
    }
    if (this.hasListeners) this.emit({ type: 'call', call: toCallRecord(row) });
    if (batch.correction) {
      // the estimate booked at submit, taken back by a new record that names it (calls are immutable once final)
      const corr = batch.correction;
      try {
        this.ledger.recordEnd(corr);
        this.spendOnCaps(corr);
      } catch (e) {
        if (!this.quiet) console.error(`tollgate: ${(e as Error).message}`);
      }
      if (this.hasListeners) this.emit({ type: 'call', call: toCallRecord(corr) });
    }
    if (row.costNano > 0n) this.billing.checkSoon();
    if (caps.length) {
      this.checkThresholds(caps);
      if (this.hasListeners) this.emit({ type: 'caps', caps: this.capStatuses() });
    }
  }

  /**
   * Batch jobs (issue 11): a submit remembers the batch's id with its call; an OpenAI batch poll its
   * output file; and the first retrieval of a batch's results (Anthropic results, an OpenAI output
   * file, a finished Gemini job) books the batch's actual cost at the batch rate on the retrieving
   * call, once per batch. That call takes the submit call's project, workflow and key when Tollgate
   * saw the submit (`reattributed`), and an estimate booked at submit is taken back by a correction:
   * a new record naming the submit call, with the estimate's cost negated, so the total is the actual.
   */
  private batchBooking(b: Begun, o: Outcome): { reattributed: boolean; correction: CallRow | null } {
    const none = NOT_A_BATCH;
    const endpoint = b.input.endpoint;
    const facts = o.extracted?.batch;
    if (!facts || o.status !== 'ok' || o.httpStatus === null || o.httpStatus >= 300) return none;
    const row = b.row;
    const now = this.now();
    if (BATCH_SUBMIT.has(endpoint)) {
      if (facts.id) {
        this.batchJobs.remember(row.provider, facts.id, row.id, facts.outputFileId, now);
        // the submit call names its batch (and syncs with it): a device reading the results finds the estimate by it
        if (facts.id.length <= MAX_UPSTREAM_ID) row.upstreamId = facts.id;
      }
      return none;
    }
    if (endpoint === 'batches.retrieve' || (endpoint === 'gemini.batch' && facts.results === null)) {
      // an OpenAI batch's output file, a finished Gemini file batch's responses file: priced when downloaded
      if (facts.id && facts.outputFileId) this.batchJobs.remember(row.provider, facts.id, null, facts.outputFileId, now);
      return none;
    }
    if (!isBatchResults(endpoint) || facts.results === null) return none;
    // which batch these results are
    const path = b.input.route.path.split('?')[0]!;
    let batchId: string | null = null, fileId: string | null = null;
    if (endpoint === 'messages.batches.results') batchId = /\/messages\/batches\/([^/]+)\/results\/?$/.exec(path)?.[1] ?? null;
    else if (endpoint === 'gemini.batch') batchId = facts.id ?? (/\/(batches\/[^/:]+)\/?$/.exec(path)?.[1] ?? null);
    else if (endpoint === 'batches.output' || endpoint === 'gemini.batch.output') {
      if (endpoint === 'batches.output') fileId = /\/files\/([^/]+)\/content\/?$/.exec(path)?.[1] ?? null;
      else {
        const name = /\/files\/([^/:]+):download$/.exec(path)?.[1];
        fileId = name ? `files/${name}` : null; // as the batch names its responses file
      }
      if (fileId) batchId = this.batchJobs.byOutputFile(row.provider, fileId)?.batchId ?? `file:${fileId}`;
    }
    if (!batchId) return none;
    // results booked already by a call pulled from another device (it names the batch): not booked again here;
    // remembered, so that later reads here name that call too
    this.flushQuietly();
    const elsewhere = this.batchJobs.get(row.provider, batchId)?.bookedCallId ? null : this.batchJobs.bookingsOf(row.provider, batchId, fileId).find((c) => c.id !== row.id)?.id ?? null;
    if (elsewhere) this.batchJobs.claim(row.provider, batchId, elsewhere, now, fileId);
    if (elsewhere || !this.batchJobs.claim(row.provider, batchId, row.id, now, fileId)) {
      const job = this.batchJobs.get(row.provider, batchId);
      row.priceSource = `not booked again: the results of batch ${batchId} were booked on call ${job?.bookedCallId ?? '(unknown)'}${elsewhere ? ' (on another device)' : ''}`;
      return none;
    }
    const job = this.batchJobs.get(row.provider, batchId);
    // the booking call names its batch (and syncs with it): another device reading the results does not book them again
    if (batchId.length <= MAX_UPSTREAM_ID) row.upstreamId = batchId;
    // price the results at the batch rate
    const a = priceBatchResults(this.catalog, row.provider, facts.results, new Date(row.ts), facts.model);
    const billed = facts.results.length;
    const said = `batch ${batchId}: ${billed} billed request${billed === 1 ? '' : 's'}${facts.notBilled ? `, ${facts.notBilled} not billed (errored, canceled or expired)` : ''}${facts.unread ? `, ${facts.unread} result line${facts.unread === 1 ? '' : 's'} Tollgate could not read (not counted)` : ''}`;
    row.usage = a.usage as Record<string, number | string>;
    const named = new Set(facts.results.map((l) => l.model ?? facts.model));
    row.model = a.model ?? (named.size === 1 ? [...named][0] ?? row.model : named.size > 1 ? 'several models' : row.model);
    if (a.cost === null) {
      row.unpriced = true;
      row.unpricedReason = `${a.reason} (${said})`;
    } else {
      row.costNano = a.cost;
      row.items = toLineItems(a.items);
      row.priceSource = `actual cost of ${said}, at the batch rate; ${a.source}`;
      row.estimated = facts.unread > 0;
    }
    // attribution: the submit call's, when Tollgate saw the submit (on this device, or on another one: a pulled call naming the batch)
    const submitId = job?.submitCallId ?? this.batchJobs.submitCallOf(row.provider, batchId);
    const submit = submitId ? this.ledger.call(submitId) : null;
    if (!submit) return none;
    let reattributed = false;
    if (submit.project !== row.project || submit.workflow !== row.workflow || submit.keyFingerprint !== row.keyFingerprint || submit.keyId !== row.keyId) {
      row.project = submit.project;
      row.workflow = submit.workflow;
      row.keyId = submit.keyId;
      row.keyFingerprint = submit.keyFingerprint;
      row.keyName = submit.keyName;
      reattributed = true;
    }
    // unpriced results: the estimate stays, the results say why (re-priced later, the correction is made then)
    if (a.cost === null) return { reattributed, correction: null };
    return { reattributed, correction: this.batchCorrection(submit, row, batchId, now) };
  }

  /**
   * The correction taking back the estimate booked at a batch's submit, now that `row` booked its
   * actual cost; null when there is nothing to take back, or it was taken back already (on this
   * device or on another one whose correction was pulled).
   */
  private batchCorrection(submit: CallRow, row: CallRow, batchId: string, now: number): CallRow | null {
    if (submit.costNano === 0n) return null;
    if (this.batchJobs.correctionOf(submit.id)) return null;
    return correctionRow(submit, now, `Estimate booked at submit (call ${submit.id}), replaced by the actual cost of the batch's results (call ${row.id})`,
      `correction: the estimate of batch ${batchId} booked at submit (call ${submit.id}) is replaced by the actual cost booked on call ${row.id}`);
  }

  /**
   * The results of one batch read on two devices before either had pulled the other's booking: each
   * booked the actual, and each took the estimate back. Once pulled, the earliest booking (by ts,
   * then id) stands, and so does the earliest correction of the estimate; each device takes back
   * its own later ones, by new correction records (calls are immutable). Every device decides alike
   * and writes for its own records only, so the synced picture converges on the actual cost, once.
   * Run after each pull that added calls; looks at batches of the last 35 days booked here.
   */
  private settleBatchDuplicates(): void {
    try {
      const now = this.now();
      this.flushQuietly();
      const fixes: CallRow[] = [];
      for (const job of this.batchJobs.booked(now - 35 * 86_400_000)) {
        const bookings = this.batchJobs.bookingsOf(job.provider, job.batchId, job.outputFileId);
        if (bookings.length === 0) continue;
        const first = bookings[0]!.id;
        if (job.bookedCallId !== first) this.batchJobs.rebook(job.provider, job.batchId, first);
        for (const b of bookings.slice(1)) {
          // another device booked these results first: this device's booking is taken back
          if (!b.own || b.costNano === 0n || this.batchJobs.correctionOf(b.id)) continue;
          const mine = this.ledger.call(b.id);
          if (!mine) continue;
          fixes.push(correctionRow(mine, now, `Results of batch ${job.batchId} booked twice (here on call ${mine.id}, first on call ${first} on another device): this booking is taken back`,
            `correction: the results of batch ${job.batchId} were booked first on call ${first} (another device); this device's booking (call ${mine.id}) is taken back`));
        }
        // the estimate taken back twice (once per device): this device's later corrections are undone
        const submitId = job.submitCallId ?? this.batchJobs.submitCallOf(job.provider, job.batchId);
        const corrections = submitId ? this.batchJobs.correctionsOf(submitId) : [];
        for (const c of corrections.slice(1)) {
          if (!c.own || this.batchJobs.correctionOf(c.id)) continue;
          const row = this.ledger.call(c.id);
          if (row && row.costNano !== 0n) {
            fixes.push(correctionRow(row, now, `Estimate of batch ${job.batchId} taken back twice (first on call ${corrections[0]!.id}): this second correction (call ${c.id}) is undone`,
              `correction: the estimate of batch ${job.batchId} (call ${submitId}) was already taken back on call ${corrections[0]!.id}; this device's correction (call ${c.id}) is undone`));
          }
        }
      }
      for (const f of fixes) {
        this.ledger.recordEnd(f);
        this.spendOnCaps(f);
        if (this.hasListeners) this.emit({ type: 'call', call: toCallRecord(f) });
      }
      if (fixes.length) this.log(`batches: ${fixes.length} correction(s) of results booked on two devices`);
    } catch (e) {
      this.log(`could not settle batches booked on two devices: ${(e as Error).message}`);
    }
  }

  private price(b: Begun, o: Outcome): void {
    const row = b.row;
    const input = b.input;
    if (!isBillable(input.endpoint)) return; // polls, listings: free (the explicit allow-list in extract.ts)
    const ex = o.extracted;
    if (o.httpStatus !== null && o.httpStatus >= 400) {
      // providers do not bill a failed call, whatever usage its error body reports: $0, said so
      row.priceSource = `not billed: the provider answered HTTP ${o.httpStatus}`;
      return;
    }
    if ((input.endpoint === 'messages.batches' || input.endpoint === 'batchGenerateContent') && o.status === 'ok') {
      // a batch with its requests inline: booked as an estimate at the batch rate, never $0
      const est = estimateBatch(this.catalog, row.provider, input.json, input.route.path, new Date(row.ts));
      if (est.cost === null) {
        row.unpriced = true;
        row.unpricedReason = est.reason;
        return;
      }
      row.estimated = true;
      row.items = toLineItems(est.items);
      row.costNano = est.cost;
      row.priceSource = est.source;
      row.model ??= est.model;
      return;
    }
    const endpointWhy = unpricedEndpoint(input.endpoint);
    if (endpointWhy && !ex?.usage && !(o.status === 'error' && o.httpStatus === null)) {
      row.unpriced = true;
      row.unpricedReason = endpointWhy;
      return;
    }
    const name = `${row.provider}:${row.model ?? '(unknown model)'}`;
    let usage: Usage | null = ex?.usage ?? null;
    let params: MediaParams = {};
    let estimated = false;
    const media = MEDIA_ENDPOINTS.has(input.endpoint);
    if (media && !(usage && input.endpoint === 'images')) {
      if (o.httpStatus !== null && o.httpStatus >= 400) return;
      try {
        const a = analyzeRequest(row.provider, input.json ?? {}, input.route.path);
        if (a.media) {
          usage = { ...a.media.usage };
          params = a.media.params;
          if (ex?.media?.images) usage.images = ex.media.images;
          if (ex?.media?.runSeconds !== undefined) usage.runSeconds = ex.media.runSeconds;
          if (ex?.media?.width && ex.media.height) params = { ...params, size: `${ex.media.width}x${ex.media.height}` };
          row.model ??= a.model;
        }
      } catch (e) {
        row.unpriced = true;
        row.unpricedReason = (e as Error).message;
        return;
      }
    }
    if (input.endpoint === 'audio.transcriptions' || input.endpoint === 'audio.translations' || input.endpoint === 'audio.speech') {
      // the model is in a multipart form, and the response may carry no usage: the request says it
      const a = audioFacts(input.endpoint, input.headers['content-type'], input.body, input.json);
      row.model ??= a.model;
      if (!usage && a.usage) usage = a.usage;
      else if (!usage && o.status === 'ok') {
        row.unpriced = true;
        row.unpricedReason = a.reason;
        return;
      }
    }
    if (input.endpoint === 'images' && !row.model) row.model = multipartModel(input.headers['content-type'], input.body); // image edits are multipart
    if (usage && o.status !== 'ok' && ex) {
      // Cut or aborted: the provider's usage is partial (Anthropic's message_start says 1 output
      // token); count what was actually streamed and mark the cost estimated.
      usage = { ...usage, outputTokens: Math.max(usage.outputTokens ?? 0, ex.streamedOutputTokens) };
      estimated = true;
    }
    if (!usage && ex && ex.streamedOutputTokens > 0) {
      // The stream was cut before the provider reported usage: count what was streamed.
      usage = { inputTokens: b.quoteInputTokens, outputTokens: ex.streamedOutputTokens };
      estimated = true;
    }
    if (!usage && o.status === 'aborted') {
      usage = { inputTokens: b.quoteInputTokens };
      estimated = true;
    }
    if (!usage) {
      if (o.httpStatus !== null && o.httpStatus >= 400) return; // providers do not bill failed calls
      if (o.status === 'error' && o.httpStatus === null) return; // never reached the provider
      row.unpriced = true;
      row.unpricedReason = ex?.parseError ?? `the response carried no usage for ${name}`;
      return;
    }
    if (usage.cacheWriteTokens && input.endpoint === 'messages') {
      // writes without the 5m/1h split: the request's cache_control ttl says which
      const r = resolveCacheLifetime(usage, input.json);
      usage = r.usage;
      estimated ||= r.estimated;
    }
    row.usage = usage as Record<string, number | string>;
    const model = row.model ?? ex?.model ?? null;
    const at = new Date(row.ts);
    let resolved = this.catalog.resolve(row.provider, model ?? '', at);
    if (!resolved.token && !resolved.media && ex?.model && ex.model !== model) resolved = this.catalog.resolve(row.provider, ex.model, at);
    const plan = model ? this.tierPlanFor(row.provider, model) : null;
    let tier: { plan: VolumeTierPlan; before: number } | undefined;
    if (plan) {
      this.flushQuietly();
      tier = { plan, before: this.ledger.tierUnits(row.provider, plan.model, plan.unit, periodBounds(plan.period, row.ts, this.timeZone, this.weekStart).start) };
    }
    usage = groundingBilledBy(usage, resolved.token);
    row.usage = usage as Record<string, number | string>;
    const free = this.toolFeeAllowances(row, usage, resolved.token);
    const implausible = implausibleUsage(usage, resolved.token);
    if (implausible) {
      // an upstream's absurd numbers are flagged, never booked (they would block every cap)
      row.estimated = true;
      row.unpriced = true;
      row.unpricedReason = implausible;
      return;
    }
    const p = priceCall(usage, resolved, { params, tier, free }, name);
    row.estimated = estimated || p.estimated !== undefined;
    if (p.unpriced) {
      row.unpriced = true;
      row.unpricedReason = p.unpriced;
      return;
    }
    row.items = toLineItems(p.items);
    row.costNano = p.cost;
    row.priceSource = p.priceSource;
    if (ex?.codeContainer) {
      // the tokens are exact; the container's run time is billed by Anthropic per container-hour,
      // across calls, and no response says how long it ran: an estimate, said so, never a silent part
      row.estimated = true;
      row.priceSource += `; ${CODE_EXECUTION_NOTE}`;
    }
  }

  /**
   * Price past unpriced calls of `provider:model` with today's catalog (after the user set a price
   * for it), from the usage each call recorded. Calls already sent to a sync service or inside a
   * closed client statement are left as they were (see Ledger.unpricedCalls), and so is any call
   * the catalog still cannot price; the result says how many and why.
   */
  reprice(providerIn: string, model: string): RepriceResult {
    const provider = canonicalProvider(providerIn);
    const { calls, skipped } = this.ledger.unpricedCalls(provider, model);
    const priced: Parameters<Ledger['repriceCalls']>[0] = [];
    const reasons = new Set<string>();
    const name = `${provider}:${model}`;
    const stamp = new Date(this.now()).toISOString();
    for (const row of calls) {
      const usage = row.usage as Usage;
      if (!usage || Object.keys(usage).length === 0) {
        reasons.add('the call recorded no usage to price');
        continue;
      }
      const resolved = this.catalog.resolve(provider, model, new Date(row.ts));
      const implausible = implausibleUsage(usage, resolved.token);
      if (implausible) {
        reasons.add(implausible);
        continue;
      }
      const p = priceCall(usage, resolved, { params: {} }, name);
      if (p.unpriced) {
        reasons.add(p.unpriced);
        continue;
      }
      priced.push({ row, costNano: p.cost, items: toLineItems(p.items), priceSource: `${p.priceSource}; re-priced ${stamp}`, estimated: row.estimated || p.estimated !== undefined });
    }
    const r = this.ledger.repriceCalls(priced);
    // a batch's results, priced now: the estimate booked at its submit is taken back now
    const results = priced.filter((p) => isBatchResults(p.row.endpoint as Endpoint));
    for (const p of results) this.correctRepricedBatch(p.row.id);
    // a booking priced now may stand second to one pulled from another device: taken back then
    if (results.length) this.settleBatchDuplicates();
    if (r.count) {
      this.log(`re-priced ${r.count} earlier call(s) of ${name}: ${formatUsd(r.costNano)} booked.`);
      this.changed();
    }
    return {
      provider, model, repriced: r.count, cost: nanoToUsd(r.costNano), stillUnpriced: calls.length - r.count,
      skippedSynced: skipped.synced, skippedClosed: skipped.closed, reasons: [...reasons],
    };
  }

  /** After re-pricing the call that booked a batch's results: the correction of the batch's estimate, if not made yet. */
  private correctRepricedBatch(id: string): void {
    try {
      const row = this.ledger.call(id);
      if (!row || row.unpriced) return;
      const batchId = this.batchJobs.byBookedCall(id)?.batchId ?? row.upstreamId;
      if (!batchId) return;
      const submitId = this.batchJobs.get(row.provider, batchId)?.submitCallId ?? this.batchJobs.submitCallOf(row.provider, batchId);
      const submit = submitId ? this.ledger.call(submitId) : null;
      const corr = submit ? this.batchCorrection(submit, row, batchId, this.now()) : null;
      if (!corr) return;
      this.ledger.recordEnd(corr);
      this.spendOnCaps(corr);
      if (this.hasListeners) this.emit({ type: 'call', call: toCallRecord(corr) });
    } catch (e) {
      this.log(`could not take back the estimate of the batch booked on call ${id}: ${(e as Error).message}`);
    }
  }

  /**
   * A tool fee's free allowance left for this call (Gemini grounding: 1,500 grounded prompts a day,
   * or 5,000 a month for Gemini 3, Pacific time), counted from the ledger's calls of the period —
   * every device's once synced. The allowance is Google's per project: calls that did not go
   * through Tollgate are not counted, which the line item says.
   */
  private toolFeeAllowances(row: CallRow, usage: Usage, model: TokenModel | null): PriceContext['free'] {
    if (!model?.allowances) return undefined;
    let out: Record<string, { left: number; note: string }> | undefined;
    for (const [key, a] of model.allowances) {
      const field = key === 'grounded_prompts_kcount' ? 'groundedPrompts' : key === 'grounding_queries_kcount' ? 'groundingQueries' : null;
      const qty = field ? usage[field] ?? 0 : 0;
      if (!field || !qty) continue;
      this.flushQuietly();
      const from = periodBounds(a.per, row.ts, a.timeZone).start;
      const used = this.ledger.toolFeeCalls(row.provider, field, from, row.id);
      const within = used < a.units;
      (out ??= {})[key] = {
        left: within ? qty : 0,
        note: `grounded prompt ${(used + 1).toLocaleString('en-US')} of ${a.units.toLocaleString('en-US')} free ${a.per === 'day' ? 'today' : 'this month'}, Pacific time, as counted by Tollgate; ${a.source}`,
      };
      if (!within) delete out[key];
    }
    return out;
  }

  private tierPlanFor(provider: string, model: string): VolumeTierPlan | null {
    if (this.tierPlans.length === 0) return null;
    return this.tierPlans.find((t) => canonicalProvider(t.provider) === provider && (t.model === null || t.model === model)) ?? null;
  }

  private checkThresholds(caps: CapState[]): void {
    for (const c of caps) {
      if (c.cap.allDevices) continue; // the service fires these, once for every device (sync.ts pullAlerts)
      const fired = this.ledger.firedThresholds(c.cap.id, c.bounds.key);
      const t = crossedThreshold(c.limitNano, c.spent, c.cap.alerts, fired);
      if (t === null) continue;
      const alert: Alert = {
        id: newCallId(), capId: c.cap.id, capLabel: capLabel(c.cap), threshold: t, periodKey: c.bounds.key,
        spent: nanoToUsd(c.spent), limit: c.cap.limit, ts: this.now(), kind: 'threshold',
      };
      // Lower thresholds count as fired too: only the highest crossed one notifies.
      for (const lower of c.cap.alerts) if (lower < t && !fired.has(lower)) this.ledger.insertAlert({ ...alert, id: newCallId(), threshold: lower, kind: 'threshold' }, 'skipped');
      if (this.ledger.insertAlert(alert)) {
        this.log(`alert: cap "${capLabel(c.cap)}" (${c.cap.id}) reached ${t} % of its limit: spent ${formatUsd(alert.spent)} of ${formatUsd(c.cap.limit)}${this.resetText(c)}.${c.cap.hard ? ' It is a hard cap: calls that could go over the limit are blocked.' : ''}`);
        this.emit({ type: 'alert', alert });
      }
    }
  }

  private checkThresholdsQuietly(): void {
    try {
      this.checkThresholds(this.caps);
    } catch (e) {
      this.log(`could not check alert thresholds: ${(e as Error).message}`);
    }
  }

  private readonly loggedOnce = new Set<string>();
  /** Log a line once per key (a refusal that repeats on every call must not flood the log). */
  private logOnce(key: string, message: string): void {
    if (this.loggedOnce.has(key)) return;
    if (this.loggedOnce.size > 1000) this.loggedOnce.clear();
    this.loggedOnce.add(key);
    this.log(message);
  }

  private resetText(c: CapState): string {
    return c.bounds.end === null ? ' (a total cap, it never resets)' : ` this ${c.cap.period} (resets ${new Date(c.bounds.end).toISOString().slice(0, 16).replace('T', ' ')} UTC)`;
  }

  private blockedAlert(c: CapState): void {
    const alert: Alert = {
      id: newCallId(), capId: c.cap.id, capLabel: capLabel(c.cap), threshold: 100, periodKey: c.bounds.key,
      spent: nanoToUsd(c.spent), limit: c.cap.limit, ts: this.now(), kind: 'blocked',
    };
    // once per block episode: per cap, period and limit (raising the limit starts a new episode)
    if (this.ledger.insertAlert(alert, `limit:${c.cap.limit}`)) {
      const cmd = `tollgate cap set --id ${c.cap.id} --scope ${c.cap.scope}${c.cap.scopeValue ? ':' + c.cap.scopeValue : ''} --period ${c.cap.period} --limit NEW_LIMIT${c.cap.hard ? ' --hard' : ''}`;
      this.log(`blocked: cap "${capLabel(c.cap)}" (${c.cap.id}) refused a call: limit ${formatUsd(c.cap.limit)}, spent ${formatUsd(alert.spent)}, reserved by calls in flight ${formatUsd(nanoToUsd(c.reserved))}${this.resetText(c)}. Calls it covers are refused until ${c.bounds.end === null ? 'the limit is raised' : 'it resets or the limit is raised'}: \`${cmd}\`${this.surface === 'desktop' ? ', Budgets, or the tray' : ' or Budgets in the UI'}.`);
      this.emit({ type: 'alert', alert });
    }
  }

  // ---- lifecycle ----

  async start(): Promise<this> {
    const server = http.createServer((req, res) => handleRequest(this, this.uiDir, req, res));
    server.keepAliveTimeout = 65_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this._port, '127.0.0.1', () => resolve());
    });
    this._port = (server.address() as { port: number }).port;
    this.server = server;
    // Lets the CLI find the running engine (and use its API instead of opening the ledger itself).
    const running = path.join(this.dataDir, RUNNING_FILE);
    fs.writeFileSync(running, JSON.stringify({ pid: process.pid, port: this._port, url: this.url }) + '\n', { mode: 0o600 });
    fs.chmodSync(running, 0o600);
    // A ledger file deleted or replaced under the running engine: refuse calls (fail closed).
    this.ledger.watchFile((e) => this.log(`${e.message}. Calls are refused until Tollgate is restarted (it then starts a new ledger, or uses the file you restore).`));
    this.alerting = true;
    this.billing.serving = true;
    this.billing.checkSoon(0);
    this.billing.startWarming();
    this.sync.start();
    // caps already past a threshold that never alerted (set while no engine ran): once, after the
    // caller of start() has subscribed to events
    setTimeout(() => {
      if (this.server) this.checkThresholdsQuietly();
    }, 0).unref();
    return this;
  }

  async stop(): Promise<void> {
    this.billing.stop();
    await this.sync.stop();
    if (this.server) {
      const s = this.server;
      this.server = null;
      s.closeIdleConnections?.();
      await new Promise<void>((resolve) => {
        s.close(() => resolve());
        setTimeout(() => { s.closeAllConnections?.(); resolve(); }, 2000).unref();
      });
    }
    await this.upstreamClient.destroy().catch(() => {});
    try {
      // only the lock holder's own file: never another engine's
      const info = JSON.parse(fs.readFileSync(path.join(this.dataDir, RUNNING_FILE), 'utf8')) as { pid: number; port: number };
      if (this.lock && info.pid === process.pid && info.port === this._port) fs.rmSync(path.join(this.dataDir, RUNNING_FILE), { force: true });
    } catch { /* not there */ }
    try {
      this.ledger.close();
    } finally {
      this.releaseLock();
    }
  }

  /** Close without having started (a failed start, or an engine used only for its API). */
  closeQuietly(): void {
    try {
      this.ledger.close();
    } finally {
      this.releaseLock();
    }
  }
}

export const RUNNING_FILE = 'engine.json';

function readRunning(dataDir: string): { pid: number; port: number; url: string } | null {
  try {
    const info = JSON.parse(fs.readFileSync(path.join(dataDir, RUNNING_FILE), 'utf8')) as { pid: number; port: number; url: string };
    process.kill(info.pid, 0);
    return info;
  } catch {
    return null;
  }
}

/** The running engine for a data dir, if any: its engine.json names a live pid and the data dir's lock is held. */
export function runningEngine(dataDir: string): { pid: number; port: number; url: string } | null {
  const info = readRunning(dataDir);
  return info && DataDirLock.isHeld(dataDir) ? info : null;
}

export class EngineRunningError extends Error {
  readonly code = 'E_RUNNING';
  constructor(message: string, readonly running: { pid: number; port: number; url: string } | null) {
    super(message);
  }
}

function alreadyRunning(dataDir: string): EngineRunningError {
  // the holder may still be starting: give it a moment to write engine.json
  let info = readRunning(dataDir);
  for (let i = 0; !info && i < 20; i++) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    info = readRunning(dataDir);
  }
  return new EngineRunningError(info
    ? `Tollgate is already running on this data dir (${dataDir}) at ${info.url} (pid ${info.pid}). Use that one, stop it first, or give this one another --data-dir.`
    : `Tollgate is already running on this data dir (${dataDir}): another process holds its lock (${path.join(dataDir, 'engine.lock')}). Stop it first, or give this one another --data-dir.`, info);
}

/** Wait a little for the data dir's lock (a CLI command may hold it for a moment to recover calls). */
function waitForLock(dataDir: string, ms: number): DataDirLock | null {
  const end = Date.now() + ms;
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  while (Date.now() < end) {
    Atomics.wait(sleeper, 0, 0, 50);
    const l = DataDirLock.tryAcquire(dataDir);
    if (l) return l;
  }
  return null;
}

function fromEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    const m = /^TOLLGATE_UPSTREAM_(.+)$/.exec(k);
    if (m && v) out[m[1]!.toLowerCase().replace(/_/g, '-')] = v;
  }
  return out;
}

/** What a call that ran Anthropic's code execution tool is missing from its cost. */
export const CODE_EXECUTION_NOTE = 'code execution container time not included: Anthropic bills it per container-hour across calls (its free hours first), on its cost report as Code Execution Usage; no response says how long a container ran';

/** What batchBooking answers for a call that books nothing of a batch (most calls). */
const NOT_A_BATCH: { readonly reattributed: false; readonly correction: null } = Object.freeze({ reattributed: false, correction: null });

export async function startEngine(opts: EngineOptions = {}): Promise<Engine> {
  const e = new Engine(opts);
  try {
    return await e.start();
  } catch (err) {
    e.closeQuietly();
    throw err;
  }
}
