/**
 * Sync benches (issue 12), through the engine's own sync client (sync.ts) and a real
 * `tollgate-ledger serve` process:
 * - push N calls from one device's ledger into a local service on SQLite, then pull them on another
 *   device (target for 1,000,000 calls: ≤ 30 s each way);
 * - the same push into a service on PostgreSQL (a throwaway cluster, test/fixtures/pg.ts): reported;
 * - the proxy's saturated throughput with sync running in the background vs with it stopped, on the
 *   same engine, in back-to-back pairs (target: within 5 %), with proxy.ts's client process and wrk.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Engine, startEngine } from '../../electron/engine/engine.ts';
import { Ledger, type CallRow } from '../../electron/engine/ledger.ts';
import { newCallId } from '../../electron/engine/ids.ts';
import { ledgerCli, startLedger, type LedgerBackend } from '../fixtures/ledger-service.ts';
import { postgresAvailable, startPostgres } from '../fixtures/pg.ts';
import { tempDir } from '../fixtures/engine.ts';
import { hasWrk, startClient, wrkLoad, type LoadResult } from './proxy.ts';
import type { BenchResult } from './pricing.ts';

function seed(dir: string, n: number): void {
  const L = new Ledger(dir, { writerThread: false });
  const from = Date.now() - 30 * 86_400_000;
  for (let i = 0; i < n; i++) {
    const row: CallRow = {
      id: newCallId(), ts: from + i, provider: 'openai', model: 'gpt-4o-mini', endpoint: 'chat.completions', project: i % 4 ? 'acme' : null, workflow: null,
      run: null, node: null, keyId: null, keyFingerprint: 'fp_bench', keyName: null, status: 'ok', httpStatus: 200, stream: false, durationMs: 120, ttfbMs: 80,
      usage: { inputTokens: 1200 + (i % 100), outputTokens: 300 }, items: [{ label: 'Input tokens', quantity: String(1200 + (i % 100)), unit: 'token', per: 1_000_000, unitPrice: '0.15', cost: '0.00018', source: 'bench' }],
      costNano: 180_000n + BigInt(i % 100) * 150n, reservedNano: 0n, quoteMaxNano: null, quoteExpectedNano: null, estimated: false, unpriced: false,
      unpricedReason: null, priceSource: 'bench', error: null, blockedBy: null, prompt: null,
    };
    L.recordEnd(row);
    if (i % 5000 === 4999) L.flush();
  }
  L.close();
}

const code = async (backend: LedgerBackend) => (JSON.parse((await ledgerCli(backend, ['enroll', '--json'])).stdout) as { code: string }).code;
const rate = (n: number, s: number) => `${Math.round(n / s).toLocaleString('en-US')} calls/s`;

/** Join `dir`'s engine to the service and push its whole outbox: seconds, calls pushed. */
async function timePush(dir: string, url: string, backend: LedgerBackend, name: string): Promise<{ s: number; pushed: number }> {
  const e = new Engine({ dataDir: dir, quiet: true, offline: true });
  try {
    await e.sync.join(url, await code(backend), name); // joining puts the device's whole history in the outbox
    const t0 = performance.now();
    const r = await e.sync.syncNow();
    return { s: (performance.now() - t0) / 1000, pushed: r.pushed };
  } finally {
    e.closeQuietly();
  }
}

export async function benchSync(n = 1_000_000): Promise<BenchResult[]> {
  const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), p));
  const backend: LedgerBackend = { dataDir: tmp('tollgate-bench-ledger-') };
  const a = tmp('tollgate-bench-a-'), b = tmp('tollgate-bench-b-');
  const N = n.toLocaleString('en-US');
  process.stderr.write(`sync bench: writing ${N} calls into a device's ledger…\n`);
  seed(a, n);
  const svc = await startLedger(backend);
  const out: BenchResult[] = [];
  try {
    const push = await timePush(a, svc.url, backend, 'bench-a');
    out.push({ name: `sync: push ${N} calls to a local service (SQLite)`, value: push.s, unit: 's', target: '≤ 30 s for 1,000,000', ok: push.pushed === n && push.s * (1_000_000 / n) <= 30, note: rate(n, push.s) });
    const eb = new Engine({ dataDir: b, quiet: true, offline: true });
    await eb.sync.join(svc.url, await code(backend), 'bench-b');
    const t0 = performance.now();
    const pulled = await eb.sync.syncNow();
    const pull = (performance.now() - t0) / 1000;
    const total = eb.ledger.totals();
    eb.closeQuietly();
    out.push({ name: `sync: pull ${N} calls on another device`, value: pull, unit: 's', target: '≤ 30 s for 1,000,000', ok: pulled.pulled === n && total.calls === n && pull * (1_000_000 / n) <= 30, note: rate(n, pull) });
  } finally {
    await svc.stop();
    fs.rmSync(b, { recursive: true, force: true });
    fs.rmSync(backend.dataDir, { recursive: true, force: true });
  }
  try {
    if (!postgresAvailable()) {
      out.push({ name: `sync: push ${N} calls to a local service (PostgreSQL)`, value: NaN, unit: 's', note: 'not run: no PostgreSQL (install Debian\'s postgresql or set DATABASE_URL)' });
    } else {
      const pg = await startPostgres();
      const pgBackend: LedgerBackend = { dataDir: tmp('tollgate-bench-pg-'), databaseUrl: pg.url };
      const pgSvc = await startLedger(pgBackend);
      try {
        const push = await timePush(a, pgSvc.url, pgBackend, 'bench-a-pg');
        out.push({ name: `sync: push ${N} calls to a local service (PostgreSQL)`, value: push.s, unit: 's', target: 'reported', ok: push.pushed === n ? undefined : false, note: rate(n, push.s) });
      } finally {
        await pgSvc.stop();
        await pg.close();
        fs.rmSync(pgBackend.dataDir, { recursive: true, force: true });
      }
    }
  } finally {
    fs.rmSync(a, { recursive: true, force: true });
  }
  return out;
}

/**
 * The proxy's saturated throughput (50 connections, 2 KB responses, wrk when installed) of an
 * engine whose background sync runs against a local service (every 250 ms, pushing the calls the
 * load makes as it goes) vs an identical engine that has not joined: back-to-back 1 s pairs in
 * alternating order, the median ratio. The synced engine's sync is never stopped, so it measures
 * the steady state (what it pushes is what it serves), not catch-up after a pause.
 *
 * The service runs on the same two cores as the engine and the load. Judged (target ≥ 0.95) with the
 * service at the lowest CPU priority (nice 19), standing in for the other machine it runs on in use:
 * what the engine's own sync costs its proxy. Then reported with the service at normal priority,
 * where its ingest CPU (~25 µs a call) is taken from the same cores.
 */
export async function benchProxyWithSync(opts: { seconds?: number } = {}): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  for (const niced of [true, false]) out.push(await proxyWithSync(niced, opts.seconds ?? 6));
  return out;
}

async function proxyWithSync(niced: boolean, seconds: number): Promise<BenchResult> {
  const backend: LedgerBackend = { dataDir: tempDir('tollgate-bench-psync-') };
  const svc = await startLedger(backend);
  const reniced = niced && process.platform !== 'win32' && !spawnSync('renice', ['-n', '19', '-p', String(svc.child.pid)], { stdio: 'ignore' }).error;
  const client = await startClient();
  const start = () => startEngine({ dataDir: tempDir('tollgate-bench-psync-engine-'), port: 0, quiet: true, upstreams: { openai: client.upstream }, syncIntervalMs: 250 });
  const synced = await start();
  const plain = await start();
  try {
    await synced.sync.join(svc.url, await code(backend), 'bench-proxy');
    const useWrk = hasWrk();
    const cpu = { bare: { us: 0, n: 0 }, engine: { us: 0, n: 0 } };
    const saturate = (e: Engine, ms: number): Promise<LoadResult> => (useWrk ? wrkLoad(e.url, ms, cpu, true) : client.ask<LoadResult>({ cmd: 'load', url: e.url, concurrency: 50, ms }));
    await saturate(plain, 1500);
    await saturate(synced, 1500);
    let made = 0;
    const before = (await synced.sync.status(false)).pending;
    const PAIRS = Math.max(6, Math.round((seconds * 1000) / 300));
    const ratios: number[] = [];
    let rpsWith = 0, rpsWithout = 0;
    for (let r = 0; r < PAIRS; r++) {
      let w: LoadResult, wo: LoadResult;
      if (r % 2) {
        w = await saturate(synced, 1000);
        wo = await saturate(plain, 1000);
      } else {
        wo = await saturate(plain, 1000);
        w = await saturate(synced, 1000);
      }
      made += w.n;
      ratios.push(w.rps / wo.rps);
      rpsWith += w.rps / PAIRS;
      rpsWithout += wo.rps / PAIRS;
    }
    ratios.sort((p, q) => p - q);
    const ratio = ratios[Math.floor(ratios.length / 2)]!;
    synced.ledger.flush();
    // what the load made is pushed before the end (the outbox drains once the load stops)
    const drainUntil = Date.now() + 60_000;
    let left = (await synced.sync.status(false)).pending;
    const pushedDuring = before + made - left;
    while (left > 0 && Date.now() < drainUntil) {
      await new Promise((r) => setTimeout(r, 250));
      left = (await synced.sync.status(false)).pending;
    }
    const judged = niced && reniced;
    return {
      name: `proxy throughput with sync running vs not joined (50 conns${useWrk ? ', wrk' : ''}), service ${reniced ? 'at nice 19' : 'at normal priority'} on the same cores`,
      value: ratio, unit: '×', target: judged ? '≥ 0.95' : 'reported', ok: judged ? ratio >= 0.95 && left === 0 : left === 0 ? undefined : false,
      note: `median of ${PAIRS} back-to-back 1 s pairs, ${ratios[0]!.toFixed(2)}–${ratios.at(-1)!.toFixed(2)}; ${rpsWith.toFixed(0)} vs ${rpsWithout.toFixed(0)} req/s; `
        + `${pushedDuring.toLocaleString('en-US')} calls pushed during the load while ${made.toLocaleString('en-US')} were made, ${left === 0 ? 'all pushed' : `${left.toLocaleString('en-US')} NOT pushed`} within a minute after it`,
    };
  } finally {
    await synced.stop();
    await plain.stop();
    await client.close();
    await svc.stop();
  }
}
