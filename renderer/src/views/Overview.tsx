import { lazy, Suspense } from 'react';
import type { ReportGroup, SpendPeriod } from '../../../shared/api.ts';
import { Badge, CapBar, Card, CodeBlock, Empty, ErrorNote, Loading, Money, PageHeader, Segmented, useLocale } from '../components/ui.tsx';
import { compareUsd, isZeroUsd, formatCount, formatCountOf, formatDateTime, formatPercent, formatUsd, percentChange, ratioPercent } from '../format.ts';
import { openAiSnippet } from '../snippets.ts';
import { useApp, type GroupBy } from '../store.ts';

// The chart library is most of the bundle: load it after the numbers are on screen.
const SpendChart = lazy(() => import('../components/SpendChart.tsx'));

export function OverviewView() {
  const overview = useApp((s) => s.overview);
  const error = useApp((s) => s.overviewError);
  const settings = useApp((s) => s.settings);
  const paused = useApp((s) => s.paused);
  const setPaused = useApp((s) => s.setPaused);
  const setView = useApp((s) => s.setView);
  const locale = useLocale();

  if (!overview) {
    return (
      <>
        <PageHeader title="Overview" />
        {error ? <ErrorNote error={error} /> : <Loading />}
      </>
    );
  }
  const proxyUrl = settings?.proxyUrl ?? 'http://127.0.0.1:4747';
  return (
    <>
      <PageHeader
        title="Overview"
        sub={`${formatCountOf(overview.totalCalls, 'call', locale)} metered${settings ? ` · times in ${settings.timeZone}` : ''}`}
      />
      {error ? <ErrorNote error={error} /> : null}
      {paused ? (
        <div className="banner banner-bad" role="status">
          <strong>Paused.</strong> Every call through the proxy is blocked until you resume.
          <button type="button" className="btn btn-small" onClick={() => void setPaused(false)}>
            Resume
          </button>
        </div>
      ) : null}
      {overview.unpricedCalls > 0 ? (
        <div className="banner banner-warn" data-testid="unpriced-warning" role="status">
          <strong>
            {formatCount(overview.unpricedCalls, locale)} call{overview.unpricedCalls === 1 ? '' : 's'} could not be priced
          </strong>{' '}
          and add nothing to these totals and caps.
          <button
            type="button"
            className="btn btn-small"
            onClick={() => {
              sessionStorage.setItem('tollgate.pricesTab', 'unpriced');
              setView('prices');
            }}
          >
            Set prices
          </button>
        </div>
      ) : null}

      {overview.totalCalls === 0 ? (
        <Card className="teach" testId="empty-overview">
          <Empty title="No calls yet — route your first one through Tollgate">
            <p>
              Point your SDK at the local proxy <code>{proxyUrl}</code>. Your real key still goes in the usual place (or create a <code>tgk_</code> key under
              Projects &amp; keys). Every call is priced exactly and shows up here within a second.
            </p>
            <CodeBlock label="OpenAI SDK" code={openAiSnippet(proxyUrl)} testId="empty-snippet" />
            <p className="muted">
              Anthropic, Gemini, curl, Claude Code and Cursor:{' '}
              <button type="button" className="link" onClick={() => setView('keys')}>
                see Projects &amp; keys
              </button>
              .
            </p>
          </Empty>
        </Card>
      ) : null}

      <div className="stats">
        <Stat label="Today" period={overview.today} prevLabel="yesterday" testId="spend-today" />
        <Stat label="This week" period={overview.week} prevLabel="last week" testId="spend-week" />
        <Stat label="This month" period={overview.month} prevLabel="last month" testId="spend-month" />
        <div className="stat">
          <div className="stat-label">Burn rate (24 h avg)</div>
          <div className="stat-value">
            <Money usd={overview.burnRatePerHour} testId="burn-rate" />
            <span className="stat-unit">/h</span>
          </div>
          <div className="stat-sub">
            Month-end projection <Money usd={overview.projectedMonth} testId="projected-month" />
          </div>
          {isZeroUsd(overview.projection.monthSoFar) && isZeroUsd(overview.projection.ratePerHour) ? null : (
            <div className="stat-sub muted small" data-testid="projection-basis">
              {formatUsd(overview.projection.monthSoFar, locale)} so far + {formatUsd(overview.projection.ratePerHour, locale)}/h ×{' '}
              {formatCount(Math.round(overview.projection.hoursLeft), locale)} h left in the month
            </div>
          )}
        </div>
      </div>

      <div className="grid-2">
        <Card title="Spend over time" className="span-2" actions={<ChartControls />} testId="spend-chart">
          <Suspense fallback={<div className="chart" aria-busy="true" />}>
            <SpendChart />
          </Suspense>
        </Card>
        <Card
          title="Caps"
          actions={
            <button type="button" className="btn btn-small" onClick={() => setView('budgets')}>
              Manage
            </button>
          }
          testId="overview-caps"
        >
          {overview.caps.length === 0 ? (
            <p className="muted">
              No caps yet. A cap blocks (or just alerts) when spend reaches a limit per day, week or month.{' '}
              <button type="button" className="link" onClick={() => setView('budgets')}>
                Add one
              </button>
            </p>
          ) : (
            <div className="caps">
              {overview.caps.map((c) => (
                <CapBar key={c.cap.id} status={c} />
              ))}
            </div>
          )}
        </Card>
        <Card title="Open alerts" testId="overview-alerts">
          {overview.alerts.length === 0 ? (
            <p className="muted">No alerts. You will see one here when a cap crosses a threshold.</p>
          ) : (
            <ul className="alerts">
              {overview.alerts.map((a) => (
                <li key={a.id} className={`alert-item alert-${a.kind}`}>
                  <Badge tone={a.kind === 'blocked' ? 'bad' : a.kind === 'credit' || a.threshold >= 80 ? 'warn' : 'info'}>{a.kind === 'blocked' ? 'blocked' : a.kind === 'credit' ? 'credits' : `${a.threshold}%`}</Badge>
                  {a.kind === 'credit' ? (
                    <span className="alert-text">{a.message ?? a.capLabel}</span>
                  ) : (
                    <span className="alert-text">
                      <strong>{a.capLabel}</strong> reached {formatUsd(a.spent, locale)} of {formatUsd(a.limit, locale)}
                    </span>
                  )}
                  <time className="muted small">{formatDateTime(a.ts, settings?.timeZone, locale)}</time>
                </li>
              ))}
            </ul>
          )}
        </Card>
        <Card title="Top models this month" testId="top-models">
          <TopList groups={overview.topModels} />
        </Card>
        <Card title="Top projects this month" testId="top-projects">
          <TopList groups={overview.topProjects} none="no project" />
        </Card>
        {overview.credits?.length ? (
          <Card title="Credits" testId="overview-credits">
            <ul className="alerts">
              {overview.credits.map((c) => (
                <li key={c.provider} className="alert-item">
                  <Badge tone={c.runwayDays !== null && c.runwayDays < 7 ? 'warn' : 'info'}>{c.provider}</Badge>
                  <span className="alert-text">
                    <strong>
                      <Money usd={c.balance} testId={`overview-credits-${c.provider}`} />
                    </strong>{' '}
                    left · {c.summary}
                  </span>
                </li>
              ))}
            </ul>
          </Card>
        ) : null}
      </div>
    </>
  );
}

function Stat({ label, period, prevLabel, testId }: { label: string; period: SpendPeriod; prevLabel: string; testId: string }) {
  const locale = useLocale();
  const change = percentChange(period.current, period.previous);
  const dir = change === null ? 'flat' : change > 0 ? 'up' : change < 0 ? 'down' : 'flat';
  return (
    <div className="stat">
      <div className="stat-label">{label}</div>
      <div className="stat-value">
        <Money usd={period.current} testId={testId} />
      </div>
      <div className="stat-sub">
        <span className={`delta delta-${dir}`} data-testid={`${testId}-change`}>
          {change === null ? (isZeroUsd(period.current) ? 'no spend' : 'new spend') : `${dir === 'up' ? '▲' : dir === 'down' ? '▼' : ''} ${formatPercent(Math.abs(change))}`}
        </span>{' '}
        vs {prevLabel} ({formatUsd(period.previous, locale)}) · {formatCountOf(period.calls, 'call', locale)}
      </div>
    </div>
  );
}

function ChartControls() {
  const groupBy = useApp((s) => s.groupBy);
  const granularity = useApp((s) => s.granularity);
  const setGroupBy = useApp((s) => s.setGroupBy);
  const setGranularity = useApp((s) => s.setGranularity);
  return (
    <>
      <Segmented<GroupBy>
        label="Group by"
        value={groupBy}
        onChange={setGroupBy}
        testId="chart-groupby"
        options={[
          { value: 'model', label: 'Model' },
          { value: 'provider', label: 'Provider' },
          { value: 'project', label: 'Project' },
        ]}
      />
      <Segmented
        label="Granularity"
        value={granularity}
        onChange={setGranularity}
        testId="chart-granularity"
        options={[
          { value: 'day', label: '30 days' },
          { value: 'hour', label: '48 hours' },
        ]}
      />
    </>
  );
}

function TopList({ groups, none = 'none' }: { groups: ReportGroup[]; none?: string }) {
  const locale = useLocale();
  if (groups.length === 0) return <p className="muted">Nothing this month yet.</p>;
  const max = groups.reduce((m, g) => (compareUsd(g.cost, m) > 0 ? g.cost : m), '0');
  return (
    <table className="table top-list">
      <thead>
        <tr>
          <th scope="col">Name</th>
          <th scope="col" className="num">
            Calls
          </th>
          <th scope="col" className="num">
            Cost
          </th>
        </tr>
      </thead>
      <tbody>
        {groups.map((g) => (
          <tr key={g.key}>
            <td>
              <div className="top-name">{g.key === '(none)' ? <span className="muted">{none}</span> : g.key}</div>
              <div className="mini-bar" aria-hidden="true">
                <span style={{ width: `${ratioPercent(g.cost, max)}%` }} />
              </div>
            </td>
            <td className="num">{formatCount(g.calls, locale)}</td>
            <td className="num" data-testid="top-cost">
              {g.unpriced && g.unpriced >= g.calls ? (
                <Badge tone="warn">unpriced</Badge>
              ) : (
                <>
                  <Money usd={g.cost} />
                  {g.unpriced ? <div className="muted small">+ {formatCount(g.unpriced, locale)} unpriced</div> : null}
                </>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
