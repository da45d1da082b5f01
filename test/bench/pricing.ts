/**
 * Pricing benchmark: how fast the pure pricing domain prices calls, workflow nodes and quotes.
 *
 *   node --import tsx test/bench/pricing.ts          # prints a table
 *   import { benchPricing } from './pricing.ts'       # for test/bench/run.ts
 *
 * Each case warms up, then runs 3 timed loops of ≥ 1 s each (process.hrtime.bigint()); the best
 * loop is reported (throughput with the least interference) and the median is in the note.
 * A result checksum is kept so the JIT cannot drop the work.
 */
import { fileURLToPath } from 'node:url';
import { bundledCatalog } from '../../shared/catalog.ts';
import { priceCall } from '../../shared/pricing.ts';
import { quoteRequest } from '../../shared/quote.ts';
import { quoteNode, type WorkflowNode } from '../../shared/workflow.ts';
import type { Usage } from '../../shared/usage.ts';

export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  target?: string;
  ok?: boolean;
  note?: string;
}

const MIN_NS = 1_000_000_000n;
const WARMUP_NS = 250_000_000n;

const TRIALS = 3;

/**
 * Run `fn` (which does `batch` operations per call): a warm-up, then TRIALS timed loops of at
 * least `minNs` each. Reports the best trial (least disturbed by other processes) and the median.
 */
function measure(fn: () => void, batch: number, minNs = MIN_NS): { perSecond: number; median: number } {
  const w0 = process.hrtime.bigint();
  while (process.hrtime.bigint() - w0 < WARMUP_NS) fn();
  const rates: number[] = [];
  for (let t = 0; t < TRIALS; t++) {
    let ops = 0;
    const t0 = process.hrtime.bigint();
    let elapsed = 0n;
    do {
      fn();
      ops += batch;
      elapsed = process.hrtime.bigint() - t0;
    } while (elapsed < minNs);
    rates.push((ops * 1e9) / Number(elapsed));
  }
  rates.sort((x, y) => x - y);
  return { perSecond: rates[rates.length - 1]!, median: rates[Math.floor(rates.length / 2)]! };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** A ~2,000-token OpenAI chat prompt (o200k_base): a system prompt and a long user document. */
export function chatPrompt2k(): { model: string; messages: { role: string; content: string }[]; max_tokens: number } {
  const para = 'Tollgate meters every call to an AI API, prices it exactly from a versioned catalog, and blocks the request when a hard cap would be crossed. ';
  return {
    model: 'gpt-4o-mini',
    max_tokens: 800,
    messages: [
      { role: 'system', content: 'You are a precise technical editor. Summarise the document in five bullet points.' },
      { role: 'user', content: para.repeat(64) },
    ],
  };
}

export async function benchPricing(): Promise<BenchResult[]> {
  const catalog = bundledCatalog();
  let sink = 0n;
  const results: BenchResult[] = [];

  // (a) token-priced calls: a resolved gpt-4o-mini and a realistic usage with cache reads
  const resolved = catalog.resolve('openai', 'gpt-4o-mini');
  const usage: Usage = { inputTokens: 1_187, cacheReadTokens: 3_072, outputTokens: 412, reasoningTokens: 0 };
  const a = measure(() => {
    for (let i = 0; i < 1000; i++) sink += priceCall(usage, resolved).cost;
  }, 1000);
  results.push({ name: 'token calls priced (priceCall, gpt-4o-mini, cache reads)', value: Math.round(a.perSecond), unit: 'calls/s', target: '≥ 500,000/s', ok: a.perSecond >= 500_000, note: `best of ${TRIALS} × ≥1 s; median ${fmt(a.median)}` });

  // (b) workflow nodes: a media node and a token node alternately
  const media: WorkflowNode = { id: 'hero', model: 'fal:fal-ai/flux-2-pro', images: 4, size: '2048x2048', repeat: 1 };
  const token: WorkflowNode = { id: 'brief', model: 'openai:gpt-4o-mini', input_tokens: 1200, cached_input_tokens: 800, output_tokens: 400, repeat: 10 };
  let len = 0;
  const b = measure(() => {
    for (let i = 0; i < 500; i++) {
      len += quoteNode(catalog, media).expected.length;
      len += quoteNode(catalog, token).expected.length;
    }
  }, 1000);
  results.push({ name: 'workflow nodes quoted (quoteNode, media + token)', value: Math.round(b.perSecond), unit: 'nodes/s', target: '≥ 200,000/s', ok: b.perSecond >= 200_000, note: `best of ${TRIALS} × ≥1 s; median ${fmt(b.median)}` });

  // (c) request quotes for a ~2,000-token OpenAI chat prompt (tokenizer included)
  const body = chatPrompt2k();
  const probe = quoteRequest(catalog, 'openai', body, '/v1/chat/completions');
  const inputTokens = probe.items.find((l) => l.label === 'Input tokens')?.quantity ?? '?';
  const c = measure(() => {
    for (let i = 0; i < 10; i++) len += quoteRequest(catalog, 'openai', body, '/v1/chat/completions').max.length;
  }, 10);
  results.push({ name: 'request quotes (quoteRequest, 2k-token chat prompt)', value: Math.round(c.perSecond), unit: 'quotes/s', note: `${inputTokens} input tokens per quote; best of ${TRIALS}; median ${fmt(c.median)}` });

  if (sink === -1n || len === -1) console.log('unreachable');
  return results;
}

function printTable(rows: BenchResult[]): void {
  const cells = rows.map((r) => [r.name, r.value.toLocaleString('en-US'), r.unit, r.target ?? '', r.ok === undefined ? '' : r.ok ? 'ok' : 'MISSED', r.note ?? '']);
  const head = ['benchmark', 'value', 'unit', 'target', '', 'note'];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((x, i) => (i === 1 ? x.padStart(widths[i]!) : x.padEnd(widths[i]!))).join('  ').trimEnd();
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const c of cells) console.log(line(c));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  void benchPricing().then((rows) => {
    printTable(rows);
    if (rows.some((r) => r.ok === false)) process.exitCode = 1;
  });
}
