/**
 * Hostile input from clients, web pages and upstreams: nothing may end the engine, slip past
 * classification (and so past a cap) or be forwarded when Tollgate cannot tell what it is.
 * Every case ends with a normal call through the official SDK on the same engine.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { startRig, eventually, tempDir, type Rig } from '../fixtures/engine.ts';
import type { CallRecord } from '../../shared/api.ts';

// ---- a hostile upstream: OpenAI-compatible chat streams, gzip-compressed or not ----

type GzMode = 'invalid-usage-gzip' | 'invalid-usage-plain' | 'huge-line-gzip' | 'gzip-if-accepted';
let gzAcceptEncoding: string | undefined;
let gzMode: GzMode = 'invalid-usage-gzip';
let gzSent = { sha: '', bytes: 0 };
let gzRequests = 0;
let gzServer: http.Server;

const INVALID_USAGE_SSE = [
  'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":"Hello there, this is streamed text"}}]}\n\n',
  'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
  // cached_tokens 9 > prompt_tokens 5: usage no provider can mean
  'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12,"prompt_tokens_details":{"cached_tokens":9}}}\n\n',
  'data: [DONE]\n\n',
].join('');

function startGzUpstream(): Promise<string> {
  gzServer = http.createServer((req, res) => {
    gzRequests++;
    gzAcceptEncoding = req.headers['accept-encoding'];
    req.resume();
    req.on('end', () => {
      const hash = crypto.createHash('sha256');
      let bytes = 0;
      const out = (b: Buffer) => {
        hash.update(b);
        bytes += b.length;
        return res.write(b);
      };
      const done = () => {
        gzSent = { sha: hash.digest('hex'), bytes };
        res.end();
      };
      if (gzMode === 'invalid-usage-plain' || (gzMode === 'gzip-if-accepted' && !/gzip/.test(gzAcceptEncoding ?? ''))) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        out(Buffer.from(INVALID_USAGE_SSE));
        done();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'content-encoding': 'gzip' });
      const gz = zlib.createGzip({ level: 1 });
      gz.on('data', (b: Buffer) => {
        if (!out(b)) {
          gz.pause();
          res.once('drain', () => gz.resume());
        }
      });
      gz.on('end', done);
      if (gzMode === 'invalid-usage-gzip' || gzMode === 'gzip-if-accepted') {
        gz.end(INVALID_USAGE_SSE);
        return;
      }
      // one 600 MB line: `data: {"choices":[{"delta":{"content":"aaaa…` with its end far away
      void (async () => {
        const mb = Buffer.alloc(1024 * 1024, 0x61);
        gz.write('data: {"id":"c2","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"');
        for (let i = 0; i < 600; i++) {
          if (!gz.write(mb)) await new Promise((r) => gz.once('drain', r));
        }
        gz.end('"}}]}\n\ndata: [DONE]\n\n');
      })();
    });
  });
  return new Promise((resolve) => gzServer.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(gzServer.address() as AddressInfo).port}`)));
}

// ---- the rig ----

let rig: Rig;
let port: number;
let uiDir: string;
before(async () => {
  const gzUrl = await startGzUpstream();
  uiDir = tempDir('tollgate-ui-');
  fs.mkdirSync(path.join(uiDir, 'assets'));
  fs.writeFileSync(path.join(uiDir, 'index.html'), '<!doctype html><title>Tollgate</title>');
  fs.writeFileSync(path.join(uiDir, 'assets', 'app.js'), 'console.log(1)');
  rig = await startRig(['openai', 'anthropic', 'gemini'], { uiDir, upstreams: { gz: gzUrl } });
  port = rig.engine.port;
});
after(async () => {
  await rig.close();
  await new Promise((r) => gzServer.close(r));
});

interface Raw { status: number; headers: http.IncomingHttpHeaders; body: Buffer; sha: string }

/** One request on its own connection, with exactly these headers (Host included) and no decompression. */
function raw(method: string, target: string, opts: { headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: `127.0.0.1:${port}`, ...opts.headers };
    const noHost = headers.host === '';
    if (noHost) delete headers.host; // a request with no Host header at all
    const req = http.request({ host: '127.0.0.1', port, method, path: target, headers, agent: false, setHost: !noHost });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      const hash = crypto.createHash('sha256');
      let keep = 0;
      res.on('data', (c: Buffer) => {
        hash.update(c);
        if (keep < 1 << 20) chunks.push(c); // a huge body is hashed, not kept
        keep += c.length;
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), sha: hash.digest('hex') }));
      res.on('error', reject);
    });
    // a Buffer: Node writes a string body together with the headers in the body's encoding (UTF-8), which would re-encode latin1 header bytes
    req.end(typeof opts.body === 'string' ? Buffer.from(opts.body) : opts.body);
  });
}

const CHAT = JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] });
const json = (r: Raw) => JSON.parse(r.body.toString('utf8')) as Record<string, any>;

const settled = (id: string) => eventually(async () => {
  const c = await rig.engine.api.call({ id });
  return c && c.status !== 'pending' ? c : null;
}, `call ${id}`);

/** The normal call every case ends with: the official SDK, the fake upstream, a priced record. */
async function normalCallWorks(): Promise<CallRecord> {
  const client = new OpenAI({ apiKey: 'sk-test', baseURL: `${rig.url}/openai/v1`, maxRetries: 0 });
  rig.fakes.openai!.next({ usage: { prompt_tokens: 1000, completion_tokens: 100 } });
  const { data, response } = await client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
  assert.equal(data.choices[0]!.message.content, 'Hello from fake openai');
  const rec = await settled(response.headers.get('x-tollgate-call-id')!);
  assert.equal(rec.status, 'ok');
  assert.equal(rec.cost, '0.00021'); // 1000 × 0.15/M + 100 × 0.6/M
  return rec;
}

async function callCount(): Promise<number> {
  rig.engine.flushQuietly();
  return (await rig.engine.api.calls({ limit: 10_000 })).length;
}

// ---- 1. malformed escapes ----

test('malformed percent-escapes are clear 400s, on the UI files and on proxy routes, never a crash', async () => {
  for (const p of ['/assets/%ZZ', '/assets/%', '/assets/%E0%A4%A', '/index.html%ZZ']) {
    const r = await raw('GET', p);
    assert.equal(r.status, 400, p);
  }
  assert.equal((await raw('GET', '/assets/app.js')).status, 200, 'the UI still serves its files');
  const index = await raw('GET', '/');
  assert.equal(index.status, 200);
  assert.match(String(index.headers['content-type']), /text\/html/);
  assert.equal((await raw('GET', '/assets/%2e%2e/%2e%2e/etc/passwd')).status, 404);

  const forwarded = rig.fakes.openai!.requests.length;
  for (const p of ['/p/%ZZ/openai/v1/chat/completions', '/openai/v1/chat/%ZZcompletions', '/p/caf%C3/openai/v1/chat/completions', '/openai/v1/chat/completions%']) {
    const r = await raw('POST', p, { headers: { 'content-type': 'application/json', authorization: 'Bearer sk-x' }, body: CHAT });
    assert.equal(r.status, 400, p);
    const b = json(r);
    assert.equal(b.error.type, 'invalid_request_error', p);
    assert.match(b.error.message, /percent|UTF-8/, p);
  }
  const a = await raw('POST', '/p/%ZZ/anthropic/v1/messages', { headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(a.status, 400);
  assert.equal(json(a).type, 'error', 'Anthropic clients get an Anthropic-shaped error');
  assert.equal(rig.fakes.openai!.requests.length, forwarded, 'nothing was forwarded');
  await normalCallWorks();
});

// ---- 2. hostile upstreams ----

test('a gzip stream whose usage is invalid: the client gets the exact bytes, the call is recorded with the reason, the engine lives', async () => {
  for (const mode of ['invalid-usage-gzip', 'invalid-usage-plain'] as const) {
    gzMode = mode;
    const r = await raw('POST', '/gz/v1/chat/completions', {
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-x', 'accept-encoding': 'gzip' },
      body: JSON.stringify({ model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(r.status, 200);
    assert.equal(r.sha, gzSent.sha, `${mode}: the client got exactly the upstream's bytes`);
    if (mode === 'invalid-usage-gzip') assert.equal(r.headers['content-encoding'], 'gzip');
    const rec = await settled(r.headers['x-tollgate-call-id'] as string);
    assert.equal(rec.status, 'ok');
    assert.match(rec.error ?? '', /usage unknown: .*exceed the total/, mode);
    // never a silent $0: unpriced with a reason (this OpenAI-compatible host has no prices), the usage problem named on the call
    assert.equal(rec.unpriced, true, `${mode}: ${JSON.stringify(rec)}`);
    assert.ok(rec.unpricedReason);
  }
  await normalCallWorks();
});

test('a stream whose client did not ask for usage is fetched uncompressed, so the usage chunk added for it can be removed', async () => {
  gzMode = 'gzip-if-accepted';
  const r = await raw('POST', '/gz/v1/chat/completions', {
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-x', 'accept-encoding': 'gzip, br' },
    body: JSON.stringify({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(r.status, 200);
  assert.equal(gzAcceptEncoding, 'identity');
  assert.equal(r.headers['content-encoding'], undefined);
  const text = r.body.toString('utf8');
  assert.match(text, /Hello there/);
  assert.doesNotMatch(text, /"usage"/, 'the usage chunk the client did not ask for is not shown');
  assert.match(text, /\[DONE\]/);
  await settled(r.headers['x-tollgate-call-id'] as string);
  await normalCallWorks();
});

test('an exception while recording a compressed response (after the client has its bytes) is contained', async () => {
  gzMode = 'invalid-usage-gzip';
  const engine = rig.engine as unknown as { finish: (...a: unknown[]) => void };
  const real = engine.finish;
  let thrown = 0;
  engine.finish = () => {
    thrown++;
    throw new Error('simulated recording failure');
  };
  const quiet = console.error;
  console.error = () => {};
  try {
    const r = await raw('POST', '/gz/v1/chat/completions', {
      headers: { 'content-type': 'application/json', 'accept-encoding': 'gzip' },
      body: JSON.stringify({ model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(r.sha, gzSent.sha);
    await eventually(() => thrown === 1, 'the recording attempt');
    await new Promise((resolve) => setTimeout(resolve, 50));
  } finally {
    engine.finish = real;
    console.error = quiet;
  }
  await normalCallWorks();
});

test('a gzip stream with one 600 MB line: the client gets every byte, the usage is unknown with a reason, the engine lives', async () => {
  gzMode = 'huge-line-gzip';
  const r = await raw('POST', '/gz/v1/chat/completions', {
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-x', 'accept-encoding': 'gzip' },
    body: JSON.stringify({ model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(r.status, 200);
  assert.equal(r.sha, gzSent.sha, 'the client got exactly the upstream bytes');
  assert.ok(gzSent.bytes > 100_000);
  const rec = await settled(r.headers['x-tollgate-call-id'] as string);
  assert.equal(rec.unpriced, true);
  assert.match(rec.unpricedReason ?? '', /line longer than 64 MB|too large/);
  assert.match(rec.error ?? '', /usage unknown/);
  await normalCallWorks();
});

// ---- 3. Host and Origin ----

test('a foreign Host is refused on every route, in the client\'s format; loopback names with or without a port work', async () => {
  const before = rig.fakes.openai!.requests.length + rig.fakes.anthropic!.requests.length;
  const calls = await callCount();
  const noHost = await raw('POST', '/openai/v1/chat/completions', { headers: { host: '', 'content-type': 'application/json', authorization: 'Bearer sk-x' }, body: CHAT });
  assert.equal(noHost.status, 400, 'no Host at all: refused (by Node\'s HTTP server itself)');
  for (const host of ['evil.example', `evil.example:${port}`, `127.0.0.1.evil.example:${port}`, `localhost.evil.example`, '127.0.0.2', `[::2]:${port}`, `localhost:${port}x`, 'localhost:']) {
    const o = await raw('POST', '/openai/v1/chat/completions', { headers: { host, 'content-type': 'application/json', authorization: 'Bearer sk-x' }, body: CHAT });
    assert.equal(o.status, 403, `host ${host}`);
    assert.equal(json(o).error.code, 'e_forbidden_host');
    const g = await raw('GET', '/openai/v1/models', { headers: { host } });
    assert.equal(g.status, 403, 'a rebound page cannot read responses either');
    const a = await raw('POST', '/anthropic/v1/messages', { headers: { host, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(a.status, 403);
    assert.equal(json(a).error.type, 'permission_error');
    assert.equal((await raw('GET', '/assets/app.js', { headers: { host } })).status, 403);
    assert.equal((await raw('GET', '/_tollgate/health', { headers: { host } })).status, 403);
  }
  assert.equal(rig.fakes.openai!.requests.length + rig.fakes.anthropic!.requests.length, before, 'nothing was forwarded');
  assert.equal(await callCount(), calls, 'nothing was booked');
  for (const host of [`localhost:${port}`, 'localhost', 'LocalHost', `127.0.0.1:${port}`, '127.0.0.1', `[::1]:${port}`, '[::1]']) {
    const r = await raw('POST', '/openai/v1/chat/completions', { headers: { host, 'content-type': 'application/json', authorization: 'Bearer sk-x' }, body: CHAT });
    assert.equal(r.status, 200, `host ${host}`);
  }
  await normalCallWorks();
});

test('a web page cannot spend: a foreign Origin is refused (even a simple text/plain POST); OPTIONS is answered here with no CORS pass', async () => {
  const before = rig.fakes.openai!.requests.length;
  const calls = await callCount();
  for (const origin of ['https://evil.example', 'null', `http://evil.example:${port}`, 'http://127.0.0.1.evil.example']) {
    const r = await raw('POST', '/openai/v1/chat/completions', { headers: { origin, 'content-type': 'text/plain', authorization: 'Bearer sk-x' }, body: CHAT });
    assert.equal(r.status, 403, origin);
    assert.equal(json(r).error.code, 'e_forbidden_origin');
    const pre = await raw('OPTIONS', '/openai/v1/chat/completions', { headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' } });
    assert.equal(pre.status, 403);
    assert.equal(pre.headers['access-control-allow-origin'], undefined);
  }
  const pre = await raw('OPTIONS', '/openai/v1/chat/completions', { headers: { origin: `http://127.0.0.1:${port}`, 'access-control-request-method': 'POST' } });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers['access-control-allow-origin'], undefined, 'no CORS allowance');
  assert.match(String(pre.headers.allow), /POST/);
  assert.equal((await raw('OPTIONS', '/openai/v1/chat/completions')).status, 204);
  assert.equal(rig.fakes.openai!.requests.length, before, 'nothing was forwarded');
  assert.equal(await callCount(), calls, 'nothing was booked');
  const local = await raw('POST', '/openai/v1/chat/completions', { headers: { origin: `http://localhost:${port}`, 'content-type': 'application/json', authorization: 'Bearer sk-x' }, body: CHAT });
  assert.equal(local.status, 200, 'a loopback origin may call');
  await normalCallWorks();
});

// ---- 4. path tricks ----

test('path tricks are normalized before classification, so a hard cap blocks them; ambiguous paths are 400s, never forwarded', async () => {
  const cap = await rig.engine.api.setCap({ scope: 'global', period: 'month', limit: '0.000001', hard: true });
  try {
    const forwarded = () => rig.fakes.openai!.requests.length + rig.fakes.gemini!.requests.length + gzRequests;
    const before = forwarded();
    const post = (p: string) => raw('POST', p, { headers: { 'content-type': 'application/json', authorization: 'Bearer sk-x' }, body: CHAT });
    for (const p of ['/openai/v1/chat/completions/', '/openai/v1/./chat/completions', '/openai/v1//chat/completions', '/openai//v1/chat///completions//',
      '/openai/v1/chat/%63ompletions', '/openai/v1/chat/completions/.', '/openai/v1/x/../chat/completions', '/openai/v1/chat/completions%2e', '/openai/v1/%2e/chat/completions']) {
      const r = await post(p);
      assert.equal(r.status, 402, `${p} is the chat endpoint and is blocked by the cap (got ${r.status} ${r.body})`);
    }
    const g = await raw('POST', '/gemini/v1beta/models/gemini-2.5-flash%3AgenerateContent', { headers: { 'content-type': 'application/json', 'x-goog-api-key': 'k' }, body: JSON.stringify({ contents: [{ parts: [{ text: 'hi' }] }] }) });
    assert.equal(g.status, 402, 'an encoded ":" still names generateContent');
    for (const p of ['/openai/v1/chat%2Fcompletions', '/openai/v1/chat%2fcompletions', '/openai/v1/chat%5Ccompletions', '/openai/v1/chat\\completions',
      '/openai/v1/Chat/Completions', '/openai/V1/CHAT/COMPLETIONS/', '/openai/../../openai/v1/chat/completions', '/x/gz/../../openai/v1/chat/completions',
      '/x/gz/v1/../../../v1/chat/completions', '/openai/v1/chat/completions#frag', '/openai/v1/chat/%00completions']) {
      const r = await post(p);
      assert.equal(r.status, 400, `${p} (got ${r.status} ${r.body})`);
      assert.equal(json(r).error.type, 'invalid_request_error');
    }
    const gc = await raw('POST', '/gemini/v1beta/models/gemini-2.5-flash:GenerateContent', { headers: { 'content-type': 'application/json' }, body: '{"contents":[]}' });
    assert.equal(gc.status, 400);
    assert.equal(json(gc).error.status, 'INVALID_ARGUMENT', 'Gemini clients get a Gemini-shaped error');
    assert.equal(forwarded(), before, 'nothing was forwarded');
  } finally {
    await rig.engine.api.removeCap({ id: cap.id });
  }
  // without a cap, the normalized path is what goes upstream, and the call is priced
  rig.fakes.openai!.next({ usage: { prompt_tokens: 1000, completion_tokens: 100 } });
  const r = await raw('POST', '/openai/v1//chat/./completions/?x=a%20b', { headers: { 'content-type': 'application/json', authorization: 'Bearer sk-x' }, body: CHAT });
  assert.equal(r.status, 200);
  assert.equal(rig.fakes.openai!.requests.at(-1)!.url, '/v1/chat/completions?x=a%20b');
  const rec = await settled(r.headers['x-tollgate-call-id'] as string);
  assert.equal(rec.endpoint, 'chat.completions');
  assert.equal(rec.cost, '0.00021');
  await normalCallWorks();
});

// ---- 5. methods ----

test('methods no provider endpoint uses are refused with 405, neither forwarded nor booked', async () => {
  const before = rig.fakes.openai!.requests.length + rig.fakes.anthropic!.requests.length;
  const calls = await callCount();
  for (const m of ['PROPFIND', 'TRACE', 'HEAD', 'MKCOL', 'PURGE']) {
    const r = await raw(m, '/openai/v1/chat/completions');
    assert.equal(r.status, 405, m);
    assert.match(String(r.headers.allow), /GET, POST/);
    if (m !== 'HEAD') assert.equal(json(r).error.type, 'invalid_request_error');
  }
  const a = await raw('PROPFIND', '/anthropic/v1/messages');
  assert.equal(json(a).type, 'error');
  assert.equal(rig.fakes.openai!.requests.length + rig.fakes.anthropic!.requests.length, before, 'nothing was forwarded');
  assert.equal(await callCount(), calls, 'nothing was booked');
  await normalCallWorks();
});

// ---- 6. bodies in other content types ----

test('a JSON body sent as text/plain or a form is quoted and reserved like any other; a body that is not JSON is a 400', async () => {
  const cap = await rig.engine.api.setCap({ scope: 'global', period: 'month', limit: '0.000001', hard: true });
  const before = rig.fakes.openai!.requests.length;
  try {
    for (const ct of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', undefined]) {
      const r = await raw('POST', '/openai/v1/chat/completions', { headers: { authorization: 'Bearer sk-x', ...(ct ? { 'content-type': ct } : {}) }, body: CHAT });
      assert.equal(r.status, 402, `content-type ${ct}: blocked by the cap`);
    }
  } finally {
    await rig.engine.api.removeCap({ id: cap.id });
  }
  const multipart = await raw('POST', '/openai/v1/chat/completions', { headers: { 'content-type': 'multipart/form-data; boundary=x', authorization: 'Bearer sk-x' }, body: '--x\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-4o-mini\r\n--x--\r\n' });
  assert.equal(multipart.status, 400, 'chat takes JSON only');
  for (const body of ['{not json', 'model=gpt-4o-mini', '[1,2]', '"x"']) {
    const r = await raw('POST', '/openai/v1/chat/completions', { headers: { 'content-type': 'text/plain', authorization: 'Bearer sk-x' }, body });
    assert.equal(r.status, 400, body);
    assert.match(json(r).error.message, /not a JSON object/);
  }
  assert.equal(rig.fakes.openai!.requests.length, before, 'nothing was forwarded');
  rig.fakes.openai!.next({ usage: { prompt_tokens: 1000, completion_tokens: 100 } });
  const r = await raw('POST', '/openai/v1/chat/completions', { headers: { 'content-type': 'text/plain', authorization: 'Bearer sk-x' }, body: CHAT });
  assert.equal(r.status, 200);
  assert.ok(r.headers['x-tollgate-quote-max-usd'], 'quoted');
  const rec = await settled(r.headers['x-tollgate-call-id'] as string);
  assert.equal(rec.model, 'gpt-4o-mini');
  assert.equal(rec.cost, '0.00021');
  await normalCallWorks();
});

// ---- 7. project names and ?key= ----

test('project names: UTF-8 from the header and from /p/, length-limited and sanitized', async () => {
  const utf8AsHeader = Buffer.from('café ☕', 'utf8').toString('latin1'); // the bytes curl or an SDK sends
  rig.fakes.openai!.next({});
  const h = await raw('POST', '/openai/v1/chat/completions', { headers: { 'content-type': 'application/json', authorization: 'Bearer sk-x', 'x-tollgate-project': utf8AsHeader, 'x-tollgate-workflow': utf8AsHeader }, body: CHAT });
  assert.equal(h.status, 200);
  const hr = await settled(h.headers['x-tollgate-call-id'] as string);
  assert.equal(hr.project, 'café ☕');
  assert.equal(hr.workflow, 'café ☕');
  const latin1 = await raw('POST', '/openai/v1/chat/completions', { headers: { 'content-type': 'application/json', authorization: 'Bearer sk-x', 'x-tollgate-project': 'café' }, body: CHAT });
  assert.equal((await settled(latin1.headers['x-tollgate-call-id'] as string)).project, 'café', 'latin1 bytes (what fetch sends) keep their meaning');
  const p = await raw('POST', '/p/caf%C3%A9/openai/v1/chat/completions', { headers: { 'content-type': 'application/json', authorization: 'Bearer sk-x' }, body: CHAT });
  assert.equal(p.status, 200);
  assert.equal((await settled(p.headers['x-tollgate-call-id'] as string)).project, 'café');
  const ok100 = await raw('POST', `/p/${'a'.repeat(100)}/openai/v1/chat/completions`, { headers: { 'content-type': 'application/json' }, body: CHAT });
  assert.equal(ok100.status, 200);

  const slash = await raw('POST', '/openai/v1/chat/completions', { headers: { 'content-type': 'application/json', 'x-tollgate-project': 'team/web' }, body: CHAT });
  assert.equal((await settled(slash.headers['x-tollgate-call-id'] as string)).project, 'team/web', 'a header may name team/web, as before');
  const before = rig.fakes.openai!.requests.length;
  for (const bad of [`/p/${'a'.repeat(101)}/`, `/p/${'a'.repeat(5000)}/`, '/p/../', '/p/%2E%2E/', '/p/a..b/', '/p/a%2Fb/', '/p/a%5Cb/', '/p/a%0Ab/', '/p/a%7Fb/', '/p/a%00/']) {
    const r = await raw('POST', `${bad}openai/v1/chat/completions`, { headers: { 'content-type': 'application/json', authorization: 'Bearer sk-x' }, body: CHAT });
    assert.equal(r.status, 400, bad.slice(0, 40));
    assert.equal(json(r).error.type, 'invalid_request_error');
  }
  for (const bad of ['x'.repeat(150), 'a\tb']) { // (other control characters never get past Node's HTTP parser)
    const r = await raw('POST', '/openai/v1/chat/completions', { headers: { 'content-type': 'application/json', authorization: 'Bearer sk-x', 'x-tollgate-project': bad }, body: CHAT });
    assert.equal(r.status, 400, bad.slice(0, 20));
  }
  assert.equal(rig.fakes.openai!.requests.length, before, 'nothing was forwarded');
  await normalCallWorks();
});

test('a tgk_ key in ?key= is swapped for the real key on Gemini only, the rest of the query as sent; elsewhere it is refused and never forwarded', async () => {
  const secret = 'AIza-real-gemini-key-' + 'z'.repeat(16);
  const { token } = await rig.engine.api.addKey({ name: 'gem-query', provider: 'gemini', secret });
  const gem = rig.fakes.gemini!;
  const body = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hi' }] }] });
  const r = await raw('POST', `/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=${token}&x=a%20b+c`, { headers: { 'content-type': 'application/json' }, body });
  assert.equal(r.status, 200, r.body.toString());
  const sent = gem.requests.at(-1)!;
  assert.equal(sent.url, `/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=${encodeURIComponent(secret)}&x=a%20b+c`);
  assert.equal(JSON.stringify(sent).includes('tgk_'), false, 'the local key never reaches the provider');
  const rec = await settled(r.headers['x-tollgate-call-id'] as string);
  assert.equal(rec.keyName, 'gem-query');
  assert.equal(rec.status, 'ok');

  const before = gem.requests.length + rig.fakes.openai!.requests.length;
  // not on a provider that takes its key in a header: the real key would land in a URL
  const o = await raw('POST', `/openai/v1/chat/completions?key=${token}`, { headers: { 'content-type': 'application/json' }, body: CHAT });
  assert.equal(o.status, 400);
  assert.match(json(o).error.message, /not as \?key=/);
  // in another parameter, or percent-encoded where no key is looked for: never forwarded
  for (const q of [`?alt=sse&token=${token}`, `?key=x&other=${token}`]) {
    const r = await raw('POST', `/gemini/v1beta/models/gemini-2.5-flash:generateContent${q}`, { headers: { 'content-type': 'application/json' }, body });
    assert.equal(r.status, 400, q);
  }
  // two keys, or a key in the query and one in a header: ambiguous
  const two = await raw('POST', `/gemini/v1beta/models/gemini-2.5-flash:generateContent?key=${token}&key=${token}`, { headers: { 'content-type': 'application/json' }, body });
  assert.equal(two.status, 400);
  const both = await raw('POST', `/gemini/v1beta/models/gemini-2.5-flash:generateContent?key=${token}`, { headers: { 'content-type': 'application/json', 'x-goog-api-key': 'AIza-other' }, body });
  assert.equal(both.status, 400);
  assert.equal(json(both).error.status, 'INVALID_ARGUMENT');
  assert.equal(gem.requests.length + rig.fakes.openai!.requests.length, before, 'nothing was forwarded');
  await normalCallWorks();
});
