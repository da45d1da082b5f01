/**
 * The ledger service's HTTP side: JSON over HTTP(S), gzip request bodies accepted, every error as
 * `{"error": {"code", "message"}}`. Tokens are read from the Authorization header and never logged.
 */
import http from 'node:http';
import https from 'node:https';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { promisify } from 'node:util';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import type { Db } from './db.ts';
import { ACCEPTED_PROTOCOLS, DEFAULT_PULL_LIMIT, LedgerError, MAX_BODY_BYTES, MAX_PULL_LIMIT, PROTOCOL, checkGrantsProtocol, checkProtocol, validateGrantPush, validatePush } from './protocol.ts';
import { authenticate, enrol, listDevices, pull, pullGrants, push, pushGrants, totals } from './store.ts';
import { createCap, deleteCap, grantLease, listAlerts, listCaps, openLeases, returnLease } from './leases.ts';

const gunzip = promisify(zlib.gunzip);

/** An answer already serialized (a pull page). */
class RawJson {
  constructor(readonly json: string) {}
}

export interface ServeOptions {
  port: number;
  host: string;
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  quiet?: boolean;
}

export interface LedgerServer {
  url: string;
  close(): Promise<void>;
}

/** Read the whole body, refusing more than MAX_BODY_BYTES (before or after gzip). */
async function readBody(req: http.IncomingMessage): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    else if (size > 4 * MAX_BODY_BYTES) req.destroy(); // stop reading a flood; the caller gets no answer
  }
  const tooLarge = () => new LedgerError(413, 'body_too_large', `a request body may hold at most ${MAX_BODY_BYTES} bytes (${MAX_BODY_BYTES / 1024 / 1024} MiB) after gzip is undone`, { max_bytes: MAX_BODY_BYTES });
  if (size > MAX_BODY_BYTES || declared > MAX_BODY_BYTES) throw tooLarge();
  let buf = Buffer.concat(chunks);
  const encoding = String(req.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding === 'gzip') {
    try {
      buf = await gunzip(buf, { maxOutputLength: MAX_BODY_BYTES });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError) throw tooLarge();
      throw new LedgerError(400, 'malformed', 'the body says gzip but is not valid gzip');
    }
  } else if (encoding !== 'identity') {
    throw new LedgerError(415, 'unsupported_encoding', `content-encoding "${encoding}" is not supported; send gzip or nothing`);
  }
  try {
    return JSON.parse(buf.toString('utf8'));
  } catch {
    throw new LedgerError(400, 'malformed', 'the body is not valid JSON');
  }
}

const bearer = (req: http.IncomingMessage): string | undefined => {
  const h = req.headers.authorization;
  const m = h && /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? m[1] : undefined;
};

function intParam(url: URL, name: string, fallback: number, max: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null) return fallback;
  if (!/^[0-9]{1,16}$/.test(raw) || Number(raw) > max) throw new LedgerError(400, 'bad_query', `"${name}" must be an integer from 0 to ${max}`);
  return Number(raw);
}

export async function serve(db: Db, opts: ServeOptions): Promise<LedgerServer> {
  const log = pino({ base: undefined, level: opts.quiet ? 'warn' : 'info' });

  /** A JSON object body with an accepted `protocol`. */
  async function objectBody(req: http.IncomingMessage): Promise<Record<string, unknown>> {
    const body = await readBody(req);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new LedgerError(400, 'malformed', 'the body must be a JSON object');
    checkProtocol((body as Record<string, unknown>).protocol);
    return body as Record<string, unknown>;
  }

  async function route(req: http.IncomingMessage, url: URL): Promise<[number, unknown, string?]> {
    const id = /^\/v1\/(caps|leases)\/([0-9a-f-]{36})(\/return)?$/i.exec(url.pathname);
    const route = id ? `${req.method} /v1/${id[1]}/:id${id[3] ?? ''}` : `${req.method} ${url.pathname}`;
    if (req.method === 'GET' && url.searchParams.has('protocol')) checkProtocol(Number(url.searchParams.get('protocol')));
    switch (route) {
      case 'GET /v1/health':
        return [200, { protocol: PROTOCOL, accepted: ACCEPTED_PROTOCOLS, ok: true, backend: db.kind }];
      case 'POST /v1/enrol': {
        const body = await objectBody(req);
        if (typeof body.code !== 'string' || !body.code) throw new LedgerError(400, 'malformed', '"code" must be the enrolment code');
        if (body.name !== undefined && (typeof body.name !== 'string' || body.name.length > 200)) throw new LedgerError(400, 'malformed', '"name" must be a short string');
        const out = await enrol(db, body.code, body.name as string | undefined);
        return [200, { protocol: PROTOCOL, ...out }, out.device.id];
      }
      case 'POST /v1/push': {
        // group commit may wait a moment for this batch while its body is read and checked
        const queued = db.expect();
        let pushed: ReturnType<typeof push>, auth: Awaited<ReturnType<typeof authenticate>>;
        try {
          auth = await authenticate(db, bearer(req));
          const { calls } = validatePush(await readBody(req));
          pushed = push(db, auth, calls);
        } finally {
          queued();
        }
        const out = await pushed;
        if (out.conflicts) log.warn({ device: auth.deviceId, conflicts: out.results.filter((r) => r.status === 'conflict').map((r) => r.id) }, 'conflicting content pushed under known call ids: kept the original, recorded the other');
        return [200, out, auth.deviceId];
      }
      case 'GET /v1/pull': {
        const auth = await authenticate(db, bearer(req));
        const after = intParam(url, 'after', 0, Number.MAX_SAFE_INTEGER);
        const limit = intParam(url, 'limit', DEFAULT_PULL_LIMIT, MAX_PULL_LIMIT);
        const others = url.searchParams.get('others') === '1';
        return [200, new RawJson(await pull(db, auth, after, limit, others)), auth.deviceId];
      }
      case 'POST /v1/grants': {
        const auth = await authenticate(db, bearer(req));
        const { events } = validateGrantPush(await readBody(req));
        const out = await pushGrants(db, auth, events);
        if (out.conflicts) log.warn({ device: auth.deviceId, conflicts: out.results.filter((r) => r.status === 'conflict').map((r) => r.id) }, 'conflicting grant content pushed under known grant ids: kept the original, recorded the other');
        return [200, out, auth.deviceId];
      }
      case 'GET /v1/grants': {
        const auth = await authenticate(db, bearer(req));
        checkGrantsProtocol(url.searchParams.has('protocol') ? Number(url.searchParams.get('protocol')) : PROTOCOL);
        const after = intParam(url, 'after', 0, Number.MAX_SAFE_INTEGER);
        const limit = intParam(url, 'limit', DEFAULT_PULL_LIMIT, MAX_PULL_LIMIT);
        return [200, await pullGrants(db, auth, after, limit), auth.deviceId];
      }
      case 'GET /v1/devices': {
        const auth = await authenticate(db, bearer(req));
        return [200, { protocol: PROTOCOL, self: auth.deviceId, devices: await listDevices(db, auth.accountId) }, auth.deviceId];
      }
      case 'GET /v1/totals': {
        const auth = await authenticate(db, bearer(req));
        return [200, await totals(db, auth), auth.deviceId];
      }
      case 'GET /v1/caps': {
        const auth = await authenticate(db, bearer(req));
        return [200, await listCaps(db, auth), auth.deviceId];
      }
      case 'POST /v1/caps': {
        const auth = await authenticate(db, bearer(req));
        return [200, await createCap(db, auth, await objectBody(req)), auth.deviceId];
      }
      case 'DELETE /v1/caps/:id': {
        const auth = await authenticate(db, bearer(req));
        return [200, await deleteCap(db, auth, id![2]!), auth.deviceId];
      }
      case 'GET /v1/alerts': {
        const auth = await authenticate(db, bearer(req));
        const after = intParam(url, 'after', 0, Number.MAX_SAFE_INTEGER);
        const limit = intParam(url, 'limit', DEFAULT_PULL_LIMIT, MAX_PULL_LIMIT);
        return [200, await listAlerts(db, auth, after, Math.max(1, limit)), auth.deviceId];
      }
      case 'GET /v1/leases': {
        const auth = await authenticate(db, bearer(req));
        return [200, await openLeases(db, auth), auth.deviceId];
      }
      case 'POST /v1/leases': {
        const auth = await authenticate(db, bearer(req));
        return [200, await grantLease(db, auth, await objectBody(req)), auth.deviceId];
      }
      case 'POST /v1/leases/:id/return': {
        const auth = await authenticate(db, bearer(req));
        return [200, await returnLease(db, auth, id![2]!, await objectBody(req)), auth.deviceId];
      }
      default:
        throw new LedgerError(404, 'not_found', `no such endpoint: ${route}`);
    }
  }

  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const started = Date.now();
    const url = new URL(req.url ?? '/', 'http://ledger');
    route(req, url).then(
      ([status, body, device]) => send(status, body, device),
      (e: unknown) => {
        if (e instanceof LedgerError) return send(e.status, e.toJSON());
        log.error({ path: url.pathname, err: (e as Error).message }, 'request failed');
        send(500, { error: { code: 'internal', message: 'the ledger could not complete this request; nothing of it was stored' } });
      },
    );
    function send(status: number, body: unknown, device?: string): void {
      if (res.headersSent || res.destroyed) return;
      const json = body instanceof RawJson ? body.json : JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json), 'cache-control': 'no-store' });
      res.end(json);
      log.info({ method: req.method, path: url.pathname, status, ms: Date.now() - started, device }, 'request');
    }
  };

  const server = opts.tlsCert && opts.tlsKey
    ? https.createServer({ cert: fs.readFileSync(opts.tlsCert), key: fs.readFileSync(opts.tlsKey) }, handler)
    : http.createServer(handler);
  server.requestTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `${opts.tlsCert ? 'https' : 'http'}://${host}:${port}`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || h === '::ffff:127.0.0.1';
}
