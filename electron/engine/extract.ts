/**
 * Response taps: watch the bytes a provider sends back (without delaying them) and pull out the
 * model, the usage and, for cut streams, the text streamed so far. One tap per wire format.
 */
import zlib from 'node:zlib';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { countTokens } from 'gpt-tokenizer';
import { fromAnthropic, fromGemini, fromOpenAIChat, fromOpenAIImages, fromOpenAIResponses, type Usage } from '../../shared/usage.ts';

export type Endpoint =
  | 'chat.completions' | 'responses' | 'embeddings' | 'images' | 'videos' | 'openai.other'
  | 'messages' | 'messages.count_tokens' | 'anthropic.other'
  | 'generateContent' | 'streamGenerateContent' | 'predict' | 'predictLongRunning' | 'gemini.operation' | 'gemini.other'
  | 'fal' | 'fal.submit' | 'fal.poll' | 'replicate.create' | 'replicate.poll';

/** Which calls are billable at all (polls and listings are free and recorded at $0, not unpriced). */
const FREE = new Set<Endpoint>(['openai.other', 'anthropic.other', 'gemini.other', 'gemini.operation', 'fal.poll', 'replicate.poll', 'messages.count_tokens']);
export function isBillable(e: Endpoint): boolean {
  return !FREE.has(e);
}

export function classify(provider: string, method: string, path: string): Endpoint {
  const p = path.split('?')[0]!;
  switch (provider) {
    case 'anthropic':
      if (p.endsWith('/messages/count_tokens')) return 'messages.count_tokens';
      if (method === 'POST' && p.endsWith('/messages')) return 'messages';
      return 'anthropic.other';
    case 'gemini': {
      const m = /:(\w+)$/.exec(p);
      const verb = m?.[1];
      if (verb === 'generateContent' || verb === 'streamGenerateContent' || verb === 'predict' || verb === 'predictLongRunning') return verb;
      if (/\/operations\//.test(p)) return 'gemini.operation';
      return 'gemini.other';
    }
    case 'fal':
      return method === 'POST' ? 'fal' : 'fal.poll';
    case 'fal-queue':
      return method === 'POST' && !/\/requests\//.test(p) ? 'fal.submit' : 'fal.poll';
    case 'replicate':
      return method === 'POST' && /\/predictions$/.test(p) ? 'replicate.create' : 'replicate.poll';
    default: // openai, openrouter, OpenAI-compatible hosts
      if (method !== 'POST') return 'openai.other';
      if (p.endsWith('/chat/completions')) return 'chat.completions';
      if (p.endsWith('/responses')) return 'responses';
      if (p.endsWith('/embeddings')) return 'embeddings';
      if (p.includes('/images/')) return 'images';
      if (p.endsWith('/videos')) return 'videos';
      return 'openai.other';
  }
}

export interface Extracted {
  model: string | null;
  usage: Usage | null;
  /** Tokens counted from streamed text when the provider never sent usage (cut streams). */
  streamedOutputTokens: number;
  /** Media facts from the response (fal: number of images and their sizes). */
  media: { images?: number; width?: number; height?: number; seconds?: number } | null;
  /** Provider-reported cost (OpenRouter `usage.cost`), informational. */
  reportedCost: string | null;
  parseError: string | null;
}

const MAX_JSON = 16 * 1024 * 1024;
/** Longest SSE line (or one event's data) the tap reads, in characters; past it the usage is unknown. */
const MAX_SSE_BUFFER = 16 * 1024 * 1024;
/** Streamed text is token-counted in pieces of about this many characters. */
const TEXT_COUNT_CHUNK = 1 << 20;
const noop = (): void => {};

/** Endpoints whose JSON response is priced from its top-level `model` and `usage` alone. */
const TOP_LEVEL_ONLY = new Set<Endpoint>(['chat.completions', 'responses', 'embeddings', 'messages']);
const USAGE_KEYS = new Set(['model', 'usage']);

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
    if (keys.has(key)) out[key] = JSON.parse(b.toString('utf8', i, valueEnd));
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
  private parseError: string | null = null;
  private media: Extracted['media'] = null;

  constructor(private readonly endpoint: Endpoint, contentType: string, contentEncoding: string | undefined) {
    this.sse = contentType.includes('text/event-stream');
    if (this.sse) {
      // A line (or an event's data) longer than MAX_SSE_BUFFER stops the reading: usage unknown.
      this.parser = createParser({ onEvent: (e) => this.onEventGuarded(e), onError: (e) => this.stop(`cannot read the event stream: ${e.message}`), maxBufferSize: MAX_SSE_BUFFER });
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
    if (this.stopped) return;
    try {
      if (this.parser) this.parser.feed(this.decoder!.decode(chunk, { stream: true }));
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
    if (!this.sse && this.jsonBytes > 0 && !this.stopped) {
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
    return {
      model: this.model, usage: this.usage, streamedOutputTokens: this.countedTokens + (this.text ? countTokens(this.text) : 0),
      media: this.media, reportedCost: this.reportedCost, parseError: this.parseError,
    };
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
    switch (this.endpoint) {
      case 'chat.completions': {
        if (typeof d.model === 'string') this.model = d.model;
        const u = d.usage;
        if (u && typeof u === 'object') this.takeOpenAI(u);
        for (const c of Array.isArray(d.choices) ? d.choices : []) {
          const delta = obj(obj(c).delta);
          if (typeof delta.content === 'string') this.addText(delta.content);
          if (typeof delta.reasoning === 'string') this.addText(delta.reasoning);
          if (typeof delta.reasoning_content === 'string') this.addText(delta.reasoning_content);
        }
        break;
      }
      case 'responses': {
        const type = d.type ?? e.event;
        if (type === 'response.output_text.delta' && typeof d.delta === 'string') this.addText(d.delta);
        if (type === 'response.reasoning_summary_text.delta' && typeof d.delta === 'string') this.addText(d.delta);
        const r = obj(d.response);
        if (typeof r.model === 'string') this.model = r.model;
        if ((type === 'response.completed' || type === 'response.incomplete' || type === 'response.failed') && r.usage) this.usage = fromOpenAIResponses(r.usage);
        break;
      }
      case 'messages': {
        const type = d.type ?? e.event;
        if (type === 'message_start') {
          const m = obj(d.message);
          if (typeof m.model === 'string') this.model = m.model;
          this.anthropicStart = obj(m.usage);
          this.usage = fromAnthropic(m.usage);
        } else if (type === 'message_delta') {
          // message_delta carries cumulative output_tokens (and, in newer API versions, the
          // input/cache counts again): take its numbers over message_start's where present.
          const u = obj(d.usage);
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
      default:
        break;
    }
  }

  private takeOpenAI(u: unknown): void {
    const usage = obj(u);
    this.usage = fromOpenAIChat(usage);
    if (usage.cost !== undefined && (typeof usage.cost === 'number' || typeof usage.cost === 'string')) this.reportedCost = String(usage.cost);
  }

  private onGemini(d: J): void {
    if (typeof d.modelVersion === 'string') this.model = d.modelVersion;
    if (d.usageMetadata) this.usage = fromGemini(d.usageMetadata);
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
    switch (this.endpoint) {
      case 'chat.completions':
        if (d.usage) this.takeOpenAI(d.usage);
        break;
      case 'responses':
        if (d.usage) this.usage = fromOpenAIResponses(d.usage);
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
      default:
        break;
    }
  }

}

