/**
 * Reconciliation with the provider's bill, pure: detect which provider export a CSV is (by its
 * column set), read it into day × model amounts, and compare them with the ledger's.
 *
 * Supported exports (columns required; other columns are ignored):
 *   openai     cost export:   start_time, amount_value, amount_currency, line_item   (line_item "gpt-4o-mini-2024-07-18, input")
 *              usage export:  start_time, model, input_tokens, output_tokens [, input_cached_tokens]
 *   anthropic  usage export:  usage_date_utc, model_version, usage_input_tokens_no_cache, usage_input_tokens_cache_write_5m,
 *                             usage_input_tokens_cache_write_1h, usage_input_tokens_cache_read, usage_output_tokens [, web_search_count]
 *              cost export:   usage_date_utc, model, token_type, cost_usd
 *   openrouter activity export: generation_id, created_at, cost_total, tokens_prompt, tokens_completion [, model_permaslug | model]
 *              joined per generation: each row's generation_id with the call whose response carried
 *              that id (the call's upstreamId, OpenRouter's "gen-…"). Each generation is matched, cost
 *              differs, billed but not metered, or (a metered call with no row) metered but not
 *              billed; a generation matches when |Tollgate − OpenRouter| <= max(1 % of OpenRouter's
 *              cost, $0.000001). The view still rolls them up per day × model.
 * Usage exports carry tokens, not dollars: their cost is the provider's token counts priced with
 * Tollgate's catalog (the caller passes the pricing function), and says so.
 *
 * Days are UTC. Models match after normalization (lower case, no "vendor/" prefix, no date suffix).
 * A day × model matches when |Tollgate − provider| <= max(1 % of the provider's amount, $0.01).
 * A day × model the provider billed but Tollgate has no call for is "billed by the provider but not
 * metered" (calls that bypassed Tollgate, or failed and were still billed).
 * Unknown columns: an error naming what was expected; nothing is imported.
 */
import { parse } from 'csv-parse/sync';
import { nanoToUsd, usdToNano } from './money.ts';
import type { Usage } from './usage.ts';

export type ReconcileProvider = 'openai' | 'anthropic' | 'openrouter';
export type ExportFormat = 'openai-cost' | 'openai-usage' | 'anthropic-usage' | 'anthropic-cost' | 'openrouter-activity';

export const EXPORT_COLUMNS: Record<ExportFormat, { provider: ReconcileProvider; required: string[]; label: string }> = {
  'openai-cost': { provider: 'openai', required: ['start_time', 'amount_value', 'amount_currency', 'line_item'], label: 'OpenAI cost export' },
  'openai-usage': { provider: 'openai', required: ['start_time', 'model', 'input_tokens', 'output_tokens'], label: 'OpenAI usage export' },
  'anthropic-usage': {
    provider: 'anthropic',
    required: ['usage_date_utc', 'model_version', 'usage_input_tokens_no_cache', 'usage_input_tokens_cache_write_5m', 'usage_input_tokens_cache_write_1h', 'usage_input_tokens_cache_read', 'usage_output_tokens'],
    label: 'Anthropic usage export',
  },
  'anthropic-cost': { provider: 'anthropic', required: ['usage_date_utc', 'model', 'token_type', 'cost_usd'], label: 'Anthropic cost export' },
  'openrouter-activity': { provider: 'openrouter', required: ['generation_id', 'created_at', 'cost_total', 'tokens_prompt', 'tokens_completion'], label: 'OpenRouter activity export' },
};

export class ReconcileError extends Error {
  readonly code = 'E_VALIDATION';
}

export interface ProviderAmount {
  day: string;
  model: string;
  /** null when the export has tokens only and the model has no price */
  costNano: bigint | null;
  usage: Usage | null;
  rows: number;
}

export interface ParsedExport {
  format: ExportFormat;
  label: string;
  /** true when amounts are the provider's token counts priced by Tollgate */
  pricedByTollgate: boolean;
  amounts: ProviderAmount[];
  rows: number;
  /** Per generation (the OpenRouter activity export): one entry per row, by generation id. */
  generations?: ProviderGeneration[];
}

export interface ProviderGeneration {
  id: string;
  day: string;
  /** normalized; "*" when the export has no model column */
  model: string;
  costNano: bigint;
  tokensPrompt: number;
  tokensCompletion: number;
}

/** Lower case, no "vendor/" prefix, no ":variant", no trailing date (-2024-07-18, -20250929), spaces and dots as dashes. */
export function normalizeModel(model: string): string {
  let m = model.trim().toLowerCase();
  const slash = m.lastIndexOf('/');
  if (slash >= 0) m = m.slice(slash + 1);
  m = m.replace(/:[a-z]+$/, '');
  m = m.replace(/-\d{4}-\d{2}-\d{2}$/, '').replace(/-\d{8}$/, '');
  // display names ("Claude Sonnet 4.5") and ids ("claude-sonnet-4-5") meet in the middle
  return m.replace(/[\s._]+/g, '-');
}

function dayOf(value: string, column: string, line: number): string {
  const v = value.trim();
  let ts: number;
  if (/^\d{9,13}$/.test(v)) ts = v.length >= 12 ? Number(v) : Number(v) * 1000;
  else if (/^\d{4}-\d{2}-\d{2}$/.test(v)) ts = Date.parse(v + 'T00:00:00Z');
  else ts = Date.parse(/[zZ]|[+-]\d{2}:?\d{2}$/.test(v) ? v : v.replace(' ', 'T') + 'Z');
  if (!Number.isFinite(ts)) throw new ReconcileError(`line ${line}: ${column} "${v.slice(0, 40)}" is not a date or time`);
  return new Date(ts).toISOString().slice(0, 10);
}

function count(value: string | undefined, column: string, line: number): number {
  const v = (value ?? '').trim();
  if (v === '') return 0;
  if (!/^\d+(\.0+)?$/.test(v)) throw new ReconcileError(`line ${line}: ${column} "${v.slice(0, 40)}" is not a whole number`);
  const n = Number(v.split('.')[0]);
  if (!Number.isSafeInteger(n)) throw new ReconcileError(`line ${line}: ${column} is too large`);
  return n;
}

function usd(value: string | undefined, column: string, line: number): bigint {
  const v = (value ?? '').trim().replace(/^\$/, '');
  if (v === '') return 0n;
  try {
    return usdToNano(v);
  } catch {
    throw new ReconcileError(`line ${line}: ${column} "${v.slice(0, 40)}" is not an amount`);
  }
}

/** Which export a header row is, for this provider; an error naming the expected columns otherwise. */
export function detectFormat(provider: ReconcileProvider, header: readonly string[]): ExportFormat {
  const cols = new Set(header.map((h) => h.trim().toLowerCase()));
  const candidates = (Object.keys(EXPORT_COLUMNS) as ExportFormat[]).filter((f) => EXPORT_COLUMNS[f].provider === provider);
  // the format with the most required columns that all match (usage before cost when both fit)
  const fits = candidates.filter((f) => EXPORT_COLUMNS[f].required.every((c) => cols.has(c)));
  if (fits.length) return fits.sort((a, b) => EXPORT_COLUMNS[b].required.length - EXPORT_COLUMNS[a].required.length)[0]!;
  const expected = candidates.map((f) => `${EXPORT_COLUMNS[f].label}: ${EXPORT_COLUMNS[f].required.join(', ')}`).join('; or ');
  const missing = candidates.map((f) => EXPORT_COLUMNS[f].required.filter((c) => !cols.has(c)));
  const closest = missing.sort((a, b) => a.length - b.length)[0] ?? [];
  throw new ReconcileError(`not an export of ${provider} that Tollgate can read: expected the columns of the ${expected}. `
    + `This file has: ${[...cols].slice(0, 30).join(', ') || '(no header)'}${closest.length ? ` (missing ${closest.join(', ')})` : ''}. Nothing was imported.`);
}

/**
 * Read an export. `price` turns a model's token usage into nano-USD with Tollgate's catalog (null:
 * the model has no price); used for the token-only usage exports.
 */
export function parseExport(provider: ReconcileProvider, text: string, price: (model: string, usage: Usage) => bigint | null): ParsedExport {
  let records: string[][];
  try {
    records = parse(text.replace(/^\uFEFF/, ''), { relax_column_count: true, skip_empty_lines: true, trim: true }) as string[][];
  } catch (e) {
    throw new ReconcileError(`not a CSV file: ${(e as Error).message}. Nothing was imported.`);
  }
  if (records.length === 0) throw new ReconcileError('the file is empty: expected a CSV export with a header row. Nothing was imported.');
  const header = records[0]!.map((h) => h.trim().toLowerCase());
  const format = detectFormat(provider, header);
  const ix = (c: string) => header.indexOf(c);
  const get = (r: string[], c: string) => (ix(c) >= 0 ? r[ix(c)] : undefined);
  const groups = new Map<string, ProviderAmount>();
  const bucket = (day: string, model: string): ProviderAmount => {
    const k = `${day}\u0000${model}`;
    let g = groups.get(k);
    if (!g) {
      g = { day, model, costNano: 0n, usage: null, rows: 0 };
      groups.set(k, g);
    }
    g.rows++;
    return g;
  };
  const addUsage = (g: ProviderAmount, u: Usage) => {
    const acc = (g.usage ??= {}) as Record<string, number>;
    for (const [k, v] of Object.entries(u)) if (typeof v === 'number' && v) acc[k] = (acc[k] ?? 0) + v;
  };
  let rows = 0;
  const generations: ProviderGeneration[] = [];
  const seenGenerations = new Set<string>();
  for (let i = 1; i < records.length; i++) {
    const r = records[i]!;
    const line = i + 1;
    if (r.every((c) => c === '')) continue;
    rows++;
    switch (format) {
      case 'openai-cost': {
        const cur = (get(r, 'amount_currency') ?? '').trim().toLowerCase();
        if (cur && cur !== 'usd') throw new ReconcileError(`line ${line}: amount_currency is "${cur}", only USD is supported. Nothing was imported.`);
        const item = get(r, 'line_item') ?? '';
        const model = normalizeModel(item.split(',')[0] ?? item);
        const g = bucket(dayOf(get(r, 'start_time')!, 'start_time', line), model || '(none)');
        g.costNano! += usd(get(r, 'amount_value'), 'amount_value', line);
        break;
      }
      case 'openai-usage': {
        const cached = count(get(r, 'input_cached_tokens'), 'input_cached_tokens', line);
        const input = count(get(r, 'input_tokens'), 'input_tokens', line);
        if (cached > input) throw new ReconcileError(`line ${line}: input_cached_tokens exceeds input_tokens`);
        const g = bucket(dayOf(get(r, 'start_time')!, 'start_time', line), normalizeModel(get(r, 'model') ?? ''));
        addUsage(g, { inputTokens: input - cached, cacheReadTokens: cached, outputTokens: count(get(r, 'output_tokens'), 'output_tokens', line) });
        break;
      }
      case 'anthropic-usage': {
        const g = bucket(dayOf(get(r, 'usage_date_utc')!, 'usage_date_utc', line), normalizeModel(get(r, 'model_version') ?? ''));
        addUsage(g, {
          inputTokens: count(get(r, 'usage_input_tokens_no_cache'), 'usage_input_tokens_no_cache', line),
          cacheWrite5mTokens: count(get(r, 'usage_input_tokens_cache_write_5m'), 'usage_input_tokens_cache_write_5m', line),
          cacheWrite1hTokens: count(get(r, 'usage_input_tokens_cache_write_1h'), 'usage_input_tokens_cache_write_1h', line),
          cacheReadTokens: count(get(r, 'usage_input_tokens_cache_read'), 'usage_input_tokens_cache_read', line),
          outputTokens: count(get(r, 'usage_output_tokens'), 'usage_output_tokens', line),
          webSearches: count(get(r, 'web_search_count'), 'web_search_count', line),
        });
        break;
      }
      case 'anthropic-cost': {
        const g = bucket(dayOf(get(r, 'usage_date_utc')!, 'usage_date_utc', line), normalizeModel(get(r, 'model') ?? ''));
        g.costNano! += usd(get(r, 'cost_usd'), 'cost_usd', line);
        break;
      }
      case 'openrouter-activity': {
        const model = get(r, 'model_permaslug') ?? get(r, 'model') ?? get(r, 'model_name');
        const day = dayOf(get(r, 'created_at')!, 'created_at', line);
        const m = model === undefined ? '*' : normalizeModel(model);
        const cost = usd(get(r, 'cost_total'), 'cost_total', line);
        const id = (get(r, 'generation_id') ?? '').trim();
        if (!id) throw new ReconcileError(`line ${line}: generation_id is empty. Nothing was imported.`);
        if (seenGenerations.has(id)) throw new ReconcileError(`line ${line}: generation_id ${id.slice(0, 60)} appears twice. Nothing was imported.`);
        seenGenerations.add(id);
        generations.push({ id, day, model: m, costNano: cost, tokensPrompt: count(get(r, 'tokens_prompt'), 'tokens_prompt', line), tokensCompletion: count(get(r, 'tokens_completion'), 'tokens_completion', line) });
        const g = bucket(day, m);
        g.costNano! += cost;
        break;
      }
    }
  }
  const pricedByTollgate = format === 'openai-usage' || format === 'anthropic-usage';
  const amounts = [...groups.values()];
  if (pricedByTollgate) for (const g of amounts) g.costNano = price(g.model, g.usage ?? {});
  amounts.sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : a.model < b.model ? -1 : a.model > b.model ? 1 : 0));
  return { format, label: EXPORT_COLUMNS[format].label, pricedByTollgate, amounts, rows, ...(format === 'openrouter-activity' ? { generations } : {}) };
}

export interface LedgerAmount {
  day: string;
  /** as recorded; normalized here */
  model: string;
  costNano: bigint;
  calls: number;
}

export interface ReconcileRow {
  day: string;
  model: string;
  tollgate: string;
  provider: string | null;
  difference: string;
  calls: number;
  status: 'match' | 'mismatch' | 'unmetered' | 'not billed' | 'unpriced';
  /** Joined per generation (OpenRouter): how this day × model's generations compare. */
  generations?: GenerationCounts;
}

export interface GenerationCounts {
  matched: number;
  costDiffers: number;
  billedNotMetered: number;
  meteredNotBilled: number;
}

export type GenerationStatus = 'matched' | 'cost differs' | 'billed, not metered' | 'metered, not billed';

export interface GenerationRow {
  /** null: a metered call whose response carried no generation id */
  generationId: string | null;
  callId: string | null;
  day: string;
  model: string;
  tollgate: string | null;
  provider: string | null;
  difference: string;
  status: GenerationStatus;
}

/** A metered call, for the join per generation. */
export interface LedgerGeneration {
  callId: string;
  upstreamId: string | null;
  day: string;
  model: string;
  costNano: bigint;
}

export interface ReconcileResult {
  provider: ReconcileProvider;
  format: ExportFormat;
  label: string;
  pricedByTollgate: boolean;
  from: string;
  to: string;
  rows: ReconcileRow[];
  tollgateTotal: string;
  providerTotal: string;
  difference: string;
  /** billed by the provider but not metered: the provider's amount on days × models without calls */
  unmetered: string;
  mismatches: number;
  daily: { day: string; tollgate: string; provider: string; difference: string }[];
  /** Joined per generation (OpenRouter): every generation that is not matched, and the counts. */
  generations?: { counts: GenerationCounts; unmatched: GenerationRow[] };
}

/** A generation matches when within max(1 % of the provider's cost, $0.000001). */
export function generationWithin(tollgate: bigint, provider: bigint): boolean {
  const diff = tollgate > provider ? tollgate - provider : provider - tollgate;
  const abs = provider < 0n ? -provider : provider;
  return diff <= 1_000n || diff * 100n <= abs;
}

/**
 * Join the OpenRouter activity export with the ledger per generation id: each exported generation
 * is matched with the call whose response carried its id; calls with no exported generation (on
 * the export's days) are metered but not billed. The results roll up per day × model (the
 * provider's day and model for a joined generation, the call's for an unbilled one).
 */
export function reconcileGenerations(provider: ReconcileProvider, parsed: ParsedExport, ledger: readonly LedgerGeneration[]): ReconcileResult {
  const gens = parsed.generations ?? [];
  const days = new Set(gens.map((g) => g.day));
  const byUpstream = new Map<string, LedgerGeneration>();
  for (const l of ledger) if (l.upstreamId) byUpstream.set(l.upstreamId, l);
  const zero = (): GenerationCounts => ({ matched: 0, costDiffers: 0, billedNotMetered: 0, meteredNotBilled: 0 });
  const groups = new Map<string, { day: string; model: string; t: bigint; p: bigint; calls: number; counts: GenerationCounts; unmetered: bigint }>();
  const group = (day: string, model: string) => {
    const k = `${day}\u0000${model}`;
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { day, model, t: 0n, p: 0n, calls: 0, counts: zero(), unmetered: 0n }));
    return g;
  };
  const counts = zero();
  const unmatched: GenerationRow[] = [];
  const joined = new Set<string>();
  for (const p of gens) {
    const l = byUpstream.get(p.id);
    const model = p.model === '*' && l ? normalizeModel(l.model) : p.model;
    const g = group(p.day, model);
    g.p += p.costNano;
    if (!l) {
      g.counts.billedNotMetered++;
      counts.billedNotMetered++;
      g.unmetered += p.costNano;
      unmatched.push({ generationId: p.id, callId: null, day: p.day, model, tollgate: null, provider: nanoToUsd(p.costNano), difference: nanoToUsd(-p.costNano), status: 'billed, not metered' });
      continue;
    }
    joined.add(l.callId);
    g.t += l.costNano;
    g.calls++;
    if (generationWithin(l.costNano, p.costNano)) {
      g.counts.matched++;
      counts.matched++;
    } else {
      g.counts.costDiffers++;
      counts.costDiffers++;
      unmatched.push({ generationId: p.id, callId: l.callId, day: p.day, model, tollgate: nanoToUsd(l.costNano), provider: nanoToUsd(p.costNano), difference: nanoToUsd(l.costNano - p.costNano), status: 'cost differs' });
    }
  }
  for (const l of ledger) {
    if (joined.has(l.callId) || !days.has(l.day) || l.costNano === 0n) continue;
    const model = normalizeModel(l.model);
    const g = group(l.day, model);
    g.t += l.costNano;
    g.calls++;
    g.counts.meteredNotBilled++;
    counts.meteredNotBilled++;
    unmatched.push({ generationId: l.upstreamId, callId: l.callId, day: l.day, model, tollgate: nanoToUsd(l.costNano), provider: null, difference: nanoToUsd(l.costNano), status: 'metered, not billed' });
  }
  const rows: ReconcileRow[] = [];
  let tTotal = 0n, pTotal = 0n, unmetered = 0n, mismatches = 0;
  const daily = new Map<string, { t: bigint; p: bigint }>();
  for (const g of [...groups.values()].sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : a.model < b.model ? -1 : a.model > b.model ? 1 : 0))) {
    // the worst of its generations names the row: billed but not metered, then metered but not billed, then the day's tolerance
    const status: ReconcileRow['status'] = g.counts.billedNotMetered ? 'unmetered' : g.counts.meteredNotBilled ? 'not billed' : withinTolerance(g.t, g.p) ? 'match' : 'mismatch';
    if (status !== 'match') mismatches++;
    unmetered += g.unmetered;
    tTotal += g.t;
    pTotal += g.p;
    const d = daily.get(g.day) ?? { t: 0n, p: 0n };
    d.t += g.t;
    d.p += g.p;
    daily.set(g.day, d);
    rows.push({ day: g.day, model: g.model, tollgate: nanoToUsd(g.t), provider: nanoToUsd(g.p), difference: nanoToUsd(g.t - g.p), calls: g.calls, status, generations: g.counts });
  }
  const sortedDays = [...days].sort();
  return {
    provider, format: parsed.format, label: parsed.label, pricedByTollgate: parsed.pricedByTollgate,
    from: sortedDays[0] ?? '', to: sortedDays[sortedDays.length - 1] ?? '',
    rows, tollgateTotal: nanoToUsd(tTotal), providerTotal: nanoToUsd(pTotal), difference: nanoToUsd(tTotal - pTotal),
    unmetered: nanoToUsd(unmetered), mismatches,
    daily: [...daily.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([day, v]) => ({ day, tollgate: nanoToUsd(v.t), provider: nanoToUsd(v.p), difference: nanoToUsd(v.t - v.p) })),
    generations: { counts, unmatched },
  };
}

/** Tolerance: max(1 % of the provider's amount, $0.01). */
export function withinTolerance(tollgate: bigint, provider: bigint): boolean {
  const diff = tollgate > provider ? tollgate - provider : provider - tollgate;
  const abs = provider < 0n ? -provider : provider;
  return diff <= 10_000_000n || diff * 100n <= abs;
}

/**
 * Compare per day × model over the export's days (the ledger amounts should cover the same days).
 * With a model-less export (model "*"), the ledger is compared per day over all models.
 */
export function reconcile(provider: ReconcileProvider, parsed: ParsedExport, ledger: readonly LedgerAmount[]): ReconcileResult {
  const days = new Set(parsed.amounts.map((a) => a.day));
  const allModels = parsed.amounts.length > 0 && parsed.amounts.every((a) => a.model === '*');
  const ours = new Map<string, { cost: bigint; calls: number }>();
  for (const l of ledger) {
    if (!days.has(l.day)) continue;
    const k = `${l.day}\u0000${allModels ? '*' : normalizeModel(l.model)}`;
    const o = ours.get(k) ?? { cost: 0n, calls: 0 };
    o.cost += l.costNano;
    o.calls += l.calls;
    ours.set(k, o);
  }
  const theirs = new Map(parsed.amounts.map((a) => [`${a.day}\u0000${a.model}`, a]));
  const keys = [...new Set([...ours.keys(), ...theirs.keys()])].sort();
  const rows: ReconcileRow[] = [];
  let tTotal = 0n, pTotal = 0n, unmetered = 0n, mismatches = 0;
  const daily = new Map<string, { t: bigint; p: bigint }>();
  for (const k of keys) {
    const [day, model] = k.split('\u0000') as [string, string];
    const o = ours.get(k);
    const p = theirs.get(k);
    const t = o?.cost ?? 0n;
    const pc = p ? p.costNano : 0n;
    let status: ReconcileRow['status'];
    if (p && pc === null) status = 'unpriced';
    else if (!o || (o.calls === 0)) status = (pc ?? 0n) === 0n ? 'match' : 'unmetered';
    else if (!p) status = t === 0n ? 'match' : 'not billed';
    else status = withinTolerance(t, pc!) ? 'match' : 'mismatch';
    if (status === 'unmetered') unmetered += pc ?? 0n;
    if (status === 'mismatch' || status === 'not billed' || status === 'unmetered') mismatches++;
    tTotal += t;
    pTotal += pc ?? 0n;
    const d = daily.get(day) ?? { t: 0n, p: 0n };
    d.t += t;
    d.p += pc ?? 0n;
    daily.set(day, d);
    rows.push({
      day, model, tollgate: nanoToUsd(t), provider: p ? (pc === null ? null : nanoToUsd(pc)) : '0',
      difference: nanoToUsd(t - (pc ?? 0n)), calls: o?.calls ?? 0, status,
    });
  }
  const sortedDays = [...days].sort();
  return {
    provider, format: parsed.format, label: parsed.label, pricedByTollgate: parsed.pricedByTollgate,
    from: sortedDays[0] ?? '', to: sortedDays[sortedDays.length - 1] ?? '',
    rows, tollgateTotal: nanoToUsd(tTotal), providerTotal: nanoToUsd(pTotal), difference: nanoToUsd(tTotal - pTotal),
    unmetered: nanoToUsd(unmetered), mismatches,
    daily: [...daily.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([day, v]) => ({ day, tollgate: nanoToUsd(v.t), provider: nanoToUsd(v.p), difference: nanoToUsd(v.t - v.p) })),
  };
}
