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
import { fork, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEngine, Engine } from '../../electron/engine/engine.ts';
import { Ledger, type CallRow } from '../../electron/engine/ledger.ts';
import { tempDir } from '../fixtures/engine.ts';
import type { BenchResult } from './pricing.ts';

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

export interface Client { ask<T>(msg: Record<string, unknown>): Promise<T>; upstream: string; close(): Promise<void> }

/** Start the client process (fake upstream + load generator). */
export async function startClient(): Promise<Client> {
  const child = fork(path.join(import.meta.dirname, 'client.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  pinCores(child.pid!);
  const waiting = new Map<number, (v: unknown) => void>();
  child.on('message', (m: { id: number; result: unknown }) => { waiting.get(m.id)?.(m.result); waiting.delete(m.id); });
  let next = 1;
  const ask = <T,>(msg: Record<string, unknown>) => new Promise<T>((resolve) => { const id = next++; waiting.set(id, resolve as (v: unknown) => void); child.send({ ...msg, id }); });
  const hello = await new Promise<{ upstream: string }>((resolve) => waiting.set(0, resolve as (v: unknown) => void));
  return { ask, upstream: hello.upstream, close: async () => { child.send({ cmd: 'exit', id: -1 }); await new Promise((r) => child.once('exit', r)); } };
}
/**
 * On Linux with ≥ 2 cores, the client process (fake upstream + load generator, and wrk) gets a core
 * of its own (taskset), so the proxies are not measured against a starved client. The proxies'
 * process is left to the scheduler: each proxy may use the rest of the machine as it would on a
 * user's (the engine's ledger writer thread, either proxy's GC and libuv threads).
 */
function pinCores(clientPid: number): void {
  if (process.platform !== 'linux' || os.availableParallelism() < 2) return;
  spawnSync('taskset', ['-a', '-cp', '1', String(clientPid)], { stdio: 'ignore' });
}
export function hasWrk(): boolean {
  return !spawnSync('wrk', ['--version'], { stdio: 'ignore' }).error;
}

const WRK_SCRIPT = `wrk.method = "POST"
wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}],"max_tokens":16}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"`;

/** wrk, 50 connections, on the client's core; CPU of this process is counted per request. */
export async function wrkLoad(url: string, ms: number, cpu: Record<'bare' | 'engine', { us: number; n: number }>, isEngine: boolean): Promise<LoadResult> {
  const script = path.join(os.tmpdir(), 'tollgate-bench-post.lua');
  fs.writeFileSync(script, WRK_SCRIPT);
  const pin = process.platform === 'linux' && os.availableParallelism() >= 2 ? ['taskset', '-c', '1'] : [];
  const args = [...pin, 'wrk', '-t1', '-c50', `-d${Math.max(1, Math.round(ms / 1000))}s`, '--latency', '-s', script, `${url}/openai/v1/chat/completions`];
  const c0 = process.cpuUsage();
  const text = await new Promise<string>((resolve) => {
    const c = spawn(args[0]!, args.slice(1));
    let o = '';
    c.stdout.on('data', (d: Buffer) => { o += d; });
    c.on('exit', () => resolve(o));
  });
  const c = process.cpuUsage(c0);
  const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
  const msOf = (re: RegExp) => { const m = re.exec(text); if (!m) return NaN; const v = Number(m[1]); return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v; };
  const n = num(/(\d+) requests in/);
  const slot = isEngine ? cpu.engine : cpu.bare;
  slot.us += c.user + c.system;
  slot.n += n;
  return { rps: num(/Requests\/sec:\s+([\d.]+)/), p50: msOf(/50%\s+([\d.]+)(us|ms|s)/), p99: msOf(/99%\s+([\d.]+)(us|ms|s)/), n };
}

export type LoadResult = { rps: number; p50: number; p99: number; n: number };

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
  const client = await startClient();
  const bare = await bareProxy(new URL(client.upstream));
  const engine = await startEngine({ dataDir: tempDir('tollgate-bench-'), port: 0, quiet: true, upstreams: { openai: client.upstream } });
  // CPU time this process spends per request: the proxy's own cost, free of scheduling noise.
  const cpu = { bare: { us: 0, n: 0 }, engine: { us: 0, n: 0 } };
  const load = async (url: string, conc: number, t: number) => {
    const c0 = process.cpuUsage();
    const r = await client.ask<LoadResult>({ cmd: 'load', url, concurrency: conc, ms: t });
    const c = process.cpuUsage(c0);
    const slot = url === engine.url ? cpu.engine : cpu.bare;
    slot.us += c.user + c.system;
    slot.n += r.n;
    return r;
  };
  // Saturated throughput must be limited by the proxy, not the client: wrk (C) when installed,
  // on the client's core; otherwise the Node client, which may itself be the bottleneck.
  const useWrk = hasWrk();
  const saturate = (url: string, t: number) => (useWrk ? wrkLoad(url, t, cpu, url === engine.url) : load(url, 50, t));
  // Warm up both at full load (JIT, the tokenizer's tables, the heap's first major collections),
  // so steady state is measured.
  await saturate(bare.url, 2000);
  await saturate(engine.url, 2000);
  cpu.bare = { us: 0, n: 0 };
  cpu.engine = { us: 0, n: 0 };
  // Noise on a shared machine comes in episodes of a second or two: many short pairs, each pair
  // measured back to back (in alternating order), and the median of the pairs' ratios.
  const PAIRS = Math.max(6, Math.round(ms / 300));
  const b: LoadResult[] = [], m: LoadResult[] = [], ratios: number[] = [];
  for (let r = 0; r < PAIRS; r++) {
    const first = r % 2 ? engine.url : bare.url, second = r % 2 ? bare.url : engine.url;
    const x = await saturate(first, 1000), y = await saturate(second, 1000);
    const [rb, rm] = r % 2 ? [y, x] : [x, y];
    b.push(rb);
    m.push(rm);
    ratios.push(rm.rps / rb.rps);
  }
  const avg = (xs: LoadResult[], k: keyof LoadResult) => xs.reduce((a, x) => a + (x[k] as number), 0) / xs.length;
  const bareRps = avg(b, 'rps'), metRps = avg(m, 'rps');
  ratios.sort((x, y) => x - y);
  const ratio = ratios[Math.floor(ratios.length / 2)]!;
  out.push({ name: `proxy throughput vs bare Node proxy (50 conns, 2 KB, saturated${useWrk ? ', wrk' : ''})`, value: ratio, unit: '×', target: '≥ 0.8', ok: ratio >= 0.8,
    note: `median of ${PAIRS} back-to-back 1 s pairs, ${ratios[0]!.toFixed(2)}–${ratios.at(-1)!.toFixed(2)}; ${metRps.toFixed(0)} vs ${bareRps.toFixed(0)} req/s on average${useWrk ? '' : '; Node load generator: install wrk for a proxy-bound figure'}` });
  const cpuBare = cpu.bare.us / cpu.bare.n, cpuEngine = cpu.engine.us / cpu.engine.n;
  out.push({ name: '  proxy CPU per request, all threads (metered vs bare)', value: cpuEngine - cpuBare, unit: 'µs added', note: `${cpuEngine.toFixed(0)} vs ${cpuBare.toFixed(0)} µs CPU per request` });
  out.push({ name: '  added p50 / p99 at saturation (queueing included)', value: avg(m, 'p50') - avg(b, 'p50'), unit: 'ms', note: `p99 +${(avg(m, 'p99') - avg(b, 'p99')).toFixed(2)} ms; ${avg(m, 'p50').toFixed(2)} vs ${avg(b, 'p50').toFixed(2)} ms p50` });
  // Latency overhead at a fixed offered load below saturation, alternating rounds again.
  const rate = Math.min(1000, Math.floor(bareRps * 0.5));
  // Noise on a shared machine comes in episodes: interleave many short rounds and take the
  // percentiles over all samples pooled, so both proxies see the same episodes equally.
  const pooled = { bare: [] as number[], engine: [] as number[] };
  const PACED_ROUNDS = 20;
  for (let r = 0; r < PACED_ROUNDS; r++) {
    for (const [which, url] of (r % 2 ? [['engine', engine.url], ['bare', bare.url]] : [['bare', bare.url], ['engine', engine.url]]) as ['bare' | 'engine', string][]) {
      const res = await client.ask<LoadResult & { lat: number[] }>({ cmd: 'paced', url, concurrency: 50, rate, ms: Math.max(400, (ms * 2) / PACED_ROUNDS) });
      pooled[which].push(...res.lat);
    }
  }
  const q = (xs: number[], p: number) => { const a = [...xs].sort((x, y) => x - y); return a[Math.min(a.length - 1, Math.floor(a.length * p))]!; };
  const dp50 = q(pooled.engine, 0.5) - q(pooled.bare, 0.5), dp99 = q(pooled.engine, 0.99) - q(pooled.bare, 0.99);
  const n = Math.min(pooled.engine.length, pooled.bare.length);
  out.push({ name: `added p50 latency (50 conns, ${rate} req/s offered)`, value: dp50, unit: 'ms', target: '≤ 1', ok: dp50 <= 1, note: `${q(pooled.engine, 0.5).toFixed(2)} vs ${q(pooled.bare, 0.5).toFixed(2)} ms; ${n} requests each over ${PACED_ROUNDS} interleaved rounds` });
  // A baseline whose own tail is far above its median says the machine, not the proxy, set the
  // p99: report the number but do not judge it.
  const bareP99 = q(pooled.bare, 0.99), bareP50 = q(pooled.bare, 0.5);
  const judgeable = bareP99 <= Math.max(10, bareP50 * 10);
  out.push({ name: `added p99 latency (50 conns, ${rate} req/s offered)`, value: dp99, unit: 'ms', target: '≤ 5', ok: judgeable ? dp99 <= 5 : undefined,
    note: `${q(pooled.engine, 0.99).toFixed(2)} vs ${bareP99.toFixed(2)} ms${judgeable ? '' : ' — not judged: the bare proxy\'s own p99 is over 10× its p50, the machine is too noisy'}` });
  const tb = (await client.ask<{ median: number }>({ cmd: 'ttfb', url: bare.url, n: 200 })).median;
  const tm = (await client.ask<{ median: number }>({ cmd: 'ttfb', url: engine.url, n: 200 })).median;
  out.push({ name: 'added time to first byte (stream, median)', value: tm - tb, unit: 'ms', target: '≤ 1', ok: tm - tb <= 1, note: `${tm.toFixed(2)} vs ${tb.toFixed(2)} ms` });
  await engine.stop();
  await bare.close();
  await client.close();

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

  const calls = opts.ledgerCalls ?? 10_000_000;
  const { dir, described } = makeBigLedger(calls);
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
  out.push({ name: `report --by model --period month (${described})`, value: reportMs, unit: 'ms', target: '≤ 100', ok: reportMs <= 100 });
  out.push({ name: 'Overview data for the UI (same ledger)', value: overviewMs, unit: 'ms', target: '< 1000', ok: overviewMs < 1000 });
  out.push({ name: 'engine start with that ledger', value: startMs, unit: 'ms', note: `rss +${((process.memoryUsage().rss - memBefore) / 1e6).toFixed(1)} MB` });
  await e.start();
  await new Promise((r) => setTimeout(r, 1000)); // start-up work (the writer thread's own start) settles first
  const c0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, 2000));
  const idle = process.cpuUsage(c0);
  out.push({ name: 'idle CPU (2 s with no calls)', value: (idle.user + idle.system) / 1000, unit: 'ms CPU', target: '≈ 0', ok: (idle.user + idle.system) / 1000 < 50 });
  await e.stop();
  return out;
}

/**
 * A large ledger: report queries read rollups, so what matters is a year of hourly rollup rows
 * for the dimensions in use. `calls` calls' worth of rollups are written directly.
 */
export function makeBigLedger(calls: number): { dir: string; described: string } {
  const dir = tempDir('tollgate-big-');
  const big = new Ledger(dir, { writerThread: false });
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
    // rollups written directly must keep the all-time totals in step, as the ledger's flush does
    big.db.exec('UPDATE totals SET calls = (SELECT SUM(calls) FROM rollups), cost_nano = (SELECT SUM(cost_nano) FROM rollups), unpriced = 0 WHERE id = 1');
  })();
  big.close();
  return { dir, described: `${(hours * combos * perRow / 1e6).toFixed(1)} M calls in rollups` };
}
