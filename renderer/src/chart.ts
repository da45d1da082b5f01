import type { SeriesPoint } from '../../shared/api.ts';
import { addUsd, compareUsd } from './format.ts';

export interface ChartSeries {
  data: Record<string, number | string>[];
  keys: string[];
}

/**
 * Chart adapter: the ONLY place money becomes a JS number, and only for bar heights/lengths.
 * Totals, labels and tooltips are formatted from the original decimal strings.
 */
export function usdToChartNumber(usd: string): number {
  // Display geometry only: float precision is irrelevant for a bar's pixel height.
  return Number(usd);
}

/** Stacked series: keep the `maxKeys` biggest groups, fold the rest into "Other". */
export function stackSeries(points: SeriesPoint[], maxKeys = 6): ChartSeries & { exact: Record<string, string>[] } {
  const totals = new Map<string, string>();
  for (const p of points) for (const [k, v] of Object.entries(p.values)) totals.set(k, addUsd(totals.get(k) ?? '0', v));
  const ranked = [...totals.entries()].sort((a, b) => compareUsd(b[1], a[1])).map(([k]) => k);
  const keep = ranked.length > maxKeys ? ranked.slice(0, maxKeys - 1) : ranked;
  const hasOther = ranked.length > keep.length;
  const keys = hasOther ? [...keep, 'Other'] : keep;
  const exact: Record<string, string>[] = [];
  const data = points.map((p) => {
    const row: Record<string, number | string> = { bucket: p.bucket };
    const ex: Record<string, string> = {};
    let other = '0';
    for (const [k, v] of Object.entries(p.values)) {
      if (keep.includes(k)) ex[k] = v;
      else other = addUsd(other, v);
    }
    if (hasOther) ex.Other = other;
    for (const k of keys) row[k] = usdToChartNumber(ex[k] ?? '0');
    exact.push(ex);
    return row;
  });
  return { data, keys, exact };
}

export const CHART_COLORS = ['var(--chart-1)', 'var(--chart-2)', 'var(--chart-3)', 'var(--chart-4)', 'var(--chart-5)', 'var(--chart-6)', 'var(--chart-7)'];
