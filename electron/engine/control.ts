/**
 * The control API, under /_tollgate on the proxy's port:
 *   POST /_tollgate/rpc/<method>   JSON argument → JSON result (TollgateApi, validated by shared/schemas.ts)
 *   GET  /_tollgate/events         server-sent events: live calls, alerts, caps, pause
 *   GET  /_tollgate/health         liveness (no token; says nothing about the ledger's contents)
 * Every other endpoint needs the install's token (x-tollgate-token or Authorization: Bearer).
 * Host must be 127.0.0.1/localhost (DNS rebinding) and an Origin, when sent, must be this server's
 * own (cross-site requests from web pages are refused).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { CONTROL_PREFIX, TOKEN_HEADER, type ApiMethod, type EngineEvent, type TollgateApi } from '../../shared/api.ts';
import { isApiMethod, parseApiArg, ValidationError } from '../../shared/schemas.ts';
import type { Engine } from './engine.ts';
import { handleProxy, internalError, isLoopbackHost } from './proxy.ts';

export const TOKEN_FILE = 'control.token';

export function ensureToken(dataDir: string): string {
  const file = path.join(dataDir, TOKEN_FILE);
  try {
    const t = fs.readFileSync(file, 'utf8').trim();
    if (t.length >= 32) {
      fs.chmodSync(file, 0o600);
      return t;
    }
  } catch { /* created below */ }
  const token = crypto.randomBytes(32).toString('base64url');
  fs.writeFileSync(file, token + '\n', { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  return token;
}

export function readToken(dataDir: string): string | null {
  try {
    return fs.readFileSync(path.join(dataDir, TOKEN_FILE), 'utf8').trim();
  } catch {
    return null;
  }
}

const LOCAL_HOSTS = /^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/i;

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

export async function handleControl(engine: Engine, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  const host = req.headers.host ?? '';
  if (!LOCAL_HOSTS.test(host)) {
    json(res, 403, { error: { code: 'E_FORBIDDEN_HOST', message: `Host "${host}" is not allowed: the control API answers only to 127.0.0.1 or localhost` } });
    return;
  }
  const origin = req.headers.origin;
  if (origin !== undefined && !(LOCAL_HOSTS.test(origin.replace(/^http:\/\//, '')) && origin.replace(/^http:\/\//, '').replace('localhost', '127.0.0.1').endsWith(`:${engine.port}`))) {
    json(res, 403, { error: { code: 'E_FORBIDDEN_ORIGIN', message: `Origin "${origin}" is not allowed to use the control API` } });
    return;
  }
  const route = url.pathname.slice(CONTROL_PREFIX.length);
  if (route === '/health') {
    json(res, 200, { ok: true, version: VERSION });
    return;
  }
  const auth = req.headers[TOKEN_HEADER] ?? req.headers.authorization?.replace(/^Bearer\s+/i, '');
  if (typeof auth !== 'string' || !safeEqual(auth, engine.token)) {
    json(res, 401, { error: { code: 'E_UNAUTHORIZED', message: `missing or wrong control token: send the install's token (${engine.dataDir}/${TOKEN_FILE}) in the ${TOKEN_HEADER} header` } });
    return;
  }
  if (route === '/events' && req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    const send = (e: EngineEvent) => res.write(`data: ${JSON.stringify(e)}\n\n`);
    send({ type: 'hello', version: VERSION });
    const off = engine.subscribe(send);
    const ping = setInterval(() => res.write(': ping\n\n'), 25_000);
    req.on('close', () => {
      off();
      clearInterval(ping);
    });
    return;
  }
  const m = /^\/rpc\/(\w+)$/.exec(route);
  if (!m || req.method !== 'POST') {
    json(res, 404, { error: { code: 'E_NOT_FOUND', message: `no control endpoint ${req.method} ${url.pathname}` } });
    return;
  }
  const method = m[1]!;
  if (!isApiMethod(method)) {
    json(res, 404, { error: { code: 'E_NOT_FOUND', message: `unknown API method "${method}"` } });
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > 8 * 1024 * 1024) {
      json(res, 413, { error: { code: 'E_TOO_LARGE', message: 'request body too large' } });
      return;
    }
    chunks.push(c as Buffer);
  }
  let raw: unknown = {};
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim()) {
    try {
      raw = JSON.parse(text);
    } catch (e) {
      json(res, 400, { error: { code: 'E_VALIDATION', message: `body is not JSON: ${(e as Error).message}` } });
      return;
    }
  }
  try {
    const result = await callApi(engine.api, method, raw);
    json(res, 200, result ?? null);
  } catch (e) {
    const err = e as Error & { code?: string; issues?: unknown };
    const status = e instanceof ValidationError || err.code === 'E_VALIDATION' ? 400 : err.code === 'E_NOT_FOUND' ? 404 : err.code && err.code.startsWith('E_') ? 400 : 500;
    json(res, status, { error: { code: err.code ?? 'E_INTERNAL', message: err.message, issues: err.issues } });
  }
}

/**
 * Every request to the engine's port: the control API, the UI's static files, or the proxy.
 * Nothing a client sends may escape as an exception: each branch answers its own errors.
 */
export function handleRequest(engine: Engine, uiDir: string | null, req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = req.url ?? '/';
  try {
    if (url.startsWith(CONTROL_PREFIX)) {
      handleControl(engine, req, res).catch((e: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'E_INTERNAL', message: (e as Error).message } }));
      });
      return;
    }
    if (req.method === 'GET' && uiDir && (url === '/' || url.startsWith('/assets/') || url.startsWith('/index.html') || url === '/favicon.svg')) {
      serveStatic(uiDir, url, req, res);
      return;
    }
    handleProxy(engine, req, res);
  } catch (e) {
    internalError(res, e);
  }
}

const MIME: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png', '.json': 'application/json', '.woff2': 'font/woff2' };

function plain(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text), 'x-content-type-options': 'nosniff' });
  res.end(text);
}

/** The UI's files. A malformed path is a 400, a path out of the UI's folder a 404; a foreign Host is refused (DNS rebinding). */
function serveStatic(dir: string, url: string, req: http.IncomingMessage, res: http.ServerResponse): void {
  if (!isLoopbackHost(req.headers.host)) {
    plain(res, 403, `Host "${req.headers.host ?? ''}" is not allowed: Tollgate answers only to 127.0.0.1, localhost or [::1]`);
    return;
  }
  let clean: string;
  try {
    clean = decodeURIComponent(url.split('?')[0]!.split('#')[0]!);
  } catch {
    plain(res, 400, 'malformed percent-escape in the path');
    return;
  }
  if (clean.includes('\0')) {
    plain(res, 400, 'the path holds a NUL character');
    return;
  }
  const rel = clean === '/' ? 'index.html' : clean.replace(/^\/+/, '');
  const root = path.resolve(dir);
  const file = path.resolve(root, rel);
  let stat: fs.Stats | null = null;
  try {
    stat = file.startsWith(root + path.sep) ? fs.statSync(file) : null;
  } catch { /* not there */ }
  if (!stat?.isFile()) {
    plain(res, 404, 'not found');
    return;
  }
  res.writeHead(200, {
    'content-type': MIME[path.extname(file)] ?? 'application/octet-stream',
    'content-length': stat.size,
    'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-cache',
  });
  const stream = fs.createReadStream(file);
  stream.on('error', () => res.destroy()); // (removed between stat and read)
  stream.pipe(res);
}

/** Validate and dispatch one API call (shared by the control API and Electron IPC). */
export async function callApi(api: TollgateApi, method: ApiMethod, raw: unknown): Promise<unknown> {
  const arg = parseApiArg(method, raw);
  return (api[method] as (a: unknown) => Promise<unknown>).call(api, arg);
}

export const VERSION = '0.1.0';
