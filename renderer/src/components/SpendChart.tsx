import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { CHART_COLORS, stackSeries } from '../chart.ts';
import { useLocale } from './ui.tsx';
import { formatUsd, formatUsdTick } from '../format.ts';
import { useApp } from '../store.ts';

/** Overview's spend-over-time chart, in its own chunk (recharts) so the numbers render first. */
export default function SpendChart() {
  const overview = useApp((s) => s.overview);
  const tz = useApp((s) => s.settings?.timeZone);
  const locale = useLocale();
  if (!overview) return null;
  const { series } = overview;
  const { data, keys, exact } = stackSeries(series.points);
  if (keys.length === 0) return <p className="muted chart-empty">Nothing spent in this window yet.</p>;
  const fmtBucket = (b: number) =>
    new Intl.DateTimeFormat(locale, series.granularity === 'hour' ? { timeZone: tz, hour: '2-digit', minute: '2-digit' } : { timeZone: tz, month: 'short', day: 'numeric' }).format(b);
  return (
    <div className="chart" role="img" aria-label={`Stacked bar chart of spend per ${series.granularity} by ${series.groupBy}`}>
      <ResponsiveContainer width="100%" height="100%">
        <BarChart data={data} margin={{ top: 8, right: 8, bottom: 0, left: 0 }}>
          <CartesianGrid vertical={false} stroke="var(--grid)" />
          <XAxis dataKey="bucket" tickFormatter={fmtBucket} tick={{ fill: 'var(--muted)', fontSize: 11 }} stroke="var(--border)" minTickGap={16} />
          <YAxis
            tick={{ fill: 'var(--muted)', fontSize: 11 }}
            stroke="var(--border)"
            width={72}
            // Axis ticks are chart geometry (JS numbers chosen by recharts), formatted like every
            // other amount: three significant digits under $1, so two ticks never read the same.
            tickFormatter={(v: number) => formatUsdTick(v, locale)}
          />
          <Tooltip
            cursor={{ fill: 'var(--hover)' }}
            content={(props) => {
              const { active, label } = props as { active?: boolean; label?: number };
              if (!active || label === undefined) return null;
              const idx = data.findIndex((d) => d.bucket === label);
              const ex = exact[idx] ?? {};
              const rows = keys.filter((k) => ex[k] && ex[k] !== '0');
              return (
                <div className="chart-tip">
                  <div className="chart-tip-title">{fmtBucket(label)}</div>
                  {rows.map((k) => (
                    <div key={k} className="chart-tip-row">
                      <span className="swatch" style={{ background: CHART_COLORS[keys.indexOf(k) % CHART_COLORS.length] }} />
                      <span>{k}</span>
                      <span className="num">{formatUsd(ex[k], locale)}</span>
                    </div>
                  ))}
                </div>
              );
            }}
          />
          <Legend wrapperStyle={{ fontSize: 12, color: 'var(--muted)' }} iconSize={10} />
          {keys.map((k, i) => (
            <Bar key={k} dataKey={k} stackId="spend" fill={CHART_COLORS[i % CHART_COLORS.length]} isAnimationActive={false} maxBarSize={28} />
          ))}
        </BarChart>
      </ResponsiveContainer>
    </div>
  );
}

