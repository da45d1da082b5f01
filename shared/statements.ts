/**
 * Settlement statements, pure: periods, line items, markup and fee rounding, the content-hash
 * input and the three renderings (CSV, JSON, printable HTML).
 *
 * Periods are UTC (so every device cuts them the same way): a day "2026-11-30", an ISO week
 * "2026-W48" (Monday to Monday) or a month "2026-11".
 *
 * Lines group a period's calls by provider, model, workflow, node and price line (label, unit,
 * unit price): quantity is the sum of the calls' quantities in the provider's units; cost is the sum
 * of the calls' own item costs in nano-USD (each already rounded once when the call was priced), so
 * the costs of a statement add up exactly to the ledger. The billed amount of a line is its cost
 * plus the markup, rounded half-even to the cent ONCE per line; a fixed fee is a line of its own.
 * The total billed is the sum of the lines' billed amounts, to the cent.
 *
 * Calls that arrive after their period's statement closed land in the next statement that is still
 * open, as prior-period adjustment lines naming the original period.
 */
import { divHalfEven, nanoToUsd, parseDecimal, ratioToDecimal, usdToNano, type Ratio } from './money.ts';
import type { LineItem } from './api.ts';

export type PeriodKind = 'day' | 'week' | 'month';

export interface StatementPeriod {
  kind: PeriodKind;
  key: string;
  start: number;
  end: number;
}

const DAY = 86_400_000;
export const DEFAULT_GRACE_MS = 48 * 3_600_000;
const NANO_PER_CENT = 10_000_000n;

/** Parse "2026-11-30", "2026-W48" or "2026-11"; throws a RangeError naming the accepted forms. */
export function parsePeriod(key: string): StatementPeriod {
  let m = /^(\d{4})-W(\d{2})$/.exec(key);
  if (m) {
    const y = +m[1]!, w = +m[2]!;
    const start = isoWeekStart(y, w);
    if (w < 1 || isoWeekOf(start).key !== key) throw new RangeError(`"${key}" is not an ISO week of ${y}`);
    return { kind: 'week', key, start, end: start + 7 * DAY };
  }
  m = /^(\d{4})-(\d{2})$/.exec(key);
  if (m) {
    const y = +m[1]!, mo = +m[2]!;
    if (mo < 1 || mo > 12) throw new RangeError(`"${key}" is not a month`);
    return { kind: 'month', key, start: Date.UTC(y, mo - 1, 1), end: Date.UTC(y, mo, 1) };
  }
  m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(key);
  if (m) {
    const start = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!);
    if (new Date(start).toISOString().slice(0, 10) !== key) throw new RangeError(`"${key}" is not a calendar date`);
    return { kind: 'day', key, start, end: start + DAY };
  }
  throw new RangeError(`"${key}" is not a period: use a day (2026-11-30), an ISO week (2026-W48) or a month (2026-11)`);
}

function isoWeekStart(year: number, week: number): number {
  const jan4 = Date.UTC(year, 0, 4);
  const dow = (new Date(jan4).getUTCDay() + 6) % 7; // Monday 0
  return jan4 - dow * DAY + (week - 1) * 7 * DAY;
}

function isoWeekOf(ts: number): StatementPeriod {
  const dayStart = Math.floor(ts / DAY) * DAY;
  const dow = (new Date(dayStart).getUTCDay() + 6) % 7;
  const monday = dayStart - dow * DAY;
  const thursday = monday + 3 * DAY;
  const year = new Date(thursday).getUTCFullYear();
  const week = Math.floor((monday - isoWeekStart(year, 1)) / (7 * DAY)) + 1;
  return { kind: 'week', key: `${year}-W${String(week).padStart(2, '0')}`, start: monday, end: monday + 7 * DAY };
}

/** The period of `kind` containing `ts`. */
export function periodOf(kind: PeriodKind, ts: number): StatementPeriod {
  if (kind === 'week') return isoWeekOf(ts);
  const d = new Date(ts);
  if (kind === 'month') return parsePeriod(`${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`);
  return parsePeriod(d.toISOString().slice(0, 10));
}

export function nextPeriod(p: StatementPeriod): StatementPeriod {
  return periodOf(p.kind, p.end);
}

/** Closed once the grace time after its end has passed. */
export function isClosed(p: StatementPeriod, now: number, graceMs = DEFAULT_GRACE_MS): boolean {
  return now >= p.end + graceMs;
}

/** A call as a statement reads it. */
export interface StatementCall {
  id: string;
  ts: number;
  provider: string;
  model: string | null;
  workflow: string | null;
  node: string | null;
  costNano: bigint;
  unpriced: boolean;
  items: readonly LineItem[];
}

export interface BillingTerms {
  /** markup in percent, a decimal string ("15", "12.5"), or null */
  markupPct: string | null;
  /** a fixed fee per statement in USD with at most 2 decimals, or null */
  fee: string | null;
}

export interface StatementLine {
  kind: 'usage' | 'adjustment' | 'fee';
  /** for an adjustment: the closed period the calls belonged to */
  originalPeriod: string | null;
  provider: string;
  model: string;
  workflow: string;
  node: string;
  label: string;
  unit: string;
  per: number;
  /** USD per `per` units; "" where calls of this line had no single rate (not itemized) */
  unitPrice: string;
  quantity: string;
  calls: number;
  /** exact sum of the calls' costs */
  cost: string;
  markupPct: string;
  /** cost plus markup, rounded half-even to the cent once for this line */
  billed: string;
}

export interface Statement {
  format: 'tollgate-statement/1';
  project: string;
  period: string;
  periodKind: PeriodKind;
  from: string;
  to: string;
  status: 'open' | 'closed';
  closedAt: string | null;
  calls: number;
  unpricedCalls: number;
  lines: StatementLine[];
  /** exact sum of the line costs (= the ledger's cost of the calls on this statement) */
  cost: string;
  /** sum of the lines' billed amounts, to the cent */
  total: string;
  /** SHA-256 of hashInput(statement), hex; set by whoever has a hash function (the engine) */
  hash: string | null;
}

export interface Acc {
  line: Omit<StatementLine, 'quantity' | 'calls' | 'cost' | 'billed' | 'markupPct'>;
  qNum: bigint;
  qDen: bigint;
  calls: number;
  /** how many calls contributed to this line (a line with none is no line) */
  n: number;
  costNano: bigint;
  /** fast partial sums in exact JS integers (< 2^53), folded into qNum / costNano by settle() */
  qFast?: number;
  cFast?: number;
}

/** Partial sums of a statement's lines over some calls (an hour, say): they add up exactly. */
export interface Aggregate {
  groups: Map<string, Acc>;
  calls: number;
  unpricedCalls: number;
}

const SAFE = 2 ** 52;

/** Fast exact nano of a plain decimal USD string ("0.00045") as a JS integer, or -1 when it needs bigint. */
function costNanoFast(s: string): number {
  const dot = s.indexOf('.');
  if (s.charCodeAt(0) === 45) return -1;
  if (dot < 0) return s.length <= 6 && /^\d+$/.test(s) ? Number(s) * 1e9 : -1;
  const fl = s.length - dot - 1;
  if (fl > 9 || dot > 6) return -1;
  const i = dot === 0 ? 0 : Number(s.slice(0, dot));
  const f = Number(s.slice(dot + 1));
  if (!Number.isInteger(i) || !Number.isInteger(f)) return -1;
  return i * 1e9 + f * POW10[9 - fl]!;
}
const POW10 = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000];

function costNanoOf(s: string): bigint {
  const { num, den } = parseDecimal(s);
  return divHalfEven(num * 1_000_000_000n, den);
}

function addRatio(acc: { qNum: bigint; qDen: bigint }, r: Ratio): void {
  if (r.den === acc.qDen) acc.qNum += r.num;
  else if (r.den < acc.qDen) acc.qNum += r.num * (acc.qDen / r.den);
  else {
    acc.qNum = acc.qNum * (r.den / acc.qDen) + r.num;
    acc.qDen = r.den;
  }
}

/** Fold the fast partial sums into the exact ones. */
function settle(acc: Acc): Acc {
  if (acc.qFast) addRatio(acc, { num: BigInt(acc.qFast), den: 1n });
  if (acc.cFast) acc.costNano += BigInt(acc.cFast);
  acc.qFast = 0;
  acc.cFast = 0;
  return acc;
}

const INT = /^\d{1,15}$/;

/** Billed = cost × (1 + markup/100), rounded half-even to the cent, once. */
export function billedNano(costNano: bigint, markupPct: string | null): bigint {
  const m = parseDecimal(markupPct ?? '0');
  // cents = cost_nano * (100 + m) / 100 / 1e7
  const cents = divHalfEven(costNano * (100n * m.den + m.num), 100n * m.den * NANO_PER_CENT);
  return cents * NANO_PER_CENT;
}

/** The line of unpriced calls without a cost (counted, not billed). */
export const UNPRICED_NOT_BILLED = 'Unpriced calls (not billed)';

/** The grouping key of a line (its sort key too): kind, original period, provider, model, workflow, node, label, unit, per, unit price. */
export function groupKey(kind: string, original: string, provider: string, model: string, workflow: string, node: string, label: string, unit: string, per: number, unitPrice: string): string {
  return `${kind}\u0000${original}\u0000${provider}\u0000${model}\u0000${workflow}\u0000${node}\u0000${label}\u0000${unit}\u0000${per}\u0000${unitPrice}`;
}

/**
 * A usage line's partial sums over some calls of one project and hour, as the ledger stores them
 * (table statement_lines, kept by the ledger writer in the same transaction as the calls).
 */
export interface StoredLine {
  provider: string;
  model: string;
  workflow: string;
  node: string;
  label: string;
  unit: string;
  per: number;
  unitPrice: string;
  /** calls that contributed to the line */
  n: number;
  /** calls the line counts (a call counts on its first line only) */
  calls: number;
  /** exact sum of the quantities, a plain decimal */
  quantity: string;
  costNano: bigint;
}

/** The usage lines of an aggregate, to store (adjustment lines are never stored). */
export function storedLines(agg: Aggregate): StoredLine[] {
  const out: StoredLine[] = [];
  for (const acc of agg.groups.values()) {
    const l = acc.line;
    if (l.kind !== 'usage') continue;
    settle(acc);
    out.push({ provider: l.provider, model: l.model, workflow: l.workflow, node: l.node, label: l.label, unit: l.unit, per: l.per, unitPrice: l.unitPrice,
      n: acc.n, calls: acc.calls, quantity: ratioToDecimal({ num: acc.qNum, den: acc.qDen }), costNano: acc.costNano });
  }
  return out;
}

/** Add stored lines (of any hours) into an aggregate; lines without calls are skipped. */
export function addStoredLines(agg: Aggregate, lines: Iterable<StoredLine>): Aggregate {
  const groups = agg.groups;
  for (const s of lines) {
    if (s.n <= 0) continue;
    const k = groupKey('usage', '', s.provider, s.model, s.workflow, s.node, s.label, s.unit, s.per, s.unitPrice);
    let acc = groups.get(k);
    if (!acc) {
      acc = { line: { kind: 'usage', originalPeriod: null, provider: s.provider, model: s.model, workflow: s.workflow, node: s.node, label: s.label, unit: s.unit, per: s.per, unitPrice: s.unitPrice }, qNum: 0n, qDen: 1n, calls: 0, n: 0, costNano: 0n };
      groups.set(k, acc);
    }
    addRatio(acc, parseDecimal(s.quantity));
    acc.calls += s.calls;
    acc.n += s.n;
    acc.costNano += s.costNano;
    agg.calls += s.calls;
    if (s.label === UNPRICED_NOT_BILLED) agg.unpricedCalls += s.calls;
  }
  return agg;
}

export function emptyAggregate(): Aggregate {
  return { groups: new Map(), calls: 0, unpricedCalls: 0 };
}

/**
 * Add calls to an aggregate: one group per kind, original period, provider, model, workflow, node
 * and price line. A call whose items do not add up to its cost (or has none) is one line of its
 * own kind; an unpriced call without cost is counted, not billed.
 */
export function aggregateCalls(agg: Aggregate, calls: Iterable<StatementCall>, kind: 'usage' | 'adjustment' = 'usage', original: string | null = null, callIds?: string[]): Aggregate {
  const groups = agg.groups;
  const costs: number[] = [];
  const group = (c: StatementCall, prefix: string, label: string, unit: string, per: number, unitPrice: string): Acc => {
    const k = prefix + label + '\u0000' + unit + '\u0000' + per + '\u0000' + unitPrice;
    let acc = groups.get(k);
    if (!acc) {
      acc = { line: { kind, originalPeriod: original, provider: c.provider, model: c.model ?? '(unknown)', workflow: c.workflow ?? '', node: c.node ?? '', label, unit, per, unitPrice }, qNum: 0n, qDen: 1n, calls: 0, n: 0, costNano: 0n, qFast: 0, cFast: 0 };
      groups.set(k, acc);
    }
    acc.n++;
    return acc;
  };
  const addQ = (acc: Acc, quantity: string) => {
    if (INT.test(quantity)) {
      acc.qFast! += Number(quantity);
      if (acc.qFast! > SAFE) settle(acc);
    } else addRatio(acc, parseDecimal(quantity));
  };
  const addC = (acc: Acc, nano: number, exact: bigint | null) => {
    if (exact !== null) acc.costNano += exact;
    else {
      acc.cFast! += nano;
      if (acc.cFast! > SAFE) settle(acc);
    }
  };
  for (const c of calls) {
    agg.calls++;
    callIds?.push(kind === 'adjustment' ? `${c.id}@${original}` : c.id);
    const prefix = `${kind}\u0000${original ?? ''}\u0000${c.provider}\u0000${c.model ?? '(unknown)'}\u0000${c.workflow ?? ''}\u0000${c.node ?? ''}\u0000`;
    if (c.unpriced && c.costNano === 0n) {
      agg.unpricedCalls++;
      const acc = group(c, prefix, UNPRICED_NOT_BILLED, 'call', 1, '');
      acc.qFast! += 1;
      acc.calls++;
      continue;
    }
    // item costs must add up to the call's cost; otherwise the call is one line of its own kind
    const items = c.items;
    let fast = c.costNano < 9_000_000_000_000_000n;
    let sum = 0;
    costs.length = 0;
    for (let i = 0; fast && i < items.length; i++) {
      const n = costNanoFast(items[i]!.cost);
      if (n < 0) fast = false;
      costs.push(n);
      sum += n;
    }
    let itemized: boolean;
    let exact: bigint[] | null = null;
    if (fast) itemized = items.length > 0 && sum === Number(c.costNano);
    else {
      exact = items.map((it) => costNanoOf(it.cost));
      itemized = items.length > 0 && exact.reduce((x, y) => x + y, 0n) === c.costNano;
    }
    if (!itemized) {
      const acc = group(c, prefix, c.unpriced ? 'Unpriced calls (estimated)' : 'Calls (not itemized)', 'call', 1, '');
      acc.qFast! += 1;
      acc.costNano += c.costNano;
      acc.calls++;
      continue;
    }
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      const acc = group(c, prefix, it.label, it.unit, it.per, it.unitPrice);
      addQ(acc, it.quantity);
      addC(acc, costs[i]!, exact ? exact[i]! : null);
      if (i === 0) acc.calls++;
    }
  }
  for (const acc of groups.values()) settle(acc);
  return agg;
}

export function mergeAggregate(into: Aggregate, from: Aggregate): Aggregate {
  into.calls += from.calls;
  into.unpricedCalls += from.unpricedCalls;
  for (const [k, a] of from.groups) {
    const acc = into.groups.get(k);
    if (!acc) {
      into.groups.set(k, { ...a, line: { ...a.line } });
      continue;
    }
    addRatio(acc, { num: a.qNum, den: a.qDen });
    acc.calls += a.calls;
    acc.n += a.n;
    acc.costNano += a.costNano;
  }
  return into;
}

export interface BuildInput {
  project: string;
  period: StatementPeriod;
  status: 'open' | 'closed';
  closedAt: number | null;
  /** the period's own calls */
  calls: Iterable<StatementCall>;
  /** late calls of closed periods, with the period they belonged to */
  adjustments: Iterable<{ call: StatementCall; originalPeriod: string }>;
  terms: BillingTerms;
}

/**
 * Build a statement. Line order is deterministic (sorted by kind, original period, provider, model,
 * workflow, node, label, unit, unit price), so the same calls give the same statement on any device.
 * `callIds` receives every call id on the statement (for the content hash).
 */
export function buildStatement(input: BuildInput, callIds?: string[]): Statement {
  const agg = aggregateCalls(emptyAggregate(), input.calls, 'usage', null, callIds);
  for (const a of input.adjustments) aggregateCalls(agg, [a.call], 'adjustment', a.originalPeriod, callIds);
  return finishStatement(input, agg);
}

/** The statement of an aggregate: lines sorted, billed per line, fee, totals. */
export function finishStatement(input: Pick<BuildInput, 'project' | 'period' | 'status' | 'closedAt' | 'terms'>, agg: Aggregate): Statement {
  const groups = agg.groups;
  const markup = input.terms.markupPct ?? '0';
  const keys = [...groups.keys()].sort();
  const lines: StatementLine[] = [];
  let cost = 0n, total = 0n;
  for (const k of keys) {
    const acc = groups.get(k)!;
    const billed = billedNano(acc.costNano, markup);
    cost += acc.costNano;
    total += billed;
    lines.push({
      ...acc.line, quantity: ratioToDecimal({ num: acc.qNum, den: acc.qDen }), calls: acc.calls,
      cost: nanoToUsd(acc.costNano), markupPct: markup, billed: centsText(billed),
    });
  }
  // a fee bills a statement with calls on it, not an empty period
  if (input.terms.fee && agg.calls > 0) {
    const fee = billedNano(usdToNano(input.terms.fee), null);
    total += fee;
    lines.push({
      kind: 'fee', originalPeriod: null, provider: '', model: '', workflow: '', node: '', label: 'Service fee', unit: 'statement', per: 1,
      unitPrice: centsText(fee), quantity: '1', calls: 0, cost: '0', markupPct: '0', billed: centsText(fee),
    });
  }
  const p = input.period;
  return {
    format: 'tollgate-statement/1', project: input.project, period: p.key, periodKind: p.kind,
    from: new Date(p.start).toISOString(), to: new Date(p.end).toISOString(), status: input.status,
    closedAt: input.closedAt === null ? null : new Date(input.closedAt).toISOString(),
    calls: agg.calls, unpricedCalls: agg.unpricedCalls, lines, cost: nanoToUsd(cost), total: centsText(total), hash: null,
  };
}

/** Nano (a whole number of cents) as "12.30". */
export function centsText(nano: bigint): string {
  const cents = nano / NANO_PER_CENT;
  const neg = cents < 0n;
  const a = (neg ? -cents : cents).toString().padStart(3, '0');
  return `${neg ? '-' : ''}${a.slice(0, -2)}.${a.slice(-2)}`;
}

/**
 * The text a statement's SHA-256 is taken over: its identity, every call id on it (sorted; an
 * adjustment as id@original-period) and every line's numbers. Same calls, same totals: same hash.
 */
export function hashInput(s: Statement, callIds: readonly string[]): string {
  const ids = [...callIds].sort();
  const head = `${s.format}\nproject=${s.project}\nperiod=${s.period}\ncalls=${s.calls}\ncost=${s.cost}\ntotal=${s.total}\n`;
  const lines = s.lines.map((l) => [l.kind, l.originalPeriod ?? '', l.provider, l.model, l.workflow, l.node, l.label, l.unit, l.per, l.unitPrice, l.quantity, l.calls, l.cost, l.markupPct, l.billed].join('\t')).join('\n');
  return head + lines + '\n--calls--\n' + ids.join('\n') + '\n';
}

// ---- renderings (no clock, no locale: the same statement renders to the same bytes) ----

export function renderJson(s: Statement): string {
  return JSON.stringify(s, null, 2) + '\n';
}

const CSV_COLUMNS = ['kind', 'original_period', 'provider', 'model', 'workflow', 'node', 'item', 'unit', 'per', 'unit_price_usd', 'quantity', 'calls', 'cost_usd', 'markup_pct', 'billed_usd'] as const;

function csvCell(v: string | number): string {
  let s = String(v);
  // a cell a spreadsheet would run as a formula is prefixed with a quote
  if (/^[=+\-@\t\r]/.test(s) && !/^-?\d/.test(s)) s = "'" + s;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function renderCsv(s: Statement): string {
  const rows: (string | number)[][] = [[...CSV_COLUMNS]];
  for (const l of s.lines) rows.push([l.kind, l.originalPeriod ?? '', l.provider, l.model, l.workflow, l.node, l.label, l.unit, l.per, l.unitPrice, l.quantity, l.calls, l.cost, l.markupPct, l.billed]);
  rows.push(['total', '', '', '', '', '', `${s.project} ${s.period} (${s.status}${s.hash ? ' sha256 ' + s.hash : ''})`, '', '', '', '', s.calls, s.cost, '', s.total]);
  return rows.map((r) => r.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

const esc = (v: string | number) => String(v).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function groupDigits(usd: string): string {
  const [i, f] = usd.split('.');
  return '$' + i!.replace(/\B(?=(\d{3})+(?!\d))/g, ',') + (f ? '.' + f : '');
}

/** A printable page a client can read (print to PDF from a browser or Electron's printToPDF). */
export function renderHtml(s: Statement): string {
  const perText = (l: StatementLine) => (l.unitPrice === '' ? '—' : `$${l.unitPrice}${l.per > 1 ? ` / ${l.per === 1_000_000 ? '1M' : l.per === 1000 ? '1K' : l.per} ${l.unit}s` : ` / ${l.unit}`}`);
  const what = (l: StatementLine) => l.kind === 'fee' ? 'Service fee' : `${esc(l.model)}${l.workflow ? ` · ${esc(l.workflow)}` : ''}${l.node ? ` · ${esc(l.node)}` : ''}<br><small>${esc(l.provider)} — ${esc(l.label)}${l.kind === 'adjustment' ? ` — prior-period adjustment for ${esc(l.originalPeriod ?? '')}` : ''}</small>`;
  const rows = s.lines.map((l, i) => `<tr data-line="${i}" class="${l.kind}"><td>${what(l)}</td><td class="n">${esc(l.quantity)} ${esc(l.unit)}${l.quantity === '1' ? '' : 's'}</td><td class="n">${esc(perText(l))}</td><td class="n">${esc(l.cost === '0' ? '' : groupDigits(l.cost))}</td><td class="n">${esc(l.markupPct === '0' ? '' : l.markupPct + ' %')}</td><td class="n" data-billed>${esc(groupDigits(l.billed))}</td></tr>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Statement ${esc(s.project)} ${esc(s.period)}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#111;margin:40px auto;max-width:960px;padding:0 24px}
h1{font-size:22px;margin:0 0 4px}.meta{color:#555;margin:0 0 24px}table{border-collapse:collapse;width:100%}
th,td{padding:6px 8px;border-bottom:1px solid #ddd;vertical-align:top;text-align:left}th{background:#f4f4f4;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}small{color:#666}tr.adjustment td{background:#fff8e6}
tfoot td{font-weight:700;border-top:2px solid #111;border-bottom:none}.hash{font:11px ui-monospace,monospace;color:#666;word-break:break-all;margin-top:24px}
@media print{body{margin:0}}
</style></head><body>
<h1>Statement — ${esc(s.project)}</h1>
<p class="meta">Period <b>${esc(s.period)}</b> (${esc(s.from.slice(0, 10))} to ${esc(s.to.slice(0, 10))}, UTC, end exclusive) · ${s.status === 'closed' ? `closed ${esc((s.closedAt ?? '').slice(0, 16).replace('T', ' '))} UTC` : 'open: running totals, may still change'} · ${s.calls} call${s.calls === 1 ? '' : 's'}${s.unpricedCalls ? ` (${s.unpricedCalls} unpriced, not billed)` : ''}</p>
<table><thead><tr><th>Item</th><th class="n">Quantity</th><th class="n">Unit rate</th><th class="n">Cost</th><th class="n">Markup</th><th class="n">Billed</th></tr></thead>
<tbody>
${rows}
</tbody>
<tfoot><tr><td colspan="3">Total</td><td class="n" data-cost>${esc(groupDigits(s.cost))}</td><td></td><td class="n" data-total>${esc(groupDigits(s.total))}</td></tr></tfoot></table>
<p class="meta">Each line's billed amount is its cost plus markup, rounded half-even to the cent once; the total is the sum of the lines.</p>
${s.hash ? `<p class="hash">SHA-256 ${esc(s.hash)}</p>` : ''}
</body></html>
`;
}
