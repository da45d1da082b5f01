/**
 * Engine benchmarks, each against a baseline measured in the same process:
 * - the metered proxy vs a bare Node pass-through proxy on the same fake upstream (throughput,
 *   added p50/p99 latency at 50 concurrent connections, 2 KB non-streaming responses),
 * - added time to first byte on streams,
 * - ledger ingest rate (group commit), report query time on a large ledger (rollups),
 *   engine start time and memory with that ledger, idle CPU.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { startFakeUpstream } from '../fixtures/fake-upstream/index.ts';
import { startEngine, Engine } from '../../electron/engine/engine.ts';
import { Ledger, type CallRow } from '../../electron/engine/ledger.ts';
import { tempDir } from '../fixtures/engine.ts';
import type { BenchResult } from './pricing.ts';

const BODY = JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello there' }], max_tokens: 16 });

function bareProxy(upstream: URL): Promise<{ url: string; close: () => Promise<void> }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const server = http.createServer((req, res) => {
    const up = http.request({ hostname: upstream.hostname, port: upstream.port, path: req.url!.replace(/^\/openai/, ''), method: req.method, headers: { ...req.headers, host: upstream.host }, agent }, (r) => {
      res.writeHead(r.statusCode!, r.headers);
      r.pipe(res);
    });
    req.pipe(up);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
  })));
}

async function load(url: string, concurrency: number, ms: number, path = '/openai/v1/chat/completions'): Promise<{ rps: number; lat: number[] }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const u = new URL(url);
  const lat: number[] = [];
  const end = performance.now() + ms;
  let n = 0;
  const one = () => new Promise<void>((resolve, reject) => {
    const t = performance.now();
    const req = http.request({ hostname: u.hostname, port: u.port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench', 'content-length': Buffer.byteLength(BODY) } }, (res) => {
      res.resume();
      res.on('end', () => { lat.push(performance.now() - t); n++; resolve(); });
    });
    req.on('error', reject);
    req.end(BODY);
  });
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => { while (performance.now() < end) await one(); }));
  agent.destroy();
  return { rps: n / ((performance.now() - t0) / 1000), lat: lat.sort((a, b) => a - b) };
}
const pct = (a: number[], p: number) => a[Math.min(a.length - 1, Math.floor(a.length * p))]!;

async function ttfb(url: string, n: number): Promise<number> {
  const u = new URL(url);
  const agent = new http.Agent({ keepAlive: true });
  const out: number[] = [];
  const body = JSON.stringify({ model: 'gpt-4o-mini', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] });
  for (let i = 0; i < n; i++) {
    out.push(await new Promise<number>((resolve) => {
      const t = performance.now();
      const req = http.request({ hostname: u.hostname, port: u.port, path: '/openai/v1/chat/completions', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.once('data', () => resolve(performance.now() - t));
        res.resume();
      });
      req.end(body);
    }));
  }
  agent.destroy();
  return out.sort((a, b) => a - b)[Math.floor(n / 2)]!;
}

function row(i: number, ts: number): CallRow {
  return {
    id: `0190${String(i).padStart(28, '0')}`, ts, provider: 'openai', model: ['gpt-4o-mini', 'gpt-4o', 'o4-mini'][i % 3]!, endpoint: 'chat.completions',
    project: ['acme', 'beta', null][i % 3]!, workflow: null, run: null, node: null, keyId: null, keyFingerprint: 'fp_bench', keyName: null, status: 'ok',
    httpStatus: 200, stream: false, durationMs: 100, ttfbMs: 50, usage: { inputTokens: 1000, outputTokens: 200 }, items: [], costNano: 270_000n,
    reservedNano: 0n, quoteMaxNano: null, quoteExpectedNano: null, estimated: false, unpriced: false, unpricedReason: null, priceSource: 'bench', error: null, blockedBy: null, prompt: null,
  };
}

export async function benchEngine(opts: { seconds?: number; ledgerCalls?: number } = {}): Promise<BenchResult[]> {
  const ms = (opts.seconds ?? 4) * 1000;
  const out: BenchResult[] = [];
  const fake = await startFakeUpstream('openai', { quiet: true });
  fake.setDefault({ bodyBytes: 2048 });
  const bare = await bareProxy(new URL(fake.url));
  const engine = await startEngine({ dataDir: tempDir('tollgate-bench-'), port: 0, quiet: true, upstreams: { openai: fake.url } });
  // warm up both, then alternate to share the machine's noise fairly
  await load(bare.url, 10, 500);
  await load(engine.url, 10, 500);
  const b1 = await load(bare.url, 50, ms / 2);
  const m1 = await load(engine.url, 50, ms / 2);
  const b2 = await load(bare.url, 50, ms / 2);
  const m2 = await load(engine.url, 50, ms / 2);
  const bare_rps = (b1.rps + b2.rps) / 2, met_rps = (m1.rps + m2.rps) / 2;
  const bl = [...b1.lat, ...b2.lat].sort((a, b) => a - b), ml = [...m1.lat, ...m2.lat].sort((a, b) => a - b);
  out.push({ name: 'proxy throughput vs bare Node proxy (50 conns, 2 KB)', value: met_rps / bare_rps, unit: '×', target: '≥ 0.8', ok: met_rps / bare_rps >= 0.8, note: `${met_rps.toFixed(0)} vs ${bare_rps.toFixed(0)} req/s` });
  out.push({ name: 'added p50 latency', value: pct(ml, 0.5) - pct(bl, 0.5), unit: 'ms', target: '≤ 1', ok: pct(ml, 0.5) - pct(bl, 0.5) <= 1, note: `${pct(ml, 0.5).toFixed(2)} vs ${pct(bl, 0.5).toFixed(2)} ms` });
  out.push({ name: 'added p99 latency', value: pct(ml, 0.99) - pct(bl, 0.99), unit: 'ms', target: '≤ 5', ok: pct(ml, 0.99) - pct(bl, 0.99) <= 5, note: `${pct(ml, 0.99).toFixed(2)} vs ${pct(bl, 0.99).toFixed(2)} ms` });
  const tb = await ttfb(bare.url, 200), tm = await ttfb(engine.url, 200);
  out.push({ name: 'added time to first byte (stream, median)', value: tm - tb, unit: 'ms', target: '≤ 1', ok: tm - tb <= 1, note: `${tm.toFixed(2)} vs ${tb.toFixed(2)} ms` });
  await engine.stop();
  await bare.close();
  await fake.close();

  // Ledger ingest: group-committed writes.
  const L = new Ledger(tempDir('tollgate-ingest-'));
  const N = 100_000;
  const t0 = performance.now();
  const base = Date.now() - 3_600_000;
  for (let i = 0; i < N; i++) L.recordEnd(row(i, base + i));
  L.flush();
  const ingest = N / ((performance.now() - t0) / 1000);
  out.push({ name: 'ledger ingest (calls + rollups, group commit)', value: ingest, unit: 'calls/s', target: '≥ 20,000', ok: ingest >= 20_000 });
  L.close();

  // A large ledger: report queries read rollups, so what matters is a year of hourly rollup rows
  // for the dimensions in use. We write `ledgerCalls` calls' worth of rollups directly.
  const dir = tempDir('tollgate-big-');
  const big = new Ledger(dir);
  const calls = opts.ledgerCalls ?? 10_000_000;
  const hours = 24 * 365;
  const combos = 30;
  const perRow = Math.max(1, Math.floor(calls / (hours * combos)));
  const ins = big.db.prepare('INSERT INTO rollups (bucket, provider, model, project, key_fp, workflow, calls, cost_nano, unpriced) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)');
  const now = Date.now();
  big.db.transaction(() => {
    for (let h = 0; h < hours; h++) {
      const bucket = Math.floor((now - h * 3_600_000) / 3_600_000) * 3_600_000;
      for (let c = 0; c < combos; c++) ins.run(bucket, ['openai', 'anthropic', 'gemini'][c % 3], `model-${c % 10}`, `project-${c % 5}`, `fp_${c % 2}`, '', perRow, BigInt(perRow) * 270_000n);
    }
  })();
  big.close();
  const memBefore = process.memoryUsage().rss;
  const s0 = performance.now();
  const e = new Engine({ dataDir: dir, port: 0, quiet: true });
  const startMs = performance.now() - s0;
  const q0 = performance.now();
  await e.api.report({ by: 'model', period: 'month' });
  const reportMs = performance.now() - q0;
  const o0 = performance.now();
  await e.api.overview({});
  const overviewMs = performance.now() - o0;
  out.push({ name: `report --by model --period month (${(hours * combos * perRow / 1e6).toFixed(1)} M calls in rollups)`, value: reportMs, unit: 'ms', target: '≤ 100', ok: reportMs <= 100 });
  out.push({ name: 'Overview data for the UI (same ledger)', value: overviewMs, unit: 'ms', target: '< 1000', ok: overviewMs < 1000 });
  out.push({ name: 'engine start with that ledger', value: startMs, unit: 'ms', note: `rss +${((process.memoryUsage().rss - memBefore) / 1e6).toFixed(1)} MB` });
  await e.start();
  const c0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, 2000));
  const cpu = process.cpuUsage(c0);
  out.push({ name: 'idle CPU (2 s with no calls)', value: (cpu.user + cpu.system) / 1000, unit: 'ms CPU', target: '≈ 0', ok: (cpu.user + cpu.system) / 1000 < 50 });
  await e.stop();
  return out;
}
