/**
 * compare(workload, models): the cost of one workload on several models, cheapest first.
 * Each call (image, clip) is priced as it would be billed — rounded per line — then multiplied by
 * the count. A model that cannot do the workload is listed with the reason, never priced at 0.
 */
import { nanoToUsd, parseDecimal, ratioToDecimal, usdToNanoExact, type Nano } from './money.ts';
import type { Catalog } from './catalog.ts';
import { priceCall, toLineItems, type MediaParams, type PricedCall } from './pricing.ts';
import { splitModelRef } from './quote.ts';
import type { CompareResult, CompareRow, Workload } from './api.ts';
import type { Usage } from './usage.ts';

const fmt = (n: number) => n.toLocaleString('en-US');

export function describeWorkload(w: Workload): string {
  switch (w.kind) {
    case 'chat': return `${fmt(w.calls)} chat calls of ${fmt(w.inputTokens)} in / ${fmt(w.outputTokens)} out tokens${w.cachedInputTokens ? ` (${fmt(w.cachedInputTokens)} cached)` : ''}`;
    case 'image': return `${fmt(w.count)} images${w.size ? ` at ${w.size.replace('x', '×')}` : ''}${w.quality ? `, ${w.quality} quality` : ''}`;
    case 'video': return `${fmt(w.seconds * (w.count ?? 1))} s of ${w.resolution ?? 'default-resolution'} video${w.audio === false ? ' without audio' : w.audio ? ' with audio' : ''}`;
    case 'upscale': return `${fmt(w.count)} upscales of ${w.megapixels} MP images${w.factor ? ` ×${w.factor}` : ''}`;
    case 'replay': return `your real traffic of the last ${w.period}`;
  }
}

interface Unit { usage: Usage; params: MediaParams; times: number; needs: 'token' | 'image' | 'video' | 'upscale' }

function unitOf(w: Exclude<Workload, { kind: 'replay' }>): Unit {
  switch (w.kind) {
    case 'chat': {
      const cached = w.cachedInputTokens ?? 0;
      return { usage: { inputTokens: w.inputTokens - cached, cacheReadTokens: cached || undefined, outputTokens: w.outputTokens }, params: {}, times: w.calls, needs: 'token' };
    }
    case 'image': return { usage: { images: 1 }, params: { size: w.size, quality: w.quality }, times: w.count, needs: 'image' };
    case 'video': return { usage: { videoSeconds: w.seconds }, params: { resolution: w.resolution, audio: w.audio }, times: w.count ?? 1, needs: 'video' };
    case 'upscale': {
      const factor = w.factor ?? 2;
      // output megapixels = input MP × factor²; the upscaler's price is per output megapixel
      const r = parseDecimal(w.megapixels);
      const mp = ratioToDecimal({ num: r.num * BigInt(factor * factor), den: r.den });
      return { usage: { images: 1, megapixelsPerImage: mp }, params: {}, times: w.count, needs: 'upscale' };
    }
  }
}

export function compare(catalog: Catalog, workload: Workload, models: string[], replay?: { usage: Usage; calls: number }[], at?: Date): CompareResult {
  const rows: CompareRow[] = models.map((ref) => {
    let provider: string, model: string;
    try {
      ({ provider, model } = splitModelRef(ref));
    } catch (e) {
      return { model: ref, name: ref, cost: null, cheapest: false, reason: (e as Error).message, items: [], perUnit: null };
    }
    const resolved = catalog.resolve(provider, model, at);
    const name = resolved.token?.name ?? resolved.media?.name ?? model;
    const row = (p: PricedCall | null, times: number, reason: string | null): CompareRow => {
      if (!p || p.unpriced) return { model: `${provider}:${model}`, name, cost: null, cheapest: false, reason: reason ?? p?.unpriced ?? 'unpriced', items: [], perUnit: null };
      const t = BigInt(times);
      return {
        model: `${provider}:${model}`, name, cost: nanoToUsd(p.cost * t), cheapest: false, reason: null,
        items: toLineItems(p.items).map((l, i) => ({ ...l, cost: nanoToUsd(p.items[i]!.cost * t), quantity: times === 1 ? l.quantity : `${l.quantity} ×${fmt(times)}` })),
        perUnit: nanoToUsd(p.cost),
      };
    };
    if (workload.kind === 'replay') {
      if (!resolved.token) return row(null, 0, `${provider}:${model} is not a token-priced model`);
      let total: Nano = 0n;
      let calls = 0;
      const lines: PricedCall[] = [];
      for (const r of replay ?? []) {
        const p = priceCall(r.usage, resolved, {}, `${provider}:${model}`);
        if (p.unpriced) return row(p, 1, null);
        total += p.cost;
        calls += r.calls;
        lines.push(p);
      }
      const items = lines.flatMap((l) => l.items);
      return row({ items, cost: total, priceSource: null, unpriced: null, kind: 'token' }, 1, null);
    }
    const u = unitOf(workload);
    if (u.needs === 'token') {
      if (!resolved.token) return row(null, 0, resolved.media ? `${provider}:${model} is a ${resolved.media.kind} model, not a chat model` : `unknown model: ${provider}:${model}`);
      return row(priceCall(u.usage, { token: resolved.token, media: null }, {}, `${provider}:${model}`), u.times, null);
    }
    if (!resolved.media) return row(null, 0, resolved.token ? `${provider}:${model} is a chat model; it cannot do ${u.needs} workloads` : `unknown model: ${provider}:${model}`);
    const kindOk = resolved.media.kind === u.needs || (u.needs === 'image' && resolved.media.kind === 'image');
    if (!kindOk) return row(null, 0, `${provider}:${model} is a ${resolved.media.kind} model; it cannot do ${u.needs} workloads`);
    return row(priceCall(u.usage, { token: null, media: resolved.media }, { params: u.params }, `${provider}:${model}`), u.times, null);
  });
  const priced = rows.filter((r) => r.cost !== null);
  priced.sort((a, b) => cmpUsd(a.cost!, b.cost!));
  const cheapest = priced[0]?.cost;
  for (const r of priced) r.cheapest = r.cost === cheapest;
  return { workload, description: describeWorkload(workload), rows: [...priced, ...rows.filter((r) => r.cost === null)] };
}

function cmpUsd(a: string, b: string): number {
  const x = usdToNanoExact(a), y = usdToNanoExact(b);
  return x < y ? -1 : x > y ? 1 : 0;
}
