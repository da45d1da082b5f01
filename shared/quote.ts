/**
 * Quotes: the price of a call before it runs, as min / expected / max.
 *
 * Input tokens are counted with a real tokenizer (gpt-tokenizer, o200k_base). That count is exact
 * for current OpenAI models; for Anthropic, Gemini and other hosts it is an approximation and the
 * quote says so in `notes`.
 *
 * max      = input + the request's output limit (max_tokens, max_completion_tokens,
 *            max_output_tokens, generationConfig.maxOutputTokens), else the model's context
 *            window minus the input, else 32,768 tokens — the reservation a hard cap uses.
 * expected = input + the median output the ledger observed for this model (when the caller passes
 *            history), else min(max output, 500 tokens): a documented heuristic, not a promise.
 * min      = input with no output.
 * Media requests (images, video seconds, megapixels) are exact when every parameter is known; an
 * unknown quality or size gives the range over the catalog's prices for that model.
 */
import { countTokens } from 'gpt-tokenizer';
import { nanoToUsd, usdToNanoExact, type Nano } from './money.ts';
import { canonicalProvider, type Catalog, type MediaModel } from './catalog.ts';
import { implausibleUsage, priceCall, priceMedia, priceTokens, toLineItems, type MediaParams, type PricedCall } from './pricing.ts';
import { totalInputTokens, type Usage } from './usage.ts';
import type { QuoteItem } from './api.ts';

export const EXPECTED_OUTPUT_TOKENS = 500;
export const FALLBACK_MAX_OUTPUT = 32_768;

export interface AnalyzedRequest {
  provider: string;
  model: string;
  endpoint: string;
  kind: 'chat' | 'embedding' | 'media';
  inputTokens: number;
  maxOutput: number | null;         // from the request
  stream: boolean;
  media: { usage: Usage; params: MediaParams } | null;
  notes: string[];
}

export class QuoteError extends Error {
  readonly code = 'E_QUOTE';
}

type J = Record<string, unknown>;
const isObj = (v: unknown): v is J => !!v && typeof v === 'object' && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const int = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : undefined);

/** All the text a request sends, for counting (message contents, system prompts, tool schemas). */
function collectText(v: unknown, out: string[], depth = 0): void {
  if (depth > 12) return;
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (let i = 0; i < v.length; i++) collectText(v[i], out, depth + 1);
  else if (isObj(v)) {
    // for-in, not Object.entries: the same own keys in the same order (a parsed JSON body), no pair arrays
    for (const k in v) {
      if (k === 'image_url' || k === 'inline_data' || k === 'inlineData' || k === 'source' || k === 'data') continue;
      if (k === 'type' || k === 'role' || k === 'cache_control' || !Object.hasOwn(v, k)) continue;
      collectText(v[k], out, depth + 1);
    }
  }
}

function countImages(v: unknown, depth = 0): number {
  if (depth > 12) return 0;
  let n = 0;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) n += countImages(v[i], depth + 1);
    return n;
  }
  if (!isObj(v)) return 0;
  if (v.type === 'image_url' || v.type === 'image' || v.type === 'input_image' || 'inlineData' in v || 'inline_data' in v) return 1;
  for (const k in v) if (Object.hasOwn(v, k)) n += countImages(v[k], depth + 1);
  return n;
}

/**
 * Token counts of texts seen recently. Agents (Claude Code, Cursor, chat UIs) resend the whole
 * conversation on every call, so most of a request's text was counted on an earlier call; BPE on a
 * 100k-token history is tens of milliseconds, a Map lookup is microseconds. Bounded by total size.
 */
const tokenCache = new Map<string, number>();
let tokenCacheChars = 0;
const TOKEN_CACHE_CHARS = 8 * 1024 * 1024;
export function cachedCountTokens(text: string): number {
  const hit = tokenCache.get(text);
  if (hit !== undefined) return hit;
  const n = countTokens(text);
  if (text.length <= TOKEN_CACHE_CHARS / 4) {
    if (tokenCacheChars + text.length > TOKEN_CACHE_CHARS || tokenCache.size >= 100_000) {
      tokenCache.clear();
      tokenCacheChars = 0;
    }
    tokenCache.set(text, n);
    tokenCacheChars += text.length;
  }
  return n;
}

/** Tokens of the text in `parts`, plus per-message framing as OpenAI chat formats it. */
export function countInputTokens(parts: unknown, messages: number): number {
  const texts: string[] = [];
  collectText(parts, texts);
  let n = 0;
  for (const t of texts) n += cachedCountTokens(t);
  return n + messages * 3 + 3;
}

// An image in a prompt: OpenAI high detail bills 85 + 170 per 512px tile; 765 tokens is a
// 1024x1024 image. Used as the per-image estimate for every provider (noted in the quote).
const IMAGE_INPUT_TOKENS = 765;

function mediaFromParams(body: J, model: string): { usage: Usage; params: MediaParams } {
  const input = isObj(body.input) ? body.input : body; // Replicate wraps inputs in { input }
  const params: MediaParams = {};
  const usage: Usage = {};
  const size = str(input.size);
  const imageSize = input.image_size;
  if (size && /^\d+x\d+$/.test(size)) params.size = size;
  if (isObj(imageSize) && int(imageSize.width) && int(imageSize.height)) params.size = `${int(imageSize.width)}x${int(imageSize.height)}`;
  else if (typeof imageSize === 'string') params.size = FAL_PRESETS[imageSize] ?? imageSize;
  if (int(input.width) && int(input.height)) params.size = `${int(input.width)}x${int(input.height)}`;
  const quality = str(input.quality);
  if (quality) params.quality = quality;
  const resolution = str(input.resolution) ?? str(input.output_resolution);
  if (resolution) params.resolution = resolution.toLowerCase();
  // Replicate's FLUX.2 models take the output size as megapixels ("1 MP", "0.5 MP"…)
  const mpRes = resolution ? /^(\d{1,3}(?:\.\d{1,3})?)\s*mp$/i.exec(resolution.trim()) : null;
  if (mpRes && Number(mpRes[1]) > 0 && !params.size) usage.megapixelsPerImage = mpRes[1]!; // width×height wins (aspect_ratio "custom")
  const audio = input.generate_audio ?? input.generateAudio ?? input.audio;
  if (typeof audio === 'boolean') params.audio = audio;
  const n = int(input.n) ?? int(input.num_images) ?? int(input.num_outputs) ?? int(input.sampleCount) ?? int(input.number_of_images);
  usage.images = n ?? 1;
  const dur = input.duration ?? input.seconds ?? input.durationSeconds ?? input.duration_seconds;
  const secs = typeof dur === 'string' ? Number.parseInt(dur, 10) : int(dur);
  if (secs !== undefined && Number.isFinite(secs)) usage.videoSeconds = secs;
  // reference images of edit endpoints (fal image_urls / image_url, Replicate input_images / image_input)
  let refs = 0;
  for (const k of ['image_urls', 'input_images', 'image_input', 'reference_images']) if (Array.isArray(input[k])) refs += (input[k] as unknown[]).length;
  if (typeof input.image_url === 'string') refs += 1;
  if (refs) params.inputImages = refs;
  const factor = int(input.upscale_factor) ?? int(input.scale);
  if (factor && params.size) {
    const [w, h] = params.size.split('x').map(Number) as [number, number];
    params.size = `${w * factor}x${h * factor}`;
  } else if (factor) params.size = `${1024 * factor}x${1024 * factor}`;
  void model;
  return { usage, params };
}

/**
 * Inputs a Replicate model bills on, at the defaults its API schema gives when the request leaves
 * them out (replicate.com/<model>/api): google/veo-3.1 `duration` 8 (s);
 * black-forest-labs/flux-2-pro `resolution` "1 MP".
 */
const REPLICATE_DEFAULTS: Readonly<Record<string, { duration?: number; megapixels?: string }>> = {
  'google/veo-3.1': { duration: 8 },
  'black-forest-labs/flux-2-pro': { megapixels: '1' },
};

/** fal image_size presets (fal docs). */
export const FAL_PRESETS: Record<string, string> = {
  square_hd: '1024x1024', square: '512x512', portrait_4_3: '768x1024', portrait_16_9: '576x1024',
  landscape_4_3: '1024x768', landscape_16_9: '1024x576',
};

/** Work out provider, model, endpoint and token counts from a request body users really send. */
export function analyzeRequest(providerIn: string, body: unknown, path = ''): AnalyzedRequest {
  const provider = canonicalProvider(providerIn);
  if (!isObj(body)) throw new QuoteError('the request body must be a JSON object');
  const notes: string[] = [];
  const approx = provider !== 'openai';
  if (approx) notes.push('input tokens approximated with the o200k_base tokenizer');
  const stream = body.stream === true;

  if (provider === 'fal' || provider === 'replicate') {
    let model = str(body.model) ?? '';
    const m = /models\/([^/]+\/[^/]+)\/predictions/.exec(path);
    if (m) model = m[1]!;
    else if (provider === 'fal' && path) model = path.replace(/^\/+/, '').replace(/\/requests\/.*$/, '');
    if (!model) throw new QuoteError(`a ${provider} request needs the model (its path, e.g. fal-ai/flux-2-pro, or "model")`);
    const media = mediaFromParams(body, model);
    const falNotes: string[] = [];
    // fal's image models default to image_size landscape_4_3 (1024x768) when none is sent, and
    // bill that size: price the default rather than refuse to quote.
    if (provider === 'fal' && !media.params.size && !/video|veo|kling|sora|upscal|clarity/i.test(model)) {
      media.params.size = FAL_PRESETS.landscape_4_3!;
      falNotes.push("no image_size sent: priced at fal's default landscape_4_3 (1024x768)");
    }
    const input = isObj(body.input) ? body.input : body;
    const dflt = provider === 'replicate' ? REPLICATE_DEFAULTS[model] : undefined;
    if (dflt?.duration !== undefined && media.usage.videoSeconds === undefined) {
      media.usage.videoSeconds = dflt.duration;
      falNotes.push(`no duration sent: priced at ${model}'s default ${dflt.duration} s`);
    }
    if (dflt?.megapixels !== undefined && media.usage.megapixelsPerImage === undefined && !media.params.size && input.resolution === undefined && input.aspect_ratio !== 'custom') {
      media.usage.megapixelsPerImage = dflt.megapixels;
      falNotes.push(`no resolution sent: priced at ${model}'s default ${dflt.megapixels} MP`);
    }
    return { provider, model, endpoint: provider, kind: 'media', inputTokens: 0, maxOutput: null, stream, media, notes: falNotes };
  }

  if (provider === 'gemini') {
    const m = /models\/([^/:]+):(\w+)/.exec(path);
    const model = m?.[1] ?? str(body.model)?.replace(/^models\//, '');
    if (!model) throw new QuoteError('a Gemini request needs the model (from the path models/MODEL:generateContent or "model")');
    const method = m?.[2] ?? 'generateContent';
    if (method === 'predictLongRunning' || method === 'predict') {
      const inst = Array.isArray(body.instances) ? body.instances[0] : undefined;
      const p = isObj(body.parameters) ? body.parameters : {};
      return { provider, model, endpoint: method, kind: 'media', inputTokens: 0, maxOutput: null, stream, media: mediaFromParams({ ...p, ...(isObj(inst) ? inst : {}) }, model), notes: [] };
    }
    const contents = body.contents;
    const n = Array.isArray(contents) ? contents.length : 1;
    const images = countImages(contents);
    const gc = isObj(body.generationConfig) ? body.generationConfig : isObj(body.config) ? body.config : {};
    if (images) notes.push(`${images} image(s) estimated at ${IMAGE_INPUT_TOKENS} tokens each`);
    return {
      provider, model, endpoint: method, kind: 'chat', stream: method.startsWith('stream'),
      inputTokens: countInputTokens([contents, body.systemInstruction, body.tools], n) + images * IMAGE_INPUT_TOKENS,
      maxOutput: int(gc.maxOutputTokens) ?? null, media: null, notes,
    };
  }

  const model = str(body.model);
  if (!model) throw new QuoteError('the request has no "model"');

  if (provider === 'anthropic') {
    const messages = Array.isArray(body.messages) ? body.messages : [];
    const images = countImages(messages);
    if (images) notes.push(`${images} image(s) estimated at ${IMAGE_INPUT_TOKENS} tokens each`);
    return {
      provider, model, endpoint: 'messages', kind: 'chat', stream,
      inputTokens: countInputTokens([body.system, messages, body.tools], messages.length) + images * IMAGE_INPUT_TOKENS,
      maxOutput: int(body.max_tokens) ?? null, media: null, notes,
    };
  }

  // OpenAI and OpenAI-compatible hosts
  if (path.includes('/images/') || (typeof body.prompt === 'string' && !body.messages && (body.size || body.quality || body.n || /image|dall-e/.test(model)))) {
    return { provider, model, endpoint: 'images', kind: 'media', inputTokens: 0, maxOutput: null, stream, media: mediaFromParams(body, model), notes: [] };
  }
  if (path.includes('/videos') || /^sora/.test(model)) {
    const media = mediaFromParams(body, model);
    media.usage.videoSeconds ??= 4; // Sora's default clip length
    if (body.size) media.params.size = str(body.size);
    return { provider, model, endpoint: 'videos', kind: 'media', inputTokens: 0, maxOutput: null, stream, media, notes: [] };
  }
  if (path.includes('/embeddings') || body.input !== undefined && /embed/.test(model)) {
    return { provider, model, endpoint: 'embeddings', kind: 'embedding', inputTokens: countInputTokens(body.input, 0) - 3, maxOutput: 0, stream: false, media: null, notes };
  }
  if (path.includes('/responses') || (body.input !== undefined && body.messages === undefined)) {
    const input = body.input;
    const n = Array.isArray(input) ? input.length : 1;
    return {
      provider, model, endpoint: 'responses', kind: 'chat', stream,
      inputTokens: countInputTokens([body.instructions, input, body.tools], n) + countImages(input) * IMAGE_INPUT_TOKENS,
      maxOutput: int(body.max_output_tokens) ?? null, media: null, notes,
    };
  }
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const images = countImages(messages);
  if (images) notes.push(`${images} image(s) estimated at ${IMAGE_INPUT_TOKENS} tokens each`);
  return {
    provider, model, endpoint: 'chat.completions', kind: 'chat', stream,
    inputTokens: countInputTokens([messages, body.tools], messages.length) + images * IMAGE_INPUT_TOKENS,
    maxOutput: int(body.max_completion_tokens) ?? int(body.max_tokens) ?? null, media: null, notes,
  };
}

export interface QuoteOptions {
  at?: Date;
  /** Median output tokens this model produced recently (from the ledger), for `expected`. */
  observedOutput?: (provider: string, model: string) => number | null;
}

interface Range { min: PricedCall; expected: PricedCall; max: PricedCall }

function mediaRange(media: MediaModel, usage: Usage, params: MediaParams): Range | null {
  const exact = priceMedia(usage, media, { params });
  if (!exact.unpriced) return { min: exact, expected: exact, max: exact };
  // Unknown parameters: the range over every catalog price of this model.
  // Known parameters stay fixed (a given size with an unknown quality ranges over qualities only).
  const known = Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined)) as MediaParams;
  const options = media.prices.map((p) => priceMedia(usage, media, { params: { ...p.when, ...known } })).filter((p) => !p.unpriced);
  if (options.length === 0) return null;
  const sorted = [...options].sort((a, b) => (a.cost < b.cost ? -1 : a.cost > b.cost ? 1 : 0));
  return { min: sorted[0]!, expected: sorted[Math.floor((sorted.length - 1) / 2)]!, max: sorted[sorted.length - 1]! };
}

function item(node: string | null, a: { provider: string; model: string }, repeat: number, r: Range | null, reason: string | null, notes: string[]): QuoteItem {
  if (!r) return { node, provider: a.provider, model: a.model, repeat, min: '0', expected: '0', max: '0', items: [], unpriced: reason ?? 'unpriced', notes };
  const times = BigInt(repeat);
  // exact media quotes have min = expected = max: format each distinct amount once (hot path)
  const expected = nanoToUsd(r.expected.cost * times);
  return {
    node, provider: a.provider, model: a.model, repeat,
    min: r.min === r.expected ? expected : nanoToUsd(r.min.cost * times), expected, max: r.max === r.expected ? expected : nanoToUsd(r.max.cost * times),
    items: repeat === 1 ? toLineItems(r.expected.items) : toLineItems(r.expected.items.map((l) => ({ ...l, label: `${l.label} ×${repeat}`, cost: l.cost * times }))),
    unpriced: null, notes,
  };
}

/** The quote for one request body. `repeat` multiplies the whole call. */
export function quoteRequest(catalog: Catalog, provider: string, body: unknown, path = '', opts: QuoteOptions = {}, node: string | null = null, repeat = 1): QuoteItem {
  return quoteAnalyzed(catalog, analyzeRequest(provider, body, path), opts, node, repeat);
}

/** The quote for a request already analyzed (the proxy analyzes once and reuses the result). */
export function quoteAnalyzed(catalog: Catalog, a: AnalyzedRequest, opts: QuoteOptions = {}, node: string | null = null, repeat = 1): QuoteItem {
  const resolved = catalog.resolve(a.provider, a.model, opts.at);
  const name = `${a.provider}:${a.model}`;
  if (a.media) {
    if (!resolved.media) {
      const p = priceCall(a.media.usage, resolved, { params: a.media.params }, name);
      return item(node, a, repeat, null, p.unpriced, a.notes);
    }
    const r = mediaRange(resolved.media, a.media.usage, a.media.params);
    return item(node, a, repeat, r, r ? null : `no price for ${name} with these parameters`, a.notes);
  }
  const r = tokenRange(catalog, a, opts);
  return item(node, a, repeat, r.range, r.reason, [...a.notes, ...r.notes]);
}

/**
 * The same quote as `quoteAnalyzed`, as nano-USD amounts only (no line items, notes or decimal
 * strings): what the proxy needs before forwarding a call, on its hot path. Null when unpriced.
 */
export function quoteNano(catalog: Catalog, a: AnalyzedRequest, opts: QuoteOptions = {}): { min: Nano; expected: Nano; max: Nano } | null {
  let r: Range | null;
  if (a.media) {
    const media = catalog.resolve(a.provider, a.model, opts.at).media;
    r = media ? mediaRange(media, a.media.usage, a.media.params) : null;
  } else r = tokenRange(catalog, a, opts, false).range;
  return r && { min: r.min.cost, expected: r.expected.cost, max: r.max.cost };
}

export function tokenRange(catalog: Catalog, a: Pick<AnalyzedRequest, 'provider' | 'model' | 'inputTokens' | 'maxOutput' | 'kind'>, opts: QuoteOptions = {}, withNotes = true): { range: Range | null; reason: string | null; notes: string[]; maxOutput: number } {
  const resolved = catalog.resolve(a.provider, a.model, opts.at);
  const name = `${a.provider}:${a.model}`;
  const notes: string[] = [];
  let maxOut = a.maxOutput;
  if (maxOut === null) {
    const cw = resolved.token?.contextWindow;
    if (cw && cw > a.inputTokens) {
      maxOut = cw - a.inputTokens;
      if (withNotes) notes.push(`no output limit in the request: max assumes the model's context window (${cw.toLocaleString('en-US')} tokens)`);
    } else {
      maxOut = FALLBACK_MAX_OUTPUT;
      if (withNotes) notes.push(`no output limit in the request: max assumes ${FALLBACK_MAX_OUTPUT.toLocaleString('en-US')} output tokens`);
    }
  }
  if (a.kind === 'embedding') maxOut = 0;
  const observed = opts.observedOutput?.(a.provider, a.model) ?? null;
  const expOut = Math.min(maxOut, observed ?? EXPECTED_OUTPUT_TOKENS);
  const min = priceOutput(a.inputTokens, 0, resolved, name, withNotes);
  if (min.unpriced) return { range: null, reason: min.unpriced, notes, maxOutput: maxOut };
  return { range: { min, expected: priceOutput(a.inputTokens, expOut, resolved, name, withNotes), max: priceOutput(a.inputTokens, maxOut, resolved, name, withNotes) }, reason: null, notes, maxOutput: maxOut };
}

/** A call's price with `output` tokens; without items when the caller needs amounts only (the proxy's hot path). */
function priceOutput(input: number, output: number, resolved: ReturnType<Catalog['resolve']>, name: string, withItems: boolean): PricedCall {
  const usage = { inputTokens: input, outputTokens: output };
  return !withItems && resolved.token ? priceTokens(usage, resolved.token, true) : priceCall(usage, resolved, {}, name);
}

/** A quote from known usage (`tollgate quote --model p:m --input-tokens N ...`): min = expected = max. */
export function quoteUsage(catalog: Catalog, modelRef: string, usage: Usage, params: MediaParams = {}, opts: QuoteOptions = {}, node: string | null = null, repeat = 1): QuoteItem {
  const { provider, model } = splitModelRef(modelRef);
  const resolved = catalog.resolve(provider, model, opts.at);
  const name = `${provider}:${model}`;
  if (resolved.media && (usage.images !== undefined || usage.videoSeconds !== undefined || usage.megapixelsPerImage !== undefined || !resolved.token)) {
    const r = mediaRange(resolved.media, usage, params);
    return item(node, { provider, model }, repeat, r, r ? null : `no price for ${name} with these parameters`, []);
  }
  const p = priceCall(usage, resolved, { params }, name);
  return item(node, { provider, model }, repeat, p.unpriced ? null : { min: p, expected: p, max: p }, p.unpriced, []);
}

export function splitModelRef(ref: string): { provider: string; model: string } {
  const i = ref.indexOf(':');
  if (i <= 0 || i === ref.length - 1) throw new QuoteError(`"${ref}" is not provider:model (e.g. openai:gpt-4o-mini, fal:fal-ai/flux-2-pro)`);
  return { provider: canonicalProvider(ref.slice(0, i)), model: ref.slice(i + 1) };
}

export function sumQuote(items: QuoteItem[]): { min: Nano; expected: Nano; max: Nano } {
  let min = 0n, expected = 0n, max = 0n;
  for (const it of items) {
    if (it.unpriced) continue;
    min += usdToNanoExact(it.min);
    expected += usdToNanoExact(it.expected);
    max += usdToNanoExact(it.max);
  }
  return { min, expected, max };
}

/** Batches larger than this are not estimated request by request (that would block the engine). */
export const BATCH_ESTIMATE_MAX_REQUESTS = 1000;

export interface BatchEstimate {
  /** Null when the batch cannot be estimated; `reason` says why. */
  cost: Nano | null;
  items: PricedCall['items'];
  requests: number;
  model: string | null;
  source: string | null;
  reason: string | null;
}

/**
 * A batch submission with its requests inline (Anthropic `/v1/messages/batches`, Gemini
 * `:batchGenerateContent` with `input_config.requests`), estimated request by request at the batch
 * rate (50 %): each request's counted input plus min(its output limit, 500) output tokens, the
 * same expected output a quote uses. An estimate, booked as such: the provider reports the real
 * usage only in the batch's results.
 */
export function estimateBatch(catalog: Catalog, providerIn: string, body: unknown, path = '', at?: Date): BatchEstimate {
  const provider = canonicalProvider(providerIn);
  const none = (reason: string, requests = 0): BatchEstimate => ({ cost: null, items: [], requests, model: null, source: null, reason });
  if (!isObj(body)) return none('the batch request is not a JSON object');
  let bodies: unknown[] = [];
  let gemModel: string | undefined;
  if (provider === 'anthropic') {
    bodies = Array.isArray(body.requests) ? body.requests.map((r) => (isObj(r) ? r.params : undefined)) : [];
  } else if (provider === 'gemini') {
    gemModel = /models\/([^/:]+):/.exec(path)?.[1];
    const batch = isObj(body.batch) ? body.batch : body;
    const cfg = isObj(batch.input_config) ? batch.input_config : isObj(batch.inputConfig) ? batch.inputConfig : {};
    const reqs = isObj(cfg.requests) ? cfg.requests.requests : undefined;
    if (!Array.isArray(reqs)) return none('a Gemini batch from a file is billed as its requests run; Tollgate cannot see them when it is submitted');
    bodies = reqs.map((r) => (isObj(r) && isObj(r.request) ? r.request : r));
  } else return none('this batch is billed as its requests run; Tollgate cannot see them when it is submitted');
  if (bodies.length === 0) return none('the batch has no inline requests to estimate');
  if (bodies.length > BATCH_ESTIMATE_MAX_REQUESTS) return none(`the batch has ${bodies.length} requests, more than Tollgate estimates one by one (${BATCH_ESTIMATE_MAX_REQUESTS})`, bodies.length);
  let cost = 0n;
  let input = 0, output = 0;
  let model: string | null = null;
  let source: string | null = null;
  let resolvedModel: TokenModelLike | null = null;
  for (const b of bodies) {
    let a: AnalyzedRequest;
    try {
      a = analyzeRequest(provider, provider === 'gemini' ? { ...(isObj(b) ? b : {}), model: gemModel } : b, provider === 'gemini' && gemModel ? `/v1beta/models/${gemModel}:generateContent` : '');
    } catch (e) {
      return none(`a request in the batch cannot be read: ${(e as Error).message}`, bodies.length);
    }
    const tm = catalog.resolve(a.provider, a.model, at).token;
    if (!tm) return none(`unknown model in the batch: ${a.provider}:${a.model} is not in the price catalog`, bodies.length);
    const out = Math.min(a.maxOutput ?? EXPECTED_OUTPUT_TOKENS, EXPECTED_OUTPUT_TOKENS);
    const p = priceTokens({ inputTokens: a.inputTokens, outputTokens: out, serviceTier: 'batch' }, tm, true);
    if (p.unpriced) return none(p.unpriced, bodies.length);
    cost += p.cost;
    input += a.inputTokens;
    output += out;
    if (model === null) {
      model = a.model;
      source = p.priceSource;
      resolvedModel = tm;
    } else if (model !== a.model) model = 'several models';
  }
  const items = resolvedModel && model !== 'several models'
    ? [{ label: `${bodies.length} batch requests (estimated: ${input.toLocaleString('en-US')} input + ${output.toLocaleString('en-US')} expected output tokens, at 50 %)`, quantity: String(bodies.length), unit: 'request', per: 1, unitPrice: 'estimate', cost, source: source ?? '' }]
    : [{ label: `${bodies.length} batch requests (estimated, at 50 %)`, quantity: String(bodies.length), unit: 'request', per: 1, unitPrice: 'estimate', cost, source: source ?? '' }];
  return { cost, items, requests: bodies.length, model, source: `estimate from ${bodies.length} submitted requests: ${source}`, reason: null };
}
type TokenModelLike = NonNullable<ReturnType<Catalog['resolve']>['token']>;

/** One billed request of a batch's results (see electron/engine/extract.ts BatchResultLine). */
export interface BatchLine {
  model: string | null;
  usage: Usage;
}

export interface BatchActual {
  /** Null when the results cannot be priced; `reason` says why. */
  cost: Nano | null;
  items: PricedCall['items'];
  /** The model of the results, or null when they name several (or none). */
  model: string | null;
  /** Every request's usage summed (string fields kept where all requests agree), with `requests`. */
  usage: Usage;
  source: string | null;
  reason: string | null;
}

const STRING_FIELDS = new Set(['serviceTier', 'speed', 'inferenceGeo', 'megapixelsPerImage']);

/**
 * A batch's actual cost from its results: each billed request's usage, at the batch rate (the
 * `serviceTier: 'batch'` the results carry). Requests are summed per model and per price tier (a
 * long-context tier applies per request, on that request's own input) and each sum is priced once,
 * as the provider bills tokens, so the cost is rounded once per line item. `defaultModel`: the
 * batch's model where a result line does not name one (Gemini job metadata).
 */
export function priceBatchResults(catalog: Catalog, providerIn: string, lines: readonly BatchLine[], at?: Date, defaultModel: string | null = null): BatchActual {
  const provider = canonicalProvider(providerIn);
  const total: Usage = { requests: 0 };
  const groups = new Map<string, { model: string; tm: TokenModelLike; usage: Usage; requests: number }>();
  // unpriced: the usage of every request is still summed (a re-price after the user sets a price prices it all)
  const none = (reason: string): BatchActual => ({ cost: null, items: [], model: null, usage: { ...total, requests: lines.length }, source: null, reason });
  const models = new Set<string>();
  const mixed = new Set<string>();
  let why: string | null = null;
  for (const raw of lines) {
    // every request of a batch is billed at the batch rate, whatever tier its line reports
    const line = { model: raw.model, usage: { ...raw.usage, serviceTier: 'batch' } };
    const model = line.model ?? defaultModel;
    addUsage(total, line.usage, mixed);
    if (why) continue;
    if (!model) {
      why = 'a result in the batch names no model';
      continue;
    }
    models.add(model);
    const tm = catalog.resolve(provider, model, at).token;
    if (!tm) {
      why = `unknown model in the batch results: ${provider}:${model} is not in the price catalog`;
      continue;
    }
    const implausible = implausibleUsage(line.usage, tm);
    if (implausible) {
      why = implausible;
      continue;
    }
    // the price tier each rate is at for this request (long-context tiers go by the request's own input)
    const totalIn = totalInputTokens(line.usage);
    let tierKey = '';
    for (const spec of tm.rates.values()) {
      let n = 0;
      for (const t of spec.tiers) if (totalIn > t.start) n++;
      if (n) tierKey += `${spec.key}=${n};`;
    }
    const strings = [...STRING_FIELDS].map((f) => String((line.usage as Record<string, unknown>)[f] ?? '')).join('\u0000');
    const key = `${model}\u0000${tierKey}\u0000${strings}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { model, tm, usage: {}, requests: 0 }));
    addUsage(g.usage, line.usage);
    g.requests++;
  }
  if (why) return none(why);
  total.requests = lines.length;
  if (lines.length === 0) return { cost: 0n, items: [], model: null, usage: total, source: 'no request in the batch was billed', reason: null };
  let cost = 0n;
  const items: PricedCall['items'] = [];
  let source: string | null = null;
  const several = groups.size > 1;
  for (const g of groups.values()) {
    g.usage.requests = g.requests;
    // the batch of several tiers or models is priced group by group: each group's line items say which
    const p = priceTokens(g.usage, g.tm);
    if (p.unpriced) return none(p.unpriced);
    cost += p.cost;
    source ??= p.priceSource;
    for (const it of p.items) items.push(several ? { ...it, label: `${g.model}, ${g.requests} request${g.requests === 1 ? '' : 's'}: ${it.label}` } : it);
  }
  return { cost, items, model: models.size === 1 ? [...models][0]! : null, usage: total, source, reason: null };
}

function addUsage(into: Usage, u: Usage, mixed: Set<string> = new Set()): void {
  const o = into as Record<string, number | string | undefined>;
  for (const [k, v] of Object.entries(u)) {
    if (typeof v === 'number') o[k] = ((o[k] as number | undefined) ?? 0) + v;
    else if (typeof v === 'string' && !mixed.has(k)) {
      // a string field (service tier…) is kept where every request agrees
      if (o[k] === undefined) o[k] = v;
      else if (o[k] !== v) {
        delete o[k];
        mixed.add(k);
      }
    }
  }
}
