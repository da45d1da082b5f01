/**
 * Proxy throughput against an earlier engine, in the same run (issue 11: "no regression of the
 * proxy's throughput beyond 3 %"). The engine as it was at BASELINE_COMMIT (before issue 11 put
 * batch, audio, service-tier, tool-fee and modality pricing on the call path, and issue 10 its
 * path and usage checks) is exported from git into a temp dir and run in this process beside the
 * current one, on the same fake upstream, under the same load (wrk on the client's core when
 * installed), in many short back-to-back pairs in alternating order; the median of the pairs'
 * ratios is reported, with CPU per request of each. Without git history (a tarball) the row says so.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEngine } from '../../electron/engine/engine.ts';
import { tempDir } from '../fixtures/engine.ts';
import { hasWrk, startClient, wrkLoad, type LoadResult } from './proxy.ts';
import type { BenchResult } from './pricing.ts';

/** The last commit before issue 11's pricing work (stop 13's landing). */
export const BASELINE_COMMIT = 'f255233';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** The baseline's source tree in a temp dir (node_modules linked to ours), or why not. */
function exportBaseline(): { dir: string } | { why: string } {
  const has = spawnSync('git', ['-C', ROOT, 'cat-file', '-e', `${BASELINE_COMMIT}^{commit}`], { stdio: 'ignore' });
  if (has.error || has.status !== 0) return { why: `commit ${BASELINE_COMMIT} is not in this checkout's git history` };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-baseline-'));
  const tar = spawnSync('sh', ['-c', `git -C "${ROOT}" archive ${BASELINE_COMMIT} electron shared package.json | tar -x -C "${dir}"`], { stdio: 'ignore' });
  if (tar.status !== 0) return { why: `git archive ${BASELINE_COMMIT} failed` };
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  return { dir };
}

export async function benchRegression(opts: { seconds?: number } = {}): Promise<BenchResult[]> {
  const name = `proxy throughput vs the engine at ${BASELINE_COMMIT} (before issue 11)`;
  const base = exportBaseline();
  if ('why' in base) return [{ name, value: NaN, unit: '×', target: '≥ 0.97', note: `not measured: ${base.why}` }];
  const useWrk = hasWrk();
  const client = await startClient();
  const { startEngine: startOld } = (await import(path.join(base.dir, 'electron/engine/engine.ts'))) as { startEngine: typeof startEngine };
  const now = await startEngine({ dataDir: tempDir('tollgate-bench-now-'), port: 0, quiet: true, upstreams: { openai: client.upstream } });
  const old = await startOld({ dataDir: tempDir('tollgate-bench-old-'), port: 0, quiet: true, upstreams: { openai: client.upstream } });
  try {
    // `bare` is the baseline engine here, `engine` the current one (wrkLoad's CPU slots).
    const cpu = { bare: { us: 0, n: 0 }, engine: { us: 0, n: 0 } };
    const load = (url: string, ms: number): Promise<LoadResult> => useWrk
      ? wrkLoad(url, ms, cpu, url === now.url)
      : (async () => {
        const c0 = process.cpuUsage();
        const r = await client.ask<LoadResult>({ cmd: 'load', url, concurrency: 50, ms });
        const c = process.cpuUsage(c0);
        const slot = url === now.url ? cpu.engine : cpu.bare;
        slot.us += c.user + c.system;
        slot.n += r.n;
        return r;
      })();
    await load(old.url, 2000);
    await load(now.url, 2000);
    cpu.bare = { us: 0, n: 0 };
    cpu.engine = { us: 0, n: 0 };
    const PAIRS = Math.max(8, Math.round(((opts.seconds ?? 6) * 1000) / 300));
    const ratios: number[] = [];
    let sumNow = 0, sumOld = 0;
    for (let r = 0; r < PAIRS; r++) {
      const [first, second] = r % 2 ? [now.url, old.url] : [old.url, now.url];
      const x = await load(first, 1000), y = await load(second, 1000);
      const [ro, rn] = r % 2 ? [y, x] : [x, y];
      ratios.push(rn.rps / ro.rps);
      sumNow += rn.rps;
      sumOld += ro.rps;
    }
    ratios.sort((a, b) => a - b);
    const ratio = ratios[Math.floor(ratios.length / 2)]!;
    const cpuOld = cpu.bare.us / cpu.bare.n, cpuNow = cpu.engine.us / cpu.engine.n;
    return [
      { name, value: ratio, unit: '×', target: '≥ 0.97', ok: ratio >= 0.97,
        note: `median of ${PAIRS} back-to-back 1 s pairs, ${ratios[0]!.toFixed(2)}–${ratios.at(-1)!.toFixed(2)}; ${(sumNow / PAIRS).toFixed(0)} vs ${(sumOld / PAIRS).toFixed(0)} req/s on average${useWrk ? ', wrk' : ', Node load generator'}` },
      { name: '  CPU per request, all threads (now vs baseline)', value: cpuNow - cpuOld, unit: 'µs added', note: `${cpuNow.toFixed(0)} vs ${cpuOld.toFixed(0)} µs CPU per request` },
    ];
  } finally {
    await now.stop();
    await old.stop();
    await client.close();
    fs.rmSync(base.dir, { recursive: true, force: true });
  }
}
