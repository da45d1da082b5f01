/**
 * The one typed bridge between the UI and the engine.
 *
 * `TollgateApi` is implemented twice: over Electron IPC (electron/preload.ts exposes it as
 * `window.tollgate`) and over HTTP + SSE against the control API (renderer/src/bridge/http.ts).
 * Both transports are generic: method `m` with one JSON argument becomes
 *   - IPC:  ipcRenderer.invoke(`tollgate:${m}`, arg)
 *   - HTTP: POST `${CONTROL_PREFIX}/rpc/${m}` with the JSON body `arg`
 * and events arrive on the IPC channel `tollgate:event` or the SSE stream `${CONTROL_PREFIX}/events`.
 * Inputs are validated with the zod schemas in shared/schemas.ts on the engine side.
 *
 * Money crosses the bridge as decimal-string USD ("0.00045"), never as a number.
 */

import type { Usage } from './usage.ts';

export type { Usage };
import type { Statement } from './statements.ts';
import type { ReconcileProvider, ReconcileResult } from './reconcile.ts';
export type { Statement, ReconcileProvider, ReconcileResult };

export const CONTROL_PREFIX = '/_tollgate';
export const TOKEN_HEADER = 'x-tollgate-token';

export type Usd = string;

export type ProviderId = 'openai' | 'anthropic' | 'gemini' | 'openrouter' | 'fal' | 'replicate' | (string & {});

export interface LineItem {
  label: string;       // "Input tokens", "Cache reads", "Image 1024x1024 high"
  quantity: string;    // decimal string: "1200", "1.048576"
  unit: string;        // "token", "image", "megapixel", "second", "request", "search"
  per: number;         // the price is per this many units: 1000000 for "$/1M tokens"
  unitPrice: Usd;      // USD per `per` units
  cost: Usd;           // rounded once, half-even, to the nano-dollar
  source: string;      // which catalog version / override / lock / tier priced this line
}

export interface PriceSource {
  kind: 'catalog' | 'override' | 'lock' | 'tier';
  catalog: string;     // "genai-prices@0.1.8" or "tollgate-media@2026-11-25.1#hash"
  detail?: string;     // lock id, override id, tier name
  url?: string;
  asOf?: string;
}

export type CallStatus = 'ok' | 'error' | 'blocked' | 'interrupted' | 'aborted' | 'pending';

export interface CallRecord {
  id: string;                 // UUIDv7, assigned before forwarding
  ts: number;                 // start, UTC ms
  provider: ProviderId;
  model: string | null;
  endpoint: string;           // "chat.completions", "messages", "generateContent", "fal", ...
  project: string | null;
  workflow: string | null;
  run: string | null;
  node: string | null;
  keyFingerprint: string | null;
  keyName: string | null;
  status: CallStatus;
  httpStatus: number | null;
  stream: boolean;
  durationMs: number | null;
  ttfbMs: number | null;
  /** Canonical usage (shared/usage.ts): every field a leaf, so input + cache reads = all input. */
  usage: Usage;
  items: LineItem[];
  cost: Usd;
  reserved: Usd;
  estimated: boolean;
  unpriced: boolean;
  unpricedReason: string | null;
  priceSource: string | null;
  error: string | null;
  blockedBy: string | null;
  /** Synced calls: the name of the device that made it; null or absent for this device's own calls. */
  device?: string | null;
  /** A correction: the id of the earlier call it corrects (a batch's estimate, replaced by the actual cost of its results); its cost may be negative. */
  corrects?: string | null;
  /** The provider's own id of the response (OpenRouter "gen-…"); absent when it sent none. */
  upstreamId?: string | null;
}

export type CapScopeType = 'global' | 'provider' | 'project' | 'key' | 'model' | 'workflow';
export type CapPeriod = 'day' | 'week' | 'month' | 'total';

export interface Cap {
  id: string;
  scope: CapScopeType;
  scopeValue: string | null;  // null for global
  period: CapPeriod;
  limit: Usd;
  alerts: number[];           // percent thresholds, e.g. [50, 80, 100]
  hard: boolean;              // true: block at the limit; false: alert only
  createdAt: number;
  /** Kept on the sync service and spent from its leases: the limit holds across every device. */
  allDevices?: boolean;
}

export interface CapStatus {
  cap: Cap;
  spent: Usd;
  reserved: Usd;
  percent: number;            // display only (spent / limit * 100, one decimal)
  periodStart: number;
  resetsAt: number | null;    // null for 'total'
  blocked: boolean;
}

export interface Alert {
  id: string;
  capId: string;
  capLabel: string;           // "project:acme month"
  threshold: number;          // percent
  periodKey: string;          // "2026-11", "2026-W48", "2026-11-25", "total"
  spent: Usd;
  limit: Usd;
  ts: number;
  /** 'credit': a prepaid-credit alert (capId is the grant id, periodKey balance|runway|expiry, threshold % or days) */
  kind: 'threshold' | 'blocked' | 'credit';
  /** a sentence for credit alerts */
  message?: string;
}

export interface LocalKey {
  id: string;
  name: string;
  provider: ProviderId;
  project: string | null;
  prefix: string;             // first characters of the tgk_ token, for recognition
  fingerprint: string;        // fingerprint of the real provider key (never the key)
  createdAt: number;
  revokedAt: number | null;
}

/** Spend and last use of one local key (`key` = key id) or one project (`key` = project name). */
export interface UsageSummary {
  key: string;
  calls: number;              // calls that reached the upstream (not blocked)
  cost: Usd;
  unpriced: number;           // calls that could not be priced (not in `cost`)
  lastUsed: number | null;    // UTC ms of the newest call, blocked or not
}

export interface SpendPeriod {
  current: Usd;
  previous: Usd;
  calls: number;
}

export interface SeriesPoint {
  bucket: number;             // bucket start, UTC ms
  values: Record<string, Usd>; // group key -> cost
}

export interface Overview {
  today: SpendPeriod;
  week: SpendPeriod;
  month: SpendPeriod;
  burnRatePerHour: Usd;       // average over the last 24 h
  projectedMonth: Usd;        // projection.monthSoFar + projection.ratePerHour × projection.hoursLeft
  /** What the month-end projection is based on, so the UI can say it (and it agrees with the burn rate). */
  projection: { basis: 'last24h'; monthSoFar: Usd; ratePerHour: Usd; hoursLeft: number; monthEnd: number };
  caps: CapStatus[];
  series: { granularity: 'hour' | 'day'; groupBy: 'model' | 'provider' | 'project'; points: SeriesPoint[] };
  topModels: ReportGroup[];
  topProjects: ReportGroup[];
  alerts: Alert[];
  unpricedCalls: number;
  paused: boolean;
  totalCalls: number;
  /** prepaid credits per provider (absent when none are recorded): balance and runway at this week's pace */
  credits?: { provider: string; balance: Usd; uncovered: Usd; runwayDays: number | null; summary: string }[];
}

export interface ReportGroup {
  key: string;
  calls: number;
  cost: Usd;
  /** calls in the group that could not be priced (their cost is not in `cost`) */
  unpriced?: number;
}

export interface Report {
  total: Usd;
  calls: number;
  unpriced_calls: number;
  from: number;
  to: number;
  groups: ReportGroup[];
}

export type ReportBy = 'model' | 'provider' | 'project' | 'key' | 'workflow' | 'day' | 'device';

export interface ReportQuery {
  by: ReportBy;
  period?: 'today' | 'week' | 'month' | 'all';
  from?: string;              // ISO date or datetime
  to?: string;
}

export interface CallsQuery {
  limit?: number;
  beforeId?: string;          // keyset pagination: calls older than this id
  provider?: string;
  model?: string;
  project?: string;
  status?: CallStatus;
  workflow?: string;
  /** case-insensitive substring of the model id / project name (exact `model` / `project` still work) */
  modelContains?: string;
  projectContains?: string;
  /** date range, like ReportQuery: "2026-11-01" (local midnight in the engine's time zone) or an ISO datetime; `to` is inclusive */
  from?: string;
  to?: string;
}

export interface RunNode {
  node: string;
  calls: number;
  cost: Usd;
  quoted: Usd | null;
}

export interface RunSummary {
  workflow: string | null;
  run: string;
  started: number;
  calls: number;
  cost: Usd;
  quoted: Usd | null;
  nodes: RunNode[];
}

export interface PriceRow {
  provider: string;
  model: string;
  name: string;
  kind: 'token' | 'image' | 'video' | 'upscale' | 'audio' | 'request';
  prices: { label: string; unitPrice: Usd; per: number; unit: string }[];
  source: PriceSource;
}

/** Which token price data the engine prices with (`tollgate prices`, the Prices view). */
export interface PriceDataInfo {
  kind: 'bundled' | 'file';
  /** The catalog name every price source carries: "genai-prices@0.1.8" or "genai-prices-data#sha256:…". */
  label: string;
  /** The npm package version of the bundled data (null for a loaded file). */
  version: string | null;
  sha256: string | null;
  /** The loaded file's name, its modification date, and when it was loaded (ISO). */
  file: string | null;
  fileDate: string | null;
  loadedAt: string | null;
  providers: number | null;
  models: number | null;
  /** The newest price start date in the file (a hint of how current it is). */
  newestPriceDate: string | null;
  /** Our supplement of models the data lacks (shared/catalog/genai-supplement.json). */
  supplement: string;
  /** A loaded file that could not be used, said in words (the bundled data is used instead). */
  problem: string | null;
}

export interface PriceOverride {
  id: string;
  provider: string;
  model: string;
  /** genai-prices style keys for token models ("input_mtok": "0.15") or media units ("image": "0.04") */
  prices: Record<string, Usd>;
  note: string | null;
  createdAt: number;
}

export interface RateLock {
  id: string;
  provider: string;
  model: string | null;       // null: every model of the provider
  catalog: string;            // catalog version the prices were locked at
  prices: Record<string, Record<string, Usd>>; // model -> price key -> USD
  from: number | null;
  to: number | null;
  createdAt: number;
}

export interface VolumeTier {
  upTo: number | null;        // inclusive upper bound of units; null = no bound
  price: Usd;                 // per unit
}

export interface VolumeTierPlan {
  id: string;
  provider: string;
  model: string | null;
  unit: 'image' | 'request' | 'second' | 'megapixel' | 'token';
  mode: 'graduated' | 'volume';
  period: 'month' | 'week' | 'day';
  tiers: VolumeTier[];
  createdAt: number;
}

/** What re-pricing past unpriced calls of a model did (after a price was set for it). */
export interface RepriceResult {
  provider: string;
  model: string;
  repriced: number;
  /** What the re-priced calls now cost, together. */
  cost: Usd;
  /** Calls the catalog still cannot price (reasons below). */
  stillUnpriced: number;
  /** Left as they were: already sent to a sync service, or inside a closed client statement. */
  skippedSynced: number;
  skippedClosed: number;
  reasons: string[];
}

export interface UnpricedModel {
  provider: string;
  model: string;
  calls: number;
  lastSeen: number;
  reason: string;
}

export interface QuoteItem {
  node: string | null;        // workflow node id, null for a single request
  model: string;
  provider: string;
  repeat: number;
  min: Usd;
  expected: Usd;
  max: Usd;
  items: LineItem[];          // the expected case, itemized
  unpriced: string | null;    // reason, when the node cannot be priced
  notes: string[];            // e.g. "input tokens approximated with o200k_base"
}

export interface QuoteResult {
  min: Usd;
  expected: Usd;
  max: Usd;
  items: QuoteItem[];
  unpriced: number;
}

export type QuoteInput =
  | { kind: 'usage'; model: string; usage: Record<string, number | string>; params?: Record<string, string | number | boolean> }
  | { kind: 'request'; provider: string; body: unknown; path?: string }
  | { kind: 'workflow'; text: string; filename?: string };

export type Workload =
  | { kind: 'chat'; calls: number; inputTokens: number; outputTokens: number; cachedInputTokens?: number }
  | { kind: 'image'; count: number; size?: string; quality?: string }
  | { kind: 'video'; seconds: number; resolution?: string; audio?: boolean; count?: number }
  | { kind: 'upscale'; count: number; megapixels: string; factor?: number }
  | { kind: 'replay'; period: 'day' | 'week' | 'month'; from?: string; to?: string };

export interface CompareRow {
  model: string;              // provider:model
  name: string;
  cost: Usd | null;           // null when the model cannot do the workload
  cheapest: boolean;
  reason: string | null;      // why it is not priced
  items: LineItem[];
  perUnit: Usd | null;        // cost per call / image / second
}

export interface CompareResult {
  workload: Workload;
  description: string;        // "10,000 chat calls of 1,200 in / 400 out tokens"
  rows: CompareRow[];
  /** replay workloads: what those calls actually cost (perUnit of each row is then per call) */
  replay?: { calls: number; actual: Usd; actualPerCall: Usd | null; unpricedCalls: number; from: number; to: number };
}

export interface Settings {
  dataDir: string;
  port: number;
  timeZone: string;
  weekStart: 1 | 7;           // ISO Monday (1) or Sunday (7)
  currencyDisplay: 'USD';
  storePrompts: boolean;
  failOpen: boolean;
  proxyUrl: string;
  version: string;
}

export type EngineEvent =
  | { type: 'call'; call: CallRecord }
  | { type: 'alert'; alert: Alert }
  | { type: 'caps'; caps: CapStatus[] }
  | { type: 'paused'; paused: boolean }
  | { type: 'hello'; version: string };

export interface CapInput {
  scope: CapScopeType;
  scopeValue?: string | null;
  period: CapPeriod;
  limit: Usd;
  alerts?: number[];
  hard?: boolean;
  /** Keep the cap on the sync service: a hard limit across every device (needs `sync join`). */
  allDevices?: boolean;
}

/** A device of the sync account, as the ledger service last reported it. */
export interface SyncDevice {
  id: string;
  name: string;
  /** The device's last request to the service (service clock, UTC ms). */
  lastSeenAt: number | null;
  revoked: boolean;
  /** This device. */
  self: boolean;
  /** Not heard from for over 24 h: the spend shown may be missing its calls. */
  silent: boolean;
}

/** Sync with a tollgate-ledger service (issue 12). */
export interface SyncStatus {
  joined: boolean;
  url: string | null;
  account: string | null;
  device: { id: string; name: string } | null;
  /** This device's finished calls not pushed yet. */
  pending: number;
  /** This device's credit grants and grant removals not pushed yet. */
  pendingGrants?: number;
  lastPushAt: number | null;
  lastPullAt: number | null;
  /** The last time the service answered this device. */
  lastContactAt: number | null;
  /** The service's sequence this device has pulled up to. */
  pulledSeq: number;
  lastError: string | null;
  /** Calls the service holds a different version of (kept apart, never merged). */
  conflicts: number;
  /** Calls the service refused as invalid (kept in this ledger only). */
  refused: number;
  /** A background pusher/puller runs (in a serving engine). */
  background: boolean;
  /** A pass under way: how far it got. */
  syncing: { pushed: number; total: number; pulled: number } | null;
  devices: SyncDevice[];
  /** When `devices` was fetched from the service. */
  devicesAt: number | null;
  /** Names of devices silent for more than 24 h. */
  silentDevices: string[];
  /** Leases this device holds on caps across devices (what it may still spend offline). */
  leases: { cap: string; amount: Usd; used: Usd; reserved: Usd; expiresInMs: number }[];
}

// ---- credits, statements, reconciliation (see shared/credits.ts, statements.ts, reconcile.ts) ----

export interface CreditGrantInfo {
  id: string;
  provider: string;
  amount: Usd;
  effective: string;          // YYYY-MM-DD, usable from 00:00 UTC
  expires: string;            // YYYY-MM-DD, the last usable day (UTC)
  priority: number;           // 0–100, lower burns first
  promo: boolean;
  note: string | null;
  createdAt: number;
  state: 'pending' | 'active' | 'used' | 'expired';
  drawn: Usd;
  remaining: Usd;
  expiredUnused: Usd;
}

export interface CreditProviderStatus {
  provider: string;
  balance: Usd;               // usable now
  uncovered: Usd;             // spend not covered by credits (since the first grant)
  burn7d: Usd;
  burnPerDay: Usd;
  runwayDays: number | null;  // display only; null: no spend this week
  runsOutAt: number | null;
  expiringUnused: { grantId: string; expires: string; amount: Usd }[];
  summary: string;            // "At this week's pace your openai credits last 9 days; $12.40 of them expire on 2026-11-30 unused."
  grants: CreditGrantInfo[];
}

export interface CreditsStatus {
  asOf: number;
  providers: CreditProviderStatus[];
}

export interface CreditInput {
  provider: string;
  amount: Usd;
  expires: string;            // YYYY-MM-DD
  effective?: string | null;  // YYYY-MM-DD, default today (UTC)
  priority?: number;
  promo?: boolean;
  note?: string | null;
}

/** One draw of a call on a grant (grantId null: the part no grant covered). Derived, never stored. */
export interface CreditMovement {
  callId: string;
  ts: number;
  provider: string;
  model: string | null;
  grantId: string | null;
  amount: Usd;
}

export type StatementFormat = 'json' | 'csv' | 'html';

export interface StatementSummary {
  project: string;
  period: string;
  kind: 'day' | 'week' | 'month';
  status: 'open' | 'closed';
  from: string;
  to: string;
  calls: number;
  cost: Usd;
  total: Usd;
  hash: string | null;
  closedAt: string | null;
  closesAt: string;           // when an open period closes (end + grace)
}

export interface StatementResult {
  statement: Statement;
  format: StatementFormat;
  content: string;            // the rendered bytes (UTF-8); a closed statement renders to the same bytes every time
}

export interface TollgateApi {
  overview(arg: { groupBy?: 'model' | 'provider' | 'project'; granularity?: 'hour' | 'day' }): Promise<Overview>;
  calls(arg: CallsQuery): Promise<CallRecord[]>;
  call(arg: { id: string }): Promise<CallRecord | null>;
  runs(arg: { limit?: number }): Promise<RunSummary[]>;
  report(arg: ReportQuery): Promise<Report>;
  caps(arg: Record<string, never>): Promise<CapStatus[]>;
  setCap(arg: CapInput & { id?: string }): Promise<Cap>;
  removeCap(arg: { id: string }): Promise<{ removed: boolean }>;
  alerts(arg: { limit?: number }): Promise<Alert[]>;
  pause(arg: Record<string, never>): Promise<{ paused: boolean }>;
  resume(arg: Record<string, never>): Promise<{ paused: boolean }>;
  keys(arg: Record<string, never>): Promise<LocalKey[]>;
  usageBy(arg: { by: 'key' | 'project' }): Promise<UsageSummary[]>;
  addKey(arg: { name: string; provider: string; project?: string | null; secret: string }): Promise<{ key: LocalKey; token: string }>;
  revokeKey(arg: { id: string }): Promise<{ revoked: boolean }>;
  prices(arg: { provider?: string; search?: string; limit?: number }): Promise<PriceRow[]>;
  priceData(arg: Record<string, never>): Promise<PriceDataInfo>;
  overrides(arg: Record<string, never>): Promise<PriceOverride[]>;
  setOverride(arg: { provider: string; model: string; prices: Record<string, Usd>; note?: string | null }): Promise<PriceOverride>;
  removeOverride(arg: { id: string }): Promise<{ removed: boolean }>;
  locks(arg: Record<string, never>): Promise<RateLock[]>;
  addLock(arg: { provider: string; model?: string | null; from?: string | null; to?: string | null }): Promise<RateLock>;
  removeLock(arg: { id: string }): Promise<{ removed: boolean }>;
  tiers(arg: Record<string, never>): Promise<VolumeTierPlan[]>;
  setTiers(arg: Omit<VolumeTierPlan, 'id' | 'createdAt'> & { id?: string }): Promise<VolumeTierPlan>;
  removeTiers(arg: { id: string }): Promise<{ removed: boolean }>;
  unpriced(arg: Record<string, never>): Promise<UnpricedModel[]>;
  reprice(arg: { provider: string; model: string }): Promise<RepriceResult>;
  quote(arg: QuoteInput): Promise<QuoteResult>;
  compare(arg: { workload: Workload; models: string[] }): Promise<CompareResult>;
  settings(arg: Record<string, never>): Promise<Settings>;
  updateSettings(arg: Partial<Pick<Settings, 'timeZone' | 'weekStart' | 'storePrompts' | 'failOpen'>>): Promise<Settings>;
  credits(arg: Record<string, never>): Promise<CreditsStatus>;
  addCredit(arg: CreditInput): Promise<CreditGrantInfo>;
  removeCredit(arg: { id: string }): Promise<{ removed: boolean }>;
  creditMovements(arg: { provider?: string; days?: number; limit?: number }): Promise<CreditMovement[]>;
  /** graceHours: how long the project's periods stay open after they end (default 48), remembered for the project like markup and fee */
  statement(arg: { project: string; period: string; markup?: string | null; fee?: string | null; format?: StatementFormat; graceHours?: number }): Promise<StatementResult>;
  statements(arg: { project?: string }): Promise<StatementSummary[]>;
  reconcile(arg: { provider: ReconcileProvider; csv: string }): Promise<ReconcileResult>;
  syncStatus(arg: { refresh?: boolean }): Promise<SyncStatus>;
  syncJoin(arg: { url: string; code: string; name?: string; insecure?: boolean }): Promise<SyncStatus>;
  syncNow(arg: Record<string, never>): Promise<{ pushed: number; pulled: number; pending: number }>;
  syncLeave(arg: Record<string, never>): Promise<SyncStatus>;
}

export type ApiMethod = keyof TollgateApi;
export type ApiArg<M extends ApiMethod> = Parameters<TollgateApi[M]>[0];
export type ApiResult<M extends ApiMethod> = Awaited<ReturnType<TollgateApi[M]>>;

/** The transport-independent client shape both bridges implement. */
export interface TollgateBridge extends TollgateApi {
  subscribe(listener: (event: EngineEvent) => void): () => void;
}

export const API_METHODS = [
  'overview', 'calls', 'call', 'runs', 'report', 'caps', 'setCap', 'removeCap', 'alerts', 'pause', 'resume',
  'keys', 'usageBy', 'addKey', 'revokeKey', 'prices', 'priceData', 'overrides', 'setOverride', 'removeOverride', 'reprice', 'locks', 'addLock',
  'removeLock', 'tiers', 'setTiers', 'removeTiers', 'unpriced', 'quote', 'compare', 'settings', 'updateSettings',
  'credits', 'addCredit', 'removeCredit', 'creditMovements', 'statement', 'statements', 'reconcile',
  'syncStatus', 'syncJoin', 'syncNow', 'syncLeave',
] as const satisfies readonly ApiMethod[];

/** Error shape the control API and IPC return: `{ error: { code, message } }`. */
export interface ApiError {
  code: string;               // "E_VALIDATION", "E_NOT_FOUND", "E_UNPRICED", ...
  message: string;
  issues?: { path: string; message: string }[];
}
