/**
 * The metering proxy's request path. Users change only a base URL:
 *   /openai/…  /anthropic/…  /gemini/…  /openrouter/…  /fal/…  /fal-queue/…  /replicate/…  /x/NAME/…
 * optionally behind /p/PROJECT/ for tools that cannot set an x-tollgate-project header.
 *
 * Pass-through is exact: method, path, query, body and headers go upstream (minus hop-by-hop and
 * x-tollgate-* headers, plus the real key when a local tgk_ key was used); status, headers and body
 * come back chunk by chunk, unbuffered. The one deliberate change: an OpenAI-style stream whose
 * client did not ask for usage gets `stream_options.include_usage` added upstream, and the extra
 * usage chunk (and the `"usage":null` fields it causes) are removed from what the client sees.
 */
import type http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { canonicalProvider } from '../../shared/catalog.ts';
import { nanoToUsd } from '../../shared/money.ts';
import { classify, isBillable, isTapped, ResponseTap, type Endpoint, type Extracted } from './extract.ts';
import { errorBody, ProxyError } from './errors.ts';
import type { CallRow } from './ledger.ts';

export const DEFAULT_UPSTREAMS: Record<string, string> = {
  openai: 'https://api.openai.com',
  anthropic: 'https://api.anthropic.com',
  gemini: 'https://generativelanguage.googleapis.com',
  openrouter: 'https://openrouter.ai',
  fal: 'https://fal.run',
  'fal-queue': 'https://queue.fal.run',
  replicate: 'https://api.replicate.com',
  recraft: 'https://external.api.recraft.ai',
};

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
/**
 * Not forwarded either: `expect` (the proxy has already read the whole body, so 100-continue is
 * answered here), `host` (set to the upstream's) and `content-length` (set to the body sent).
 */
const NOT_FORWARDED = new Set([...HOP_BY_HOP, 'expect', 'host', 'content-length']);

/** Upstream base URLs, parsed once each. */
const parsedBases = new Map<string, { url: URL; origin: string; host: string; basePath: string }>();
function baseUrl(base: string): { url: URL; origin: string; host: string; basePath: string } {
  let u = parsedBases.get(base);
  if (!u) {
    const url = new URL(base);
    u = { url, origin: url.origin, host: url.host, basePath: url.pathname.replace(/\/$/, '') };
    if (parsedBases.size > 1000) parsedBases.clear();
    parsedBases.set(base, u);
  }
  return u;
}

export interface Route {
  provider: string;       // route name: openai, anthropic, gemini, fal-queue, x/NAME → NAME
  upstream: URL;
  origin: string;         // upstream.origin and upstream.host, computed once per base URL
  host: string;
  path: string;           // path + query to send upstream
  project: string | null; // from /p/PROJECT/
}

/** A client's request that Tollgate refuses before it is routed (bad path, project name, key placement…). */
function badRequest(message: string): ProxyError {
  return new ProxyError('E_BAD_REQUEST', message);
}

/**
 * A path that needs the careful parse below: a `%`, `\`, `#`, `//`, `/.` (dot segments), a trailing
 * slash or any byte outside printable ASCII. The usual path has none and is taken as it is.
 */
const UNUSUAL_PATH = /[%\\#\x00-\x20\x7f-\uffff]|\/\/|\/\.|\/$/;
const HEX = '0123456789ABCDEF';

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  c |= 0x20;
  return c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
}

/** Bytes a `%XX` stands for that are decoded to themselves: RFC 3986's unreserved characters, and `:` (Gemini's `:generateContent`). */
function decodedAsIs(b: number): boolean {
  return (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e || b === 0x3a;
}

/**
 * The path's segments, normalized (RFC 3986 §6.2.2): unreserved `%XX` decoded, other escapes in
 * upper case, raw non-ASCII bytes escaped, empty segments dropped. Dot segments are kept (the
 * caller resolves them where it knows the route's root). Anything ambiguous is refused: a
 * malformed escape, an encoded `/` or `\`, a raw `\` or `#`, a control character.
 */
function normalizedSegments(raw: string): string[] {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x25) {
      const hi = hexValue(raw.charCodeAt(i + 1)), lo = hexValue(raw.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) throw badRequest(`the path has a malformed percent-escape at "${raw.slice(i, i + 3)}"`);
      const b = hi * 16 + lo;
      if (b === 0x2f || b === 0x5c) throw badRequest('the path holds an encoded slash (%2F or %5C): Tollgate cannot tell which endpoint it names, so it is not forwarded');
      if (b < 0x20 || b === 0x7f) throw badRequest('the path holds an encoded control character');
      out += decodedAsIs(b) ? String.fromCharCode(b) : '%' + HEX[hi]! + HEX[lo]!;
      i += 2;
    } else if (c === 0x5c || c === 0x23) {
      throw badRequest(`the path holds a raw "${String.fromCharCode(c)}": Tollgate cannot tell which endpoint it names, so it is not forwarded`);
    } else if (c <= 0x20 || c === 0x7f) {
      throw badRequest('the path holds a control character or a space');
    } else if (c > 0x7f) {
      if (c > 0xff) throw badRequest('the path holds a character that is not percent-encoded');
      out += '%' + HEX[c >> 4]! + HEX[c & 15]!; // Node reads the request line as latin1: one char per byte
    } else out += raw[i];
  }
  const segs = out.split('/');
  let n = 0;
  for (const x of segs) if (x) segs[n++] = x;
  segs.length = n;
  return segs;
}

/** Longest project name in a `/p/NAME/` prefix or `x-tollgate-project` header, in characters. */
export const MAX_PROJECT = 100;
const CONTROL_CHAR = /[\x00-\x1f\x7f]/;

/**
 * A project name from a client, checked: not empty, at most MAX_PROJECT characters, no control
 * characters; in a path also no slashes and no `..` (a header may name `team/app`, as before).
 */
function checkedProject(name: string, where: string, inPath: boolean): string {
  if (!name) throw badRequest(`the project name in ${where} is empty`);
  if (name.length > MAX_PROJECT) throw badRequest(`the project name in ${where} is ${name.length} characters long; the limit is ${MAX_PROJECT}`);
  if (CONTROL_CHAR.test(name)) throw badRequest(`the project name in ${where} holds a control character`);
  if (inPath && (name.includes('..') || name.includes('/') || name.includes('\\'))) throw badRequest(`the project name in ${where} may not hold "..", "/" or "\\"`);
  return name;
}

/** A /p/NAME/ segment (percent-encoded UTF-8) decoded and checked. */
function projectFromPath(seg: string): string {
  let name: string;
  try {
    name = seg.includes('%') ? decodeURIComponent(seg) : seg;
  } catch {
    throw badRequest('the project name in /p/NAME/ is not valid percent-encoded UTF-8');
  }
  return checkedProject(name, '/p/NAME/', true);
}

/**
 * Header values arrive as latin1 (one char per byte). Clients that send UTF-8 (curl, most SDKs)
 * mean UTF-8: decode it as such when the bytes are valid UTF-8, else keep the latin1 reading.
 */
export function headerText(v: string): string {
  let ascii = true;
  for (let i = 0; i < v.length; i++) {
    if (v.charCodeAt(i) > 0x7f) {
      ascii = false;
      break;
    }
  }
  if (ascii) return v;
  const bytes = Buffer.from(v, 'latin1');
  const text = bytes.toString('utf8');
  return text.includes('\ufffd') && !v.includes('\u00ef\u00bf\u00bd') ? v : text;
}

/**
 * The route a request URL names: `[/p/PROJECT]/NAME/rest` or `[/p/PROJECT]/x/NAME/rest`. Null when
 * no such upstream is configured; throws ProxyError (400) for a path Tollgate will not guess at.
 * The path sent upstream is the normalized one (no `//`, `/./`, trailing slash or needless escapes),
 * so that the endpoint classified is the endpoint the provider runs; the query goes as sent.
 */
export function parseRoute(url: string, upstreams: ReadonlyMap<string, string>): Route | null {
  const qi = url.indexOf('?');
  const rawPath = qi < 0 ? url : url.slice(0, qi);
  const query = qi < 0 ? '' : url.slice(qi);
  if (rawPath.charCodeAt(0) !== 0x2f) return null; // absolute-form or `*`: not a proxy route
  let project: string | null = null;
  let name: string;
  let rest: string;
  if (!UNUSUAL_PATH.test(rawPath)) {
    // The usual path: no escapes, no dot segments, no empty segments.
    let i = 1;
    if (rawPath.startsWith('/p/')) {
      const e = rawPath.indexOf('/', 3);
      if (e < 0) return null;
      project = checkedProject(rawPath.slice(3, e), '/p/NAME/', true);
      i = e + 1;
    }
    let e = rawPath.indexOf('/', i);
    if (e < 0) e = rawPath.length;
    name = rawPath.slice(i, e);
    if (name === 'x') {
      i = e + 1;
      e = rawPath.indexOf('/', i);
      if (e < 0) e = rawPath.length;
      name = rawPath.slice(i, e);
    }
    rest = e < rawPath.length ? rawPath.slice(e) : '/';
  } else {
    const segs = normalizedSegments(rawPath);
    let i = 0;
    if (segs[0] === 'p' && segs.length > 2) {
      project = projectFromPath(segs[1]!);
      i = 2;
    }
    name = segs[i++] ?? '';
    if (name === 'x') name = segs[i++] ?? '';
    if (name === '.' || name === '..') throw badRequest('the path uses "." or ".." where the route name belongs');
    // Dot segments resolve inside the route only: `..` may not climb out of it.
    const kept: string[] = [];
    for (; i < segs.length; i++) {
      const x = segs[i]!;
      if (x === '.') continue;
      if (x === '..') {
        if (!kept.length) throw badRequest('the path climbs out of its route with ".."; it is not forwarded');
        kept.pop();
      } else kept.push(x);
    }
    rest = '/' + kept.join('/');
  }
  if (!name) return null;
  const base = upstreams.get(name);
  if (!base) return null;
  const b = baseUrl(base);
  return { provider: name, upstream: b.url, origin: b.origin, host: b.host, path: b.basePath + rest + query, project };
}

/** Host names the proxy answers to: loopback only (a DNS-rebound web page sends its own name). */
export function isLoopbackHost(h: string | undefined): boolean {
  if (!h) return false;
  let end: number;
  if (h.charCodeAt(0) === 0x5b) {
    end = h.indexOf(']') + 1;
    if (end === 0) return false;
  } else {
    end = h.indexOf(':');
    if (end < 0) end = h.length;
  }
  if (end < h.length) {
    // `:PORT`
    if (h.charCodeAt(end) !== 0x3a || h.length - end > 6 || h.length - end < 2) return false;
    for (let i = end + 1; i < h.length; i++) {
      const c = h.charCodeAt(i);
      if (c < 0x30 || c > 0x39) return false;
    }
  }
  const name = end === h.length ? h : h.slice(0, end);
  return name === '127.0.0.1' || name === 'localhost' || name === '[::1]' || name.toLowerCase() === 'localhost';
}

/** An Origin header from a loopback page (`http://127.0.0.1:PORT`, `http://localhost`…); `null` and any other site are foreign. */
export function isLoopbackOrigin(o: string): boolean {
  const i = o.startsWith('http://') ? 7 : o.startsWith('https://') ? 8 : -1;
  return i > 0 && isLoopbackHost(o.slice(i));
}

/** The provider whose error format a refused request gets, from its path alone (before routing). */
function providerOfPath(url: string): string {
  let i = url.startsWith('/p/') ? url.indexOf('/', 3) : 0;
  if (i < 0) return 'openai';
  let e = url.indexOf('/', i + 1);
  let name = url.slice(i + 1, e < 0 ? undefined : e);
  if (name === 'x') return 'openai';
  const q = name.indexOf('?');
  if (q >= 0) name = name.slice(0, q);
  return name === 'anthropic' || name === 'gemini' || name === 'fal' || name === 'fal-queue' || name === 'replicate' ? name : 'openai';
}

/**
 * Billable endpoints that also take a multipart upload (image edits, a video's reference image,
 * audio files to transcribe, Recraft's image edits / vectorize / upscale); every other one takes JSON.
 */
const MULTIPART_ENDPOINTS = new Set<Endpoint>(['images', 'videos', 'audio.transcriptions', 'audio.translations', 'recraft.unknown']);

/** Methods provider APIs use; anything else (TRACE, PROPFIND, HEAD…) is refused without forwarding. */
const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);
const ALLOW = 'GET, POST, PUT, PATCH, DELETE, OPTIONS';

/** Gemini's verbs, lower-cased → as documented. */
const GEMINI_VERBS: Record<string, string> = { generatecontent: 'generateContent', streamgeneratecontent: 'streamGenerateContent', predict: 'predict', predictlongrunning: 'predictLongRunning' };

/**
 * True when a path classed as free would be a priced endpoint but for letter case
 * (`/v1/Chat/Completions`, `:GenerateContent`): a provider that matches paths without regard to
 * case would run (and bill) it. Only called for free or unknown classifications, which are rare.
 */
function caseVariantOfBillable(provider: string, method: string, path: string): boolean {
  const p = path.split('?')[0]!;
  let lower = p.toLowerCase();
  if (lower === p) return false;
  const colon = lower.lastIndexOf(':');
  if (colon > lower.lastIndexOf('/')) lower = lower.slice(0, colon + 1) + (GEMINI_VERBS[lower.slice(colon + 1)] ?? lower.slice(colon + 1));
  return isBillable(classify(provider, method, lower));
}

/**
 * Why a Tollgate key (tgk_…) in the query cannot be swapped, or null. Gemini takes its key as
 * `?key=`: one such key, and no key in a header too. Anywhere else (another provider, another
 * parameter) the swap would put a real key in a URL, or the local key would reach the provider.
 */
function queryKeyProblem(route: Route, headers: http.IncomingHttpHeaders): string | null {
  const path = route.path;
  const q = path.indexOf('?');
  if (q < 0 || !path.includes('tgk', q)) return null;
  let keys = 0, local = false;
  for (const [name, value] of new URLSearchParams(path.slice(q + 1))) {
    if (name === 'key') keys++;
    if (!value.includes('tgk_') && !name.includes('tgk_')) continue;
    if (name !== 'key' || !value.startsWith('tgk_')) return 'a Tollgate key (tgk_…) appears in the URL outside ?key=: send it as an API key header';
    local = true;
  }
  if (!local) return null;
  if (canonicalProvider(route.provider) !== 'gemini') return `${route.provider} takes its key in a header, not in the URL: send the Tollgate key as an API key (Authorization or x-api-key), not as ?key=`;
  if (keys > 1) return 'the URL holds more than one ?key=';
  if (headers['x-goog-api-key'] !== undefined || headers['x-api-key'] !== undefined || headers.authorization !== undefined) return 'the request holds a key both in ?key= and in a header: send one';
  return null;
}

/** Headers a `Connection:` header names are hop-by-hop too (RFC 9110 §7.6.1). */
function connectionListed(value: string | undefined): Set<string> | null {
  if (!value || value.length <= 10 && /^\s*(keep-alive|close)\s*$/i.test(value)) return null; // the usual values name no header
  const names = value.split(',').map((x) => x.trim().toLowerCase()).filter((x) => x && x !== 'keep-alive' && x !== 'close');
  return names.length ? new Set(names) : null;
}

/** What the proxy needs from the engine (implemented by Engine in engine.ts). */
export interface ProxyHost {
  readonly upstreams: ReadonlyMap<string, string>;
  readonly maxBodyBytes: number;
  readonly upstreamIdleMs: number;
  /**
   * The HTTP client for upstream calls (an undici Agent: per-origin keep-alive pools; its
   * headers and body timeouts are `upstreamIdleMs`).
   */
  readonly upstreamClient: Dispatcher;
  /** Async preparation before `begin` (decrypting a local key's real secret); null when there is none to do. */
  warm(input: BeginInput): Promise<void> | null;
  /** Route a call: key swap, quote, admission and reservation. Throws ProxyError to refuse. */
  begin(input: BeginInput): Begun;
  /** Price and record the finished call, settle its reservation. */
  finish(call: Begun, outcome: Outcome): void;
  /** Record a call refused before forwarding (blocked, bad key…). */
  refuse(input: BeginInput, err: ProxyError): CallRow;
}

export interface BeginInput {
  route: Route;
  method: string;
  endpoint: Endpoint;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json: Record<string, unknown> | null;
  attribution: { project: string | null; workflow: string | null; run: string | null; node: string | null };
  started: number;
}

export interface Begun {
  row: CallRow;
  /** Headers to send upstream in place of the client's auth headers (real key swapped in). */
  authHeaders: Record<string, string>;
  /** Query string replacement for Gemini `?key=` auth, or null. */
  query: string | null;
  reservation: bigint;
  quoteInputTokens: number;
  input: BeginInput;
  /** The engine's own bookkeeping for this call (the caps it reserved on); opaque to the proxy. */
  reservedOn?: unknown;
}

export interface Outcome {
  httpStatus: number | null;
  status: 'ok' | 'error' | 'aborted';
  extracted: Extracted | null;
  ttfbMs: number | null;
  durationMs: number;
  error: string | null;
}

function send(res: http.ServerResponse, provider: string, err: ProxyError, callId?: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const { body, contentType } = errorBody(provider, err.status, err.code, err.message);
  const headers: Record<string, string> = { 'content-type': contentType, 'content-length': String(Buffer.byteLength(body)), ...err.extraHeaders };
  if (callId) headers['x-tollgate-call-id'] = callId;
  res.writeHead(err.status, headers);
  res.end(body);
}

/** A Gemini upload session URL (`https://…/upload/v1beta/files?upload_id=…`) on `base` (Tollgate's route); anything else unchanged. */
function throughTollgate(url: string, base: string): string {
  try {
    const u = new URL(url);
    return u.pathname.startsWith('/upload/') ? `${base}${u.pathname}${u.search}` : url;
  } catch {
    return url;
  }
}

/** A batch object (or a list of them) larger than this passes through unchanged. */
const MAX_BATCH_OBJECT = 1024 * 1024;
const ANTHROPIC_BATCH_POLL = /\/v1\/messages\/batches(\/[^/?]+)?(\?|$)/;

/**
 * Anthropic batch objects name their results by an absolute `results_url` on the API's own host,
 * which the Anthropic SDK fetches as is (`client.messages.batches.results(id)`): left alone, a
 * client pointed at Tollgate would read the results past it, and their cost would never be seen.
 * The poll's JSON (small) is held and each `results_url` on the upstream's origin is rewritten to
 * the same path through Tollgate (the URL the client used to reach this route). The results
 * themselves pass through unchanged.
 */
class ResultsUrlFilter {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private passThrough = false;
  constructor(private readonly res: http.ServerResponse, private readonly upstreamOrigin: string, private readonly clientBase: string) {}
  write(chunk: Buffer): boolean {
    if (this.passThrough) return this.res.write(chunk);
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    if (this.bytes <= MAX_BATCH_OBJECT) return true;
    this.passThrough = true;
    const all = Buffer.concat(this.chunks);
    this.chunks = [];
    return this.res.write(all);
  }
  flush(): void {
    if (this.passThrough || !this.chunks.length) return;
    const body = Buffer.concat(this.chunks);
    this.chunks = [];
    const text = body.toString('utf8');
    const origin = this.upstreamOrigin.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    const re = new RegExp(`("results_url"\\s*:\\s*")${origin}(/v1/messages/batches/)`, 'g');
    const out = text.replace(re, (_m, head: string, tail: string) => head + this.clientBase + tail);
    this.res.write(out === text ? body : Buffer.from(out, 'utf8'));
  }
}

/** Strips the usage-only final chunk (and `"usage":null` fields) from an OpenAI stream we asked usage for. */
class UsageChunkFilter {
  private pending: Buffer = Buffer.alloc(0);
  /** Set once an event outgrows MAX_FILTER_EVENT: from then on everything passes through as is. */
  private passThrough = false;
  constructor(private readonly res: http.ServerResponse) {}
  write(chunk: Buffer): boolean {
    if (this.passThrough) return this.res.write(chunk);
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let ok = true;
    for (;;) {
      const i = buf.indexOf('\n\n');
      if (i < 0) break;
      const event = buf.subarray(0, i + 2);
      buf = buf.subarray(i + 2);
      const text = event.toString('utf8');
      if (/"choices"\s*:\s*\[\s*\]/.test(text) && /"usage"\s*:\s*\{/.test(text)) continue; // the chunk we added
      ok = this.res.write(text.includes('"usage":null') ? Buffer.from(text.replace(/,"usage":null|"usage":null,/g, ''), 'utf8') : event) && ok;
    }
    if (buf.length > MAX_FILTER_EVENT) {
      // An event this large is not the small usage chunk: stop holding bytes back.
      this.passThrough = true;
      this.pending = Buffer.alloc(0);
      return this.res.write(buf) && ok;
    }
    this.pending = buf;
    return ok;
  }
  flush(): void {
    if (this.pending.length) this.res.write(this.pending);
    this.pending = Buffer.alloc(0);
  }
}

/** Longest event the usage filter holds back while looking for its end. */
const MAX_FILTER_EVENT = 1024 * 1024;

const CALL = Symbol('tollgate.call');
type WithCall<T> = T & { [CALL]?: ProxyCall };

/**
 * Proxy one call. Returns at once; the call proceeds on stream events. Listeners are shared
 * functions that find their call through a symbol on the stream (no closures per request), and a
 * call that needs no async key preparation runs with no promises at all.
 */
export function handleProxy(host: ProxyHost, req: http.IncomingMessage, res: http.ServerResponse): void {
  const started = Date.now();
  const t0 = performance.now();
  const url = req.url ?? '/';
  // A web page must not be able to use the proxy: not through DNS rebinding (a foreign Host),
  // nor by a cross-site request (a foreign Origin; a form's or fetch's "simple" POST has one).
  if (!isLoopbackHost(req.headers.host)) {
    send(res, providerOfPath(url), new ProxyError('E_FORBIDDEN_HOST', `Host "${req.headers.host ?? ''}" is not allowed: Tollgate's proxy answers only to 127.0.0.1, localhost or [::1]`));
    return;
  }
  const origin = req.headers.origin;
  if (origin !== undefined && !isLoopbackOrigin(origin)) {
    send(res, providerOfPath(url), new ProxyError('E_FORBIDDEN_ORIGIN', `Origin "${origin}" is not allowed: web pages cannot call Tollgate's proxy`));
    return;
  }
  let route: Route | null;
  try {
    route = parseRoute(url, host.upstreams);
  } catch (e) {
    if (e instanceof ProxyError) send(res, providerOfPath(url), e);
    else internalError(res, e); // (an upstream base URL that does not parse)
    return;
  }
  if (!route) {
    send(res, 'openai', new ProxyError('E_NOT_FOUND', `Tollgate has no route for ${req.method} ${url.split('?')[0]}. Use a base URL like http://127.0.0.1:7411/openai/v1, /anthropic, /gemini, /openrouter/api/v1, /fal, /replicate or /x/NAME for a host you added.`));
    return;
  }
  const method = req.method ?? 'GET';
  if (!METHODS.has(method)) {
    if (method === 'OPTIONS') {
      // Answered here, never forwarded: no Access-Control-Allow-* headers, so no web page gets a CORS pass.
      res.writeHead(204, { allow: ALLOW, 'content-length': '0' });
      res.end();
    } else send(res, route.provider, new ProxyError('E_METHOD', `Tollgate does not forward ${method} requests: provider APIs use ${ALLOW.replace(', OPTIONS', '')}`, { allow: ALLOW }));
    return;
  }
  // A Tollgate key (tgk_…) in the URL is swapped for the real key as Gemini's `?key=` only, and never next to another key.
  const why = queryKeyProblem(route, req.headers);
  if (why) {
    send(res, route.provider, badRequest(why));
    return;
  }
  const endpoint = classify(route.provider, method, route.path);
  if ((!isBillable(endpoint) || endpoint.endsWith('.unknown')) && caseVariantOfBillable(route.provider, method, route.path)) {
    send(res, route.provider, badRequest(`the path ${route.path.split('?')[0]} differs only in letter case from a priced endpoint: Tollgate cannot tell what the provider will run, so it is not forwarded (use the endpoint's documented spelling)`));
    return;
  }
  const call = new ProxyCall(host, req, res, route, endpoint, started, t0);
  (req as WithCall<http.IncomingMessage>)[CALL] = call;
  (res as WithCall<http.ServerResponse>)[CALL] = call;
  // Read the request body (needed to quote and to reserve before forwarding), with a limit.
  req.on('data', onReqData);
  req.once('end', onReqEnd);
  req.once('error', onReqGone);
  req.once('aborted', onReqGone);
}

function onReqData(this: WithCall<http.IncomingMessage>, c: Buffer): void {
  this[CALL]!.bodyChunk(c);
}
function onReqEnd(this: WithCall<http.IncomingMessage>): void {
  const call = this[CALL]!;
  try {
    call.bodyRead();
  } catch (e) {
    call.failed(e); // an event handler: nothing may escape to the process
  }
}
function onReqGone(this: WithCall<http.IncomingMessage>): void {
  this[CALL]!.phase = 'done'; // the client went away while sending
}
function onResClose(this: WithCall<http.ServerResponse>): void {
  this[CALL]!.clientClosed();
}
function onResDrain(this: WithCall<http.ServerResponse>): void {
  this[CALL]!.resumeUpstream?.();
}

/** One call through the proxy: reads the body, begins, forwards (as an undici dispatch handler), finishes. */
class ProxyCall implements Dispatcher.DispatchHandler {
  phase: 'reading' | 'forwarding' | 'done' = 'reading';
  private chunks: Buffer[] = [];
  private size = 0;
  private begun: Begun | null = null;
  private filterUsage = false;
  private finished = false;
  private ttfbMs: number | null = null;
  private tap: ResponseTap | null = null;
  private filter: UsageChunkFilter | ResultsUrlFilter | null = null;
  /** An Anthropic batch poll: its `results_url` is pointed back through Tollgate (see ResultsUrlFilter); the URL to point it at. */
  private resultsBase: string | null = null;
  /**
   * A Gemini resumable upload's start: the session URL it answers (`x-goog-upload-url`, on the API's
   * own host) is pointed back through Tollgate. The SDKs keep that URL's path and swap in their base
   * URL's host, which drops the route's prefix (`/gemini`): the path is given it here. The URL to point it at.
   */
  private uploadBase: string | null = null;
  private upstreamStatus: number | null = null;
  private abortUpstream: ((reason?: Error) => void) | null = null;
  resumeUpstream: (() => void) | null = null;

  constructor(
    private readonly host: ProxyHost, private readonly req: http.IncomingMessage, private readonly res: http.ServerResponse,
    private readonly route: Route, private readonly endpoint: Endpoint, private readonly started: number, private readonly t0: number,
  ) {}

  bodyChunk(c: Buffer): void {
    if (this.phase !== 'reading') return;
    this.size += c.length;
    if (this.size > this.host.maxBodyBytes) {
      this.phase = 'done';
      this.req.off('data', onReqData);
      this.req.pause();
      this.chunks = [];
      // `connection: close`: the rest of the body is never read, so this socket cannot be reused.
      send(this.res, this.route.provider, new ProxyError('E_TOO_LARGE', `request body is larger than Tollgate's limit of ${this.host.maxBodyBytes} bytes`, { connection: 'close' }));
    } else this.chunks.push(c);
  }

  bodyRead(): void {
    if (this.phase !== 'reading') return;
    this.phase = 'forwarding';
    const { req, route, host } = this;
    let body = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.chunks = [];
    const method = req.method ?? 'GET';
    const endpoint = this.endpoint;
    let json: Record<string, unknown> | null = null;
    const ct = req.headers['content-type'];
    // A billable endpoint takes JSON whatever the declared type (curl's form default, a browser's
    // text/plain): it is read, quoted and reserved like any other, and a body that is not a JSON
    // object is refused here rather than forwarded unquoted. Multipart uploads (image edits) stay as sent.
    const expectsJson = body.length > 0 && isBillable(endpoint) && !(MULTIPART_ENDPOINTS.has(endpoint) && ct !== undefined && ct.includes('multipart/form-data'));
    if (expectsJson || (body.length && (ct === undefined || ct.includes('json')))) {
      try {
        const parsed: unknown = JSON.parse(body.toString('utf8'));
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) json = parsed as Record<string, unknown>;
      } catch {
        json = null; // not JSON: refused below where JSON is expected, else forwarded as is
      }
      if (expectsJson && !json) {
        this.phase = 'done';
        send(this.res, route.provider, badRequest(`the request body is not a JSON object, which ${route.provider}'s ${endpoint} endpoint expects (send content-type: application/json)`));
        return;
      }
    }
    const h = req.headers;
    let attribution: BeginInput['attribution'];
    try {
      const hp = pick(h, 'x-tollgate-project');
      attribution = { project: hp !== null ? checkedProject(hp, 'x-tollgate-project', false) : route.project, workflow: pick(h, 'x-tollgate-workflow'), run: pick(h, 'x-tollgate-run'), node: pick(h, 'x-tollgate-node') };
    } catch (e) {
      this.phase = 'done';
      send(this.res, route.provider, e as ProxyError);
      return;
    }
    const input: BeginInput = { route, method, endpoint, headers: h, body, json, started: this.started, attribution };
    if (route.provider === 'anthropic' && method === 'GET' && ANTHROPIC_BATCH_POLL.test(route.path)) {
      // the URL the client reached this route by, up to the API path (loopback hosts only)
      const at = (req.url ?? '').indexOf('/v1/messages/batches');
      const hostHeader = req.headers.host ?? '';
      if (at >= 0 && /^(127\.0\.0\.1|localhost|\[::1\])(:\d{1,5})?$/.test(hostHeader)) this.resultsBase = `http://${hostHeader}${(req.url ?? '').slice(0, at)}`;
    }
    if (route.provider === 'gemini' && endpoint === 'gemini.files' && method === 'POST') {
      const at = (req.url ?? '').indexOf('/upload/');
      const hostHeader = req.headers.host ?? '';
      if (at >= 0 && /^(127\.0\.0\.1|localhost|\[::1\])(:\d{1,5})?$/.test(hostHeader)) this.uploadBase = `http://${hostHeader}${(req.url ?? '').slice(0, at)}`;
    }
    // An OpenAI-style stream that did not ask for usage: ask for it, and hide it from the client.
    if (json && endpoint === 'chat.completions' && json.stream === true) {
      const so = json.stream_options;
      const asked = so && typeof so === 'object' && (so as Record<string, unknown>).include_usage === true;
      if (!asked) {
        json = { ...json, stream_options: { ...(so && typeof so === 'object' ? so : {}), include_usage: true } };
        body = Buffer.from(JSON.stringify(json), 'utf8');
        input.json = json;
        input.body = body;
        this.filterUsage = true;
      }
    }
    let warming: Promise<void> | null;
    try {
      warming = host.warm(input);
    } catch (e) {
      this.refused(input, e);
      return;
    }
    if (warming) warming.then(() => this.forward(input), (e: unknown) => this.refused(input, e)).catch((e: unknown) => this.failed(e));
    else this.forward(input);
  }

  private refused(input: BeginInput, e: unknown): void {
    this.phase = 'done';
    if (e instanceof ProxyError) {
      const row = this.host.refuse(input, e);
      send(this.res, this.route.provider, e, row.id);
      return;
    }
    internalError(this.res, e);
  }

  private forward(input: BeginInput): void {
    const { host, req, res, route } = this;
    let begun: Begun;
    try {
      begun = host.begin(input);
    } catch (e) {
      this.refused(input, e);
      return;
    }
    this.begun = begun;
    // Upstream request headers: the client's, minus hop-by-hop and x-tollgate-*, with the real key.
    const out: string[] = [];
    const raw = req.rawHeaders;
    const reqListed = connectionListed(req.headers.connection);
    const auth = begun.authHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      const lower = name.toLowerCase();
      if (NOT_FORWARDED.has(lower) || reqListed?.has(lower) || lower.startsWith('x-tollgate-') || lower in auth) continue;
      if ((this.filterUsage || this.resultsBase !== null) && lower === 'accept-encoding') continue;
      out.push(name, raw[i + 1]!);
    }
    // The usage chunk added for the client's stream is removed from what it sees, which needs the
    // stream's events readable: ask for it uncompressed (any client takes an identity response).
    if (this.filterUsage || this.resultsBase !== null) out.push('accept-encoding', 'identity');
    for (const k in auth) out.push(k, auth[k]!);
    const method = input.method;
    const body = input.body;
    if (body.length || method === 'POST' || method === 'PUT' || method === 'PATCH') out.push('content-length', String(body.length));
    out.push('host', route.host);
    const path = begun.query !== null ? withQueryKey(route.path, begun.query) : route.path;
    // The client went away before the response finished: stop the upstream call at once so the
    // user stops paying, and record what was streamed so far.
    res.on('close', onResClose);
    host.upstreamClient.dispatch({ origin: route.origin, method: method as Dispatcher.HttpMethod, path, headers: out, body: body.length ? body : null }, this);
  }

  clientClosed(): void {
    if (this.phase !== 'forwarding' || this.res.writableFinished || this.finished) return;
    this.done('aborted', 'the client closed the connection before the response finished');
    this.abortUpstream?.(); // undici reports the abort back through onError, which then finds the call done
  }

  // ---- undici dispatch handler ----

  onConnect(abort: (reason?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.finished) abort();
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (this.finished) return false;
    const { res, begun } = this;
    this.ttfbMs = Math.round(performance.now() - this.t0);
    this.upstreamStatus = statusCode;
    this.resumeUpstream = resume;
    // latin1, as Node's own HTTP parser decodes header bytes
    let headers: string[] = [];
    let listed: Set<string> | null = null;
    let contentType = '', contentEncoding: string | undefined;
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!.toString('latin1');
      const lower = name.toLowerCase();
      let value = rawHeaders[i + 1]!.toString('latin1');
      if (lower === 'connection') listed = connectionListed(value);
      if (this.uploadBase !== null && lower === 'x-goog-upload-url') value = throughTollgate(value, this.uploadBase);
      if (HOP_BY_HOP.has(lower)) continue;
      if ((this.filterUsage || this.resultsBase !== null) && lower === 'content-length' && statusCode < 300) continue;
      if (lower === 'content-type') contentType = value;
      else if (lower === 'content-encoding') contentEncoding = value;
      headers.push(name, value);
    }
    if (listed) {
      // headers the upstream's `Connection:` names are hop-by-hop too (rare)
      const kept: string[] = [];
      for (let i = 0; i < headers.length; i += 2) if (!listed.has(headers[i]!.toLowerCase())) kept.push(headers[i]!, headers[i + 1]!);
      headers = kept;
    }
    headers.push('x-tollgate-call-id', begun!.row.id);
    if (begun!.row.quoteMaxNano !== null) headers.push('x-tollgate-quote-max-usd', nanoToUsd(begun!.row.quoteMaxNano));
    res.writeHead(statusCode, statusText, headers);
    const endpoint = begun!.input.endpoint;
    if (isTapped(endpoint)) this.tap = new ResponseTap(endpoint, contentType, contentEncoding);
    // (a compressed stream is passed through untouched: its events cannot be seen without inflating it)
    if (this.filterUsage && statusCode < 300 && (contentEncoding === undefined || contentEncoding === 'identity')) this.filter = new UsageChunkFilter(res);
    if (this.resultsBase !== null && statusCode < 300 && (contentEncoding === undefined || contentEncoding === 'identity')) this.filter = new ResultsUrlFilter(res, this.route.origin, this.resultsBase);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.finished) return false;
    this.tap?.write(chunk);
    const ok = this.filter ? this.filter.write(chunk) : this.res.write(chunk);
    if (!ok) this.res.once('drain', onResDrain);
    return ok;
  }

  onComplete(): void {
    if (this.finished) return;
    this.filter?.flush();
    this.res.end();
    const s = this.upstreamStatus!;
    this.done(s < 400 ? 'ok' : 'error', s < 400 ? null : `provider answered HTTP ${s}`);
  }

  onError(err: Error): void {
    if (this.finished) return;
    const { res, route, host } = this;
    const code = (err as { code?: string }).code;
    const silent = `${route.upstream.host} sent nothing for ${Math.round(host.upstreamIdleMs / 1000)} s`;
    if (!res.headersSent) {
      if (code === 'UND_ERR_HEADERS_TIMEOUT') {
        send(res, route.provider, new ProxyError('E_UPSTREAM_TIMEOUT', `Tollgate gave up waiting: ${silent}`), this.begun?.row.id);
        this.done('error', `upstream timeout: ${silent}`);
      } else {
        const why = upstreamErrorText(err);
        send(res, route.provider, new ProxyError('E_UPSTREAM', `Tollgate could not reach ${route.upstream.host}: ${why}`), this.begun?.row.id);
        this.done('error', `upstream unreachable: ${why}`);
      }
    } else {
      res.destroy(); // the upstream cut the stream: the client sees the same cut
      this.done('error', code === 'UND_ERR_BODY_TIMEOUT' ? `upstream went silent mid-response: ${silent}` : `the provider cut the response short: ${upstreamErrorText(err)}`);
    }
  }

  // ---- the end ----

  private done(status: Outcome['status'], error: string | null): void {
    if (this.finished || !this.begun) return;
    this.finished = true;
    this.phase = 'done';
    const durationMs = Math.round(performance.now() - this.t0);
    const tap = this.tap;
    if (!tap) {
      this.record(status, null, error, durationMs);
      return;
    }
    let result: Extracted | Promise<Extracted>;
    try {
      result = tap.finish();
    } catch (e) {
      this.record(status, null, error ?? `could not read usage: ${(e as Error).message}`, durationMs);
      return;
    }
    if (result instanceof Promise) {
      result.then((x) => this.record(status, x, error, durationMs), (e: unknown) => this.record(status, null, error ?? `could not read usage: ${(e as Error).message}`, durationMs));
    } else this.record(status, result, error, durationMs);
  }

  private record(status: Outcome['status'], extracted: Extracted | null, error: string | null, durationMs: number): void {
    // A response whose usage could not be read (invalid, or too large to read) says why on the call,
    // whether it is then estimated from the streamed text or left unpriced.
    if (error === null && extracted?.parseError && !extracted.usage) error = `usage unknown: ${extracted.parseError}`;
    const outcome: Outcome = { httpStatus: this.upstreamStatus, status, extracted, ttfbMs: this.ttfbMs, durationMs, error };
    try {
      this.host.finish(this.begun!, outcome);
    } catch (e) {
      // Not retried (finish may have settled part of the call already); this runs from stream and
      // promise callbacks, where a throw would end the process.
      console.error(`tollgate: could not record call ${this.begun!.row.id}: ${(e as Error)?.message ?? String(e)}`);
    }
  }

  /** An unexpected exception on this call's path: answer 500, and record the call if it was begun. */
  failed(e: unknown): void {
    try {
      internalError(this.res, e);
      if (this.begun && !this.finished) this.done('error', `Tollgate internal error: ${(e as Error)?.message ?? String(e)}`);
      else this.phase = 'done';
    } catch { /* nothing more to do */ }
  }
}

/** An x-tollgate-* attribution header, read as UTF-8 (see headerText), at most 200 characters. */
function pick(h: http.IncomingHttpHeaders, name: string): string | null {
  const v = h[name];
  return typeof v === 'string' && v.length ? headerText(v).slice(0, 200) : null;
}

/**
 * The client's path with its `?key=` value replaced by the real key from the engine's query, the
 * rest of the query byte for byte as sent (the engine's query, re-encoded, only if no plain `key=` is found).
 */
function withQueryKey(path: string, engineQuery: string): string {
  const q = path.indexOf('?');
  const real = new URLSearchParams(engineQuery).get('key');
  if (q < 0 || real === null) return path.split('?')[0] + engineQuery;
  const parts = path.slice(q + 1).split('&');
  let swapped = false;
  for (let i = 0; i < parts.length; i++) {
    if (parts[i] === 'key' || parts[i]!.startsWith('key=')) {
      parts[i] = 'key=' + encodeURIComponent(real);
      swapped = true;
    }
  }
  return swapped ? path.slice(0, q + 1) + parts.join('&') : path.slice(0, q) + engineQuery;
}

/** undici's errors name the cause in `cause` (ECONNREFUSED…) or a code: keep the message useful. */
function upstreamErrorText(err: Error): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const code = (err as { code?: string }).code;
  if (cause?.code) return `${cause.code}${cause.message && !cause.message.includes(cause.code) ? ` (${cause.message})` : ''}`;
  return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
}

export function internalError(res: http.ServerResponse, e: unknown): void {
  if (!res.headersSent) {
    res.writeHead(500, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message: `Tollgate internal error: ${(e as Error)?.message ?? String(e)}`, type: 'server_error', code: 'tollgate_internal' } }));
  } else res.destroy();
}
