/**
 * Sync bench (issue 12): push N calls from one device's ledger into a local `tollgate-ledger serve`
 * on SQLite, then pull them on another device, through the engine's own sync client (sync.ts).
 * Target for 1,000,000 calls: ≤ 30 s each way.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Engine } from '../../electron/engine/engine.ts';
import { Ledger, type CallRow } from '../../electron/engine/ledger.ts';
import { newCallId } from '../../electron/engine/ids.ts';
import { ledgerCli, startLedger } from '../fixtures/ledger-service.ts';
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

export async function benchSync(n = 1_000_000): Promise<BenchResult[]> {
  const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), p));
  const backend = { dataDir: tmp('tollgate-bench-ledger-') };
  const a = tmp('tollgate-bench-a-'), b = tmp('tollgate-bench-b-');
  process.stderr.write(`sync bench: writing ${n.toLocaleString('en-US')} calls into a device's ledger…\n`);
  seed(a, n);
  const svc = await startLedger(backend);
  const code = async () => (JSON.parse((await ledgerCli(backend, ['enroll', '--json'])).stdout) as { code: string }).code;
  const out: BenchResult[] = [];
  try {
    const ea = new Engine({ dataDir: a, quiet: true, offline: true });
    await ea.sync.join(svc.url, await code(), 'bench-a');
    let t0 = performance.now();
    const pushed = await ea.sync.syncNow();
    const push = (performance.now() - t0) / 1000;
    ea.closeQuietly();
    out.push({ name: `sync: push ${n.toLocaleString('en-US')} calls to a local service (SQLite)`, value: push, unit: 's', target: '≤ 30 s for 1,000,000', ok: pushed.pushed === n && push * (1_000_000 / n) <= 30, note: `${Math.round(n / push).toLocaleString('en-US')} calls/s` });
    const eb = new Engine({ dataDir: b, quiet: true, offline: true });
    await eb.sync.join(svc.url, await code(), 'bench-b');
    t0 = performance.now();
    const pulled = await eb.sync.syncNow();
    const pull = (performance.now() - t0) / 1000;
    const total = eb.ledger.totals();
    eb.closeQuietly();
    out.push({ name: `sync: pull ${n.toLocaleString('en-US')} calls on another device`, value: pull, unit: 's', target: '≤ 30 s for 1,000,000', ok: pulled.pulled === n && total.calls === n && pull * (1_000_000 / n) <= 30, note: `${Math.round(n / pull).toLocaleString('en-US')} calls/s` });
  } finally {
    await svc.stop();
    for (const d of [a, b, backend.dataDir]) fs.rmSync(d, { recursive: true, force: true });
  }
  return out;
}
