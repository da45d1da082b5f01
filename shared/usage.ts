/**
 * Canonical usage: every quantity is a *leaf* — no field includes another — so a price can be
 * applied to each field independently and nothing is counted twice or dropped.
 *
 * Providers report overlapping numbers; the normalizers below turn each provider's native usage
 * object into leaves, one function per wire format, each with a test built from a real body.
 */

export interface Usage {
  /** Text input tokens that were neither read from nor written to a cache. */
  inputTokens?: number;
  cacheReadTokens?: number;
  /**
   * Cache writes whose lifetime the response does not say (Anthropic without the `cache_creation`
   * split; OpenAI `cache_write_tokens`). Priced at the model's plain write price (`cache_write_mtok`,
   * Anthropic's 5-minute price), unless the request settles it (`resolveCacheLifetime`).
   */
  cacheWriteTokens?: number;
  /** Cache writes with the 5 minute lifetime. */
  cacheWrite5mTokens?: number;
  cacheWrite1hTokens?: number;
  inputAudioTokens?: number;
  cacheAudioReadTokens?: number;
  inputImageTokens?: number;
  /** Visible output tokens, excluding reasoning/thinking, audio and image output. */
  outputTokens?: number;
  reasoningTokens?: number;
  outputAudioTokens?: number;
  outputImageTokens?: number;
  webSearches?: number;
  /**
   * Gemini grounding with Google Search, as the response's `groundingMetadata` shows it: one
   * grounded prompt per response that was grounded (Gemini 2.x bills per grounded prompt), and the
   * search queries it ran (`webSearchQueries`; Gemini 3 bills per query). Pricing keeps the one the
   * model is billed by (`groundingBilledBy`).
   */
  groundedPrompts?: number;
  groundingQueries?: number;
  /** Seconds of audio billed per minute/hour (whisper-1 transcription), as the response reports them. */
  audioSeconds?: number;
  /** Characters of text billed per character (tts-1 speech). */
  characters?: number;
  /** The service tier the provider says it served the call in (OpenAI `service_tier`): priority, flex, batch… */
  serviceTier?: string;
  /** Anthropic fast mode as the response reports it (`usage.speed: "fast"`); absent at standard speed. */
  speed?: string;
  /** Where Anthropic ran inference as the response reports it (`usage.inference_geo`, e.g. "us"); absent for "global". */
  inferenceGeo?: string;
  /** Media units. */
  images?: number;
  /** Megapixels per image (decimal string, exact: width*height/1e6). */
  megapixelsPerImage?: string;
  videoSeconds?: number;
  /**
   * Seconds of hardware run time the provider reports for a model billed by hardware time
   * (Replicate `metrics.predict_time`), to the millisecond.
   */
  runSeconds?: number;
  /** Per-request fees: the number of billable requests (normally 1). */
  requests?: number;
}

export const TOKEN_FIELDS = [
  'inputTokens', 'cacheReadTokens', 'cacheWriteTokens', 'cacheWrite5mTokens', 'cacheWrite1hTokens', 'inputAudioTokens',
  'cacheAudioReadTokens', 'inputImageTokens', 'outputTokens', 'reasoningTokens', 'outputAudioTokens', 'outputImageTokens',
] as const satisfies readonly (keyof Usage)[];

/** All input tokens, cached or not: the number long-context tiers are decided on. */
export function totalInputTokens(u: Usage): number {
  return (u.inputTokens ?? 0) + (u.cacheReadTokens ?? 0) + (u.cacheWriteTokens ?? 0) + (u.cacheWrite5mTokens ?? 0) + (u.cacheWrite1hTokens ?? 0)
    + (u.inputAudioTokens ?? 0) + (u.cacheAudioReadTokens ?? 0) + (u.inputImageTokens ?? 0);
}

export function totalOutputTokens(u: Usage): number {
  return (u.outputTokens ?? 0) + (u.reasoningTokens ?? 0) + (u.outputAudioTokens ?? 0) + (u.outputImageTokens ?? 0);
}

export class UsageError extends Error {
  readonly code = 'E_USAGE';
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
function num(v: unknown, field: string): number {
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new UsageError(`usage field ${field} is not a non-negative integer: ${JSON.stringify(v)}`);
  return v;
}
function leaf(total: number, parts: number, what: string): number {
  if (parts > total) throw new UsageError(`${what}: details (${parts}) exceed the total (${total})`);
  return total - parts;
}
function clean(u: Usage): Usage {
  const out: Usage = {};
  for (const k in u) {
    const v = (u as Record<string, unknown>)[k];
    if (v !== 0 && v !== undefined) (out as Record<string, unknown>)[k] = v;
  }
  return out;
}

/**
 * OpenAI chat completions (and OpenAI-compatible hosts, OpenRouter):
 * `prompt_tokens` INCLUDES `prompt_tokens_details.cached_tokens`, `cache_write_tokens` (cache
 * writes, billed above input on GPT-5.6+ and on OpenRouter's Anthropic models) and audio tokens;
 * `completion_tokens` INCLUDES `completion_tokens_details.reasoning_tokens` (and audio tokens).
 * DeepSeek documents its cache hits as `prompt_cache_hit_tokens` (prompt_tokens = hits + misses),
 * read when `prompt_tokens_details.cached_tokens` is absent.
 */
export function fromOpenAIChat(raw: unknown): Usage {
  const u = obj(raw);
  const pd = obj(u.prompt_tokens_details);
  const cd = obj(u.completion_tokens_details);
  const prompt = num(u.prompt_tokens, 'prompt_tokens');
  const cached = num(pd.cached_tokens !== undefined && pd.cached_tokens !== null ? pd.cached_tokens : u.prompt_cache_hit_tokens, 'cached_tokens');
  const written = num(pd.cache_write_tokens, 'cache_write_tokens');
  const inAudio = num(pd.audio_tokens, 'prompt audio_tokens');
  const completion = num(u.completion_tokens, 'completion_tokens');
  const reasoning = num(cd.reasoning_tokens, 'reasoning_tokens');
  const outAudio = num(cd.audio_tokens, 'completion audio_tokens');
  return clean({
    inputTokens: leaf(prompt, cached + written + inAudio, 'prompt_tokens'),
    cacheReadTokens: cached,
    cacheWriteTokens: written,
    inputAudioTokens: inAudio,
    outputTokens: leaf(completion, reasoning + outAudio, 'completion_tokens'),
    reasoningTokens: reasoning,
    outputAudioTokens: outAudio,
  });
}

/** OpenAI Responses API: `input_tokens` includes cached tokens and cache writes (`cache_write_tokens`); `output_tokens` includes reasoning tokens. */
export function fromOpenAIResponses(raw: unknown): Usage {
  const u = obj(raw);
  const input = num(u.input_tokens, 'input_tokens');
  const details = obj(u.input_tokens_details);
  const cached = num(details.cached_tokens, 'cached_tokens');
  const written = num(details.cache_write_tokens, 'cache_write_tokens');
  const output = num(u.output_tokens, 'output_tokens');
  const reasoning = num(obj(u.output_tokens_details).reasoning_tokens, 'reasoning_tokens');
  return clean({
    inputTokens: leaf(input, cached + written, 'input_tokens'),
    cacheReadTokens: cached,
    cacheWriteTokens: written,
    outputTokens: leaf(output, reasoning, 'output_tokens'),
    reasoningTokens: reasoning,
  });
}

/**
 * OpenAI image generation (gpt-image-1): `input_tokens` = text + image input tokens, output tokens
 * are image tokens.
 */
export function fromOpenAIImages(raw: unknown): Usage {
  const u = obj(raw);
  const d = obj(u.input_tokens_details);
  const input = num(u.input_tokens, 'input_tokens');
  const imageIn = num(d.image_tokens, 'image_tokens');
  return clean({
    inputTokens: leaf(input, imageIn, 'input_tokens'),
    inputImageTokens: imageIn,
    outputImageTokens: num(u.output_tokens, 'output_tokens'),
  });
}

/**
 * Anthropic messages: `input_tokens` EXCLUDES cache reads and cache writes; they are reported
 * beside it. `cache_creation` splits writes by lifetime (5 m and 1 h are priced differently);
 * without the split, the writes' lifetime is unknown (`cacheWriteTokens`): the request's
 * `cache_control` ttl settles it (resolveCacheLifetime), else they are priced as 5-minute writes. Thinking tokens are already inside
 * `output_tokens` and billed as output, so they are not split out here.
 */
export function fromAnthropic(raw: unknown): Usage {
  const u = obj(raw);
  const creation = obj(u.cache_creation);
  const write = num(u.cache_creation_input_tokens, 'cache_creation_input_tokens');
  const w5 = num(creation.ephemeral_5m_input_tokens, 'ephemeral_5m_input_tokens');
  const w1h = num(creation.ephemeral_1h_input_tokens, 'ephemeral_1h_input_tokens');
  const split = w5 + w1h;
  const serverTool = obj(u.server_tool_use);
  return clean({
    inputTokens: num(u.input_tokens, 'input_tokens'),
    cacheReadTokens: num(u.cache_read_input_tokens, 'cache_read_input_tokens'),
    // The split, when present, is authoritative; writes it does not cover have no stated lifetime.
    cacheWriteTokens: write > split ? write - split : 0,
    cacheWrite5mTokens: w5,
    cacheWrite1hTokens: w1h,
    outputTokens: num(u.output_tokens, 'output_tokens'),
    webSearches: num(serverTool.web_search_requests, 'web_search_requests'),
    // pricing modifiers the response reports (fast mode, US-only inference); short words only
    speed: label(u.speed, 'standard'),
    inferenceGeo: label(u.inference_geo, 'global'),
  });
}

/** A provider's short label (speed, inference geo), or undefined for its default or anything odd. */
function label(v: unknown, dflt: string): string | undefined {
  return typeof v === 'string' && v !== dflt && /^[a-z0-9_-]{1,32}$/i.test(v) ? v.toLowerCase() : undefined;
}

/** A Gemini `*TokensDetails` list ([{ modality, tokenCount }]) → the IMAGE and AUDIO counts. */
function modalities(v: unknown, what: string): { image: number; audio: number } {
  let image = 0, audio = 0;
  if (!Array.isArray(v)) return { image, audio };
  for (const x of v) {
    const d = obj(x);
    const n = num(d.tokenCount, `${what} tokenCount`);
    if (d.modality === 'IMAGE') image += n;
    else if (d.modality === 'AUDIO') audio += n;
  }
  return { image, audio };
}

/**
 * Gemini generateContent: `promptTokenCount` INCLUDES `cachedContentTokenCount`;
 * `thoughtsTokenCount` is NOT in `candidatesTokenCount` but is billed as output;
 * `toolUsePromptTokenCount` (tokens of tool-use prompts, e.g. grounding results fed back) is
 * reported beside `promptTokenCount`, not in it, and is billed as input.
 * Modalities: `candidatesTokensDetails` splits output into TEXT / IMAGE / AUDIO (Nano Banana's
 * images are IMAGE output tokens, billed at `output_image_mtok`, 10-20x text); `promptTokensDetails`
 * and `cacheTokensDetails` split input, and AUDIO input has its own rate. Image and video input
 * are billed at the text input rate, so they stay in `inputTokens`.
 */
export function fromGemini(raw: unknown): Usage {
  const u = obj(raw);
  const prompt = num(u.promptTokenCount, 'promptTokenCount');
  const cached = num(u.cachedContentTokenCount, 'cachedContentTokenCount');
  const inM = modalities(u.promptTokensDetails, 'promptTokensDetails');
  const cacheM = modalities(u.cacheTokensDetails, 'cacheTokensDetails');
  const outM = modalities(u.candidatesTokensDetails, 'candidatesTokensDetails');
  const candidates = num(u.candidatesTokenCount, 'candidatesTokenCount');
  const cachedAudio = Math.min(cacheM.audio, inM.audio);
  const audioIn = leaf(inM.audio, cachedAudio, 'promptTokensDetails AUDIO');
  const uncached = leaf(prompt, cached, 'promptTokenCount');
  return clean({
    inputTokens: leaf(uncached, audioIn, 'promptTokenCount (uncached) vs its AUDIO detail') + num(u.toolUsePromptTokenCount, 'toolUsePromptTokenCount'),
    cacheReadTokens: leaf(cached, cachedAudio, 'cachedContentTokenCount'),
    inputAudioTokens: audioIn,
    cacheAudioReadTokens: cachedAudio,
    outputTokens: leaf(candidates, outM.image + outM.audio, 'candidatesTokenCount'),
    outputImageTokens: outM.image,
    outputAudioTokens: outM.audio,
    reasoningTokens: num(u.thoughtsTokenCount, 'thoughtsTokenCount'),
  });
}

/**
 * OpenAI audio (`/v1/audio/transcriptions`, `/translations`, streamed `/speech`): `usage` is either
 * `{ type: "duration", seconds }` (whisper-1, billed per second of audio) or
 * `{ type: "tokens", input_tokens, input_token_details: { text_tokens, audio_tokens }, output_tokens }`
 * (gpt-4o-transcribe, gpt-4o-mini-transcribe; speech streams report input and output tokens).
 * Seconds are rounded up to the whole second.
 */
export function fromOpenAIAudio(raw: unknown): Usage {
  const u = obj(raw);
  if (u.type === 'duration') {
    const s = u.seconds;
    if (typeof s !== 'number' || !Number.isFinite(s) || s < 0 || s > 1e7) throw new UsageError(`usage field seconds is not a duration: ${JSON.stringify(s)}`);
    return clean({ audioSeconds: Math.ceil(s) });
  }
  const input = num(u.input_tokens, 'input_tokens');
  const d = obj(u.input_token_details);
  const audio = num(d.audio_tokens, 'audio_tokens');
  const output = num(u.output_tokens, 'output_tokens');
  // speech: the output is audio, which the price data lists as the model's output price
  return clean({ inputTokens: leaf(input, audio, 'input_tokens'), inputAudioTokens: audio, outputTokens: output });
}

/** The `cache_control` ttls an Anthropic request asks for ("5m" when a breakpoint names none). */
function cacheTtls(v: unknown, out: Set<string>, depth = 0): void {
  if (depth > 8 || out.size > 1) return;
  if (Array.isArray(v)) {
    for (const x of v) cacheTtls(x, out, depth + 1);
    return;
  }
  if (!v || typeof v !== 'object') return;
  const o = v as Json;
  const cc = o.cache_control;
  if (cc && typeof cc === 'object') out.add((cc as Json).ttl === '1h' ? '1h' : '5m');
  for (const k of ['system', 'messages', 'tools', 'content']) if (k in o) cacheTtls(o[k], out, depth + 1);
}

/**
 * Anthropic writes reported without the 5m/1h split: when every cache breakpoint of the request
 * asks for one lifetime, that is the writes' lifetime (exact). When the request mixes both, the
 * split cannot be known: priced as 5-minute writes and marked estimated. OpenAI writes keep the
 * model's single write price.
 */
export function resolveCacheLifetime(u: Usage, request: unknown): { usage: Usage; estimated: boolean } {
  const w = u.cacheWriteTokens;
  if (!w) return { usage: u, estimated: false };
  const ttls = new Set<string>();
  cacheTtls(request, ttls);
  const out: Usage = { ...u, cacheWriteTokens: undefined };
  delete out.cacheWriteTokens;
  if (ttls.size === 1 && ttls.has('1h')) out.cacheWrite1hTokens = (u.cacheWrite1hTokens ?? 0) + w;
  else out.cacheWrite5mTokens = (u.cacheWrite5mTokens ?? 0) + w;
  return { usage: out, estimated: ttls.size > 1 };
}

/** Add two usages field by field (used for streamed deltas and for replay aggregation). */
export function addUsage(a: Usage, b: Usage): Usage {
  const out: Usage = { ...a };
  for (const [k, v] of Object.entries(b) as [keyof Usage, unknown][]) {
    if (typeof v === 'number') (out as Record<string, unknown>)[k] = ((out[k] as number | undefined) ?? 0) + v;
    else if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  }
  return out;
}
