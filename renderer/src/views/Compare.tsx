import { useEffect, useMemo, useState } from 'react';
import { Bar, BarChart, Cell, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { CompareResult, PriceRow, Workload } from '../../../shared/api.ts';
import { toApiCallError, type ApiCallError } from '../bridge/errors.ts';
import { usdToChartNumber } from '../chart.ts';
import { Badge, Card, ErrorNote, Loading, Money, PageHeader, Segmented, useAsync, useLocale } from '../components/ui.tsx';
import { formatMultiple, formatUsd, isDecimal, ratioPercent } from '../format.ts';
import { useApp, useBridge } from '../store.ts';

type Kind = 'chat' | 'image' | 'video' | 'upscale' | 'replay';
const KIND_OF_MODEL: Record<Kind, PriceRow['kind']> = { chat: 'token', replay: 'token', image: 'image', video: 'video', upscale: 'upscale' };

interface Form {
  calls: string;
  inputTokens: string;
  outputTokens: string;
  count: string;
  size: string;
  quality: string;
  seconds: string;
  resolution: string;
  audio: boolean;
  videoCount: string;
  upCount: string;
  megapixels: string;
}

const INT = /^\d+$/;

/** When the ledger has no calls of a kind yet: a short set of current models (never retired ones). */
const STARTER: Record<PriceRow['kind'], string[]> = {
  token: ['openai:gpt-4.1-mini', 'openai:gpt-5-mini', 'anthropic:claude-haiku-4-5', 'anthropic:claude-sonnet-4-5', 'gemini:gemini-2.5-flash'],
  image: [], video: [], upscale: [], audio: [], request: [],
};
const MAX_DEFAULT = 6;

function buildWorkload(kind: Kind, f: Form): { workload: Workload } | { error: string } {
  const int = (v: string, name: string, min = 1): number | string => (INT.test(v.trim()) && Number(v) >= min ? Number(v) : `${name} must be a whole number ≥ ${min}`);
  switch (kind) {
    case 'chat': {
      const calls = int(f.calls, 'Calls');
      const i = int(f.inputTokens, 'Input tokens', 0);
      const o = int(f.outputTokens, 'Output tokens', 0);
      for (const v of [calls, i, o]) if (typeof v === 'string') return { error: v };
      return { workload: { kind: 'chat', calls: calls as number, inputTokens: i as number, outputTokens: o as number } };
    }
    case 'image': {
      const count = int(f.count, 'Images');
      if (typeof count === 'string') return { error: count };
      return { workload: { kind: 'image', count, size: f.size, quality: f.quality } };
    }
    case 'video': {
      const seconds = int(f.seconds, 'Seconds');
      const count = int(f.videoCount, 'Videos');
      if (typeof seconds === 'string') return { error: seconds };
      if (typeof count === 'string') return { error: count };
      return { workload: { kind: 'video', seconds, resolution: f.resolution, audio: f.audio, count } };
    }
    case 'upscale': {
      const count = int(f.upCount, 'Images');
      if (typeof count === 'string') return { error: count };
      if (!isDecimal(f.megapixels) || /^0*(\.0*)?$/.test(f.megapixels.trim())) return { error: 'Megapixels must be a positive number, e.g. 8.4' };
      return { workload: { kind: 'upscale', count, megapixels: f.megapixels.trim() } };
    }
    case 'replay':
      return { workload: { kind: 'replay', period: 'month' } };
  }
}

export function CompareView() {
  const bridge = useBridge();
  const locale = useLocale();
  const catalog = useAsync(() => bridge.prices({}), [bridge]);
  const [kind, setKind] = useState<Kind>('chat');
  const [form, setForm] = useState<Form>({
    calls: '10000', inputTokens: '1200', outputTokens: '400', count: '100', size: '1024x1024', quality: 'medium',
    seconds: '5', resolution: '1080p', audio: false, videoCount: '10', upCount: '100', megapixels: '8.4',
  });
  const [search, setSearch] = useState('');
  const [showAll, setShowAll] = useState(false);
  const picks = useApp((st) => st.comparePicks);
  const setPicks = useApp((st) => st.setComparePicks);
  // the models the user actually calls, most spent first (all time)
  const mine = useAsync(() => bridge.report({ by: 'model', period: 'all' }), [bridge]);
  const [result, setResult] = useState<CompareResult | null>(null);
  const [error, setError] = useState<ApiCallError | null>(null);
  const [running, setRunning] = useState(false);

  const rows = catalog.data ?? [];
  const idOf = (p: PriceRow) => `${p.provider}:${p.model}`;
  const defaults = useMemo(() => {
    const byId = new Map(rows.map((r) => [idOf(r), r]));
    const out = {} as Record<Kind, string[]>;
    for (const k of Object.keys(KIND_OF_MODEL) as Kind[]) {
      const kind = KIND_OF_MODEL[k];
      const used = (mine.data?.groups ?? []).map((g) => g.key).filter((id) => byId.get(id)?.kind === kind);
      const starter = STARTER[kind].filter((id) => byId.has(id));
      const fallback = starter.length ? starter : rows.filter((r) => r.kind === kind).slice(-MAX_DEFAULT).map(idOf);
      out[k] = [...new Set([...used, ...(used.length >= 2 ? [] : fallback)])].slice(0, MAX_DEFAULT);
    }
    return out;
  }, [rows, mine.data]);
  const pickKey = KIND_OF_MODEL[kind];
  const chosen = picks[pickKey] ?? defaults[kind];
  const matching = rows.filter((r) => (showAll || r.kind === KIND_OF_MODEL[kind]) && (!search.trim() || `${idOf(r)} ${r.name}`.toLowerCase().includes(search.trim().toLowerCase())));
  // the picked models first (in pick order), then the rest of the catalog
  const visible = [...chosen.map((id) => matching.find((r) => idOf(r) === id)).filter((r): r is PriceRow => !!r), ...matching.filter((r) => !chosen.includes(idOf(r)))];
  const built = buildWorkload(kind, form);

  const toggle = (id: string) => {
    const next = chosen.includes(id) ? chosen.filter((x) => x !== id) : [...chosen, id];
    setPicks(pickKey, next);
  };

  const wkey = JSON.stringify(built);
  const mkey = chosen.join('|');
  useEffect(() => {
    if (!('workload' in built) || chosen.length === 0 || !catalog.data || (!mine.data && !mine.error)) return;
    let stale = false;
    const t = setTimeout(() => {
      setRunning(true);
      bridge
        .compare({ workload: built.workload, models: chosen })
        .then((r) => {
          if (stale) return;
          setResult(r);
          setError(null);
        })
        .catch((err: unknown) => !stale && setError(toApiCallError(err)))
        .finally(() => !stale && setRunning(false));
    }, 200);
    return () => {
      stale = true;
      clearTimeout(t);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [wkey, mkey, catalog.data, mine.data, bridge]);

  const f = (k: keyof Form) => ({
    value: form[k] as string,
    onChange: (e: React.ChangeEvent<HTMLInputElement | HTMLSelectElement>) => setForm((s) => ({ ...s, [k]: e.target.value })),
  });

  return (
    <>
      <PageHeader title="Compare" sub="What would a workload cost on each model? Exact catalog prices, your overrides and locks included." />
      <div className="compare-layout">
        <Card title="Workload" testId="compare-workload">
          <Segmented<Kind>
            label="Workload kind"
            value={kind}
            onChange={setKind}
            testId="workload-kind"
            options={[
              { value: 'chat', label: 'Chat' },
              { value: 'image', label: 'Image' },
              { value: 'video', label: 'Video' },
              { value: 'upscale', label: 'Upscale' },
              { value: 'replay', label: 'My calls' },
            ]}
          />
          <div className="form-grid">
            {kind === 'chat' ? (
              <>
                <label>
                  Calls
                  <input inputMode="numeric" {...f('calls')} data-testid="wl-calls" />
                </label>
                <label>
                  Input tokens / call
                  <input inputMode="numeric" {...f('inputTokens')} data-testid="wl-input" />
                </label>
                <label>
                  Output tokens / call
                  <input inputMode="numeric" {...f('outputTokens')} data-testid="wl-output" />
                </label>
              </>
            ) : null}
            {kind === 'image' ? (
              <>
                <label>
                  Images
                  <input inputMode="numeric" {...f('count')} />
                </label>
                <label>
                  Size
                  <select {...f('size')}>
                    <option>1024x1024</option>
                    <option>1024x1536</option>
                    <option>1536x1024</option>
                  </select>
                </label>
                <label>
                  Quality
                  <select {...f('quality')}>
                    <option>low</option>
                    <option>medium</option>
                    <option>high</option>
                  </select>
                </label>
              </>
            ) : null}
            {kind === 'video' ? (
              <>
                <label>
                  Videos
                  <input inputMode="numeric" {...f('videoCount')} />
                </label>
                <label>
                  Seconds each
                  <input inputMode="numeric" {...f('seconds')} />
                </label>
                <label>
                  Resolution
                  <select {...f('resolution')}>
                    <option>720p</option>
                    <option>1080p</option>
                  </select>
                </label>
                <label className="check">
                  <input type="checkbox" checked={form.audio} onChange={(e) => setForm((s) => ({ ...s, audio: e.target.checked }))} /> With audio
                </label>
              </>
            ) : null}
            {kind === 'upscale' ? (
              <>
                <label>
                  Images
                  <input inputMode="numeric" {...f('upCount')} />
                </label>
                <label>
                  Output megapixels
                  <input inputMode="decimal" {...f('megapixels')} />
                </label>
              </>
            ) : null}
            {kind === 'replay' ? <p className="muted">Re-prices the token usage of your chat calls of the last 30 days on each selected model, next to what they actually cost.</p> : null}
          </div>
          {'error' in built ? <ErrorNote error={built.error} /> : null}
          <div className="model-picker">
            <div className="model-picker-head">
              <label className="grow">
                Models <span className="muted">({chosen.length} selected)</span>
                <input type="search" value={search} onChange={(e) => setSearch(e.target.value)} placeholder="Search models…" data-testid="compare-search" />
              </label>
              <label className="check">
                <input type="checkbox" checked={showAll} onChange={(e) => setShowAll(e.target.checked)} /> all kinds
              </label>
            </div>
            {catalog.error ? <ErrorNote error={catalog.error} /> : null}
            {!catalog.data || (!mine.data && !mine.error) ? (
              // the defaults come from the ledger: no list (and no flicker of other picks) before it answers
              <Loading />
            ) : (
              <ul className="model-list" aria-label="Models to compare">
                {visible.map((r) => (
                  <li key={idOf(r)}>
                    <label className="check">
                      <input type="checkbox" checked={chosen.includes(idOf(r))} onChange={() => toggle(idOf(r))} data-testid={`compare-model-${idOf(r)}`} />
                      <span>
                        {r.name} <span className="muted small">{idOf(r)}</span>
                      </span>
                    </label>
                  </li>
                ))}
                {visible.length === 0 ? <li className="muted">No models match.</li> : null}
              </ul>
            )}
          </div>
        </Card>
        <Card title={result ? result.description : 'Results'} testId="compare-results" actions={running ? <span className="muted small">updating…</span> : null}>
          <ErrorNote error={error} />
          {chosen.length === 0 ? <p className="muted">Pick at least one model.</p> : null}
          {result ? <Results result={result} locale={locale} /> : chosen.length > 0 && !error ? <Loading /> : null}
        </Card>
      </div>
    </>
  );
}

/** "gpt 4o mini", or "gpt 4o mini · openrouter" when two rows share a name. */
function rowLabels(rows: CompareResult['rows']): Map<string, string> {
  const count = new Map<string, number>();
  for (const r of rows) count.set(r.name, (count.get(r.name) ?? 0) + 1);
  return new Map(rows.map((r) => [r.model, (count.get(r.name) ?? 0) > 1 ? `${r.name} · ${r.model.slice(0, r.model.indexOf(':'))}` : r.name]));
}

function Results({ result, locale }: { result: CompareResult; locale: string | undefined }) {
  const labels = rowLabels(result.rows);
  const priced = result.rows.filter((r) => r.cost !== null);
  const cheapest = priced.find((r) => r.cheapest) ?? priced[0];
  const max = priced.reduce((m, r) => (r.cost && ratioPercent(r.cost, m) > 100 ? r.cost : m), priced[0]?.cost ?? '0');
  const chartData = priced.map((r) => ({ name: labels.get(r.model) ?? r.name, exact: r.cost!, value: usdToChartNumber(r.cost!), cheapest: r.cheapest }));
  const unit = result.workload.kind === 'image' || result.workload.kind === 'upscale' ? 'image' : result.workload.kind === 'video' ? 'second' : 'call';
  return (
    <>
      <table className="table compare" data-testid="compare-table">
        <thead>
          <tr>
            <th scope="col">Model</th>
            <th scope="col" className="num">
              Total
            </th>
            <th scope="col" className="num">
              Per {unit}
            </th>
            <th scope="col" className="num">
              vs cheapest
            </th>
          </tr>
        </thead>
        <tbody>
          {result.replay ? (
            <tr data-testid="compare-actual" className="row-actual">
              <td>
                <div>
                  <strong>Actual</strong> <Badge tone="info">what you paid</Badge>
                </div>
                <div className="muted small">
                  {result.replay.calls === 0 ? 'no chat calls in this period' : `${result.replay.calls.toLocaleString(locale)} calls as booked`}
                  {result.replay.unpricedCalls ? ` · ${result.replay.unpricedCalls.toLocaleString(locale)} unpriced` : ''}
                </div>
              </td>
              <td className="num">
                <Money usd={result.replay.actual} />
              </td>
              <td className="num small">{formatUsd(result.replay.actualPerCall, locale)}</td>
              <td className="num small">—</td>
            </tr>
          ) : null}
          {result.rows.map((r) => (
            <tr key={r.model} data-testid="compare-row" className={r.cheapest ? 'row-best' : ''}>
              <td>
                <div>
                  {labels.get(r.model) ?? r.name} {r.cheapest ? <Badge tone="good">cheapest</Badge> : null}
                </div>
                <div className="muted small">{r.model}</div>
                {r.cost !== null ? (
                  <div className="mini-bar" aria-hidden="true">
                    <span style={{ width: `${ratioPercent(r.cost, max)}%` }} />
                  </div>
                ) : null}
              </td>
              {r.cost === null ? (
                <td colSpan={3} className="muted small" data-testid="compare-reason">
                  {r.reason ?? 'not priced'}
                </td>
              ) : (
                <>
                  <td className="num">
                    <Money usd={r.cost} />
                  </td>
                  <td className="num small">{formatUsd(r.perUnit, locale)}</td>
                  <td className="num small">{cheapest?.cost && !r.cheapest ? formatMultiple(r.cost, cheapest.cost) ?? '—' : '—'}</td>
                </>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {chartData.length > 1 ? (
        <div className="chart chart-h" style={{ height: Math.max(140, chartData.length * 30 + 30) }} role="img" aria-label="Bar chart of total cost per model">
          <ResponsiveContainer width="100%" height="100%">
            <BarChart data={chartData} layout="vertical" margin={{ top: 4, right: 16, bottom: 4, left: 8 }}>
              <XAxis type="number" hide />
              <YAxis type="category" dataKey="name" width={150} tick={{ fill: 'var(--muted)', fontSize: 11 }} stroke="var(--border)" />
              <Tooltip
                cursor={{ fill: 'var(--hover)' }}
                content={(p) => {
                  const item = (p as unknown as { payload?: readonly { payload?: { name: string; exact: string } }[] }).payload?.[0]?.payload;
                  return item ? (
                    <div className="chart-tip">
                      {item.name}: <strong>{formatUsd(item.exact, locale)}</strong>
                    </div>
                  ) : null;
                }}
              />
              <Bar dataKey="value" isAnimationActive={false} radius={[0, 3, 3, 0]}>
                {chartData.map((d) => (
                  <Cell key={d.name} fill={d.cheapest ? 'var(--good)' : 'var(--chart-1)'} />
                ))}
              </Bar>
            </BarChart>
          </ResponsiveContainer>
        </div>
      ) : null}
    </>
  );
}
