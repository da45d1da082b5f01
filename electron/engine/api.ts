/**
 * TollgateApi over the engine: what the control API, Electron IPC and the CLI all call.
 * Arguments arrive validated (shared/schemas.ts); money leaves as decimal strings.
 */
import crypto from 'node:crypto';
import { divHalfEven, nanoToUsd, usdToNanoExact } from '../../shared/money.ts';
import { periodBounds, previousPeriod } from '../../shared/caps.ts';
import { quoteRequest, quoteUsage } from '../../shared/quote.ts';
import { parseWorkflow, quoteWorkflow } from '../../shared/workflow.ts';
import { compare } from '../../shared/compare.ts';
import { canonicalProvider } from '../../shared/catalog.ts';
import { addUsage, type Usage } from '../../shared/usage.ts';
import { toCallRecord } from './ledger.ts';
import { fingerprint, tokenHash, type Engine } from './engine.ts';
import type {
  ApiArg, Cap, LocalKey, Overview, PriceOverride, QuoteResult, RateLock, Report, ReportGroup, SeriesPoint, Settings, SyncStatus, TollgateApi, UsageSummary, VolumeTierPlan,
} from '../../shared/api.ts';
import { VERSION } from './control.ts';

const DAY = 86_400_000;
const HOUR = 3_600_000;

/** Sync errors leave the API with an E_ code (the service's own code, e.g. invalid_code, becomes E_SYNC_INVALID_CODE). */
async function syncCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const err = e as Error & { code?: string };
    if (typeof err.code === 'string' && !err.code.startsWith('E_')) err.code = `E_SYNC_${err.code.toUpperCase()}`;
    throw err;
  }
}

export class NotFoundError extends Error {
  readonly code = 'E_NOT_FOUND';
}

export class EngineApi implements TollgateApi {
  constructor(private readonly e: Engine) {}

  private fresh(): void {
    this.e.flushQuietly();
    this.e.reload();
  }

  private period(p: 'day' | 'week' | 'month', now: number) {
    return periodBounds(p, now, this.e.timeZone, this.e.weekStart);
  }

  /** Local day of an hourly bucket, memoized per bucket: time-zone math per row was the cost. */
  private dayStarts(): (bucket: number) => { start: number; key: string } {
    const memo = new Map<number, { start: number; key: string }>();
    return (bucket) => {
      let d = memo.get(bucket);
      if (!d) {
        d = periodBounds('day', bucket, this.e.timeZone);
        memo.set(bucket, d);
      }
      return d;
    };
  }

  async overview(arg: ApiArg<'overview'>): Promise<Overview> {
    this.fresh();
    const L = this.e.ledger;
    const now = this.e.now();
    const sp = (p: 'day' | 'week' | 'month') => {
      const cur = this.period(p, now);
      const prev = previousPeriod(p, now, this.e.timeZone, this.e.weekStart);
      // compare like with like: the previous period up to the same elapsed time
      const elapsed = now - cur.start;
      const c = L.spend({ from: cur.start, to: now + 1 });
      const pv = L.spend({ from: prev.start, to: Math.min(prev.start + elapsed + 1, cur.start) });
      return { current: nanoToUsd(c.cost), previous: nanoToUsd(pv.cost), calls: c.calls };
    };
    const month = this.period('month', now);
    const last24 = L.spend({ from: now - DAY, to: now + 1 });
    const monthSpend = L.spend({ from: month.start, to: now + 1 }).cost;
    const remainingMs = Math.max(0, (month.end ?? now) - now);
    // projection: this month so far, plus the rest of the month at the burn rate shown beside it
    // (the last 24 h average), so the two numbers on screen always agree
    const burnPerHour = last24.cost / 24n;
    const projected = monthSpend + (burnPerHour * BigInt(remainingMs)) / BigInt(HOUR);
    const granularity = arg.granularity ?? 'hour';
    const groupBy = arg.groupBy ?? 'model';
    const from = granularity === 'hour' ? now - DAY : month.start;
    const raw = L.series(groupBy, { from, to: now + 1 });
    const totals = L.totals();
    const points = new Map<number, Record<string, bigint>>();
    const dayOf = this.dayStarts();
    for (const r of raw) {
      const bucket = granularity === 'hour' ? r.bucket : dayOf(r.bucket).start;
      const p = points.get(bucket) ?? {};
      const key = r.key || '(none)';
      p[key] = (p[key] ?? 0n) + r.cost;
      points.set(bucket, p);
    }
    const series: SeriesPoint[] = [...points.entries()].sort((a, b) => a[0] - b[0]).map(([bucket, v]) => ({
      bucket, values: Object.fromEntries(Object.entries(v).map(([k, c]) => [k, nanoToUsd(c)])),
    }));
    const grp = (g: { key: string; calls: number; cost: bigint; unpriced: number }[]): ReportGroup[] => g.map((x) => ({ key: x.key || '(none)', calls: x.calls, cost: nanoToUsd(x.cost), unpriced: x.unpriced }));
    return {
      today: sp('day'), week: sp('week'), month: sp('month'),
      burnRatePerHour: nanoToUsd(burnPerHour), projectedMonth: nanoToUsd(projected),
      projection: { basis: 'last24h', monthSoFar: nanoToUsd(monthSpend), ratePerHour: nanoToUsd(burnPerHour), hoursLeft: remainingMs / HOUR, monthEnd: month.end ?? now },
      caps: this.e.capStatuses(),
      series: { granularity, groupBy, points: series },
      topModels: grp(L.group('model', { from: month.start, to: now + 1 }, 5)),
      topProjects: grp(L.group('project', { from: month.start, to: now + 1 }, 5)),
      alerts: L.alerts(10), unpricedCalls: totals.unpriced, paused: this.e.paused, totalCalls: totals.calls,
      ...this.creditsForOverview(),
    };
  }

  /** Balance and runway per provider for the Overview (derived from spend_days, the spend per day the ledger writer keeps: a few milliseconds, cold or warm). */
  private creditsForOverview(): Pick<Overview, 'credits'> {
    try {
      const st = this.e.billing.status();
      if (!st.providers.length) return {};
      return { credits: st.providers.map((p) => ({ provider: p.provider, balance: p.balance, uncovered: p.uncovered, runwayDays: p.runwayDays, summary: p.summary })) };
    } catch {
      return {}; // the Overview never fails over credits
    }
  }

  async calls(arg: ApiArg<'calls'>) {
    this.e.flushQuietly();
    const range = arg.from || arg.to
      ? { from: arg.from ? parseDate(arg.from, this.e.timeZone) : 0, to: arg.to ? parseDate(arg.to, this.e.timeZone, true) : Number.MAX_SAFE_INTEGER }
      : undefined;
    return this.e.ledger.calls(arg, range).map(toCallRecord);
  }

  async call(arg: ApiArg<'call'>) {
    this.e.flushQuietly();
    const r = this.e.ledger.call(arg.id);
    return r ? toCallRecord(r) : null;
  }

  async runs(arg: ApiArg<'runs'>) {
    this.e.flushQuietly();
    return this.e.ledger.runs(arg.limit ?? 50);
  }

  async report(arg: ApiArg<'report'>): Promise<Report> {
    this.fresh();
    const now = this.e.now();
    let from: number, to: number;
    if (arg.from || arg.to) {
      from = arg.from ? parseDate(arg.from, this.e.timeZone) : 0;
      to = arg.to ? parseDate(arg.to, this.e.timeZone, true) : now + 1;
    } else if (arg.period === 'all') {
      from = 0; to = now + 1;
    } else {
      const b = this.period(arg.period === 'today' ? 'day' : arg.period ?? 'month', now);
      from = b.start; to = b.end ?? now + 1;
    }
    const L = this.e.ledger;
    const total = L.spend({ from, to });
    let groups: ReportGroup[];
    if (arg.by === 'device') {
      groups = L.groupByDevice(from, to, this.e.ledger.syncState('device_name') ?? '(this device)').map((g) => ({ key: g.key, calls: g.calls, cost: nanoToUsd(g.cost), unpriced: g.unpriced }));
    } else if (arg.by === 'day') {
      const byDay = new Map<string, { calls: number; cost: bigint }>();
      const dayOf = this.dayStarts();
      for (const g of L.group('bucket', { from, to }, 100_000)) {
        const key = dayOf(Number(g.key)).key;
        const d = byDay.get(key) ?? { calls: 0, cost: 0n };
        d.calls += g.calls;
        d.cost += g.cost;
        byDay.set(key, d);
      }
      groups = [...byDay.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([key, v]) => ({ key, calls: v.calls, cost: nanoToUsd(v.cost) }));
    } else {
      const col = arg.by === 'key' ? 'key_fp' : arg.by;
      const names = arg.by === 'key' ? new Map(L.keys().map((k) => [k.fingerprint, k.name])) : null;
      groups = L.group(col, { from, to }).map((g) => ({ key: names?.get(g.key) ?? (g.key || '(none)'), calls: g.calls, cost: nanoToUsd(g.cost), unpriced: g.unpriced }));
    }
    return { total: nanoToUsd(total.cost), calls: total.calls, unpriced_calls: total.unpriced, from, to, groups };
  }

  async caps() {
    this.fresh();
    return this.e.capStatuses();
  }

  async setCap(arg: ApiArg<'setCap'>): Promise<Cap> {
    const existing = arg.id ? this.e.ledger.caps().find((c) => c.id === arg.id) : undefined;
    if (arg.id && !existing) throw new NotFoundError(`no cap with id ${arg.id}`);
    if (arg.scope !== 'global' && !arg.scopeValue) throw Object.assign(new Error(`a ${arg.scope} cap needs a value, e.g. ${arg.scope}:NAME`), { code: 'E_VALIDATION' });
    if (arg.allDevices || existing?.allDevices) return this.setRemoteCap(arg, existing);
    const cap: Cap = {
      id: existing?.id ?? 'cap_' + crypto.randomBytes(4).toString('hex'),
      scope: arg.scope, scopeValue: arg.scope === 'global' ? null : arg.scopeValue ?? null, period: arg.period, limit: nanoToUsd(usdToNanoExact(arg.limit)),
      alerts: [...new Set(arg.alerts ?? [50, 80, 100])].sort((a, b) => a - b), hard: arg.hard ?? false, createdAt: existing?.createdAt ?? this.e.now(),
    };
    this.e.ledger.putCap(cap, usdToNanoExact(cap.limit));
    this.e.changed();
    return cap;
  }

  /** A cap across all devices: kept on the sync service (which the other devices mirror), spent from leases. */
  private async setRemoteCap(arg: ApiArg<'setCap'>, existing: Cap | undefined): Promise<Cap> {
    const bad = (m: string) => Object.assign(new Error(m), { code: 'E_VALIDATION' });
    if (!this.e.sync.joined) throw bad('a cap across all devices is kept on the sync service: join one first (`npx tollgate sync join URL CODE`)');
    if (arg.hard === false) throw bad('a cap across all devices is a hard cap (it is spent from leases); drop --alert-only');
    if (existing) throw bad(`cap ${existing.id} is kept on the sync service and cannot be edited in place: remove it (\`npx tollgate cap rm ${existing.id}\`) and set it again`);
    const alerts = [...new Set(arg.alerts ?? [50, 80, 100])].sort((a, b) => a - b);
    const limit = nanoToUsd(usdToNanoExact(arg.limit));
    const sc = await syncCall(() => this.e.sync.createRemoteCap({ scope: arg.scope, scopeValue: arg.scope === 'global' ? null : arg.scopeValue ?? null, period: arg.period, limit, alerts }));
    const cap: Cap = { id: sc.id, scope: arg.scope, scopeValue: sc.scope_value, period: arg.period, limit, alerts, hard: true, allDevices: true, createdAt: this.e.now() };
    this.e.ledger.putCap(cap, usdToNanoExact(limit));
    this.e.changed();
    return cap;
  }

  async removeCap(arg: ApiArg<'removeCap'>) {
    const cap = this.e.ledger.caps().find((c) => c.id === arg.id);
    if (cap?.allDevices) await syncCall(() => this.e.sync.removeRemoteCap(cap.id));
    const removed = this.e.ledger.removeCap(arg.id);
    this.e.changed();
    return { removed };
  }

  async alerts(arg: ApiArg<'alerts'>) {
    return this.e.ledger.alerts(arg.limit ?? 100);
  }

  async pause() {
    this.e.ledger.setSetting('paused', '1');
    this.e.changed();
    this.e.emit({ type: 'paused', paused: true });
    return { paused: true };
  }

  async resume() {
    this.e.ledger.setSetting('paused', '0');
    this.e.changed();
    this.e.emit({ type: 'paused', paused: false });
    return { paused: false };
  }

  async keys() {
    return this.e.ledger.keys();
  }

  async usageBy(arg: ApiArg<'usageBy'>): Promise<UsageSummary[]> {
    this.e.flushQuietly();
    return this.e.ledger.usageBy(arg.by).map((u) => ({ key: u.key, calls: u.calls, cost: nanoToUsd(u.cost), unpriced: u.unpriced, lastUsed: u.lastUsed }));
  }

  async addKey(arg: ApiArg<'addKey'>): Promise<{ key: LocalKey; token: string }> {
    const secret = arg.secret.trim();
    if (!secret) throw Object.assign(new Error('the provider key is empty'), { code: 'E_VALIDATION' });
    if (this.e.ledger.keys().some((k) => k.name === arg.name && k.revokedAt === null)) throw Object.assign(new Error(`a key named "${arg.name}" already exists`), { code: 'E_VALIDATION' });
    const token = 'tgk_' + crypto.randomBytes(24).toString('base64url');
    const key: LocalKey = {
      id: 'key_' + crypto.randomBytes(4).toString('hex'), name: arg.name, provider: canonicalProvider(arg.provider), project: arg.project ?? null,
      prefix: token.slice(0, 10), fingerprint: fingerprint(secret), createdAt: this.e.now(), revokedAt: null,
    };
    this.e.ledger.insertKey(key, tokenHash(token), await this.e.secrets.encrypt(secret));
    this.e.changed();
    return { key, token };
  }

  async revokeKey(arg: ApiArg<'revokeKey'>) {
    const revoked = this.e.ledger.revokeKey(arg.id, this.e.now());
    this.e.changed();
    return { revoked };
  }

  async prices(arg: ApiArg<'prices'>) {
    this.e.reload();
    const rows = this.e.catalog.list({ provider: arg.provider, search: arg.search }, new Date(this.e.now()));
    return rows.slice(0, arg.limit ?? 5000);
  }

  async priceData() {
    this.e.reload();
    return this.e.priceData;
  }

  async overrides() {
    return this.e.ledger.overrides();
  }

  async setOverride(arg: ApiArg<'setOverride'>): Promise<PriceOverride> {
    const o: PriceOverride = { id: 'ovr_' + crypto.randomBytes(4).toString('hex'), provider: canonicalProvider(arg.provider), model: arg.model, prices: arg.prices, note: arg.note ?? null, createdAt: this.e.now() };
    this.e.ledger.putOverride(o);
    this.e.changed();
    return this.e.ledger.overrides().find((x) => x.provider === o.provider && x.model === o.model)!;
  }

  async reprice(arg: ApiArg<'reprice'>) {
    return this.e.reprice(arg.provider, arg.model);
  }

  async removeOverride(arg: ApiArg<'removeOverride'>) {
    const removed = this.e.ledger.removeOverride(arg.id);
    this.e.changed();
    return { removed };
  }

  async locks() {
    return this.e.ledger.locks();
  }

  async addLock(arg: ApiArg<'addLock'>): Promise<RateLock> {
    const provider = canonicalProvider(arg.provider);
    const at = new Date(this.e.now());
    const models = arg.model ? [arg.model] : this.e.catalog.modelsOf(provider);
    const prices: Record<string, Record<string, string>> = {};
    for (const m of models) {
      const snap = this.e.catalog.snapshot(provider, m, at);
      if (snap) prices[m] = snap;
    }
    if (Object.keys(prices).length === 0) throw Object.assign(new Error(`nothing to lock: ${provider}${arg.model ? ':' + arg.model : ''} has no catalog price`), { code: 'E_VALIDATION' });
    const lock: RateLock = {
      id: 'lock_' + crypto.randomBytes(4).toString('hex'), provider, model: arg.model ?? null, catalog: this.e.catalog.version, prices,
      from: arg.from ? parseDate(arg.from, this.e.timeZone) : null, to: arg.to ? parseDate(arg.to, this.e.timeZone, true) : null, createdAt: this.e.now(),
    };
    this.e.ledger.putLock(lock);
    this.e.changed();
    return lock;
  }

  async removeLock(arg: ApiArg<'removeLock'>) {
    const removed = this.e.ledger.removeLock(arg.id);
    this.e.changed();
    return { removed };
  }

  async tiers() {
    return this.e.ledger.tierPlans();
  }

  async setTiers(arg: ApiArg<'setTiers'>): Promise<VolumeTierPlan> {
    const plan: VolumeTierPlan = { ...arg, id: arg.id ?? 'tier_' + crypto.randomBytes(4).toString('hex'), provider: canonicalProvider(arg.provider), createdAt: this.e.now() };
    this.e.ledger.putTierPlan(plan);
    this.e.changed();
    return plan;
  }

  async removeTiers(arg: ApiArg<'removeTiers'>) {
    const removed = this.e.ledger.removeTierPlan(arg.id);
    this.e.changed();
    return { removed };
  }

  async unpriced() {
    this.e.flushQuietly();
    return this.e.ledger.unpricedModels();
  }

  async quote(arg: ApiArg<'quote'>): Promise<QuoteResult> {
    this.e.reload();
    const at = new Date(this.e.now());
    const opts = { at, observedOutput: (p: string, m: string) => this.e.ledger.observedOutputMedian(p, m, at.getTime() - 30 * DAY) };
    if (arg.kind === 'workflow') return quoteWorkflow(this.e.catalog, parseWorkflow(arg.text, arg.filename ?? null), opts);
    const item = arg.kind === 'request'
      ? quoteRequest(this.e.catalog, arg.provider, arg.body, arg.path ?? '', opts)
      : quoteUsage(this.e.catalog, arg.model, usageFromFlags(arg.usage), arg.params as never, opts);
    return { min: item.min, expected: item.expected, max: item.max, items: [item], unpriced: item.unpriced ? 1 : 0 };
  }

  async compare(arg: ApiArg<'compare'>) {
    this.e.reload();
    let replay: { usage: Usage; calls: number }[] | undefined;
    if (arg.workload.kind === 'replay') {
      const now = this.e.now();
      const b = arg.workload.from ? { start: parseDate(arg.workload.from, this.e.timeZone), end: arg.workload.to ? parseDate(arg.workload.to, this.e.timeZone, true) : now + 1 } : { start: now - (arg.workload.period === 'day' ? 1 : arg.workload.period === 'week' ? 7 : 30) * DAY, end: now + 1 };
      this.e.flushQuietly();
      let total: Usage = {};
      let calls = 0;
      let actual = 0n;
      let unpriced = 0;
      for (const c of this.e.ledger.iterateCalls(b.start, b.end)) {
        if (c.status === 'blocked' || !c.usage || c.usage.images !== undefined || c.usage.videoSeconds !== undefined) continue;
        total = addUsage(total, c.usage as Usage);
        calls++;
        actual += c.costNano;
        if (c.unpriced) unpriced++;
      }
      replay = calls ? [{ usage: total, calls }] : [];
      const r = compare(this.e.catalog, arg.workload, arg.models, replay, new Date(this.e.now()));
      // per call, not per replay: the replay prices all calls as one line
      for (const row of r.rows) row.perUnit = row.cost === null || calls === 0 ? null : nanoToUsd(divHalfEven(usdToNanoExact(row.cost), BigInt(calls)));
      return {
        ...r,
        description: `Your ${calls.toLocaleString('en-US')} chat call${calls === 1 ? '' : 's'} of ${arg.workload.from ? `${arg.workload.from} to ${arg.workload.to ?? 'now'}` : `the last ${arg.workload.period === 'day' ? '24 hours' : arg.workload.period === 'week' ? '7 days' : '30 days'}`}, re-priced`,
        replay: { calls, actual: nanoToUsd(actual), actualPerCall: calls ? nanoToUsd(divHalfEven(actual, BigInt(calls))) : null, unpricedCalls: unpriced, from: b.start, to: b.end },
      };
    }
    return compare(this.e.catalog, arg.workload, arg.models, replay, new Date(this.e.now()));
  }

  async settings(): Promise<Settings> {
    this.e.reload();
    return {
      dataDir: this.e.dataDir, port: this.e.port, timeZone: this.e.timeZone, weekStart: this.e.weekStart, currencyDisplay: 'USD',
      storePrompts: this.e.storePrompts, failOpen: this.e.failOpen, proxyUrl: this.e.url, version: VERSION,
    };
  }

  async syncStatus(arg: ApiArg<'syncStatus'>): Promise<SyncStatus> {
    this.e.flushQuietly();
    return syncCall(() => this.e.sync.status(arg.refresh ?? false));
  }

  async syncJoin(arg: ApiArg<'syncJoin'>): Promise<SyncStatus> {
    return syncCall(() => this.e.sync.join(arg.url, arg.code, arg.name, arg.insecure ?? false));
  }

  async syncNow(): Promise<{ pushed: number; pulled: number; pending: number }> {
    this.e.flushQuietly();
    const p = await syncCall(() => this.e.sync.syncNow());
    return { pushed: p.pushed, pulled: p.pulled, pending: this.e.ledger.outboxCount() };
  }

  async syncLeave(): Promise<SyncStatus> {
    return syncCall(() => this.e.sync.leave());
  }

  async updateSettings(arg: ApiArg<'updateSettings'>): Promise<Settings> {
    if (arg.timeZone !== undefined) {
      try {
        new Intl.DateTimeFormat('en-US', { timeZone: arg.timeZone });
      } catch {
        throw Object.assign(new Error(`unknown time zone "${arg.timeZone}"`), { code: 'E_VALIDATION' });
      }
      this.e.ledger.setSetting('timeZone', arg.timeZone);
    }
    if (arg.weekStart !== undefined) this.e.ledger.setSetting('weekStart', String(arg.weekStart));
    if (arg.storePrompts !== undefined) this.e.ledger.setSetting('storePrompts', arg.storePrompts ? '1' : '0');
    if (arg.failOpen !== undefined) this.e.ledger.setSetting('failOpen', arg.failOpen ? '1' : '0');
    this.e.changed();
    return this.settings();
  }

  // ---- credits, statements, reconciliation (billing.ts) ----

  async credits() {
    return this.e.billing.status();
  }

  async addCredit(arg: ApiArg<'addCredit'>) {
    return this.e.billing.addGrant(arg);
  }

  async removeCredit(arg: ApiArg<'removeCredit'>) {
    return { removed: this.e.billing.removeGrant(arg.id) };
  }

  async creditMovements(arg: ApiArg<'creditMovements'>) {
    return this.e.billing.movements(arg ?? {});
  }

  async statement(arg: ApiArg<'statement'>) {
    return this.e.billing.statement(arg);
  }

  async statements(arg: ApiArg<'statements'>) {
    return this.e.billing.statements(arg ?? {});
  }

  async reconcile(arg: ApiArg<'reconcile'>) {
    return this.e.billing.reconcile(arg);
  }
}

/** `--input-tokens 1000 --cached-tokens 200 …` style usage (input includes cached, as users count it). */
export function usageFromFlags(u: Record<string, number | string>): Usage {
  const n = (k: string) => (u[k] === undefined ? undefined : Number(u[k]));
  const input = n('inputTokens') ?? n('input_tokens');
  const cached = n('cachedTokens') ?? n('cacheReadTokens') ?? 0;
  const out: Usage = {};
  if (input !== undefined) out.inputTokens = Math.max(0, input - cached);
  if (cached) out.cacheReadTokens = cached;
  const map: [string, keyof Usage][] = [['outputTokens', 'outputTokens'], ['output_tokens', 'outputTokens'], ['reasoningTokens', 'reasoningTokens'], ['cacheWrite5mTokens', 'cacheWrite5mTokens'], ['cacheWrite1hTokens', 'cacheWrite1hTokens'], ['images', 'images'], ['videoSeconds', 'videoSeconds'], ['seconds', 'videoSeconds'], ['webSearches', 'webSearches']];
  for (const [k, f] of map) if (u[k] !== undefined) (out as Record<string, number>)[f] = Number(u[k]);
  if (u.megapixels !== undefined) out.megapixelsPerImage = String(u.megapixels);
  return out;
}

/** "2026-11-01" (local midnight in tz) or a full ISO datetime. `end` makes a date inclusive. */
export function parseDate(s: string, tz: string, end = false): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (m) {
    const b = periodBounds('day', Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, 12), tz);
    return end ? b.end! : b.start;
  }
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw Object.assign(new Error(`"${s}" is not a date (use YYYY-MM-DD or an ISO datetime)`), { code: 'E_VALIDATION' });
  return t;

}
