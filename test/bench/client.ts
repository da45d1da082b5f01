/**
 * The client side of the proxy benchmark, in its own process: the fake upstream and the load
 * generator. The bench process holds only the two proxies being compared (the bare pipe and the
 * metered engine), so neither shares its event loop with the load it is measured under.
 * Protocol (IPC): {cmd:'load'|'paced', url, concurrency, ms, rate?} → {rps, p50, p99}; {cmd:'ttfb', url, n} → {median}.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { startFakeUpstream } from '../fixtures/fake-upstream/index.ts';

const BODY = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello there' }], max_tokens: 16 });
const STREAM = JSON.stringify({ model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] });

async function load(url: string, concurrency: number, ms: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const u = new URL(url);
  const lat: number[] = [];
  const end = performance.now() + ms;
  const one = () => new Promise<void>((resolve, reject) => {
    const t = performance.now();
    const req = http.request({ hostname: u.hostname, port: u.port, path: '/openai/v1/chat/completions', method: 'POST', agent, headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench', 'content-length': Buffer.byteLength(BODY) } }, (res) => {
      res.resume();
      res.on('end', () => { lat.push(performance.now() - t); resolve(); });
    });
    req.on('error', reject);
    req.end(BODY);
  });
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => { while (performance.now() < end) await one(); }));
  const secs = (performance.now() - t0) / 1000;
  agent.destroy();
  lat.sort((a, b) => a - b);
  const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))]!;
  return { rps: lat.length / secs, p50: pct(0.5), p99: pct(0.99), n: lat.length };
}

/**
 * Open-loop latency at a fixed offered rate below saturation: `concurrency` connections together
 * send `rate` requests per second on a fixed schedule; latency is measured per request. This is how
 * gateway overhead is usually published (e.g. "added µs at N RPS"), and it separates the proxy's own
 * cost from queueing at saturation.
 */
async function paced(url: string, concurrency: number, rate: number, ms: number, path = '/openai/v1/chat/completions') {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const u = new URL(url);
  const lat: number[] = [];
  const interval = (1000 * concurrency) / rate;
  const t0 = performance.now();
  const worker = async (w: number) => {
    for (let k = 0; ; k++) {
      const due = t0 + (w / concurrency) * interval + k * interval;
      if (due > t0 + ms) return;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const t = performance.now();
      await new Promise<void>((resolve, reject) => {
        const req = http.request({ hostname: u.hostname, port: u.port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench', 'content-length': Buffer.byteLength(BODY) } }, (res) => {
          res.resume();
          res.on('end', () => { lat.push(performance.now() - t); resolve(); });
        });
        req.on('error', reject);
        req.end(BODY);
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  agent.destroy();
  lat.sort((a, b) => a - b);
  const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))]!;
  return { rps: lat.length / (ms / 1000), p50: pct(0.5), p99: pct(0.99), n: lat.length, lat };
}

async function ttfb(url: string, n: number) {
  const u = new URL(url);
  const agent = new http.Agent({ keepAlive: true });
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    out.push(await new Promise<number>((resolve) => {
      const t = performance.now();
      const req = http.request({ hostname: u.hostname, port: u.port, path: '/openai/v1/chat/completions', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(STREAM) } }, (res) => {
        res.once('data', () => resolve(performance.now() - t));
        res.resume();
      });
      req.end(STREAM);
    }));
  }
  agent.destroy();
  return { median: out.sort((a, b) => a - b)[Math.floor(n / 2)]! };
}

const fake = await startFakeUpstream('openai', { quiet: true });
fake.setDefault({ bodyBytes: 2048 });

/**
 * The throughput and latency rounds must be limited by the proxy under test, not by the upstream
 * sharing the client's core. So the fake's real 2 KB chat completion (the same bytes, headers and
 * usage) is captured once and replayed by a minimal server; streams are passed on to the full fake.
 */
const captured = await new Promise<{ status: number; headers: http.OutgoingHttpHeaders; body: Buffer }>((resolve, reject) => {
  const u = new URL(fake.url);
  const req = http.request({ hostname: u.hostname, port: u.port, path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench' } }, (res) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => {
      const headers: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(res.headers)) if (!['connection', 'keep-alive', 'transfer-encoding', 'date'].includes(k) && v !== undefined) headers[k] = v;
      const body = Buffer.concat(chunks);
      headers['content-length'] = String(body.length);
      resolve({ status: res.statusCode!, headers, body });
    });
  });
  req.on('error', reject);
  req.end(BODY);
});
const fakeUrl = new URL(fake.url);
const streamAgent = new http.Agent({ keepAlive: true });
const replay = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    if (body.includes('"stream":true')) {
      // streams go to the full fake, which speaks OpenAI's SSE
      const up = http.request({ hostname: fakeUrl.hostname, port: fakeUrl.port, path: req.url, method: req.method, headers: { ...req.headers, host: fakeUrl.host }, agent: streamAgent }, (r) => {
        res.writeHead(r.statusCode!, r.headers);
        r.pipe(res);
      });
      up.end(body);
    } else if (req.method === 'POST' && req.url?.startsWith('/v1/chat/completions')) {
      res.writeHead(captured.status, captured.headers);
      res.end(captured.body);
    } else {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":{"message":"not found","type":"invalid_request_error"}}');
    }
  });
});
await new Promise<void>((r) => replay.listen(0, '127.0.0.1', () => r()));
const replayUrl = `http://127.0.0.1:${(replay.address() as { port: number }).port}`;
process.on('message', (m: { id: number; cmd: string; url: string; concurrency?: number; ms?: number; n?: number }) => {
  const work = m.cmd === 'load' ? load(m.url, m.concurrency ?? 50, m.ms ?? 2000) : m.cmd === 'paced' ? paced(m.url, m.concurrency ?? 50, (m as { rate?: number }).rate ?? 1000, m.ms ?? 2000, (m as { path?: string }).path) : m.cmd === 'ttfb' ? ttfb(m.url, m.n ?? 200) : Promise.resolve(null);
  void work.then((r) => process.send!({ id: m.id, result: r }));
  if (m.cmd === 'exit') void fake.close().then(() => process.exit(0));
});
process.send!({ id: 0, result: { upstream: replayUrl, bodyBytes: captured.body.length } });
