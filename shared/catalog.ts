/**
 * The price catalog: token-priced models from @pydantic/genai-prices' data, image / video /
 * upscale models from our own versioned file (shared/catalog/media.json), then the user's
 * overrides and rate locks on top. Pure: the engine loads overrides and locks from its data dir
 * and passes them in; nothing here reads a file or the clock.
 */
import { findProvider, type ModelInfo, type ModelPrice, type MatchLogic, type Provider } from '@pydantic/genai-prices';
import mediaFile from './catalog/media.json' with { type: 'json' };
import supplementFile from './catalog/genai-supplement.json' with { type: 'json' };
import { parseGenaiData } from './genai-data.ts';
import { parseDecimal, ratioToDecimal, type Ratio } from './money.ts';
import type { PriceOverride, PriceRow, PriceSource, RateLock } from './api.ts';
import { mediaCatalogSchema, type MediaCatalogFile, type MediaEntry, type MediaPrice } from './media-schema.ts';

export const GENAI_PRICES_VERSION = '0.1.8';

/** Our route names → genai-prices provider ids. */
const GENAI_PROVIDER: Record<string, string> = { gemini: 'google', google: 'google', xai: 'x-ai', bedrock: 'aws' };
export const GENAI_PROVIDERS = [
  'openai', 'anthropic', 'google', 'openrouter', 'groq', 'mistral', 'deepseek', 'x-ai', 'together', 'fireworks', 'azure',
  'aws', 'cerebras', 'cohere', 'perplexity', 'novita', 'moonshotai', 'avian', 'baseten', 'cloudflare', 'zai', 'minimax',
] as const;
/** genai-prices id → the route name users see. */
const ROUTE_FOR_GENAI: Record<string, string> = { google: 'gemini' };

export function canonicalProvider(p: string): string {
  const lower = p.toLowerCase();
  if (lower === 'google') return 'gemini';
  if (lower === 'fal-queue') return 'fal';
  if (lower === 'xai') return 'x-ai';
  return lower;
}

/** A price per `per` units, with optional input-size tiers (genai-prices' long-context prices). */
export interface RateSpec {
  key: string;
  per: bigint;
  base: Ratio;
  baseText: string;
  /** Applied to the whole call when total input tokens exceed `start`. */
  tiers: { start: number; price: Ratio; text: string }[];
}

export interface TokenModel {
  kind: 'token';
  provider: string;
  id: string;
  name: string;
  rates: Map<string, RateSpec>;
  contextWindow: number | null;
  source: PriceSource;
  sourceLabel: string;
  /** The highest long-context tier start (computed once, by the plausibility check). */
  maxTierStart?: number;
  /** Free allowances of tool fees by rate key (Gemini grounding), from the supplement's `tool_fees`. */
  allowances?: ReadonlyMap<string, ToolAllowance>;
}

/** A provider's free units of a tool fee per period (e.g. 1,500 grounded prompts a day, Pacific time). */
export interface ToolAllowance {
  units: number;
  per: 'day' | 'month';
  timeZone: string;
  /** Where the fee and the allowance are published. */
  source: string;
}

interface ToolFee {
  provider: string;
  name: string;
  match: MatchLogic;
  prices: Record<string, number>;
  free?: { units: number; per: 'day' | 'month'; time_zone: string };
  source_url: string;
  as_of: string;
}
/**
 * Tool fees the price data does not list for a model (Gemini grounding with Google Search), from
 * the supplement's `tool_fees`, each with its source. Added to a model's rates only where the model
 * has no such rate of its own (the data or a user's override wins).
 */
let toolFees: readonly (ToolFee & { rates: Map<string, RateSpec> })[] | null = null;

function withToolFees(t: TokenModel): TokenModel {
  toolFees ??= ((supplementFile as unknown as { tool_fees?: ToolFee[] }).tool_fees ?? []).map((f) => ({ ...f, rates: compileRates(f.prices) }));
  for (const f of toolFees) {
    if (f.provider !== t.provider || !matches(f.match, t.id)) continue;
    let allowances: Map<string, ToolAllowance> | null = null;
    for (const [k, r] of f.rates) {
      if (t.rates.has(k)) continue;
      t.rates.set(k, r);
      if (f.free) (allowances ??= new Map(t.allowances ?? [])).set(k, { units: f.free.units, per: f.free.per, timeZone: f.free.time_zone, source: `${f.source_url} (as of ${f.as_of})` });
    }
    if (allowances) t.allowances = allowances;
  }
  return t;
}

export interface CompiledMediaPrice extends MediaPrice {
  ratio: Ratio;
  firstRatio: Ratio | null;
  inputRatio?: Ratio | null;
}

export interface MediaModel {
  kind: 'image' | 'video' | 'upscale' | 'audio';
  provider: string;
  id: string;
  name: string;
  routeModelIds: string[];
  prices: CompiledMediaPrice[];
  source: PriceSource;
  sourceLabel: string;
}

export type PricedModel = TokenModel | MediaModel;

export interface Resolved {
  token: TokenModel | null;
  media: MediaModel | null;
}

const PER_FOR_SUFFIX: [string, bigint][] = [['_mtok', 1_000_000n], ['_kcount', 1_000n], ['_kpages', 1_000n], ['_mchars', 1_000_000n], ['_hours', 3600n]];
function perForKey(key: string): bigint {
  for (const [suffix, per] of PER_FOR_SUFFIX) if (key.endsWith(suffix)) return per;
  return 1n;
}

function compileRate(key: string, value: unknown): RateSpec | null {
  if (typeof value === 'number' || typeof value === 'string') {
    const base = parseDecimal(value);
    return { key, per: perForKey(key), base, baseText: ratioToDecimal(base), tiers: [] };
  }
  if (value && typeof value === 'object' && 'base' in value) {
    const v = value as { base: number | string; tiers?: { start: number; price: number | string }[] };
    const base = parseDecimal(v.base);
    const tiers = (v.tiers ?? [])
      .map((t) => ({ start: t.start, price: parseDecimal(t.price), text: ratioToDecimal(parseDecimal(t.price)) }))
      .sort((a, b) => a.start - b.start);
    return { key, per: perForKey(key), base, baseText: ratioToDecimal(base), tiers };
  }
  return null;
}

function compileRates(prices: Record<string, unknown>): Map<string, RateSpec> {
  const rates = new Map<string, RateSpec>();
  for (const [k, v] of Object.entries(prices)) {
    const r = compileRate(k, v);
    if (r) rates.set(k, r);
  }
  return rates;
}

function matches(logic: MatchLogic | undefined, id: string): boolean {
  if (!logic) return false;
  if ('equals' in logic) return id === logic.equals;
  if ('starts_with' in logic) return id.startsWith(logic.starts_with);
  if ('ends_with' in logic) return id.endsWith(logic.ends_with);
  if ('contains' in logic) return id.includes(logic.contains);
  if ('regex' in logic) return new RegExp(logic.regex).test(id);
  if ('or' in logic) return logic.or.some((l) => matches(l, id));
  if ('and' in logic) return logic.and.every((l) => matches(l, id));
  return false;
}

/** Pick the price set in force at `at` (start_date constraints; time-of-day windows win last). */
function pricesAt(model: ModelInfo, at: Date): ModelPrice {
  if (!Array.isArray(model.prices)) return model.prices;
  let chosen: ModelPrice | undefined;
  for (const cp of model.prices) {
    const c = cp.constraint;
    if (!c) chosen ??= cp.prices;
    else if (c.type === 'start_date') {
      if (at.getTime() >= Date.parse(c.start_date + 'T00:00:00Z')) chosen = cp.prices;
    } else if (c.type === 'time_of_date') {
      const secs = at.getUTCHours() * 3600 + at.getUTCMinutes() * 60 + at.getUTCSeconds();
      const start = timeOfDay(c.start_time);
      const end = timeOfDay(c.end_time);
      const inside = start <= end ? secs >= start && secs < end : secs >= start || secs < end;
      if (inside && onDay(c as DayLimits, at)) chosen = cp.prices;
    }
  }
  return chosen ?? model.prices[0]!.prices;
}
/** Tollgate's extension of a time_of_date window: the UTC weekdays it applies on, and UTC dates it does not. */
interface DayLimits { weekdays?: readonly number[]; except_dates?: readonly string[] }
function onDay(c: DayLimits, at: Date): boolean {
  if (c.weekdays && !c.weekdays.includes(at.getUTCDay() || 7)) return false;
  if (c.except_dates && c.except_dates.includes(at.toISOString().slice(0, 10))) return false;
  return true;
}
function timeOfDay(t: string): number {
  const m = /^(\d{2}):(\d{2})(?::(\d{2}))?/.exec(t);
  return m ? Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3] ?? 0) : 0;
}

function hash(text: string): string {
  // FNV-1a 32-bit twice with different seeds: a stable content fingerprint, not a security hash.
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
  }
  return ((h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0')).slice(0, 12);
}

const EPOCH = new Date(0);

/**
 * Token price data in the genai-prices format. `providers` null: the data bundled with
 * @pydantic/genai-prices. `label` names the data in every price source ("genai-prices@0.1.8", or
 * "genai-prices-data#sha256:…" for a file loaded with `tollgate prices update --from FILE`).
 */
export interface GenaiData {
  /** Providers listed here replace the bundled data's provider of the same id; others stay bundled. */
  providers: readonly Provider[] | null;
  label: string;
}

export const BUNDLED_GENAI: GenaiData = { providers: null, label: `genai-prices@${GENAI_PRICES_VERSION}` };

/**
 * Our small supplement in the same format (shared/catalog/genai-supplement.json): current models
 * the genai-prices data lacks, each with `source_url` and `as_of` (see SOURCES.md). Merged under
 * the genai-prices data: a model the data lists by its exact id wins; the supplement wins over the
 * data's broader patterns (bundled 0.1.8 prices `claude-sonnet-5-5` through `claude-sonnet-5`'s
 * prefix, without the 2026-10-07 cache-read cut).
 */
const SUPPLEMENT: readonly Provider[] = parseGenaiData((supplementFile as { providers: unknown }).providers);
export const SUPPLEMENT_VERSION: string = (supplementFile as { version: string }).version;
const SUPPLEMENT_TEXT = JSON.stringify(supplementFile);

export interface CatalogOptions {
  overrides?: PriceOverride[];
  locks?: RateLock[];
  media?: MediaCatalogFile;
  genai?: GenaiData;
}

export class Catalog {
  readonly version: string;
  readonly genaiVersion: string;
  readonly genai: GenaiData;
  readonly mediaVersion: string;
  private readonly genaiById: Map<string, Provider> | null;
  private readonly supplementById = new Map<string, Provider>(SUPPLEMENT.map((p) => [p.id, p]));
  private readonly media: MediaEntry[];
  private readonly mediaModels = new Map<string, MediaModel>();
  private readonly overrides = new Map<string, PriceOverride>();
  private readonly locks: RateLock[];
  private readonly cache = new Map<string, Resolved>();
  private readonly plainCache = new Map<string, Map<string, Resolved>>();
  private readonly hourCache = new Map<string, Map<string, { hour: number; resolved: Resolved }>>();
  private readonly providerCache = new Map<string, Provider | null>();

  constructor(opts: CatalogOptions = {}) {
    const media = mediaCatalogSchema.parse(opts.media ?? mediaFile);
    this.media = media.entries;
    this.mediaVersion = `tollgate-media@${media.version}`;
    this.genai = opts.genai ?? BUNDLED_GENAI;
    this.genaiVersion = this.genai.label;
    this.genaiById = this.genai.providers ? new Map(this.genai.providers.map((p) => [p.id, p])) : null;
    // the fingerprint covers our own data: the media catalog and the token supplement
    this.version = `${this.genaiVersion}+${media.version}#${hash(JSON.stringify(media) + SUPPLEMENT_TEXT)}`;
    for (const o of opts.overrides ?? []) this.overrides.set(`${canonicalProvider(o.provider)}:${o.model}`, o);
    this.locks = opts.locks ?? [];
    for (const e of this.media) {
      const m = this.compileMedia(e);
      for (const id of [e.id, ...e.routeModelIds]) {
        const key = `${canonicalProvider(e.route)}:${id}`;
        if (!this.mediaModels.has(key)) this.mediaModels.set(key, m);
      }
    }
  }

  /** A copy of this catalog with other overrides and locks (the bundled data is shared). */
  withUserData(overrides: PriceOverride[], locks: RateLock[]): Catalog {
    return new Catalog({ overrides, locks, genai: this.genai, media: { catalog: 'tollgate-media', version: this.mediaVersion.slice('tollgate-media@'.length), entries: this.media } });
  }

  private compileMedia(e: MediaEntry): MediaModel {
    return {
      kind: e.kind,
      provider: canonicalProvider(e.route),
      id: e.id,
      name: e.name,
      routeModelIds: e.routeModelIds,
      prices: e.prices.map((p) => ({ ...p, ratio: parseDecimal(p.price), firstRatio: p.firstUnit ? parseDecimal(p.firstUnit.price) : null, inputRatio: p.inputMegapixel ? parseDecimal(p.inputMegapixel) : null })),
      source: { kind: 'catalog', catalog: this.mediaVersion, url: e.sourceUrl, asOf: e.asOf },
      sourceLabel: `${this.mediaVersion}:${e.route}/${e.id}`,
    };
  }

  private genaiProvider(id: string): Provider | null {
    let p = this.providerCache.get(id);
    if (p === undefined) {
      // a loaded file replaces the bundled data provider by provider; a provider it does not list
      // keeps the bundled data (a partial file never leaves a provider unpriced)
      p = this.genaiById?.get(id) ?? null;
      if (!p) {
        p = findProvider({ providerId: id }) ?? null;
        if (p && p.id !== id) p = null;
      }
      this.providerCache.set(id, p);
    }
    return p;
  }

  /** Data exact id > supplement (exact id or its match) > data match > the data's fallback providers. */
  private findGenai(provider: string, model: string): { p: Provider; m: ModelInfo; supplement?: true } | null {
    const gid = GENAI_PROVIDER[provider] ?? provider;
    const p = this.genaiProvider(gid);
    const id = model.startsWith('models/') ? model.slice('models/'.length) : model;
    const exact = p?.models.find((x) => x.id === id);
    if (p && exact) return { p, m: exact };
    const sp = this.supplementById.get(gid);
    const sm = sp?.models.find((x) => x.id === id) ?? sp?.models.find((x) => matches(x.match, id));
    if (sp && sm) return { p: sp, m: sm, supplement: true };
    if (!p) return null;
    const m = p.models.find((x) => matches(x.match, id));
    if (m) return { p, m };
    for (const fb of p.fallback_model_providers ?? []) {
      const fp = this.genaiProvider(fb);
      const fm = fp?.models.find((x) => matches(x.match, id));
      if (fp && fm) return { p: fp, m: fm };
    }
    return null;
  }

  /** Resolve `provider` + `model` at time `at` to its prices: lock > override > catalog. */
  resolve(providerIn: string, model: string, at?: Date): Resolved {
    if (this.locks.length === 0 && (at === undefined || at.getTime() === 0)) {
      // hot path (no locks, catalog prices as of the bundled data): a two-level map, no key building
      let byModel = this.plainCache.get(providerIn);
      if (!byModel) this.plainCache.set(providerIn, (byModel = new Map()));
      let r = byModel.get(model);
      if (!r) {
        r = this.resolveUncached(canonicalProvider(providerIn), model, EPOCH, null);
        if (byModel.size > 50_000) byModel.clear();
        byModel.set(model, r);
      }
      return r;
    }
    if (this.locks.length === 0) {
      // hot path with a date (the proxy prices every call "now"): the hour's entry, no key building
      const hour = Math.floor(at!.getTime() / 3_600_000);
      let byModel = this.hourCache.get(providerIn);
      if (!byModel) this.hourCache.set(providerIn, (byModel = new Map()));
      const hit = byModel.get(model);
      if (hit && hit.hour === hour) return hit.resolved;
      const resolved = this.resolveUncached(canonicalProvider(providerIn), model, at!, null);
      if (byModel.size > 50_000) byModel.clear();
      byModel.set(model, { hour, resolved });
      return resolved;
    }
    return this.resolveAt(providerIn, model, at ?? EPOCH);
  }

  private resolveAt(providerIn: string, model: string, at: Date): Resolved {
    const provider = canonicalProvider(providerIn);
    const lock = this.lockFor(provider, model, at);
    const dayKey = lock ? '' : at.getTime() === 0 ? '' : String(Math.floor(at.getTime() / 3_600_000));
    const cacheKey = `${provider}\u0000${model}\u0000${lock?.id ?? ''}\u0000${dayKey}`;
    const hit = this.cache.get(cacheKey);
    if (hit) return hit;
    const resolved = this.resolveUncached(provider, model, at, lock);
    if (this.cache.size > 50_000) this.cache.clear();
    this.cache.set(cacheKey, resolved);
    return resolved;
  }

  private lockFor(provider: string, model: string, at: Date): RateLock | null {
    for (const l of this.locks) {
      if (canonicalProvider(l.provider) !== provider) continue;
      if (l.model !== null && l.model !== model) continue;
      if (!l.prices[model]) continue;
      if (l.from !== null && at.getTime() < l.from) continue;
      if (l.to !== null && at.getTime() >= l.to) continue;
      return l;
    }
    return null;
  }

  private resolveUncached(provider: string, model: string, at: Date, lock: RateLock | null): Resolved {
    // Gemini ids are sent as `models/veo-…` by SDKs and users alike: the media catalog knows the bare id
    const mediaBase = this.mediaModels.get(`${provider}:${model}`) ?? (model.startsWith('models/') ? this.mediaModels.get(`${provider}:${model.slice(7)}`) ?? null : null);
    const genai = this.findGenai(provider, model);
    const basePrices = genai ? (pricesAt(genai.m, at) as Record<string, unknown>) : null;
    const name = genai?.m.name ?? mediaBase?.name ?? model;
    const contextWindow = genai?.m.context_window ?? null;

    const override = lock ? undefined : this.overrides.get(`${provider}:${model}`);
    const applied = lock ? lock.prices[model]! : override?.prices;
    if (applied) {
      const source: PriceSource = lock
        ? { kind: 'lock', catalog: lock.catalog, detail: lock.id }
        : { kind: 'override', catalog: this.version, detail: override!.id };
      const label = lock ? `lock ${lock.id} (${lock.catalog})` : `override ${override!.id}`;
      const mediaUnits = Object.keys(applied).filter((k) => MEDIA_UNITS.has(k));
      let media: MediaModel | null = null;
      if (mediaUnits.length > 0 || (mediaBase && !genai)) {
        const prices: CompiledMediaPrice[] = mediaUnits.map((unit) => ({
          unit: unit as MediaPrice['unit'], price: applied[unit]!, ratio: parseDecimal(applied[unit]!), firstRatio: null, label: `${unit} (${label})`,
        }));
        media = prices.length
          ? { kind: mediaBase?.kind ?? 'image', provider, id: model, name, routeModelIds: [model], prices, source, sourceLabel: label }
          : mediaBase;
      }
      const tokenKeys = Object.entries(applied).filter(([k]) => !MEDIA_UNITS.has(k));
      let token: TokenModel | null = null;
      if (tokenKeys.length > 0) {
        const rates = basePrices && !lock ? compileRates(basePrices) : new Map<string, RateSpec>();
        for (const [k, v] of tokenKeys) {
          const r = compileRate(k, v);
          if (r) rates.set(k, r);
        }
        token = withToolFees({ kind: 'token', provider, id: model, name, rates, contextWindow, source, sourceLabel: label });
      } else if (genai && basePrices && !lock) {
        token = this.tokenModel(provider, genai.m, basePrices, genai.supplement, genai.p);
      }
      return { token, media: media ?? (lock ? null : mediaBase) };
    }
    if (!genai) {
      const b = BUILTIN_TOKEN_MODELS.get(`${provider}:${model}`);
      if (b) return { token: b, media: mediaBase };
    }
    return { token: genai && basePrices ? this.tokenModel(provider, genai.m, basePrices, genai.supplement, genai.p) : null, media: mediaBase };
  }

  private tokenModel(provider: string, m: ModelInfo, prices: Record<string, unknown>, supplement?: true, from?: Provider): TokenModel {
    return withToolFees(this.tokenModelOwn(provider, m, prices, supplement, from));
  }

  private tokenModelOwn(provider: string, m: ModelInfo, prices: Record<string, unknown>, supplement?: true, from?: Provider): TokenModel {
    if (supplement) {
      const x = m as ModelInfo & { source_url?: string; as_of?: string };
      const label = `tollgate-genai-supplement@${SUPPLEMENT_VERSION}`;
      return {
        kind: 'token', provider, id: m.id, name: m.name ?? m.id, rates: compileRates(prices), contextWindow: m.context_window ?? null,
        source: { kind: 'catalog', catalog: label, url: x.source_url, asOf: x.as_of }, sourceLabel: `${label}:${provider}/${m.id}`,
      };
    }
    return {
      kind: 'token',
      provider,
      id: m.id,
      name: m.name ?? m.id,
      rates: compileRates(prices),
      contextWindow: m.context_window ?? null,
      source: { kind: 'catalog', catalog: this.labelOf(from) },
      sourceLabel: this.labelOf(from),
    };
  }

  /** The data a provider's prices came from: the loaded file, or the bundled data for a provider it does not list. */
  private labelOf(p: Provider | undefined): string {
    return this.genaiById && p && this.genaiById.get(p.id) === p ? this.genaiVersion : BUNDLED_GENAI.label;
  }

  /** The current prices of a model as plain decimal strings, for a rate lock snapshot. */
  snapshot(provider: string, model: string, at: Date): Record<string, string> | null {
    const r = this.resolve(provider, model, at);
    const out: Record<string, string> = {};
    if (r.token) for (const [k, v] of r.token.rates) if (v.tiers.length === 0) out[k] = v.baseText;
    if (r.media) for (const p of r.media.prices) if (!p.when && !p.firstUnit) out[p.unit] ??= p.price;
    return Object.keys(out).length ? out : null;
  }

  /** Every model of a provider the catalog knows (for locks over a whole provider, and listings). */
  modelsOf(providerIn: string): string[] {
    const provider = canonicalProvider(providerIn);
    const ids = new Set<string>();
    const gid = GENAI_PROVIDER[provider] ?? provider;
    const p = this.genaiProvider(gid);
    if (p) for (const m of p.models) ids.add(m.id);
    for (const m of this.supplementById.get(gid)?.models ?? []) ids.add(m.id);
    for (const e of this.media) if (canonicalProvider(e.route) === provider) ids.add(e.id);
    return [...ids];
  }

  /** Rows for `tollgate prices` and the Prices view. */
  list(filter: { provider?: string; search?: string } = {}, at: Date = new Date()): PriceRow[] {
    const rows: PriceRow[] = [];
    const wantProvider = filter.provider ? canonicalProvider(filter.provider) : null;
    const q = filter.search?.toLowerCase() ?? null;
    const keep = (provider: string, id: string, name: string) =>
      (!wantProvider || wantProvider === provider) && (!q || id.toLowerCase().includes(q) || name.toLowerCase().includes(q) || provider.includes(q));
    const gids = this.genaiById ? [...new Set([...GENAI_PROVIDERS, ...this.genaiById.keys()])] : GENAI_PROVIDERS;
    for (const gid of gids) {
      const p = this.genaiProvider(gid);
      const sp = this.supplementById.get(gid);
      if (!p && !sp) continue;
      const provider = ROUTE_FOR_GENAI[gid] ?? gid;
      const seen = new Set<string>();
      for (const m of [...(p?.models ?? []), ...(sp?.models ?? [])]) {
        if (seen.has(m.id)) continue;
        seen.add(m.id);
        if (!keep(provider, m.id, m.name ?? m.id)) continue;
        const r = this.resolve(provider, m.id, at).token;
        if (!r) continue;
        rows.push({
          provider, model: m.id, name: r.name, kind: 'token',
          prices: [...r.rates.values()].map((s) => ({ label: s.key + (s.tiers.length ? ` (>${s.tiers[0]!.start} input tokens: ${s.tiers[0]!.text})` : ''), unitPrice: s.baseText, per: Number(s.per), unit: rateUnit(s.key) })),
          source: r.source.url ? r.source : { ...r.source, url: p?.pricing_urls?.[0] },
        });
      }
    }
    for (const e of this.media) {
      const route = canonicalProvider(e.route);
      if (!keep(route, e.id, e.name)) continue;
      const r = this.resolve(route, e.id, at).media;
      if (!r) continue;
      rows.push({
        provider: route, model: e.id, name: e.name, kind: e.kind,
        prices: r.prices.map((p) => ({ label: p.label ?? describeWhen(p), unitPrice: p.price, per: 1, unit: p.unit })),
        source: r.source,
      });
    }
    for (const o of this.overrides.values()) {
      if (rows.some((r) => r.provider === canonicalProvider(o.provider) && r.model === o.model)) continue;
      if (!keep(canonicalProvider(o.provider), o.model, o.model)) continue;
      rows.push({
        provider: canonicalProvider(o.provider), model: o.model, name: o.model, kind: Object.keys(o.prices).some((k) => MEDIA_UNITS.has(k)) ? 'image' : 'token',
        prices: Object.entries(o.prices).map(([k, v]) => ({ label: k, unitPrice: v, per: Number(perForKey(k)), unit: rateUnit(k) })),
        source: { kind: 'override', catalog: this.version, detail: o.id },
      });
    }
    return rows;
  }

  mediaEntries(): readonly MediaEntry[] {
    return this.media;
  }
}

export const MEDIA_UNITS = new Set(['image', 'megapixel', 'second', 'request']);

export function rateUnit(key: string): string {
  if (key.endsWith('_mtok')) return 'token';
  if (key.startsWith('web_searches')) return 'search';
  if (key.startsWith('grounded_prompts')) return 'prompt';
  if (key.startsWith('grounding_queries')) return 'query';
  if (key.startsWith('requests')) return 'request';
  if (key.endsWith('_kcount')) return 'call';
  if (key.endsWith('_hours')) return 'second';
  if (key.endsWith('_kpages')) return 'page';
  return key;
}

export function describeWhen(p: MediaPrice): string {
  const w = p.when ?? {};
  const parts = [w.size, w.quality, w.resolution, w.audio === undefined ? undefined : w.audio ? 'with audio' : 'no audio'].filter(Boolean);
  return `per ${p.unit}${parts.length ? ', ' + parts.join(', ') : ''}`;
}

/**
 * OpenAI Priority processing prices per 1M tokens (input, cached input, output), by genai-prices
 * model id. Source: https://openai.com/api-priority-processing/ (stored copy read 2026-12-01;
 * GPT-5.x rows from a mirror of the same page, secondary: see SOURCES.md). Prompts over 128K tokens
 * ("long context") are excluded from priority processing and billed at standard rates.
 */
export const PRIORITY_SOURCE = 'openai.com/api-priority-processing';
export const PRIORITY_PRICES: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  'gpt-5.4-mini': { input_mtok: '1.50', cache_read_mtok: '0.15', output_mtok: '9.00' },
  'gpt-5.4': { input_mtok: '5.00', cache_read_mtok: '0.50', output_mtok: '30.00' },
  'gpt-5.2': { input_mtok: '3.50', cache_read_mtok: '0.35', output_mtok: '28.00' },
  'gpt-5.1': { input_mtok: '2.50', cache_read_mtok: '0.25', output_mtok: '20.00' },
  'gpt-5': { input_mtok: '2.50', cache_read_mtok: '0.25', output_mtok: '20.00' },
  'gpt-5-mini': { input_mtok: '0.45', cache_read_mtok: '0.045', output_mtok: '3.60' },
  'gpt-5.1-codex': { input_mtok: '2.50', cache_read_mtok: '0.25', output_mtok: '20.00' },
  'gpt-5-codex': { input_mtok: '2.50', cache_read_mtok: '0.25', output_mtok: '20.00' },
  'gpt-4.1': { input_mtok: '3.50', cache_read_mtok: '0.875', output_mtok: '14.00' },
  'gpt-4.1-mini': { input_mtok: '0.70', cache_read_mtok: '0.175', output_mtok: '2.80' },
  'gpt-4.1-nano': { input_mtok: '0.20', cache_read_mtok: '0.05', output_mtok: '0.80' },
  'gpt-4o': { input_mtok: '4.25', cache_read_mtok: '2.125', output_mtok: '17.00' },
  'gpt-4o-mini': { input_mtok: '0.25', cache_read_mtok: '0.125', output_mtok: '1.00' },
  'o3': { input_mtok: '3.50', cache_read_mtok: '0.875', output_mtok: '14.00' },
  'o4-mini': { input_mtok: '2.00', cache_read_mtok: '0.50', output_mtok: '8.00' },
};

/**
 * Per-unit models the bundled genai-prices data lacks (see SOURCES.md, "Built-in per-unit prices").
 * tts-1: $15 per 1M characters; tts-1-hd: $30 per 1M characters (OpenAI pricing page).
 */
const BUILTIN_SOURCE = 'tollgate-builtin@2026-12-01';
const BUILTIN_TOKEN_MODELS = new Map<string, TokenModel>(([
  ['openai', 'tts-1', 'TTS-1', { input_mchars: '15' }, 'https://platform.openai.com/docs/pricing', '2025-11-02'],
  ['openai', 'tts-1-hd', 'TTS-1 HD', { input_mchars: '30' }, 'https://platform.openai.com/docs/pricing', '2025-11-02'],
] as const).map(([provider, id, name, prices, url, asOf]) => [`${provider}:${id}`, {
  kind: 'token', provider, id, name, rates: compileRates(prices), contextWindow: null,
  source: { kind: 'catalog', catalog: BUILTIN_SOURCE, url, asOf }, sourceLabel: `${BUILTIN_SOURCE}:${provider}/${id}`,
} satisfies TokenModel]));

let defaultCatalog: Catalog | null = null;
/** The bundled catalog without user data (shared, built once). */
export function bundledCatalog(): Catalog {
  defaultCatalog ??= new Catalog();
  return defaultCatalog;
}
