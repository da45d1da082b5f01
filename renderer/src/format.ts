/**
 * Display formatting. Money arrives as decimal strings ("0.00045") and is formatted from the
 * string: digits are handled as text / BigInt integers (exact), never parseFloat or Number().
 * The only place a money value becomes a JS number is the chart adapter (renderer/src/chart.ts),
 * and only for bar heights.
 */

import { displayDecimals, divHalfEven, nanoToUsd, usdToNano } from '../../shared/money.ts';
import { totalInputTokens, totalOutputTokens, type Usage } from '../../shared/usage.ts';

const DECIMAL = /^(-)?(\d+)(?:\.(\d+))?$/;
const NANO_DIGITS = 9;

// Exact conversions and half-even rounding come from the shared money module (pure, browser-safe).
export { usdToNano, nanoToUsd };

export function isDecimal(text: string): boolean {
  return DECIMAL.test(text.trim());
}

export function addUsd(...values: string[]): string {
  let total = 0n;
  for (const v of values) total += safeNano(v);
  return nanoToUsd(total);
}

export function subUsd(a: string, b: string): string {
  return nanoToUsd(safeNano(a) - safeNano(b));
}

export function compareUsd(a: string, b: string): number {
  const d = safeNano(a) - safeNano(b);
  return d === 0n ? 0 : d < 0n ? -1 : 1;
}

export function isZeroUsd(a: string): boolean {
  return safeNano(a) === 0n;
}

function safeNano(v: string): bigint {
  try {
    return usdToNano(v);
  } catch {
    return 0n;
  }
}

const separatorCache = new Map<string, { group: string; decimal: string }>();
function separators(locale?: string): { group: string; decimal: string } {
  const key = locale ?? '';
  let s = separatorCache.get(key);
  if (!s) {
    // a constant sample number, only to learn the locale's separators
    const parts = new Intl.NumberFormat(locale).formatToParts(12345.6);
    s = {
      group: parts.find((p) => p.type === 'group')?.value ?? ',',
      decimal: parts.find((p) => p.type === 'decimal')?.value ?? '.',
    };
    separatorCache.set(key, s);
  }
  return s;
}

function roundHalfEven(nano: bigint, keepDecimals: number): bigint {
  return divHalfEven(nano, 10n ** BigInt(NANO_DIGITS - keepDecimals));
}

export interface FormatUsdOptions {
  /** fixed number of decimals; default: 2, or 3 significant digits (up to 9 decimals) under $1 */
  decimals?: number;
  /** drop to a compact "$12.3k" form above this many whole dollars */
  compact?: boolean;
  /** prefix "+" on positive values */
  signed?: boolean;
  /** show every significant decimal (at least 2): for unit prices, which must never be rounded */
  exact?: boolean;
}

/**
 * Format a decimal-string USD amount for display. String/BigInt arithmetic only.
 *   formatUsd("1234.5")      → "$1,234.50"
 *   formatUsd("0.00045")     → "$0.00045"
 *   formatUsd("1234.5","de") → "$1.234,50"
 */
export function formatUsd(usd: string | null | undefined, locale?: string, opts: FormatUsdOptions = {}): string {
  if (usd === null || usd === undefined || usd === '') return '—';
  let nano: bigint;
  try {
    nano = usdToNano(usd);
  } catch {
    return usd;
  }
  const neg = nano < 0n;
  const abs = neg ? -nano : nano;
  const { group, decimal } = separators(locale);
  let decimals = opts.decimals ?? 2;
  if (opts.exact) {
    const frac = (abs % 1_000_000_000n).toString().padStart(NANO_DIGITS, '0').replace(/0+$/, '');
    decimals = Math.max(2, frac.length);
  } else if (opts.decimals === undefined && abs !== 0n && abs < 1_000_000_000n) {
    decimals = displayDecimals(abs); // the one rule, shared with the CLI
  }
  let suffix = '';
  let rounded: bigint;
  let fracDigits = decimals;
  if (opts.compact && abs >= 10_000n * 1_000_000_000n) {
    const units: [bigint, string][] = [
      [1_000_000_000n * 1_000_000_000n, 'B'],
      [1_000_000n * 1_000_000_000n, 'M'],
      [1_000n * 1_000_000_000n, 'k'],
    ];
    const [div, s] = units.find(([d]) => abs >= d) ?? units[2]!;
    // one decimal of the scaled value, half-even
    const tenths = (abs * 10n) / div;
    const rem = (abs * 10n) % div;
    const up = rem * 2n > div || (rem * 2n === div && tenths % 2n === 1n);
    rounded = tenths + (up ? 1n : 0n);
    fracDigits = 1;
    suffix = s;
  } else {
    rounded = roundHalfEven(abs, decimals);
  }
  const digits = rounded.toString().padStart(fracDigits + 1, '0');
  const intDigits = digits.slice(0, digits.length - fracDigits);
  let frac = digits.slice(digits.length - fracDigits);
  if (opts.decimals === undefined) {
    // trim trailing zeros beyond two decimals (keep "$0.50", "$0.00045")
    const min = suffix ? 0 : 2;
    frac = frac.replace(/0+$/, '');
    if (frac.length < min) frac = frac.padEnd(min, '0');
  }
  const grouped = intDigits.replace(/\B(?=(\d{3})+(?!\d))/g, group);
  const sign = neg ? '−' : opts.signed && abs !== 0n ? '+' : '';
  return `${sign}$${grouped}${frac ? decimal + frac : ''}${suffix}`;
}

/** A chart axis tick (a float recharts chose) with the same significant digits as any amount. */
export function formatUsdTick(v: number, locale?: string): string {
  if (!Number.isFinite(v)) return '';
  return formatUsd(Number(v.toPrecision(12)).toFixed(NANO_DIGITS), locale, Math.abs(v) >= 100 ? { decimals: 0 } : {});
}

/** Percent change of `current` vs `previous` (decimal strings), or null when previous is zero. */
export function percentChange(current: string, previous: string): number | null {
  const prev = safeNano(previous);
  if (prev === 0n) return null;
  const cur = safeNano(current);
  // tenths of a percent, as an integer: a display ratio, not money
  const tenths = ((cur - prev) * 1000n) / prev;
  return Number(tenths) / 10;
}

/** a / b as a display multiple ("×13.3"), or null when b is zero. */
export function formatMultiple(a: string, b: string): string | null {
  const d = safeNano(b);
  if (d <= 0n) return null;
  const tenths = (safeNano(a) * 10n) / d;
  return tenths >= 1000n ? `×${tenths / 10n}` : `×${tenths / 10n}.${tenths % 10n}`;
}

/** spent / limit as a display percent (integer tenths → number), clamped to [0, 1000]. */
export function ratioPercent(part: string, whole: string): number {
  const w = safeNano(whole);
  if (w <= 0n) return 0;
  const tenths = (safeNano(part) * 1000n) / w;
  const clamped = tenths < 0n ? 0n : tenths > 10000n ? 10000n : tenths;
  return Number(clamped) / 10;
}

export function formatPercent(p: number | null, signed = false): string {
  if (p === null) return '—';
  const s = Math.abs(p) >= 100 ? Math.round(p).toString() : p.toFixed(1).replace(/\.0$/, '');
  return (signed && p > 0 ? '+' : '') + s + '%';
}

/** "1 call", "2 calls", "1,204 calls". */
export function formatCountOf(n: number, word: string, locale?: string): string {
  return `${formatCount(n, locale)} ${n === 1 ? word : word + 's'}`;
}

export function formatCount(n: number, locale?: string): string {
  return new Intl.NumberFormat(locale).format(n);
}

export function formatQuantity(q: string, locale?: string): string {
  const m = DECIMAL.exec(q.trim());
  if (!m) return q;
  const [, sign, int = '0', frac = ''] = m;
  const { group, decimal } = separators(locale);
  return (sign ?? '') + int.replace(/\B(?=(\d{3})+(?!\d))/g, group) + (frac ? decimal + frac : '');
}

/** "$3.00 / 1M tokens", "$0.04 / image" */
export function formatUnitPrice(unitPrice: string, per: number, unit: string, locale?: string): string {
  const perText = per === 1 ? '' : per === 1_000_000 ? '1M ' : per === 1000 ? '1k ' : `${formatCount(per, locale)} `;
  const unitText = per === 1 ? unit : `${unit}s`;
  return `${formatUsd(unitPrice, locale, { exact: true })} / ${perText}${unitText}`;
}

export function formatDateTime(ts: number, timeZone?: string, locale?: string): string {
  return new Intl.DateTimeFormat(locale, {
    timeZone,
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23', // one time format everywhere (as in the Calls table and the CLI)
  }).format(ts);
}

export function formatDate(ts: number, timeZone?: string, locale?: string): string {
  return new Intl.DateTimeFormat(locale, { timeZone, year: 'numeric', month: 'short', day: 'numeric' }).format(ts);
}

export function formatTime(ts: number, timeZone?: string, locale?: string): string {
  return new Intl.DateTimeFormat(locale, { timeZone, month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }).format(ts);
}

/** "3 d 4 h", "5 h 12 min", "40 s" */
export function formatDuration(ms: number): string {
  if (ms <= 0) return 'now';
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return h > 0 ? `${d} d ${h} h` : `${d} d`;
  if (h > 0) return m > 0 ? `${h} h ${m} min` : `${h} h`;
  if (m > 0) return `${m} min`;
  return `${s} s`;
}

export function formatMs(ms: number | null): string {
  if (ms === null) return '—';
  return ms >= 1000 ? `${(ms / 1000).toFixed(ms >= 10_000 ? 0 : 1)} s` : `${ms} ms`;
}

export function relativeAgo(ts: number, now = Date.now()): string {
  const d = now - ts;
  if (d < 5000) return 'just now';
  return `${formatDuration(d)} ago`;
}

/** Plain words for each canonical usage field (shared/usage.ts). */
export const USAGE_LABELS: Record<keyof Usage, string> = {
  inputTokens: 'Input tokens (not cached)',
  cacheReadTokens: 'Cache reads',
  cacheWriteTokens: 'Cache writes',
  cacheWrite5mTokens: 'Cache writes (5 min)',
  cacheWrite1hTokens: 'Cache writes (1 h)',
  inputAudioTokens: 'Input audio tokens',
  cacheAudioReadTokens: 'Cached audio input tokens',
  inputImageTokens: 'Input image tokens',
  outputTokens: 'Output tokens',
  reasoningTokens: 'Reasoning tokens',
  outputAudioTokens: 'Output audio tokens',
  outputImageTokens: 'Output image tokens',
  webSearches: 'Web searches',
  groundedPrompts: 'Grounded prompts (Google Search)',
  groundingQueries: 'Grounding search queries (Google Search)',
  images: 'Images',
  megapixelsPerImage: 'Megapixels per image',
  videoSeconds: 'Video seconds',
  runSeconds: 'Run time (seconds)',
  speed: 'Speed',
  inferenceGeo: 'Inference region',
  requests: 'Requests',
  audioSeconds: 'Audio seconds',
  characters: 'Characters',
  serviceTier: 'Service tier',
};

/**
 * One line of usage for tables: "1,000 in (400 cached) / 500 out", "2 images", "8 s video".
 * Input counts every input token (cached or not), as providers bill and users count it.
 */
export function formatUsageSummary(u: Usage, locale?: string): string {
  const n = (v: number) => formatCount(v, locale);
  const input = totalInputTokens(u);
  const output = totalOutputTokens(u);
  const parts: string[] = [];
  if (input || output) {
    const cached = (u.cacheReadTokens ?? 0) + (u.cacheAudioReadTokens ?? 0);
    parts.push(`${n(input)} in${cached ? ` (${n(cached)} cached)` : ''} / ${n(output)} out`);
  }
  if (u.images !== undefined) parts.push(`${n(u.images)} image${u.images === 1 ? '' : 's'}${u.megapixelsPerImage ? ` × ${u.megapixelsPerImage} MP` : ''}`);
  if (u.videoSeconds !== undefined) parts.push(`${n(u.videoSeconds)} s video`);
  if (u.webSearches) parts.push(`${n(u.webSearches)} web search${u.webSearches === 1 ? '' : 'es'}`);
  return parts.length ? parts.join(' · ') : '—';
}

const PRICE_WORDS: Record<string, string> = {
  input_mtok: 'Input',
  output_mtok: 'Output',
  cache_read_mtok: 'Cache reads',
  cache_write_mtok: 'Cache writes',
  cache_write_1h_mtok: 'Cache writes (1 h)',
  input_audio_mtok: 'Audio input',
  output_audio_mtok: 'Audio output',
  cache_audio_read_mtok: 'Cached audio input',
  input_image_mtok: 'Image input',
  output_image_mtok: 'Image output',
  web_searches_kcount: 'Web searches',
  storage_searches_kcount: 'File searches',
  requests_kcount: 'Requests',
};

/** A catalog price key in plain words: "input_mtok" → "Input", "cache_read_mtok" → "Cache reads". */
export function priceLabel(key: string): string {
  const known = PRICE_WORDS[key];
  if (known) return known;
  const words = key.replace(/_(mtok|kcount)$/, '').replace(/_/g, ' ').trim();
  return words ? words[0]!.toUpperCase() + words.slice(1) : key;
}
