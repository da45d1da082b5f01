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
import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { nanoToUsd } from '../../shared/money.ts';
import { classify, isBillable, ResponseTap, type Endpoint, type Extracted } from './extract.ts';
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
};

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

export interface Route {
  provider: string;       // route name: openai, anthropic, gemini, fal-queue, x/NAME → NAME
  upstream: URL;
  path: string;           // path + query to send upstream
  project: string | null; // from /p/PROJECT/
}

export function parseRoute(url: string, upstreams: ReadonlyMap<string, string>): Route | null {
  let rest = url;
  let project: string | null = null;
  const p = /^\/p\/([^/]+)(\/.*)$/.exec(rest);
  if (p) {
    project = decodeURIComponent(p[1]!);
    rest = p[2]!;
  }
  const m = /^\/(x\/[^/?]+|[a-z-]+)(\/[^]*|\?[^]*)?$/.exec(rest);
  if (!m) return null;
  const name = m[1]!.startsWith('x/') ? m[1]!.slice(2) : m[1]!;
  const base = upstreams.get(name);
  if (!base) return null;
  const upstream = new URL(base);
  let path = m[2] ?? '/';
  if (path.startsWith('?')) path = '/' + path;
  const basePath = upstream.pathname.replace(/\/$/, '');
  return { provider: name, upstream, path: basePath + path, project };
}

/** Headers a `Connection:` header names are hop-by-hop too (RFC 9110 §7.6.1). */
function connectionListed(value: string | undefined): Set<string> | null {
  if (!value) return null;
  const names = value.split(',').map((x) => x.trim().toLowerCase()).filter((x) => x && x !== 'keep-alive' && x !== 'close');
  return names.length ? new Set(names) : null;
}

/** What the proxy needs from the engine (implemented by Engine in engine.ts). */
export interface ProxyHost {
  readonly upstreams: ReadonlyMap<string, string>;
  readonly maxBodyBytes: number;
  readonly upstreamIdleMs: number;
  /** Async preparation before `begin` (decrypting a local key's real secret). */
  warm(input: BeginInput): Promise<void>;
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

const agents = { http: new http.Agent({ keepAlive: true, maxSockets: 256 }), https: new https.Agent({ keepAlive: true, maxSockets: 256 }) };

/** Strips the usage-only final chunk (and `"usage":null` fields) from an OpenAI stream we asked usage for. */
class UsageChunkFilter {
  private pending: Buffer = Buffer.alloc(0);
  constructor(private readonly out: (b: Buffer) => boolean) {}
  write(chunk: Buffer): boolean {
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let ok = true;
    for (;;) {
      const i = buf.indexOf('\n\n');
      if (i < 0) break;
      const event = buf.subarray(0, i + 2);
      buf = buf.subarray(i + 2);
      const text = event.toString('utf8');
      if (/"choices"\s*:\s*\[\s*\]/.test(text) && /"usage"\s*:\s*\{/.test(text)) continue; // the chunk we added
      ok = this.out(text.includes('"usage":null') ? Buffer.from(text.replace(/,"usage":null|"usage":null,/g, ''), 'utf8') : event) && ok;
    }
    this.pending = buf;
    return ok;
  }
  flush(): void {
    if (this.pending.length) this.out(this.pending);
    this.pending = Buffer.alloc(0);
  }
}

export async function handleProxy(host: ProxyHost, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const started = Date.now();
  const t0 = performance.now();
  const route = parseRoute(req.url ?? '/', host.upstreams);
  if (!route) {
    send(res, 'openai', new ProxyError('E_NOT_FOUND', `Tollgate has no route for ${req.method} ${(req.url ?? '').split('?')[0]}. Use a base URL like http://127.0.0.1:7411/openai/v1, /anthropic, /gemini, /openrouter/api/v1, /fal, /replicate or /x/NAME for a host you added.`));
    return;
  }
  const provider = route.provider;

  // Read the request body (needed to quote and to reserve before forwarding), with a limit.
  const chunks: Buffer[] = [];
  const read = await new Promise<'ok' | 'too-large' | 'gone'>((resolve) => {
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > host.maxBodyBytes) {
        req.off('data', onData);
        req.pause();
        resolve('too-large');
      } else chunks.push(c);
    };
    req.on('data', onData);
    req.once('end', () => resolve('ok'));
    req.once('error', () => resolve('gone'));
    req.once('aborted', () => resolve('gone'));
  });
  if (read === 'gone') return; // the client went away while sending
  if (read === 'too-large') {
    // `connection: close`: the rest of the body is never read, so this socket cannot be reused.
    send(res, provider, new ProxyError('E_TOO_LARGE', `request body is larger than Tollgate's limit of ${host.maxBodyBytes} bytes`, { connection: 'close' }));
    return;
  }
  let body = Buffer.concat(chunks);
  const method = req.method ?? 'GET';
  const endpoint = classify(provider, method, route.path);
  let json: Record<string, unknown> | null = null;
  if (body.length && /json/.test(String(req.headers['content-type'] ?? 'application/json'))) {
    try {
      const parsed: unknown = JSON.parse(body.toString('utf8'));
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) json = parsed as Record<string, unknown>;
    } catch {
      json = null; // forwarded as is: the provider answers malformed JSON in its own words
    }
  }
  const h = req.headers;
  const pick = (name: string): string | null => {
    const v = h[name];
    return typeof v === 'string' && v.length ? v.slice(0, 200) : null;
  };
  const input: BeginInput = {
    route, method, endpoint, headers: h, body, json, started,
    attribution: { project: pick('x-tollgate-project') ?? route.project, workflow: pick('x-tollgate-workflow'), run: pick('x-tollgate-run'), node: pick('x-tollgate-node') },
  };

  // An OpenAI-style stream that did not ask for usage: ask for it, and hide it from the client.
  let filterUsage = false;
  if (json && endpoint === 'chat.completions' && json.stream === true) {
    const so = json.stream_options;
    const asked = so && typeof so === 'object' && (so as Record<string, unknown>).include_usage === true;
    if (!asked) {
      json = { ...json, stream_options: { ...(so && typeof so === 'object' ? so : {}), include_usage: true } };
      body = Buffer.from(JSON.stringify(json), 'utf8');
      filterUsage = true;
    }
  }

  let begun: Begun;
  try {
    await host.warm(input);
    begun = host.begin(input);
  } catch (e) {
    if (e instanceof ProxyError) {
      const row = host.refuse(input, e);
      send(res, provider, e, row.id);
      return;
    }
    throw e;
  }
  const callId = begun.row.id;

  // Upstream request headers: the client's, minus hop-by-hop and x-tollgate-*, with the real key.
  const outHeaders: http.OutgoingHttpHeaders = {};
  const raw = req.rawHeaders;
  const reqListed = connectionListed(req.headers.connection);
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || reqListed?.has(lower) || lower === 'host' || lower.startsWith('x-tollgate-') || lower === 'content-length') continue;
    if (lower in begun.authHeaders) continue;
    const prev = outHeaders[name];
    outHeaders[name] = prev === undefined ? raw[i + 1]! : Array.isArray(prev) ? [...prev, raw[i + 1]!] : [String(prev), raw[i + 1]!];
  }
  for (const [k, v] of Object.entries(begun.authHeaders)) outHeaders[k] = v;
  if (body.length || method === 'POST' || method === 'PUT' || method === 'PATCH') outHeaders['content-length'] = String(body.length);
  outHeaders['host'] = route.upstream.host;

  const path = begun.query !== null ? route.path.split('?')[0] + begun.query : route.path;
  const isHttps = route.upstream.protocol === 'https:';
  const lib = isHttps ? https : http;
  let ttfbMs: number | null = null;
  let finished = false;
  let tap: ResponseTap | null = null;
  let upstreamStatus: number | null = null;

  const done = async (status: Outcome['status'], error: string | null) => {
    if (finished) return;
    finished = true;
    let extracted: Extracted | null = null;
    if (tap) {
      try {
        extracted = await tap.finish();
      } catch (e) {
        extracted = null;
        error ??= `could not read usage: ${(e as Error).message}`;
      }
    }
    host.finish(begun, { httpStatus: upstreamStatus, status, extracted, ttfbMs, durationMs: Math.round(performance.now() - t0), error });
  };

  const upReq = lib.request({
    protocol: route.upstream.protocol, hostname: route.upstream.hostname, port: route.upstream.port || (isHttps ? 443 : 80),
    method, path, headers: outHeaders, agent: isHttps ? agents.https : agents.http,
  });

  // The client went away before the response finished: stop the upstream call at once so the user
  // stops paying, and record what was streamed so far.
  res.on('close', () => {
    if (!res.writableFinished && !finished) {
      upReq.destroy();
      void done('aborted', 'the client closed the connection before the response finished');
    }
  });

  // An upstream that goes silent would hold its cap reservation forever: cut it.
  upReq.setTimeout(host.upstreamIdleMs, () => {
    if (finished) return;
    const silent = `${route.upstream.host} sent nothing for ${Math.round(host.upstreamIdleMs / 1000)} s`;
    if (!res.headersSent) {
      send(res, provider, new ProxyError('E_UPSTREAM_TIMEOUT', `Tollgate gave up waiting: ${silent}`), callId);
      void done('error', `upstream timeout: ${silent}`);
    } else {
      res.destroy();
      void done('error', `upstream went silent mid-response: ${silent}`);
    }
    upReq.destroy();
  });

  upReq.on('error', (e) => {
    if (finished) return;
    if (!res.headersSent) {
      send(res, provider, new ProxyError('E_UPSTREAM', `Tollgate could not reach ${route.upstream.host}: ${e.message}`), callId);
      void done('error', `upstream unreachable: ${e.message}`);
    } else {
      res.destroy(); // the upstream cut the stream: the client sees the same cut
      void done('error', `upstream connection failed mid-response: ${e.message}`);
    }
  });

  upReq.on('response', (upRes) => {
    ttfbMs = Math.round(performance.now() - t0);
    upstreamStatus = upRes.statusCode ?? 502;
    const resHeaders: string[] = [];
    const r = upRes.rawHeaders;
    const resListed = connectionListed(upRes.headers.connection);
    for (let i = 0; i < r.length; i += 2) {
      const lower = r[i]!.toLowerCase();
      if (HOP_BY_HOP.has(lower) || resListed?.has(lower)) continue;
      if (filterUsage && lower === 'content-length') continue;
      resHeaders.push(r[i]!, r[i + 1]!);
    }
    resHeaders.push('x-tollgate-call-id', callId);
    if (begun.row.quoteMaxNano !== null) resHeaders.push('x-tollgate-quote-max-usd', nanoToUsd(begun.row.quoteMaxNano));
    res.writeHead(upstreamStatus, upRes.statusMessage, resHeaders);
    if (isBillable(endpoint)) tap = new ResponseTap(endpoint, String(upRes.headers['content-type'] ?? ''), upRes.headers['content-encoding'] as string | undefined);
    const filter = filterUsage && upstreamStatus < 300 ? new UsageChunkFilter((b) => res.write(b)) : null;
    upRes.on('data', (chunk: Buffer) => {
      tap?.write(chunk);
      const ok = filter ? filter.write(chunk) : res.write(chunk);
      if (!ok) {
        upRes.pause();
        res.once('drain', () => upRes.resume());
      }
    });
    upRes.on('end', () => {
      filter?.flush();
      res.end();
      void done(upstreamStatus! < 400 ? 'ok' : 'error', upstreamStatus! < 400 ? null : `provider answered HTTP ${upstreamStatus}`);
    });
    upRes.on('aborted', () => {
      res.destroy();
      void done('error', 'the provider cut the response short');
    });
    upRes.on('error', (e) => {
      res.destroy();
      void done('error', `the provider cut the response short: ${e.message}`);
    });
  });

  upReq.end(body);
}

