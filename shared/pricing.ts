/**
 * priceCall: usage + resolved model prices → itemized, exact cost.
 *
 * Each line is rounded once (half-even) to the nano-dollar; the call's cost is the exact sum of
 * its lines. A model or a usage category without a price is never priced at $0: the result says
 * `unpriced` with the reason.
 */
import { lineCost, nanoToUsd, parseDecimal, ratioToDecimal, type Nano, type Ratio } from './money.ts';
import { TOKEN_FIELDS, totalInputTokens, type Usage } from './usage.ts';
import { describeWhen, PRIORITY_PRICES, PRIORITY_SOURCE, type CompiledMediaPrice, type MediaModel, type RateSpec, type Resolved, type TokenModel } from './catalog.ts';
import { tierSegments, tierTotal, type Tier, type TierMode } from './tiers.ts';
import type { LineItem, VolumeTierPlan } from './api.ts';

export interface PricedLine {
  label: string;
  quantity: string;
  unit: string;
  per: number;
  unitPrice: string;
  cost: Nano;
  source: string;
}

export interface PricedCall {
  items: PricedLine[];
  cost: Nano;
  /** Which catalog version / override / lock / tier priced the call (distinct sources, joined). */
  priceSource: string | null;
  /** Why the call could not be priced; null when it was. */
  unpriced: string | null;
  kind: 'token' | 'media' | null;
  /** Priced, but as an estimate: why (e.g. a reported fast mode without a published multiplier). */
  estimated?: string;
}

export interface MediaParams {
  /** Input (reference) images sent with an edit request. */
  inputImages?: number;
  size?: string;        // "1024x1024"
  quality?: string;
  resolution?: string;  // "1080p", "4k"
  audio?: boolean;
  width?: number;
  height?: number;
}

export interface PriceContext {
  params?: MediaParams;
  /** A volume-tier plan that applies to this model, and the units the period used before this call. */
  tier?: { plan: Pick<VolumeTierPlan, 'id' | 'mode' | 'unit' | 'tiers'>; before: number };
  /**
   * Units of a tool fee still inside the provider's free allowance for this period, by rate key
   * (e.g. `grounded_prompts_kcount`: Gemini's free grounded prompts a day), as the engine counted
   * them from the ledger (see `TokenModel.allowances`).
   */
  free?: Readonly<Record<string, { left: number; note: string }>>;
}

type TokenField = 'inputTokens' | 'cacheReadTokens' | 'cacheWriteTokens' | 'cacheWrite5mTokens' | 'cacheWrite1hTokens' | 'inputAudioTokens'
  | 'cacheAudioReadTokens' | 'inputImageTokens' | 'outputTokens' | 'reasoningTokens' | 'outputAudioTokens' | 'outputImageTokens'
  | 'audioSeconds' | 'characters' | 'webSearches' | 'groundedPrompts' | 'groundingQueries';

/** Usage field → label and the price keys that may price it, most specific first. */
type Line = { field: TokenField; label: string; keys: readonly string[]; unit: string };
const TOKEN_LINES: readonly Line[] = [
  { field: 'inputTokens', label: 'Input tokens', keys: ['input_mtok'], unit: 'token' },
  { field: 'cacheReadTokens', label: 'Cache reads', keys: ['cache_read_mtok', 'input_mtok'], unit: 'token' },
  { field: 'cacheWriteTokens', label: 'Cache writes', keys: ['cache_write_mtok', 'cache_write_5m_mtok', 'input_mtok'], unit: 'token' },
  { field: 'cacheWrite5mTokens', label: 'Cache writes (5 min)', keys: ['cache_write_5m_mtok', 'cache_write_mtok', 'input_mtok'], unit: 'token' },
  { field: 'cacheWrite1hTokens', label: 'Cache writes (1 h)', keys: ['cache_write_1h_mtok'], unit: 'token' },
  { field: 'inputAudioTokens', label: 'Audio input tokens', keys: ['input_audio_mtok'], unit: 'token' },
  { field: 'cacheAudioReadTokens', label: 'Cached audio input', keys: ['cache_audio_read_mtok', 'input_audio_mtok'], unit: 'token' },
  { field: 'inputImageTokens', label: 'Image input tokens', keys: ['input_image_mtok', 'input_mtok'], unit: 'token' },
  { field: 'outputTokens', label: 'Output tokens', keys: ['output_mtok'], unit: 'token' },
  { field: 'reasoningTokens', label: 'Reasoning tokens', keys: ['output_reasoning_mtok', 'output_mtok'], unit: 'token' },
  { field: 'outputAudioTokens', label: 'Audio output tokens', keys: ['output_audio_mtok'], unit: 'token' },
  // OpenAI image models (gpt-image-1) list their image output price as `output_mtok`
  { field: 'outputImageTokens', label: 'Image output tokens', keys: ['output_image_mtok', 'output_mtok'], unit: 'token' },
  { field: 'audioSeconds', label: 'Audio seconds', keys: ['input_audio_hours', 'audio_hours'], unit: 'second' },
  { field: 'characters', label: 'Characters', keys: ['input_mchars'], unit: 'character' },
  { field: 'webSearches', label: 'Web searches', keys: ['web_searches_kcount'], unit: 'search' },
  { field: 'groundedPrompts', label: 'Google Search grounding (grounded prompts)', keys: ['grounded_prompts_kcount'], unit: 'prompt' },
  { field: 'groundingQueries', label: 'Google Search grounding (search queries)', keys: ['grounding_queries_kcount'], unit: 'query' },
];
/**
 * Gemini: one input price covers text, image, video and (where no audio price is listed) audio
 * (ai.google.dev/gemini-api/docs/pricing lists "text / image / video" and a separate audio price
 * only where it differs). Image and audio OUTPUT have their own prices and never fall back to text.
 */
const GEMINI_LINES: readonly Line[] = TOKEN_LINES.map((l): Line => {
  switch (l.field) {
    case 'inputAudioTokens': return { ...l, keys: ['input_audio_mtok', 'input_mtok'] };
    case 'cacheAudioReadTokens': return { ...l, keys: ['cache_audio_read_mtok', 'cache_read_mtok', 'input_audio_mtok', 'input_mtok'] };
    case 'outputImageTokens': return { ...l, keys: ['output_image_mtok'] };
    default: return l;
  }
});

/**
 * OpenAI service tiers, as the RESPONSE reports them (`service_tier`). Flex is billed at Batch API
 * rates, 50 % of standard (developers.openai.com/api/docs/guides/flex-processing); batch results at
 * 50 % (developers.openai.com/api/docs/guides/batch). Priority has its own per-model prices
 * (PRIORITY_PRICES); a model missing from that table is priced at 2x standard, the ratio of the
 * GPT-5 family's priority prices, and says so in its source.
 */
const HALF: Ratio = { num: 1n, den: 2n };

/**
 * Anthropic fast mode (`usage.speed: "fast"`): a multiplier on every token rate of the model, cache
 * reads and writes included ("Fast mode is priced at a multiplier on standard rates across the full
 * context window", platform.claude.com/docs/en/build-with-claude/fast-mode; the per-model table was
 * not in the stored copy). Per model, from secondary sources that quote it (see SOURCES.md):
 * Opus 5.5 $8/$40 and Opus 5 $10/$50 (2x), Opus 4.8 ~2x, Opus 4.7 / 4.6 6x ($30/$150).
 */
export const ANTHROPIC_FAST: Readonly<Record<string, bigint>> = {
  'claude-opus-5-5': 2n, 'claude-opus-5': 2n, 'claude-opus-4-8': 2n, 'claude-opus-4-7': 6n, 'claude-opus-4-6': 6n,
};
const FAST_SOURCE = 'platform.claude.com/docs/en/build-with-claude/fast-mode (per-model multiplier: secondary, see SOURCES.md)';
/**
 * US-only inference (`usage.inference_geo: "us"`): 1.1x every token rate. Source: Claude Platform on
 * AWS docs ("US: Inference stays within US data centers. A 1.1x pricing multiplier applies",
 * docs.aws.amazon.com/claude-platform/latest/userguide/data-residency.html); for the Claude API the
 * same 1.1x from secondary sources (see SOURCES.md).
 */
const US_GEO: Ratio = { num: 11n, den: 10n };
const GEO_SOURCE = 'docs.aws.amazon.com/claude-platform/latest/userguide/data-residency.html';
const BATCH_SOURCE: Record<string, string> = {
  openai: 'developers.openai.com/api/docs/guides/batch',
  anthropic: 'docs.claude.com/en/docs/build-with-claude/batch-processing: 50 % of standard prices',
  gemini: 'ai.google.dev/gemini-api/docs/batch-mode: 50 % of the interactive price',
};
const DOUBLE: Ratio = { num: 2n, den: 1n };

function unpriced(reason: string, kind: PricedCall['kind'] = null): PricedCall {
  return { items: [], cost: 0n, priceSource: null, unpriced: reason, kind };
}

function rateFor(spec: RateSpec, totalIn: number): { price: Ratio; text: string } {
  let price = spec.base;
  let text = spec.baseText;
  for (const t of spec.tiers) {
    if (totalIn > t.start) {
      price = t.price;
      text = t.text;
    }
  }
  return { price, text };
}

/** Where each usage field's line is in TOKEN_LINES (and GEMINI_LINES, same order). */
const LINE_OF_FIELD: ReadonlyMap<string, number> = new Map(TOKEN_LINES.map((l, i) => [l.field as string, i]));

/** Anthropic's pricing modifiers the usage reports, as a line label says them. */
function modifiersOf(usage: Usage, model: TokenModel): string {
  return [usage.speed === 'fast' && ANTHROPIC_FAST[model.id] ? 'fast mode' : null, usage.inferenceGeo === 'us' && model.provider === 'anthropic' ? 'US-only' : null].filter(Boolean).join(', ');
}

/** `costOnly`: the cost without line items (quotes on the proxy's hot path need only amounts). */
export function priceTokens(usage: Usage, model: TokenModel, costOnly = false, free?: PriceContext['free']): PricedCall {
  const totalIn = totalInputTokens(usage);
  const items: PricedLine[] = [];
  let cost = 0n;
  // service tier (OpenAI): a multiplier, or priority's own prices for the model
  const tier = usage.serviceTier;
  let mult: Ratio | null = null;
  let tierPrices: Readonly<Record<string, string>> | null = null;
  let tierNote = '';
  if (tier === 'batch') {
    // batch APIs bill 50 % of standard at OpenAI, Anthropic and Google alike
    mult = HALF;
    tierNote = ` + batch at 50 % (${BATCH_SOURCE[model.provider] ?? 'the provider\'s batch pricing'})`;
  } else if (tier && tier !== 'default' && tier !== 'auto' && tier !== 'standard' && (model.provider === 'openai' || model.provider === 'azure')) {
    if (tier === 'flex') {
      mult = HALF;
      tierNote = ' + flex tier at 50 % (developers.openai.com/api/docs/guides/flex-processing)';
    } else if (tier === 'priority') {
      tierPrices = PRIORITY_PRICES[model.id] ?? null;
      if (tierPrices) tierNote = ` + priority prices (${PRIORITY_SOURCE})`;
      else {
        mult = DOUBLE;
        tierNote = ' + priority tier at 2x standard (estimate: no published priority price for this model)';
      }
    } else return unpriced(`${model.provider}:${model.id} answered in service tier "${tier}", which Tollgate has no price for`, 'token');
  }
  let estimated: string | undefined;
  if (model.provider === 'anthropic' && (usage.speed || usage.inferenceGeo)) {
    // Anthropic pricing modifiers the response reports: multipliers on the token rates
    const times = (r: Ratio) => (mult = mult ? { num: mult.num * r.num, den: mult.den * r.den } : r);
    if (usage.speed === 'fast') {
      const f = ANTHROPIC_FAST[model.id];
      if (f) {
        times({ num: f, den: 1n });
        tierNote += ` + fast mode at ${f}x (${FAST_SOURCE})`;
      } else estimated = `the response reports fast mode, but no fast-mode price is published for ${model.id}: priced at standard speed (estimate)`;
    } else if (usage.speed) estimated = `the response reports speed "${usage.speed}", which Tollgate has no price for: priced at standard speed (estimate)`;
    if (usage.inferenceGeo === 'us') {
      times(US_GEO);
      tierNote += ` + US-only inference at 1.1x (${GEO_SOURCE})`;
    } else if (usage.inferenceGeo) estimated = `${estimated ? estimated + '; ' : ''}the response reports inference_geo "${usage.inferenceGeo}", which Tollgate has no price for: priced at global rates (estimate)`;
    if (estimated) tierNote += ` (${estimated})`;
  }
  const source = tierNote ? model.sourceLabel + tierNote : model.sourceLabel;
  const lines = model.provider === 'gemini' ? GEMINI_LINES : TOKEN_LINES;
  // the lines the usage has, in the lines' order (a usage holds a few of the many fields)
  const present: number[] = [];
  for (const k in usage) {
    const at = LINE_OF_FIELD.get(k);
    if (at === undefined || !usage[k as keyof Usage]) continue;
    let j = present.length; // insertion: a handful of entries
    present.push(at);
    while (j > 0 && present[j - 1]! > at) {
      present[j] = present[j - 1]!;
      j--;
    }
    present[j] = at;
  }
  for (let n = 0; n < present.length; n++) {
    const line = lines[present[n]!]!;
    const qty = usage[line.field] as number;
    let spec: RateSpec | undefined;
    for (const k of line.keys) {
      spec = model.rates.get(k);
      if (spec) break;
    }
    if (!spec) return unpriced(`${model.provider}:${model.id} has no price for ${line.label.toLowerCase()} (${line.keys[0]})`, 'token');
    let { price, text } = rateFor(spec, totalIn);
    const tiered = (tierPrices || mult) && spec.key.endsWith('_mtok'); // tool fees are not tiered
    if (tiered && tierPrices) {
      const own = tierPrices[spec.key];
      if (own === undefined) return unpriced(`${model.provider}:${model.id} has no priority-tier price for ${line.label.toLowerCase()}`, 'token');
      price = parseDecimal(own);
      text = own;
    } else if (tiered && mult) {
      price = { num: price.num * mult.num, den: price.den * mult.den };
      text = ratioToDecimal(price);
    }
    const allowance = free?.[spec.key];
    if (allowance && allowance.left > 0) {
      // a tool fee's free allowance (Gemini grounding): the units inside it are a $0 line that says so
      const inside = Math.min(qty, allowance.left);
      if (!costOnly) items.push({ label: `${line.label}, free allowance (${allowance.note})`, quantity: String(inside), unit: line.unit, per: Number(spec.per), unitPrice: '0', cost: 0n, source });
      if (inside === qty) continue;
      const rest = qty - inside;
      const c = lineCost({ num: BigInt(rest), den: 1n }, price, spec.per);
      cost += c;
      if (!costOnly) items.push({ label: line.label, quantity: String(rest), unit: line.unit, per: Number(spec.per), unitPrice: text, cost: c, source });
      continue;
    }
    const c = lineCost({ num: BigInt(qty), den: 1n }, price, spec.per);
    cost += c;
    if (!costOnly) items.push({ label: tiered ? `${line.label} (${tier ?? modifiersOf(usage, model)})` : line.label, quantity: String(qty), unit: line.unit, per: Number(spec.per), unitPrice: text, cost: c, source });
  }
  const req = model.rates.get('requests_kcount');
  if (req) {
    const n = usage.requests ?? 1;
    const c = lineCost({ num: BigInt(n), den: 1n }, req.base, req.per);
    cost += c;
    if (!costOnly) items.push({ label: 'Requests', quantity: String(n), unit: 'request', per: Number(req.per), unitPrice: req.baseText, cost: c, source: model.sourceLabel });
  }
  if (cost === 0n && items.length === 0 && !hasAnyUsage(usage)) return unpriced('the call reported no usage', 'token');
  return estimated ? { items, cost, priceSource: source, unpriced: null, kind: 'token', estimated } : { items, cost, priceSource: source, unpriced: null, kind: 'token' };
}

function hasAnyUsage(u: Usage): boolean {
  for (const v of Object.values(u)) if (v) return true;
  return false;
}

function normalize(s: string | undefined): string | undefined {
  return s?.toLowerCase().replace(/\s+/g, '');
}

export function matchMediaPrice(model: MediaModel, params: MediaParams = {}): CompiledMediaPrice | null {
  const size = normalize(params.size ?? (params.width && params.height ? `${params.width}x${params.height}` : undefined));
  for (const p of model.prices) {
    const w = p.when;
    if (!w) return p;
    if (w.size !== undefined && normalize(w.size) !== size) continue;
    if (w.quality !== undefined && normalize(w.quality) !== normalize(params.quality)) continue;
    if (w.resolution !== undefined && normalize(w.resolution) !== normalize(params.resolution)) continue;
    if (w.audio !== undefined && w.audio !== params.audio) continue;
    return p;
  }
  return null;
}

function parseSize(size: string | undefined): { w: number; h: number } | null {
  const m = size ? /^(\d+)\s*[x×*]\s*(\d+)$/i.exec(size.trim()) : null;
  return m ? { w: Number(m[1]), h: Number(m[2]) } : null;
}

function ratioText(r: Ratio): string {
  // quantities are exact decimals (megapixels may be 1.048576) or whole units
  if (r.den === 1n) return r.num.toString();
  if (r.num % r.den === 0n) return (r.num / r.den).toString();
  // display text only; the cost is computed from the exact ratio
  return ratioToDecimal(r, 6);
}

export function priceMedia(usage: Usage, model: MediaModel, ctx: PriceContext = {}): PricedCall {
  const params = ctx.params ?? {};
  const p = matchMediaPrice(model, params);
  if (!p) {
    const wanted = [params.size, params.quality, params.resolution, params.audio === undefined ? undefined : params.audio ? 'audio' : 'no audio'].filter(Boolean).join(', ') || 'no parameters';
    return unpriced(`${model.provider}:${model.id} has no price for ${wanted} (priced: ${model.prices.map(describeWhen).join('; ')})`, 'media');
  }
  const src = model.sourceLabel;
  const images = usage.images ?? 1;
  const items: PricedLine[] = [];
  const push = (label: string, qty: Ratio, unit: string, price: Ratio, priceText: string, source = src) => {
    const cost = lineCost(qty, price);
    items.push({ label, quantity: ratioText(qty), unit, per: 1, unitPrice: priceText, cost, source });
  };
  const tierUnits = ctx.tier ? tierQuantity(ctx.tier.plan.unit, usage, p) : null;
  if (ctx.tier && tierUnits !== null) {
    return priceWithTiers(ctx.tier.plan, ctx.tier.before, tierUnits, model);
  }
  switch (p.unit) {
    case 'image':
      push(images === 1 ? 'Image' : 'Images', { num: BigInt(images), den: 1n }, 'image', p.ratio, p.price);
      break;
    case 'request':
      push('Request', { num: BigInt(usage.requests ?? 1), den: 1n }, 'request', p.ratio, p.price);
      break;
    case 'second': {
      if (p.basis === 'runtime') {
        // billed by hardware time: the run time the provider reports, to the millisecond
        const run = usage.runSeconds;
        if (run === undefined) return unpriced(`${model.provider}:${model.id} is billed by hardware run time (${p.hardware ?? 'its hardware'}), which the provider reports only when the run has finished (Replicate metrics.predict_time); this response did not carry it`, 'media');
        push(`Run time (${p.hardware ?? 'hardware'})`, decimalRatio(run.toFixed(3)), 'second', p.ratio, p.price);
        break;
      }
      const secs = usage.videoSeconds;
      if (secs === undefined) return unpriced(`${model.id} is priced per second but the call's duration is unknown`, 'media');
      push('Video seconds', decimalRatio(secs), 'second', p.ratio, p.price);
      break;
    }
    case 'megapixel': {
      let mp: Ratio | null = null;
      const ppm = BigInt(p.pixelsPerMegapixel ?? 1_000_000);
      if (usage.megapixelsPerImage !== undefined) mp = decimalRatio(usage.megapixelsPerImage);
      else {
        const s = parseSize(params.size) ?? (params.width && params.height ? { w: params.width, h: params.height } : null);
        if (s) mp = { num: BigInt(s.w) * BigInt(s.h), den: ppm };
      }
      if (!mp) return unpriced(`${model.id} is priced per megapixel but the image size is unknown`, 'media');
      if (p.roundUp) mp = { num: (mp.num + mp.den - 1n) / mp.den, den: 1n };
      const n = BigInt(images);
      if (p.firstUnit && p.firstRatio) {
        const q1: Ratio = { num: BigInt(Math.round(p.firstUnit.quantity * 1000)), den: 1000n };
        const firstQty = cmp(mp, q1) < 0 ? mp : q1;
        push('First megapixel', { num: firstQty.num * n, den: firstQty.den }, 'megapixel', p.firstRatio, p.firstUnit.price);
        const rest = sub(mp, firstQty);
        if (rest.num > 0n) push('Additional megapixels', { num: rest.num * n, den: rest.den }, 'megapixel', p.ratio, p.price);
      } else {
        push('Megapixels', { num: mp.num * n, den: mp.den }, 'megapixel', p.ratio, p.price);
      }
      if (p.inputRatio && params.inputImages) {
        // each reference image is at least 1 MP; its real size is not in the request
        push('Input images (1 MP each, the minimum)', { num: BigInt(params.inputImages), den: 1n }, 'megapixel', p.inputRatio, p.inputMegapixel!);
      }
      break;
    }
  }
  let cost = 0n;
  for (const it of items) cost += it.cost;
  return { items, cost, priceSource: src, unpriced: null, kind: 'media' };
}

function tierQuantity(unit: string, usage: Usage, p: CompiledMediaPrice): number | null {
  if (unit === 'image' && p.unit !== 'second') return usage.images ?? 1;
  if (unit === 'request') return usage.requests ?? 1;
  if (unit === 'second' && usage.videoSeconds !== undefined && Number.isInteger(usage.videoSeconds)) return usage.videoSeconds;
  return null;
}

/** Price `units` under a volume-tier plan, given the period's prior usage: itemized, exact. */
export function priceWithTiers(plan: Pick<VolumeTierPlan, 'id' | 'mode' | 'unit' | 'tiers'>, before: number, units: number, model: { id: string; sourceLabel?: string }): PricedCall {
  const tiers = plan.tiers as Tier[];
  const mode = plan.mode as TierMode;
  const source = `tier ${plan.id} (${mode})`;
  const after = before + units;
  const items: PricedLine[] = [];
  if (mode === 'graduated') {
    for (const s of tierSegments(mode, tiers, after)) {
      const from = Math.max(s.from, before + 1);
      if (s.to < from) continue;
      const n = s.to - from + 1;
      // this call's share of the segment = cost(segment up to `after`) − cost(segment up to `before`),
      // so per-call lines telescope to the period total even when a price has sub-nano digits
      const price = parseDecimal(s.price);
      const c = s.cost - lineCost({ num: BigInt(from - s.from), den: 1n }, price);
      items.push({ label: `${plan.unit}s ${from.toLocaleString('en-US')}–${s.to.toLocaleString('en-US')} of the period`, quantity: String(n), unit: plan.unit, per: 1, unitPrice: s.price, cost: c, source });
    }
  } else if (after > 0) { // a period with no units yet has no volume price (and costs nothing)
    const totalAfter = tierTotal(mode, tiers, after);
    const totalBefore = tierTotal(mode, tiers, before);
    const priceAfter = tierSegments(mode, tiers, after)[0]!.price;
    const own = lineCost({ num: BigInt(units), den: 1n }, parseDecimal(priceAfter));
    items.push({ label: `${plan.unit}s at the volume price`, quantity: String(units), unit: plan.unit, per: 1, unitPrice: priceAfter, cost: own, source });
    const adjust = totalAfter - totalBefore - own;
    if (adjust !== 0n) {
      items.push({ label: `Re-price of ${before.toLocaleString('en-US')} earlier ${plan.unit}s this period`, quantity: String(before), unit: plan.unit, per: 1, unitPrice: priceAfter, cost: adjust, source });
    }
  }
  let cost = 0n;
  for (const it of items) cost += it.cost;
  return { items, cost, priceSource: source, unpriced: null, kind: 'media' };
}

function decimalRatio(v: number | string): Ratio {
  const text = typeof v === 'number' ? v.toString() : v;
  const m = /^(\d+)(?:\.(\d+))?$/.exec(text);
  if (!m) throw new Error(`not a non-negative decimal: ${text}`);
  const frac = m[2] ?? '';
  return { num: BigInt(m[1]! + frac), den: 10n ** BigInt(frac.length) };
}
function cmp(a: Ratio, b: Ratio): number {
  const l = a.num * b.den;
  const r = b.num * a.den;
  return l < r ? -1 : l > r ? 1 : 0;
}
function sub(a: Ratio, b: Ratio): Ratio {
  return { num: a.num * b.den - b.num * a.den, den: a.den * b.den };
}

/** Token bound when a model's context window is unknown: above any model's context. */
export const SANE_MAX_TOKENS = 20_000_000;
/** Media and per-unit bounds no single call reaches (a call is one request, not a month). */
const SANE_UNITS: readonly [keyof Usage, number, string][] = [
  ['images', 1_000, 'images'], ['videoSeconds', 3_600, 'seconds of video'], ['audioSeconds', 86_400, 'seconds of audio'],
  ['characters', 10_000_000, 'characters'], ['webSearches', 10_000, 'web searches'], ['requests', 10_000, 'requests'],
  ['groundedPrompts', 1, 'grounded prompts'], ['groundingQueries', 1_000, 'grounding search queries'],
];

const IS_TOKEN_FIELD: ReadonlySet<string> = new Set(TOKEN_FIELDS);
const UNIT_MAX: ReadonlyMap<string, number> = new Map(SANE_UNITS.map(([field, max]) => [field as string, max]));

/**
 * Why a call's reported usage cannot be real, or null when it can. An upstream that reports more
 * tokens than the model's context window holds (with 25 % slack; a model priced in tiers above
 * its listed window may take 5x its highest tier start), or more than SANE_MAX_TOKENS when the
 * window is unknown, or absurd media units, is flagged instead of booked: 9,007,199,254,740,991
 * tokens would otherwise book billions of dollars and block every cap.
 */
export function implausibleUsage(u: Usage, model: TokenModel | null): string | null {
  // one pass over the fields the usage has (a few), not over every field a usage may have
  let tokens = 0, overUnits = false;
  for (const k in u) {
    const v = (u as Record<string, unknown>)[k];
    if (typeof v !== 'number') continue;
    if (IS_TOKEN_FIELD.has(k)) tokens += v;
    else if (v > (UNIT_MAX.get(k) ?? Infinity)) overUnits = true;
  }
  let limit = SANE_MAX_TOKENS;
  if (model?.contextWindow) {
    let tierStart = model.maxTierStart;
    if (tierStart === undefined) {
      tierStart = 0;
      for (const spec of model.rates.values()) for (const t of spec.tiers) if (t.start > tierStart) tierStart = t.start;
      model.maxTierStart = tierStart; // once per resolved model, not per call
    }
    limit = Math.max(model.contextWindow, tierStart * 5) * 1.25;
  }
  if (tokens > limit) {
    // the words are built only for the rare call that trips the check (toLocaleString is not free)
    const what = model?.contextWindow
      ? `the ${model.id} context window of ${model.contextWindow.toLocaleString('en-US')} tokens`
      : `${SANE_MAX_TOKENS.toLocaleString('en-US')} tokens (no context window is known for the model)`;
    return `implausible usage: the provider reported ${tokens.toLocaleString('en-US')} tokens, more than ${what}; not booked (check the provider's bill)`;
  }
  if (!overUnits) return null;
  for (let i = 0; i < SANE_UNITS.length; i++) {
    const [field, max, label] = SANE_UNITS[i]!;
    const v = u[field];
    if (typeof v === 'number' && v > max) return `implausible usage: the provider reported ${v.toLocaleString('en-US')} ${label} for one call (more than ${max.toLocaleString('en-US')}); not booked (check the provider's bill)`;
  }
  return null;
}

/**
 * Gemini grounding is billed per grounded prompt (Gemini 2.x) or per search query (Gemini 3), by
 * model: keep the count the model's price is for, drop the other, so that the call's usage says
 * what was billed (and the free allowance counts the same unit). A model with neither price keeps
 * both, and is unpriced for want of a grounding price, never free.
 */
export function groundingBilledBy(u: Usage, model: TokenModel | null): Usage {
  if (u.groundedPrompts === undefined && u.groundingQueries === undefined) return u;
  if (!model) return u;
  const { groundedPrompts, groundingQueries, ...rest } = u;
  if (model.rates.has('grounding_queries_kcount')) return groundingQueries ? { ...rest, groundingQueries } : rest;
  if (model.rates.has('grounded_prompts_kcount')) return groundedPrompts ? { ...rest, groundedPrompts } : rest;
  return u;
}

/** True when the usage is about media units rather than tokens. */
export function isMediaUsage(u: Usage): boolean {
  return u.images !== undefined || u.videoSeconds !== undefined || u.megapixelsPerImage !== undefined;
}

/**
 * Price one call. `model` is what Catalog.resolve returned; media usage goes to the media price,
 * token usage to the token price, and a model the catalog does not know is unpriced, never $0.
 */
export function priceCall(usage: Usage, model: Resolved, ctx: PriceContext = {}, name = 'model'): PricedCall {
  if (isMediaUsage(usage) || (!model.token && model.media)) {
    if (model.media) return priceMedia(usage, model.media, ctx);
    if (model.token && !isMediaUsage(usage)) return priceTokens(usage, model.token, false, ctx.free);
    return unpriced(`no media price for ${name}`, 'media');
  }
  if (model.token) {
    if (ctx.tier && ctx.tier.plan.unit === 'request') return priceWithTiers(ctx.tier.plan, ctx.tier.before, usage.requests ?? 1, model.token);
    return priceTokens(usage, model.token, false, ctx.free);
  }
  return unpriced(`unknown model: ${name} is not in the price catalog (not in the bundled genai-prices data; load a newer file with \`npx tollgate prices update --from FILE\`, or add a price with \`npx tollgate prices set\`)`);
}

/** Line items with their keys in ascending order: JSON.stringify writes them in canonical form (what the sync service hashes), at no cost. */
export function toLineItems(lines: readonly PricedLine[]): LineItem[] {
  return lines.map((l) => ({ cost: nanoToUsd(l.cost), label: l.label, per: l.per, quantity: l.quantity, source: l.source, unit: l.unit, unitPrice: l.unitPrice }));
}
