import { Bar, BarChart, CartesianGrid, ReferenceLine, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { formatUsd, formatUsdTick } from '../format.ts';
import { useLocale } from './ui.tsx';

/**
 * Reconciliation: Tollgate minus the provider, per day. Bar heights are chart geometry (JS numbers);
 * the tooltip shows the exact decimal strings.
 */
export default function DiffChart({ daily }: { daily: { day: string; tollgate: string; provider: string; difference: string }[] }) {
  const locale = useLocale();
  const data = daily.map((d) => ({ day: d.day, diff: Number(d.difference), exact: d }));
  return (
    <div className="chart" style={{ height: 180 }} role="img" aria-label="Bar chart of the daily difference between Tollgate and the provider" data-testid="reconcile-chart">
      <ResponsiveContainer width="100%" height="100%">
        <BarChart data={data} margin={{ top: 8, right: 8, bottom: 0, left: 0 }}>
          <CartesianGrid vertical={false} stroke="var(--grid)" />
          <XAxis dataKey="day" tick={{ fill: 'var(--muted)', fontSize: 11 }} stroke="var(--border)" />
          <YAxis tick={{ fill: 'var(--muted)', fontSize: 11 }} stroke="var(--border)" width={72} tickFormatter={(v: number) => formatUsdTick(v, locale)} />
          <ReferenceLine y={0} stroke="var(--border)" />
          <Tooltip
            cursor={{ fill: 'var(--hover)' }}
            content={(props) => {
              const { active, payload } = props as unknown as { active?: boolean; payload?: readonly { payload: (typeof data)[number] }[] };
              const d = active ? payload?.[0]?.payload.exact : undefined;
              if (!d) return null;
              return (
                <div className="chart-tip">
                  <div className="chart-tip-title">{d.day}</div>
                  <div className="chart-tip-row"><span>Tollgate</span><span className="num">{formatUsd(d.tollgate, locale)}</span></div>
                  <div className="chart-tip-row"><span>Provider</span><span className="num">{formatUsd(d.provider, locale)}</span></div>
                  <div className="chart-tip-row"><span>Difference</span><span className="num">{formatUsd(d.difference, locale)}</span></div>
                </div>
              );
            }}
          />
          <Bar dataKey="diff" fill="var(--accent)" isAnimationActive={false} maxBarSize={28} />
        </BarChart>
      </ResponsiveContainer>
    </div>
  );
}
