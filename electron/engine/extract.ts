/**
 * Response taps: watch the bytes a provider sends back (without delaying them) and pull out the
 * model, the usage and, for cut streams, the text streamed so far. One tap per wire format.
 */
import zlib from 'node:zlib';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { countTokens } from 'gpt-tokenizer';
import { fromAnthropic, fromGemini, fromOpenAIAudio, fromOpenAIChat, fromOpenAIImages, fromOpenAIResponses, type Usage } from '../../shared/usage.ts';

/**
 * Every kind of call the classifier knows, with how it is billed:
 * - `priced`: the response (or the request) carries what the provider bills, and it is priced;
 * - `unpriced`: the provider bills it, but Tollgate cannot price it yet: recorded as unpriced with
 *   the reason here, never as $0;
 * - `free`: the provider bills nothing for it (listings, polls, result downloads, token counting,
 *   cancels, file uploads). This is an explicit allow-list; anything not on it is never free.
 * - `results`: a batch's results (Anthropic `…/batches/{id}/results`, an OpenAI batch output file,
 *   a Gemini batch job, a Gemini batch's responses file): fetching them costs nothing, but they carry each request's usage, so the
 *   first retrieval of a batch's results books the batch's actual cost at the batch rate, once
 *   (replacing the estimate booked at submit). Never blocked by a cap: the money is already spent.
 */
export const ENDPOINTS = {
  // OpenAI and OpenAI-compatible hosts (OpenRouter, /x/NAME)
  'chat.completions': { billing: 'priced' },
  'completions': { billing: 'priced' },
  'responses': { billing: 'priced' },
  'embeddings': { billing: 'priced' },
  'images': { billing: 'priced' },
  'videos': { billing: 'priced' },
  'audio.transcriptions': { billing: 'priced' },
  'audio.translations': { billing: 'priced' },
  'audio.speech': { billing: 'priced' },
  'batches': { billing: 'unpriced', reason: 'an OpenAI batch job is billed (at batch rates) as its requests run; Tollgate cannot see their usage when the job is submitted: its cost is booked when its output file is read through Tollgate (GET /v1/files/{output_file_id}/content)' },
  'fine_tuning': { billing: 'unpriced', reason: 'fine-tuning jobs are billed per training token as they run; Tollgate does not see that usage' },
  'vector_stores.search': { billing: 'unpriced', reason: 'file search calls are billed per 1,000 searches and vector storage per GB-day; Tollgate does not price them yet' },
  'realtime': { billing: 'unpriced', reason: 'a Realtime session is billed on its WebSocket, which Tollgate does not meter' },
  'openai.unknown': { billing: 'unpriced', reason: 'Tollgate does not know how this OpenAI-style endpoint is billed' },
  'batches.output': { billing: 'results' },      // GET /v1/files/{id}/content: a batch's output file (other files: nothing booked)
  'batches.retrieve': { billing: 'free' },       // GET /v1/batches/{id}: a poll; read for the batch's output_file_id
  'openai.read': { billing: 'free' },            // GET/HEAD/DELETE: listings, retrievals, polls, downloads, deletes
  'openai.cancel': { billing: 'free' },
  'openai.files': { billing: 'free' },           // file and upload parts: uploading costs nothing
  'moderations': { billing: 'free' },
  'responses.input_tokens': { billing: 'free' },  // token counting
  // Anthropic
  'messages': { billing: 'priced' },
  'messages.count_tokens': { billing: 'free' },
  'messages.batches': { billing: 'unpriced', reason: 'an Anthropic message batch is billed (at batch rates) as its requests run; Tollgate cannot see their usage when the batch is submitted: its cost is booked when its results are read through Tollgate' },
  'anthropic.unknown': { billing: 'unpriced', reason: 'Tollgate does not know how this Anthropic endpoint is billed' },
  'messages.batches.results': { billing: 'results' },
  'anthropic.read': { billing: 'free' },
  'anthropic.cancel': { billing: 'free' },
  'anthropic.files': { billing: 'free' },
  // Gemini
  'generateContent': { billing: 'priced' },
  'streamGenerateContent': { billing: 'priced' },
  'predict': { billing: 'priced' },
  'predictLongRunning': { billing: 'priced' },
  'countTokens': { billing: 'free' },
  'batchGenerateContent': { billing: 'unpriced', reason: 'a Gemini batch job is billed (at batch rates) as its requests run; Tollgate cannot see their usage when the job is submitted: an inline batch\'s cost is booked when the finished job is read through Tollgate' },
  'embedContent': { billing: 'unpriced', reason: 'Gemini embedding responses carry no token usage' },
  'cachedContents': { billing: 'unpriced', reason: 'Gemini context caches are billed per token-hour of storage, which Tollgate does not price yet' },
  'gemini.unknown': { billing: 'unpriced', reason: 'Tollgate does not know how this Gemini method is billed' },
  'gemini.batch': { billing: 'results' },         // GET /v1beta/batches/{id}: a batch job, with its inline responses once done
  'gemini.batch.output': { billing: 'results' },  // GET [/download]/v1beta/files/{name}:download: a file batch's responses file (other files: nothing booked)
  'gemini.operation': { billing: 'free' },        // polls of long-running operations (Veo is priced at submit)
  'gemini.read': { billing: 'free' },
  'gemini.files': { billing: 'free' },
  'gemini.cancel': { billing: 'free' },
  // fal and Replicate
  'fal': { billing: 'priced' },
  'fal.submit': { billing: 'priced' },
  'fal.poll': { billing: 'free' },                // queue status, result download, cancel
  'fal.unknown': { billing: 'unpriced', reason: 'Tollgate does not know how this fal call is billed' },
  'replicate.create': { billing: 'priced' },
  'replicate.poll': { billing: 'free' },          // GET predictions, models, files
  'replicate.cancel': { billing: 'free' },
  'replicate.files': { billing: 'free' },
  'replicate.trainings': { billing: 'unpriced', reason: 'Replicate trainings are billed by hardware time as they run; Tollgate does not see it' },
  'replicate.unknown': { billing: 'unpriced', reason: 'Tollgate does not know how this Replicate endpoint is billed' },
  // Recraft's own API (external.api.recraft.ai): image generation is `images`
  'recraft.read': { billing: 'free' },            // GET: the account, styles
  'recraft.unknown': { billing: 'unpriced', reason: 'Recraft bills this endpoint (edits, vectorize, upscale, background and style calls) per request; Tollgate prices only Recraft image generation' },
} as const satisfies Record<string, { billing: 'priced' | 'unpriced' | 'free' | 'results'; reason?: string }>;

export type Endpoint = keyof typeof ENDPOINTS;

// What each endpoint is, as bits, found by one lookup (the proxy asks several times a call)
const BILLABLE = 1, RESULTS = 2, TAPPED = 4;
const KIND = new Map<string, number>(Object.entries(ENDPOINTS).map(([k, v]) => {
  const billable = v.billing !== 'free' && v.billing !== 'results';
  return [k, (billable ? BILLABLE : 0) | (v.billing === 'results' ? RESULTS : 0) | (billable || v.billing === 'results' || k === 'batches.retrieve' ? TAPPED : 0)];
}));
/** Whether a call of this kind may cost money when it runs (everything not free, and not a batch's results). */
export function isBillable(e: Endpoint): boolean {
  return ((KIND.get(e) ?? BILLABLE) & BILLABLE) !== 0;
}
/** A batch's results: free to fetch, but their first retrieval books the batch's actual cost. */
export function isBatchResults(e: Endpoint): boolean {
  return ((KIND.get(e) ?? 0) & RESULTS) !== 0;
}
/** Batch submissions: their response names the batch (its id), kept to attribute the results to the submit call. */
export const BATCH_SUBMIT = new Set<Endpoint>(['batches', 'messages.batches', 'batchGenerateContent']);
/** Whether the proxy reads the response: billable calls, batch results and the polls that name a batch's output file. */
export function isTapped(e: Endpoint): boolean {
  return ((KIND.get(e) ?? TAPPED) & TAPPED) !== 0;
}
/** Why a billed endpoint cannot be priced (null when it can be, or is free). */
export function unpricedEndpoint(e: Endpoint): string | null {
  const v = ENDPOINTS[e] as { billing: string; reason?: string } | undefined;
  return v && v.billing === 'unpriced' ? v.reason ?? 'not priced' : null;
}

const GEMINI_VERB = /:(\w+)$/;
const REPLICATE_CREATE = /\/predictions$/;
const OPENAI_FILE_CONTENT = /\/files\/[^/]+\/content$/;
const OPENAI_BATCH = /\/batches\/[^/]+$/;
const ANTHROPIC_BATCH_RESULTS = /\/messages\/batches\/[^/]+\/results$/;
const GEMINI_BATCH = /\/batches\/[^/:]+$/;
/** A file's bytes (`?alt=media`): the SDKs' download path, with or without the `/download` prefix of the upload/download host paths. */
const GEMINI_FILE_DOWNLOAD = /^(\/download)?\/v1(beta|alpha)?\/files\/[^/:]+:download$/;
const REPLICATE_CANCEL = /\/(predictions|trainings)\/[^/]+\/cancel$/;
const FAL_REQUEST = /\/requests\//;
const BATCH_GENERATE = new Set(['batchGenerateContent', 'asyncBatchEmbedContent']);
const EMBED = new Set(['embedContent', 'batchEmbedContents', 'embedText', 'batchEmbedText']);
const isRead = (m: string) => m === 'GET' || m === 'HEAD' || m === 'DELETE';

export function classify(provider: string, method: string, path: string): Endpoint {
  const q = path.indexOf('?');
  let p = q < 0 ? path : path.slice(0, q);
  if (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  switch (provider) {
    case 'anthropic':
      if (p.endsWith('/messages/count_tokens')) return 'messages.count_tokens';
      if (method === 'GET' && ANTHROPIC_BATCH_RESULTS.test(p)) return 'messages.batches.results';
      if (isRead(method)) return 'anthropic.read';
      if (method !== 'POST') return 'anthropic.unknown';
      if (p.endsWith('/messages')) return 'messages';
      if (p.endsWith('/messages/batches')) return 'messages.batches';
      if (p.endsWith('/cancel')) return 'anthropic.cancel';
      if (p.endsWith('/files')) return 'anthropic.files';
      return 'anthropic.unknown';
    case 'gemini': {
      const verb = GEMINI_VERB.exec(p)?.[1];
      if (verb === 'generateContent' || verb === 'streamGenerateContent' || verb === 'predict' || verb === 'predictLongRunning' || verb === 'countTokens') return verb;
      if (p.includes('/operations/')) return verb === 'cancel' && method === 'POST' ? 'gemini.cancel' : 'gemini.operation';
      if (method === 'GET' && GEMINI_BATCH.test(p)) return 'gemini.batch';
      if (method === 'GET' && GEMINI_FILE_DOWNLOAD.test(p)) return 'gemini.batch.output';
      if (isRead(method)) return 'gemini.read';
      if (method !== 'POST') return 'gemini.unknown';
      if (verb && BATCH_GENERATE.has(verb)) return 'batchGenerateContent';
      if (verb && EMBED.has(verb)) return 'embedContent';
      if (verb === 'cancel') return 'gemini.cancel';
      if (p.endsWith('/cachedContents')) return 'cachedContents';
      if (p.startsWith('/upload/') || p.endsWith('/files')) return 'gemini.files';
      return 'gemini.unknown';
    }
    case 'fal':
      if (method === 'POST') return 'fal';
      return isRead(method) ? 'fal.poll' : 'fal.unknown';
    case 'fal-queue':
      if (FAL_REQUEST.test(p)) return method === 'POST' && !p.endsWith('/cancel') ? 'fal.unknown' : 'fal.poll';
      if (method === 'POST') return 'fal.submit';
      return isRead(method) ? 'fal.poll' : 'fal.unknown';
    case 'replicate':
      if (isRead(method)) return 'replicate.poll';
      if (method !== 'POST') return 'replicate.unknown';
      if (REPLICATE_CREATE.test(p)) return 'replicate.create';
      if (REPLICATE_CANCEL.test(p)) return 'replicate.cancel';
      if (p.endsWith('/trainings')) return 'replicate.trainings';
      if (p.endsWith('/files')) return 'replicate.files';
      return 'replicate.unknown';
    case 'recraft':
      if (isRead(method)) return 'recraft.read';
      if (method === 'POST' && p.endsWith('/images/generations')) return 'images';
      return 'recraft.unknown';
    default: // openai, openrouter, OpenAI-compatible hosts
      if (provider === 'openai' && method === 'GET') {
        if (OPENAI_FILE_CONTENT.test(p)) return 'batches.output';
        if (OPENAI_BATCH.test(p)) return 'batches.retrieve';
      }
      if (isRead(method)) return 'openai.read';
      if (method !== 'POST') return 'openai.unknown';
      if (p.endsWith('/chat/completions')) return 'chat.completions';
      if (p.endsWith('/responses')) return 'responses';
      if (p.endsWith('/completions')) return 'completions';
      if (p.endsWith('/embeddings')) return 'embeddings';
      if (p.includes('/images/')) return 'images';
      if (p.endsWith('/videos') || p.endsWith('/remix')) return 'videos';
      if (p.endsWith('/audio/transcriptions')) return 'audio.transcriptions';
      if (p.endsWith('/audio/translations')) return 'audio.translations';
      if (p.endsWith('/audio/speech')) return 'audio.speech';
      if (p.endsWith('/responses/input_tokens')) return 'responses.input_tokens';
      if (p.endsWith('/moderations')) return 'moderations';
      if (p.endsWith('/batches')) return 'batches';
      if (p.endsWith('/cancel')) return 'openai.cancel';
      if (p.endsWith('/files') || p.includes('/uploads')) return 'openai.files';
      if (p.includes('/fine_tuning/')) return 'fine_tuning';
      if (p.includes('/vector_stores/') && p.endsWith('/search')) return 'vector_stores.search';
      if (p.includes('/realtime/')) return 'realtime';
      return 'openai.unknown';
  }
}

const AUDIO = new Set<Endpoint>(['audio.transcriptions', 'audio.translations', 'audio.speech']);
/** OpenAI speech models billed per character of input (tts-1, tts-1-hd); the others bill tokens. */
const PER_CHARACTER_TTS = new Set(['tts-1', 'tts-1-hd']);
const MULTIPART_MODEL = /name="model"\r\n(?:[^\r\n]+\r\n)*\r\n([^\r\n]{1,200})\r\n/;

/** The billable facts of an OpenAI audio call that only its request carries. */
export interface AudioFacts {
  model: string | null;
  /** Usage measured from the request (characters of a tts-1 input; seconds of a WAV file). */
  usage: Usage | null;
  /** Why the call cannot be priced from the request when its response said nothing. */
  reason: string | null;
}

/**
 * An audio call's model and, where the response carries no usage, what the request says:
 * speech (`tts-1`, `tts-1-hd`) is billed per character of `input`; a transcription of a WAV file
 * lasts the file's data size / byte rate (other formats are not measured: unpriced, with why).
 */
export function audioFacts(endpoint: Endpoint, contentType: string | undefined, body: Buffer, json: Record<string, unknown> | null): AudioFacts {
  if (endpoint === 'audio.speech') {
    const model = typeof json?.model === 'string' ? json.model : null;
    const input = typeof json?.input === 'string' ? json.input : null;
    if (model && PER_CHARACTER_TTS.has(model) && input !== null) {
      let chars = 0;
      for (const _ of input) chars++; // code points, not UTF-16 units
      return { model, usage: { characters: chars }, reason: null };
    }
    return { model, usage: null, reason: `${model ?? 'this speech model'} bills audio output tokens, which a speech response reports only when streamed (stream_format "sse")` };
  }
  const multipart = (contentType ?? '').includes('multipart/form-data');
  const model = multipartModel(contentType, body);
  const seconds = multipart ? wavSeconds(body) : null;
  if (seconds !== null && model === 'whisper-1') return { model, usage: { audioSeconds: seconds }, reason: null };
  return {
    model,
    usage: null,
    reason: model === 'whisper-1'
      ? 'whisper-1 bills per second of audio; the response did not report the duration and the file is not a WAV Tollgate can measure (use response_format "json" or "verbose_json")'
      : `${model ?? 'this transcription model'} bills tokens; the response reported no usage (use response_format "json")`,
  };
}

/** The `model` field of a multipart/form-data request (audio uploads, image edits), or null. */
export function multipartModel(contentType: string | undefined, body: Buffer): string | null {
  if (!(contentType ?? '').includes('multipart/form-data')) return null;
  const head = body.toString('latin1', 0, Math.min(body.length, 64 * 1024));
  const m = MULTIPART_MODEL.exec(head)?.[1];
  if (m !== undefined || body.length <= head.length) return m ?? null;
  return MULTIPART_MODEL.exec(body.toString('latin1', Math.max(0, body.length - 64 * 1024)))?.[1] ?? null;
}

/** Seconds of the first RIFF/WAVE file in `b` (rounded up), or null when there is none to measure. */
export function wavSeconds(b: Buffer): number | null {
  const riff = b.indexOf('RIFF');
  if (riff < 0 || riff + 12 > b.length || b.toString('latin1', riff + 8, riff + 12) !== 'WAVE') return null;
  let byteRate = 0;
  for (let i = riff + 12; i + 8 <= b.length;) {
    const id = b.toString('latin1', i, i + 4);
    const size = b.readUInt32LE(i + 4);
    if (id === 'fmt ' && i + 20 <= b.length) byteRate = b.readUInt32LE(i + 16);
    if (id === 'data') {
      if (!byteRate) return null;
      const bytes = Math.min(size, b.length - (i + 8)); // a streamed WAV may say 0xFFFFFFFF
      return Math.ceil(bytes / byteRate);
    }
    i += 8 + size + (size & 1);
  }
  return null;
}

export interface Extracted {
  model: string | null;
  usage: Usage | null;
  /** Tokens counted from streamed text when the provider never sent usage (cut streams). */
  streamedOutputTokens: number;
  /** Media facts from the response (fal: number of images and their sizes). */
  media: { images?: number; width?: number; height?: number; seconds?: number; runSeconds?: number } | null;
  /** Provider-reported cost (OpenRouter `usage.cost`), informational. */
  reportedCost: string | null;
  /** The provider's own id of the response (OpenRouter `gen-…`, OpenAI `chatcmpl-…`, Anthropic `msg_…`), to join its bill per generation. */
  upstreamId: string | null;
  parseError: string | null;
  /** Anthropic named a code execution container: its run time is billed apart, per container-hour. */
  codeContainer?: boolean;
  /** Batch facts: the batch a submit or poll response names, and the results a results response carries. */
  batch?: BatchFacts | null;
}

/** One billed request of a batch's results: its model and usage, as the result line reports them. */
export interface BatchResultLine {
  model: string | null;
  usage: Usage;
}

export interface BatchFacts {
  /** The batch's id (OpenAI, Anthropic) or name (Gemini `batches/…`), as the response names it. */
  id: string | null;
  /** OpenAI: the batch's output file, once it has one; Gemini: a finished file batch's responses file (`files/…`). */
  outputFileId: string | null;
  /** The batch's model where the job says it (Gemini `metadata.model`). */
  model: string | null;
  /** The billed results, one per succeeded request; null when the response carries no batch results. */
  results: BatchResultLine[] | null;
  /** Results not billed: errored, canceled, expired requests. */
  notBilled: number;
  /** Result lines Tollgate could not read (too long, not JSON, invalid usage), or null when all were read. */
  unread: number;
}

/** Anthropic allows 100,000 requests per batch, OpenAI 50,000: results past this are not read. */
export const MAX_BATCH_RESULTS = 100_000;
/** The longest result line read (one request's whole response); longer lines are counted unread. */
const MAX_RESULT_LINE = 32 * 1024 * 1024;

const MAX_JSON = 16 * 1024 * 1024;
/** Longest SSE line (or one event's data) the tap reads, in characters; past it the usage is unknown. */
const MAX_SSE_BUFFER = 64 * 1024 * 1024; // a Nano Banana 4K image inline is ~20 MB of base64
/** Streamed text is token-counted in pieces of about this many characters. */
const TEXT_COUNT_CHUNK = 1 << 20;
const noop = (): void => {};

/** Endpoints whose JSON response is priced from its top-level `model` and `usage` alone. */
const TOP_LEVEL_ONLY = new Set<Endpoint>(['chat.completions', 'completions', 'responses', 'embeddings', 'messages']);
const USAGE_KEYS = new Set(['id', 'model', 'usage', 'service_tier', 'container']);
/** An upstream response id worth keeping: short, printable, no spaces. */
const UPSTREAM_ID = /^[\x21-\x7e]{1,200}$/;

const QUOTE = 0x22, BACKSLASH = 0x5c, OPEN_OBJ = 0x7b, CLOSE_OBJ = 0x7d, OPEN_ARR = 0x5b, CLOSE_ARR = 0x5d, COLON = 0x3a, COMMA = 0x2c;
const isWs = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

// The scanner works on the body decoded as latin1 (one char per byte, so indexes are byte
// offsets) with String#indexOf, which the JIT inlines; values are decoded as UTF-8 to parse.

function skipWs(s: string, i: number): number {
  while (i < s.length && isWs(s.charCodeAt(i))) i++;
  return i;
}

/** `i` at a string's opening quote; the index after its closing quote, or -1. */
function skipString(s: string, i: number): number {
  let from = i + 1;
  for (;;) {
    const q = s.indexOf('"', from);
    if (q < 0) return -1;
    let k = q - 1, slashes = 0;
    while (k > i && s.charCodeAt(k) === BACKSLASH) {
      slashes++;
      k--;
    }
    if (slashes % 2 === 0) return q + 1;
    from = q + 1;
  }
}

/** `i` at a value's first char; the index after the value, or -1. */
function skipValue(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c === QUOTE) return skipString(s, i);
  if (c === OPEN_OBJ || c === OPEN_ARR) {
    let depth = 0;
    for (let j = i; j < s.length;) {
      const d = s.charCodeAt(j);
      if (d === QUOTE) {
        j = skipString(s, j);
        if (j < 0) return -1;
        continue;
      }
      if (d === OPEN_OBJ || d === OPEN_ARR) depth++;
      else if ((d === CLOSE_OBJ || d === CLOSE_ARR) && --depth === 0) return j + 1;
      j++;
    }
    return -1;
  }
  let j = i;
  for (; j < s.length; j++) {
    const d = s.charCodeAt(j);
    if (d === COMMA || d === CLOSE_OBJ || d === CLOSE_ARR || isWs(d)) break;
  }
  return j > i ? j : -1;
}

/**
 * A JSON string value from `i` (its opening quote) to `end` (after its closing quote): sliced as is
 * when it is plain ASCII without escapes (ids, model names, tiers), else parsed.
 */
function plainString(s: string, b: Buffer, i: number, end: number): unknown {
  for (let j = i + 1; j < end - 1; j++) {
    const c = s.charCodeAt(j);
    if (c === BACKSLASH || c < 0x20 || c > 0x7e) return JSON.parse(b.toString('utf8', i, end));
  }
  return b.toString('latin1', i + 1, end - 1); // a string of its own: a slice of `s` would keep the whole body alive
}

/**
 * The values of `keys` at the top level of a JSON object, parsed, without parsing the rest.
 * Null when the bytes are not one well-formed top-level object (the caller then parses it all,
 * and reports what is wrong); a malformed value throws from JSON.parse, as a full parse would.
 */
export function topLevelValues(b: Buffer, keys: ReadonlySet<string>): Record<string, unknown> | null {
  const s = b.toString('latin1');
  let i = skipWs(s, 0);
  if (s.charCodeAt(i) !== OPEN_OBJ) return null;
  const out: Record<string, unknown> = {};
  i = skipWs(s, i + 1);
  if (s.charCodeAt(i) === CLOSE_OBJ) return skipWs(s, i + 1) === s.length ? out : null;
  for (;;) {
    if (s.charCodeAt(i) !== QUOTE) return null;
    const keyEnd = skipString(s, i);
    if (keyEnd < 0) return null;
    const key = s.slice(i + 1, keyEnd - 1);
    i = skipWs(s, keyEnd);
    if (s.charCodeAt(i) !== COLON) return null;
    i = skipWs(s, i + 1);
    const valueEnd = skipValue(s, i);
    if (valueEnd < 0) return null;
    if (keys.has(key)) out[key] = s.charCodeAt(i) === QUOTE ? plainString(s, b, i, valueEnd) : JSON.parse(b.toString('utf8', i, valueEnd));
    i = skipWs(s, valueEnd);
    const c = s.charCodeAt(i);
    if (c === COMMA) {
      i = skipWs(s, i + 1);
      continue;
    }
    if (c === CLOSE_OBJ) return skipWs(s, i + 1) === s.length ? out : null;
    return null;
  }
}

/** The service tier the response reports (priority, flex…), kept with the usage it prices. */
function withTier(u: Usage, tier: unknown): Usage {
  if (typeof tier === 'string' && tier.length > 0 && tier.length < 40 && tier !== 'default' && tier !== 'auto' && tier !== 'standard') u.serviceTier = tier;
  return u;
}

/** Web searches the call made (OpenAI Responses `web_search_call` items), kept with its usage. */
function withSearches(u: Usage, n: number): Usage {
  if (n > 0) u.webSearches = n;
  return u;
}
function countSearchItems(output: unknown): number {
  let n = 0;
  if (Array.isArray(output)) for (const it of output) if (it && typeof it === 'object' && (it as J).type === 'web_search_call') n++;
  return n;
}
const WEB_SEARCH_CALL = /"type"\s*:\s*"web_search_call"/g;

type J = Record<string, unknown>;
const obj = (v: unknown): J => (v && typeof v === 'object' && !Array.isArray(v) ? (v as J) : {});

export class ResponseTap {
  private readonly sse: boolean;
  // SSE responses only: most responses are plain JSON and need neither
  private parser: ReturnType<typeof createParser> | null = null;
  private decoder: InstanceType<typeof TextDecoder> | null = null;
  private readonly inflate: zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress | null;
  private json: Buffer[] = [];
  private jsonBytes = 0;
  private stopped = false;
  /** Streamed text not yet counted, and the tokens of the text already counted (keeps `text` small). */
  private text = '';
  private countedTokens = 0;
  private usage: Usage | null = null;
  private anthropicStart: J | null = null;
  private model: string | null = null;
  private reportedCost: string | null = null;
  private upstreamId: string | null = null;
  private parseError: string | null = null;
  private media: Extracted['media'] = null;
  /** Gemini grounding with Google Search: whether the response was grounded, and its search queries. */
  private grounded = false;
  private codeContainer = false;
  private groundingQueries = 0;
  private batch: BatchFacts | null = null;
  /** JSONL results (Anthropic batch results, OpenAI batch output files, Gemini responses files): read line by line. */
  private readonly jsonl: boolean;
  private line: Buffer[] = [];
  private lineBytes = 0;
  /** Skipping the rest of a line longer than MAX_RESULT_LINE. */
  private skipLine = false;

  /** An audio body (speech) or a plain-text transcript: nothing to read usage from. */
  private readonly skip: boolean;

  constructor(private readonly endpoint: Endpoint, contentType: string, contentEncoding: string | undefined) {
    this.sse = contentType.includes('text/event-stream');
    this.skip = !this.sse && AUDIO.has(endpoint) && !contentType.includes('json');
    this.jsonl = !this.sse && (endpoint === 'messages.batches.results' || endpoint === 'batches.output' || endpoint === 'gemini.batch.output');
    if (this.sse) {
      // A line (or an event's data) longer than MAX_SSE_BUFFER stops the reading: usage unknown.
      this.parser = createParser({ onEvent: (e) => this.onEventGuarded(e), onError: (e) => this.stop((e as { type?: string }).type === 'max_buffer_size_exceeded' || /max buffer size/.test(e.message) ? `the stream sent a line longer than ${MAX_SSE_BUFFER / 1024 / 1024} MB; its usage was not read` : `cannot read the event stream: ${e.message}`), maxBufferSize: MAX_SSE_BUFFER });
      this.decoder = new TextDecoder();
    }
    const enc = (contentEncoding ?? '').trim().toLowerCase();
    this.inflate = enc === 'gzip' || enc === 'x-gzip' ? zlib.createGunzip() : enc === 'deflate' ? zlib.createInflate() : enc === 'br' ? zlib.createBrotliDecompress() : null;
    if (this.inflate) {
      // These run from zlib's callbacks, outside any caller's try: nothing may throw out of them.
      this.inflate.on('data', (d: Buffer) => this.consume(d));
      this.inflate.on('error', (e) => { this.stop(`cannot decompress the response: ${e.message}`); });
    }
  }

  /** Watch one chunk of the response as sent. Never throws: a tap that fails stops and says why. */
  write(chunk: Buffer): void {
    if (this.stopped) return;
    if (this.inflate) this.inflate.write(chunk);
    else this.consume(chunk);
  }

  /** Stop reading the response (what was read so far still counts); the reason becomes the parse error. */
  private stop(reason: string): void {
    if (this.stopped) return;
    this.stopped = true;
    this.parseError ??= reason;
    this.parser = null;
    this.json = [];
    if (this.inflate) {
      this.inflate.removeAllListeners('data');
      this.inflate.on('error', noop); // late errors from a destroyed inflater go nowhere
      this.inflate.destroy();
    }
  }

  private consume(chunk: Buffer): void {
    if (this.skip) return;
    if (this.stopped) return;
    try {
      if (this.parser) this.parser.feed(this.decoder!.decode(chunk, { stream: true }));
      else if (this.jsonl) this.feedLines(chunk);
      else if (this.jsonBytes < MAX_JSON) {
        this.json.push(chunk);
        this.jsonBytes += chunk.length;
      } else this.stop('response too large to read usage from');
    } catch (e) {
      this.stop(`cannot read the response: ${(e as Error).message}`);
    }
  }

  /** What the response said. Synchronous unless the body was compressed (the inflater drains first). */
  finish(): Extracted | Promise<Extracted> {
    if (this.inflate && !this.stopped) {
      const inflate = this.inflate;
      return new Promise<void>((resolve) => {
        inflate.once('end', resolve);
        inflate.once('error', () => resolve());
        inflate.once('close', resolve);
        inflate.end();
      }).then(() => this.result());
    }
    return this.result();
  }

  private result(): Extracted {
    if (this.jsonl && !this.stopped && (this.lineBytes > 0 || this.skipLine)) this.endLine();
    if (!this.sse && !this.jsonl && this.jsonBytes > 0 && !this.stopped) {
      try {
        const buf = this.json.length === 1 ? this.json[0]! : Buffer.concat(this.json);
        // Text APIs need only the top-level `model` and `usage`: read those two values and skip
        // the rest (the output text) without building it; anything unexpected takes the full parse.
        const top = TOP_LEVEL_ONLY.has(this.endpoint) ? topLevelValues(buf, USAGE_KEYS) : null;
        this.onJson(top && top.usage !== undefined ? top : JSON.parse(buf.toString('utf8')));
      } catch (e) {
        this.parseError = this.jsonBytes >= MAX_JSON ? 'response too large to read usage from' : `response is not complete JSON: ${(e as Error).message}`;
      }
    }
    if (this.grounded && this.usage) this.usage = { ...this.usage, groundedPrompts: 1, ...(this.groundingQueries ? { groundingQueries: this.groundingQueries } : {}) };
    const out: Extracted = {
      model: this.model, usage: this.usage, streamedOutputTokens: this.countedTokens + (this.text ? countTokens(this.text) : 0),
      media: this.media, reportedCost: this.reportedCost, upstreamId: this.upstreamId, parseError: this.parseError, batch: this.batch,
    };
    if (this.codeContainer) out.codeContainer = true;
    return out;
  }

  // ---- batch results (JSONL) ----

  private feedLines(chunk: Buffer): void {
    let from = 0;
    if (this.batch === null && this.lineBytes === 0 && !this.skipLine) {
      // results are JSON lines: a body that does not open with an object is some other file, not read further
      while (from < chunk.length && (chunk[from] === 0x20 || chunk[from] === 0x0a || chunk[from] === 0x0d || chunk[from] === 0x09)) from++;
      if (from < chunk.length && chunk[from] !== OPEN_OBJ) return this.notBatch();
    }
    while (from < chunk.length && !this.stopped) {
      const nl = chunk.indexOf(0x0a, from);
      const end = nl < 0 ? chunk.length : nl;
      if (!this.skipLine && end > from) {
        if (this.lineBytes + (end - from) > MAX_RESULT_LINE) {
          this.skipLine = true; // too long to read: counted unread at its end
          this.line = [];
          this.lineBytes = 0;
        } else {
          this.line.push(chunk.subarray(from, end));
          this.lineBytes += end - from;
        }
      }
      if (nl < 0) break;
      this.endLine();
      from = nl + 1;
    }
  }

  private endLine(): void {
    const skipped = this.skipLine;
    const buf = this.line.length === 1 ? this.line[0]! : Buffer.concat(this.line);
    this.line = [];
    this.lineBytes = 0;
    this.skipLine = false;
    const b = (this.batch ??= { id: null, outputFileId: null, model: null, results: null, notBilled: 0, unread: 0 });
    if (skipped) {
      b.unread++;
      return;
    }
    if (buf.length === 0 || (buf.length <= 2 && buf.toString('latin1').trim() === '')) return;
    let d: J;
    try {
      d = obj(JSON.parse(buf.toString('utf8')));
    } catch {
      if (b.results === null && b.notBilled === 0) return this.notBatch();
      b.unread++;
      return;
    }
    const gemini = this.endpoint === 'gemini.batch.output';
    // Gemini's lines name their request by `key` (`{key, response}` or `{key, error}`), the others by `custom_id`
    if (typeof (gemini ? d.key : d.custom_id) !== 'string' || !('result' in d || 'response' in d || 'error' in d || (gemini && 'status' in d))) {
      // not a batch's results (another file downloaded through the same endpoint): nothing to book
      if (b.results === null && b.notBilled === 0) return this.notBatch();
      b.unread++;
      return;
    }
    b.results ??= [];
    if (b.results.length >= MAX_BATCH_RESULTS) {
      b.unread++;
      return;
    }
    try {
      const r = this.endpoint === 'messages.batches.results' ? anthropicResult(d) : gemini ? geminiResult(d) : openaiResult(d);
      if (r) b.results.push(r);
      else b.notBilled++;
    } catch {
      b.unread++; // invalid usage in one line: that line is unread, the others still count
    }
  }

  /** The body is not a batch's results: stop reading it, quietly (a plain file download books nothing). */
  private notBatch(): void {
    this.batch = null;
    this.line = [];
    const pe = this.parseError;
    this.stop('not batch results');
    this.parseError = pe;
  }

  /** Batch facts in a submit or poll response (the batch's id, its output file, a Gemini job's inline results). */
  private batchJson(d: J): void {
    const b: BatchFacts = { id: null, outputFileId: null, model: null, results: null, notBilled: 0, unread: 0 };
    if (this.endpoint === 'batchGenerateContent' || this.endpoint === 'gemini.batch') {
      if (typeof d.name === 'string') b.id = d.name;
      const meta = obj(d.metadata);
      if (typeof meta.model === 'string') b.model = meta.model.replace(/^models\//, '');
      const done = d.done === true || /^(BATCH_STATE_|JOB_STATE_)?(SUCCEEDED|FAILED|CANCELLED|EXPIRED)$/.test(String(meta.state ?? ''));
      const out = obj(d.response).inlinedResponses !== undefined || obj(d.response).responsesFile !== undefined ? obj(d.response) : obj(meta.output);
      const list = obj(out.inlinedResponses).inlinedResponses;
      // a file batch: its responses are a file (`files/…`), priced when downloaded (gemini.batch.output)
      if (done && typeof out.responsesFile === 'string' && /^files\/[^/:]{1,200}$/.test(out.responsesFile)) b.outputFileId = out.responsesFile;
      if (this.endpoint === 'gemini.batch' && done && Array.isArray(list)) {
        b.results = [];
        for (const it of list.slice(0, MAX_BATCH_RESULTS)) {
          const r = obj(obj(it).response);
          if (!r.usageMetadata || obj(it).error) {
            b.notBilled++;
            continue;
          }
          try {
            b.results.push({ model: typeof r.modelVersion === 'string' ? r.modelVersion : b.model, usage: { ...fromGemini(r.usageMetadata), serviceTier: 'batch' } });
          } catch {
            b.unread++;
          }
        }
        if (list.length > MAX_BATCH_RESULTS) b.unread += list.length - MAX_BATCH_RESULTS;
      }
    } else {
      if (typeof d.id === 'string') b.id = d.id;
      if (typeof d.output_file_id === 'string') b.outputFileId = d.output_file_id;
    }
    if (b.id !== null || b.results !== null || b.outputFileId !== null) this.batch = b;
  }

  /** The first well-formed response id seen (every chunk of a stream repeats it). */
  private takeId(v: unknown): void {
    if (this.upstreamId === null && typeof v === 'string' && UPSTREAM_ID.test(v)) this.upstreamId = v;
  }

  /** Streamed text, counted in pieces so that a long stream never builds one huge string. */
  private addText(t: string): void {
    this.text += t;
    if (this.text.length > TEXT_COUNT_CHUNK) {
      this.countedTokens += countTokens(this.text);
      this.text = '';
    }
  }

  /** The SSE parser calls back from inside `feed`; a provider's bad event (invalid usage…) stops the reading, never the engine. */
  private onEventGuarded(e: EventSourceMessage): void {
    if (this.stopped) return;
    try {
      this.onEvent(e);
    } catch (err) {
      this.usage = null;
      this.stop(`the provider's usage could not be read: ${(err as Error).message}`);
    }
  }

  private onEvent(e: EventSourceMessage): void {
    if (e.data === '[DONE]') return;
    let d: J;
    try {
      d = JSON.parse(e.data) as J;
    } catch {
      return;
    }
    // An upstream's invalid usage (details over totals, negative counts) must never throw out of the
    // tap: it runs inside stream and gunzip event handlers, where a throw would end the process.
    try {
      this.onEventJson(d, e);
    } catch (err) {
      this.usage = null;
      this.parseError = `the stream's usage is invalid: ${(err as Error).message}`;
    }
  }

  private onEventJson(d: J, e: EventSourceMessage): void {
    switch (this.endpoint) {
      case 'chat.completions':
      case 'completions': {
        if (typeof d.model === 'string') this.model = d.model;
        this.takeId(d.id);
        const u = d.usage;
        if (u && typeof u === 'object') this.takeOpenAI(u, d.service_tier);
        for (const c of Array.isArray(d.choices) ? d.choices : []) {
          const delta = obj(obj(c).delta);
          if (typeof delta.content === 'string') this.addText(delta.content);
          if (typeof delta.reasoning === 'string') this.addText(delta.reasoning);
          if (typeof delta.reasoning_content === 'string') this.addText(delta.reasoning_content);
          if (typeof obj(c).text === 'string') this.addText(obj(c).text as string); // legacy completions
        }
        break;
      }
      case 'responses': {
        const type = d.type ?? e.event;
        if (type === 'response.output_text.delta' && typeof d.delta === 'string') this.addText(d.delta);
        if (type === 'response.reasoning_summary_text.delta' && typeof d.delta === 'string') this.addText(d.delta);
        const r = obj(d.response);
        if (typeof r.model === 'string') this.model = r.model;
        this.takeId(r.id);
        if ((type === 'response.completed' || type === 'response.incomplete' || type === 'response.failed') && r.usage) {
          this.usage = withSearches(withTier(fromOpenAIResponses(r.usage), r.service_tier), countSearchItems(r.output));
        }
        break;
      }
      case 'messages': {
        const type = d.type ?? e.event;
        if (type === 'message_start') {
          const m = obj(d.message);
          if (typeof m.model === 'string') this.model = m.model;
          if (m.container) this.codeContainer = true;
          this.takeId(m.id);
          this.anthropicStart = obj(m.usage);
          this.usage = fromAnthropic(m.usage);
        } else if (type === 'message_delta') {
          // message_delta carries cumulative output_tokens (and, in newer API versions, the
          // input/cache counts again): take its numbers over message_start's where present.
          const u = obj(d.usage);
          if (obj(d.delta).container) this.codeContainer = true;
          const merged = { ...(this.anthropicStart ?? {}), ...u };
          this.usage = fromAnthropic(merged);
        } else if (type === 'content_block_delta') {
          const delta = obj(d.delta);
          if (typeof delta.text === 'string') this.addText(delta.text);
          if (typeof delta.thinking === 'string') this.addText(delta.thinking);
          if (typeof delta.partial_json === 'string') this.addText(delta.partial_json);
        }
        break;
      }
      case 'streamGenerateContent':
      case 'generateContent':
        this.onGemini(d);
        break;
      case 'audio.transcriptions':
      case 'audio.translations':
      case 'audio.speech': {
        const type = d.type ?? e.event;
        if (type === 'transcript.text.delta' && typeof d.delta === 'string') this.text += d.delta;
        if ((type === 'transcript.text.done' || type === 'speech.audio.done') && d.usage) this.usage = fromOpenAIAudio(d.usage);
        break;
      }
      default:
        break;
    }
  }

  /**
   * Responses API web_search_call output items (billed per 1,000 calls). The top-level scan does not
   * build `output`, so they are counted in the raw bytes: `"type":"web_search_call"` can only occur
   * there as JSON structure (inside a string its quotes would be escaped).
   */
  private searchCalls(d: J): number {
    if (Array.isArray(d.output)) return countSearchItems(d.output);
    const buf = this.json.length === 1 ? this.json[0]! : Buffer.concat(this.json);
    if (buf.indexOf('web_search_call') < 0) return 0;
    const text = buf.toString('latin1');
    WEB_SEARCH_CALL.lastIndex = 0;
    let n = 0;
    while (WEB_SEARCH_CALL.exec(text)) n++;
    return n;
  }

  private takeOpenAI(u: unknown, tier?: unknown): void {
    const usage = obj(u);
    this.usage = withTier(fromOpenAIChat(usage), tier);
    if (usage.cost !== undefined && (typeof usage.cost === 'number' || typeof usage.cost === 'string')) this.reportedCost = String(usage.cost);
  }

  private onGemini(d: J): void {
    if (typeof d.modelVersion === 'string') this.model = d.modelVersion;
    if (d.usageMetadata) this.usage = fromGemini(d.usageMetadata);
    let queries = 0;
    for (const c of Array.isArray(d.candidates) ? d.candidates : []) {
      // grounding with Google Search: billed per grounded prompt (2.x) or per search query (3),
      // when the model searched (its queries or the results it drew on are listed)
      const gm = obj(obj(c).groundingMetadata);
      const q = Array.isArray(gm.webSearchQueries) ? gm.webSearchQueries.length : 0;
      if (q > 0 || (Array.isArray(gm.groundingChunks) && gm.groundingChunks.length > 0)) this.grounded = true;
      queries += q;
    }
    if (queries > this.groundingQueries) this.groundingQueries = queries; // a stream may repeat the metadata
    for (const c of Array.isArray(d.candidates) ? d.candidates : []) {
      for (const p of Array.isArray(obj(obj(c).content).parts) ? (obj(obj(c).content).parts as unknown[]) : []) {
        const t = obj(p).text;
        if (typeof t === 'string') this.addText(t);
      }
    }
  }

  private onJson(body: unknown): void {
    const d = obj(body);
    if (typeof d.model === 'string') this.model = d.model;
    if (TOP_LEVEL_ONLY.has(this.endpoint) && this.endpoint !== 'embeddings') this.takeId(d.id);
    switch (this.endpoint) {
      case 'batches':
      case 'batches.retrieve':
      case 'messages.batches':
      case 'batchGenerateContent':
      case 'gemini.batch':
        this.batchJson(d);
        break;
      case 'chat.completions':
      case 'completions':
        if (d.usage) this.takeOpenAI(d.usage, d.service_tier);
        break;
      case 'responses':
        if (d.usage) this.usage = withSearches(withTier(fromOpenAIResponses(d.usage), d.service_tier), this.searchCalls(d));
        break;
      case 'embeddings': {
        const u = obj(d.usage);
        if (typeof u.prompt_tokens === 'number') this.usage = { inputTokens: u.prompt_tokens };
        break;
      }
      case 'images':
        if (d.usage) this.usage = fromOpenAIImages(d.usage);
        if (Array.isArray(d.data)) this.media = { images: d.data.length };
        break;
      case 'messages':
        if (d.usage) this.usage = fromAnthropic(d.usage);
        if (d.container) this.codeContainer = true;
        break;
      case 'audio.transcriptions':
      case 'audio.translations':
        if (d.usage) this.usage = fromOpenAIAudio(d.usage);
        else if (typeof d.duration === 'number' && Number.isFinite(d.duration) && d.duration >= 0) this.usage = { audioSeconds: Math.ceil(d.duration) }; // verbose_json
        break;
      case 'generateContent':
      case 'streamGenerateContent':
        if (Array.isArray(body)) for (const x of body) this.onGemini(obj(x)); // streamGenerateContent without alt=sse
        else this.onGemini(d);
        break;
      case 'fal':
      case 'fal.submit': {
        const images = Array.isArray(d.images) ? (d.images as J[]) : d.image ? [obj(d.image)] : [];
        if (images.length) {
          const first = obj(images[0]);
          this.media = { images: images.length, width: typeof first.width === 'number' ? first.width : undefined, height: typeof first.height === 'number' ? first.height : undefined };
        }
        break;
      }
      case 'replicate.create': {
        // a finished prediction (Prefer: wait) reports its hardware run time; hardware-billed models are priced on it
        const t = obj(d.metrics).predict_time;
        if (d.status === 'succeeded' && typeof t === 'number' && Number.isFinite(t) && t >= 0 && t < 1e6) this.media = { ...(this.media ?? {}), runSeconds: Math.round(t * 1000) / 1000 };
        break;
      }
      default:
        break;
    }
  }

}

/**
 * One line of Anthropic batch results: `{custom_id, result: {type: 'succeeded', message: {model, usage}}}`.
 * Errored, canceled and expired requests are not billed (docs.claude.com, batch processing): null.
 */
function anthropicResult(d: J): BatchResultLine | null {
  const r = obj(d.result);
  if (r.type !== 'succeeded') return null;
  const m = obj(r.message);
  if (!m.usage) return null;
  return { model: typeof m.model === 'string' ? m.model : null, usage: { ...fromAnthropic(m.usage), serviceTier: 'batch' } };
}

/**
 * One line of a Gemini batch's responses file: `{key, response: GenerateContentResponse}` (with its
 * `usageMetadata` and `modelVersion`), or `{key, error}` / `{key, status}` for a request that failed,
 * which is not billed: null.
 */
function geminiResult(d: J): BatchResultLine | null {
  if ((d.error !== null && d.error !== undefined) || (d.status !== null && d.status !== undefined && d.response === undefined)) return null;
  const r = obj(d.response);
  if (!r.usageMetadata) return null;
  return { model: typeof r.modelVersion === 'string' ? r.modelVersion : null, usage: { ...fromGemini(r.usageMetadata), serviceTier: 'batch' } };
}

/**
 * One line of an OpenAI batch output file: `{id, custom_id, response: {status_code, body: {model, usage}}, error}`.
 * A request that failed (error, or a status of 400 or more) is not billed: null.
 */
function openaiResult(d: J): BatchResultLine | null {
  const res = obj(d.response);
  const status = typeof res.status_code === 'number' ? res.status_code : 200;
  if ((d.error !== null && d.error !== undefined) || status >= 400) return null;
  const body = obj(res.body);
  const u = obj(body.usage);
  if (!body.usage) return null;
  const model = typeof body.model === 'string' ? body.model : null;
  // chat/completions and completions report prompt/completion tokens; responses input/output; embeddings prompt only
  const usage: Usage = u.input_tokens !== undefined ? fromOpenAIResponses(u)
    : u.completion_tokens !== undefined ? fromOpenAIChat(u)
    : typeof u.prompt_tokens === 'number' ? { inputTokens: u.prompt_tokens }
    : fromOpenAIChat(u);
  usage.serviceTier = 'batch';
  return { model, usage };
}
