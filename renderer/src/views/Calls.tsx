import { useVirtualizer } from '@tanstack/react-virtual';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type { CallRecord, CallsQuery, CallStatus, RunSummary, Usage } from '../../../shared/api.ts';
import { toApiCallError, type ApiCallError } from '../bridge/errors.ts';
import { Badge, Card, downloadText, Empty, ErrorNote, Loading, Money, PageHeader, Tabs, useAsync, useLocale } from '../components/ui.tsx';
import { formatCount, formatDateTime, formatMs, formatPercent, formatQuantity, formatTime, formatUnitPrice, formatUsageSummary, formatUsd, percentChange, subUsd, USAGE_LABELS } from '../format.ts';
import { totalInputTokens, totalOutputTokens } from '../../../shared/usage.ts';
import { useApp, useBridge } from '../store.ts';

const PAGE = 200;
const ROW_HEIGHT = 36;
const STATUSES: CallStatus[] = ['ok', 'error', 'blocked', 'interrupted', 'aborted', 'pending'];
const PROVIDERS = ['openai', 'anthropic', 'gemini', 'openrouter', 'fal', 'replicate'];

export function CallsView() {
  const [tab, setTab] = useState<'calls' | 'runs'>('calls');
  return (
    <>
      <PageHeader title="Calls" sub="Every request that went through the proxy, priced line by line." />
      <Tabs
        label="Calls or workflow runs"
        value={tab}
        onChange={setTab}
        testId="calls-tab"
        tabs={[
          { value: 'calls', label: 'Calls' },
          { value: 'runs', label: 'Runs' },
        ]}
      />
      {tab === 'calls' ? <CallsTable /> : <RunsTable />}
    </>
  );
}

interface Filters {
  provider: string;
  model: string;
  project: string;
  status: '' | CallStatus;
  from: string;
  to: string;
}

const NO_FILTERS: Filters = { provider: '', model: '', project: '', status: '', from: '', to: '' };

/** The engine does the filtering (substring, dates in its time zone); the UI only builds the query. */
function toQuery(f: Filters): CallsQuery {
  return {
    ...(f.provider ? { provider: f.provider } : {}),
    ...(f.model.trim() ? { modelContains: f.model.trim() } : {}),
    ...(f.project.trim() ? { projectContains: f.project.trim() } : {}),
    ...(f.status ? { status: f.status } : {}),
    ...(f.from ? { from: f.from } : {}),
    ...(f.to ? { to: f.to } : {}),
  };
}

const CSV_COLUMNS = ['id', 'time_utc', 'provider', 'model', 'endpoint', 'project', 'key', 'status', 'http_status', 'input_tokens', 'output_tokens', 'cost_usd', 'unpriced', 'estimated', 'duration_ms', 'device'] as const;

function csvCell(v: string | number | boolean | null): string {
  const t = v === null ? '' : String(v);
  // quote per RFC 4180; a leading = + - @ is prefixed so spreadsheets do not run it as a formula
  const safe = /^[=+\-@\t\r]/.test(t) && typeof v === 'string' ? `'${t}` : t;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function callsCsv(calls: CallRecord[]): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const c of calls) {
    lines.push([
      c.id, new Date(c.ts).toISOString(), c.provider, c.model, c.endpoint, c.project, c.keyName, callStatusLabel(c), c.httpStatus,
      totalInputTokens(c.usage), totalOutputTokens(c.usage), c.unpriced ? '' : c.cost, c.unpriced, c.estimated, c.durationMs, c.device ?? null,
    ].map(csvCell).join(','));
  }
  return lines.join('\r\n') + '\r\n';
}

/** "auth error" for calls refused because the key was unknown or revoked (HTTP 401), else the ledger status. */
export function callStatusLabel(c: CallRecord): string {
  return c.httpStatus === 401 && (c.status === 'blocked' || c.status === 'error') ? 'auth error' : c.status;
}

function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}

function CallsTable() {
  const bridge = useBridge();
  const locale = useLocale();
  const tz = useApp((s) => s.settings?.timeZone);
  const [draft, setDraft] = useState<Filters>(NO_FILTERS);
  const [csvBusy, setCsvBusy] = useState(false);
  const filters = useDebounced(draft, 250);
  const [rows, setRows] = useState<CallRecord[]>([]);
  const [hasMore, setHasMore] = useState(true);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<ApiCallError | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [fresh, setFresh] = useState<Set<string>>(new Set());
  const epoch = useRef(0);
  const loadingRef = useRef(false);
  const parentRef = useRef<HTMLDivElement>(null);
  const seenModels = useRef(new Set<string>());

  const query = useMemo<CallsQuery>(() => toQuery(filters), [filters]);
  const filtered = Object.keys(query).length > 0;

  const loadPage = useCallback(
    async (beforeId: string | undefined) => {
      if (loadingRef.current && beforeId) return;
      const my = epoch.current;
      loadingRef.current = true;
      setLoading(true);
      try {
        const page = await bridge.calls({ ...query, limit: PAGE, ...(beforeId ? { beforeId } : {}) });
        if (my !== epoch.current) return;
        for (const c of page) if (c.model) seenModels.current.add(c.model);
        setRows((prev) => {
          const base = beforeId ? prev : [];
          const have = new Set(base.map((c) => c.id));
          return [...base, ...page.filter((c) => !have.has(c.id))];
        });
        setHasMore(page.length === PAGE);
        setError(null);
      } catch (err) {
        if (my === epoch.current) setError(toApiCallError(err));
      } finally {
        if (my === epoch.current) {
          loadingRef.current = false;
          setLoading(false);
        }
      }
    },
    [bridge, query],
  );

  // (re)load from the top when the filters change
  useEffect(() => {
    epoch.current++;
    loadingRef.current = false;
    setRows([]);
    setHasMore(true);
    parentRef.current?.scrollTo({ top: 0 });
    void loadPage(undefined);
  }, [loadPage]);

  // live: new calls are prepended, updated ones (pending → ok) replaced in place. With filters on,
  // the engine decides what matches: the top page is fetched again instead of matching here.
  const filteredRef = useRef(filtered);
  filteredRef.current = filtered;
  const queryRef = useRef(query);
  queryRef.current = query;
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | null = null;
    const markFresh = (ids: string[]) => {
      setFresh((s) => new Set([...s, ...ids]));
      setTimeout(() => setFresh((s) => {
        const n = new Set(s);
        for (const id of ids) n.delete(id);
        return n;
      }), 2000);
    };
    const off = bridge.subscribe((e) => {
      if (e.type !== 'call') return;
      const call = e.call;
      if (!filteredRef.current) {
        setRows((prev) => {
          const i = prev.findIndex((c) => c.id === call.id);
          if (i >= 0) {
            const next = prev.slice();
            next[i] = call;
            return next;
          }
          return [call, ...prev];
        });
        markFresh([call.id]);
        return;
      }
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        const my = epoch.current;
        bridge.calls({ ...queryRef.current, limit: PAGE }).then((top) => {
          if (my !== epoch.current) return;
          setRows((prev) => {
            const ids = new Set(top.map((c) => c.id));
            const oldest = top.length ? top[top.length - 1]!.id : '';
            return [...top, ...prev.filter((c) => !ids.has(c.id) && c.id < oldest)];
          });
          if (top[0]) markFresh([top[0].id]);
        }).catch(() => {
          /* the next event or a filter change tries again */
        });
      }, 200);
    });
    return () => {
      off();
      if (timer) clearTimeout(timer);
    };
  }, [bridge]);

  const downloadCsv = async () => {
    setCsvBusy(true);
    try {
      const all: CallRecord[] = [];
      for (let before: string | undefined; ; ) {
        const page = await bridge.calls({ ...query, limit: 1000, ...(before ? { beforeId: before } : {}) });
        all.push(...page);
        if (page.length < 1000) break;
        before = page[page.length - 1]!.id;
      }
      downloadText(`tollgate-calls${filters.from ? '-from-' + filters.from : ''}${filters.to ? '-to-' + filters.to : ''}.csv`, callsCsv(all), 'text/csv');
      setError(null);
    } catch (err) {
      setError(toApiCallError(err));
    } finally {
      setCsvBusy(false);
    }
  };

  const virtualizer = useVirtualizer({
    count: rows.length + (hasMore ? 1 : 0),
    getScrollElement: () => parentRef.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12,
  });
  const items = virtualizer.getVirtualItems();
  const lastIndex = items.length ? items[items.length - 1]!.index : -1;
  useEffect(() => {
    if (hasMore && !loading && rows.length > 0 && lastIndex >= rows.length - 40) void loadPage(rows[rows.length - 1]!.id);
  }, [lastIndex, hasMore, loading, rows, loadPage]);

  const set = (patch: Partial<Filters>) => setDraft((d) => ({ ...d, ...patch }));
  const anyFilter = Object.values(draft).some(Boolean);

  return (
    <div className={`calls-layout ${selected ? 'with-detail' : ''}`}>
      <div className="calls-main">
        <form className="filters" role="search" aria-label="Filter calls" onSubmit={(e) => e.preventDefault()}>
          <label>
            Provider
            <select value={draft.provider} onChange={(e) => set({ provider: e.target.value })} data-testid="filter-provider">
              <option value="">All</option>
              {PROVIDERS.map((p) => (
                <option key={p}>{p}</option>
              ))}
            </select>
          </label>
          <label>
            Model contains
            <input value={draft.model} onChange={(e) => set({ model: e.target.value })} list="calls-models" placeholder="any" data-testid="filter-model" />
            <datalist id="calls-models">
              {[...seenModels.current].sort().map((m) => (
                <option key={m} value={m} />
              ))}
            </datalist>
          </label>
          <label>
            Project contains
            <input value={draft.project} onChange={(e) => set({ project: e.target.value })} placeholder="any" data-testid="filter-project" />
          </label>
          <label>
            From
            <input type="date" value={draft.from} max={draft.to || undefined} onChange={(e) => set({ from: e.target.value })} data-testid="filter-from" />
          </label>
          <label>
            To
            <input type="date" value={draft.to} min={draft.from || undefined} onChange={(e) => set({ to: e.target.value })} data-testid="filter-to" />
          </label>
          <label>
            Status
            <select value={draft.status} onChange={(e) => set({ status: e.target.value as Filters['status'] })} data-testid="filter-status">
              <option value="">All</option>
              {STATUSES.map((s) => (
                <option key={s}>{s}</option>
              ))}
            </select>
          </label>
          {anyFilter ? (
            <button type="button" className="btn btn-small" onClick={() => setDraft(NO_FILTERS)}>
              Clear
            </button>
          ) : null}
          <button type="button" className="btn btn-small" onClick={() => void downloadCsv()} disabled={csvBusy} data-testid="calls-csv" title="Every call matching these filters, as CSV">
            {csvBusy ? 'Preparing CSV…' : 'Download CSV'}
          </button>
          <span className="muted small filters-count" data-testid="calls-count" aria-live="polite">
            {formatCount(rows.length, locale)}
            {hasMore ? '+' : ''} {rows.length === 1 && !hasMore ? 'call' : 'calls'}{loading ? ' · loading…' : ''}
          </span>
        </form>
        <ErrorNote error={error} />
        <div className="vtable" role="table" aria-label="Calls" aria-rowcount={hasMore ? -1 : rows.length + 1}>
          <div className="vrow vhead" role="row">
            <span role="columnheader">Time{tz ? ` (${tz})` : ''}</span>
            <span role="columnheader">Model</span>
            <span role="columnheader">Project</span>
            <span role="columnheader">Status</span>
            <span role="columnheader">Usage</span>
            <span role="columnheader" className="num">
              Duration
            </span>
            <span role="columnheader" className="num">
              Cost
            </span>
            <span role="columnheader">Device</span>
          </div>
          <div className="vbody" ref={parentRef} data-testid="calls-scroll">
            {rows.length === 0 && !loading && !error ? (
              <Empty title={anyFilter ? 'No calls match these filters' : 'No calls yet'} testId="calls-empty">
                <p className="muted">{anyFilter ? 'Clear a filter to see more.' : 'Calls appear here live as soon as a tool sends one through the proxy.'}</p>
              </Empty>
            ) : null}
            <div style={{ height: virtualizer.getTotalSize(), position: 'relative' }}>
              {items.map((vi) => {
                const c = rows[vi.index];
                if (!c) {
                  return (
                    <div key="more" className="vrow vmore" style={{ transform: `translateY(${vi.start}px)`, height: vi.size }} role="row">
                      <span role="cell">{loading ? 'Loading older calls…' : ''}</span>
                    </div>
                  );
                }
                return (
                  <div
                    key={c.id}
                    role="row"
                    tabIndex={0}
                    aria-selected={selected === c.id}
                    aria-rowindex={vi.index + 2}
                    className={`vrow ${selected === c.id ? 'selected' : ''} ${fresh.has(c.id) ? 'fresh' : ''}`}
                    style={{ transform: `translateY(${vi.start}px)`, height: vi.size }}
                    onClick={() => setSelected(c.id)}
                    onKeyDown={(e) => {
                      if (e.key === 'Enter' || e.key === ' ') {
                        e.preventDefault();
                        setSelected(c.id);
                      }
                    }}
                    data-testid="calls-row"
                    data-call-id={c.id}
                  >
                    <span role="cell" className="mono small">
                      {formatTime(c.ts, tz, locale)}
                    </span>
                    <span role="cell" className="ellipsis" title={`${c.provider}:${c.model ?? ''}`}>
                      <span className="muted">{c.provider}</span> {c.model ?? '—'}
                    </span>
                    <span role="cell" className="ellipsis">
                      {c.project ?? <span className="muted">—</span>}
                    </span>
                    <span role="cell">
                      <StatusBadge call={c} bare />
                    </span>
                    <span role="cell" className="ellipsis small">
                      {usageSummary(c, locale)}
                    </span>
                    <span role="cell" className="num small">
                      {formatMs(c.durationMs)}
                    </span>
                    <span role="cell" className="num">
                      {c.unpriced ? (
                        <Badge tone="warn">unpriced</Badge>
                      ) : c.status === 'blocked' ? (
                        <span className="muted" title="Refused before it reached the provider: nothing to pay">
                          —
                        </span>
                      ) : (
                        <>
                          {c.estimated ? <span className="est" title="Part of the usage was estimated">~</span> : null}
                          <Money usd={c.cost} />
                        </>
                      )}
                    </span>
                    <span role="cell" className="ellipsis small" data-testid="calls-device">
                      {c.device ?? <span className="muted">this</span>}
                    </span>
                  </div>
                );
              })}
            </div>
          </div>
        </div>
      </div>
      {selected ? <CallDetail id={selected} initial={rows.find((r) => r.id === selected)} onClose={() => setSelected(null)} /> : null}
    </div>
  );
}

export function StatusBadge({ call, bare }: { call: CallRecord; bare?: boolean }) {
  const tone = call.status === 'ok' ? 'good' : call.status === 'blocked' || call.status === 'error' ? 'bad' : call.status === 'pending' ? 'info' : 'warn';
  return (
    <span className="status-cell">
      <Badge tone={tone}>{callStatusLabel(call)}</Badge>
      {call.estimated && !bare ? <Badge tone="warn" title="Some usage was estimated">estimated</Badge> : null}
    </span>
  );
}

function usageSummary(c: CallRecord, locale?: string): string {
  return formatUsageSummary(c.usage, locale);
}

function CallDetail({ id, initial, onClose }: { id: string; initial: CallRecord | undefined; onClose: () => void }) {
  const bridge = useBridge();
  const locale = useLocale();
  const tz = useApp((s) => s.settings?.timeZone);
  const { data, error } = useAsync(() => bridge.call({ id }), [id]);
  const c = data ?? initial;
  const closeRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    closeRef.current?.focus();
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && onClose();
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [id, onClose]);
  return (
    <aside className="detail" aria-label="Call details" data-testid="call-detail">
      <header className="detail-head">
        <h2>{c ? `${c.provider}:${c.model ?? '—'}` : 'Call'}</h2>
        <button type="button" className="btn btn-small" onClick={onClose} ref={closeRef} aria-label="Close call details">
          ✕
        </button>
      </header>
      <ErrorNote error={error} />
      {!c ? (
        data === null ? (
          <p className="muted">This call no longer exists.</p>
        ) : (
          <Loading />
        )
      ) : (
        <>
          <div className="detail-cost">
            {c.unpriced ? (
              <span className="money tone-warn" data-testid="detail-cost">
                unpriced
              </span>
            ) : c.status === 'blocked' ? (
              <span className="money muted" data-testid="detail-cost" title="Refused before it reached the provider">
                not charged
              </span>
            ) : (
              <Money usd={c.cost} testId="detail-cost" />
            )}
            <StatusBadge call={c} />
          </div>
          {c.unpriced && c.unpricedReason ? <p className="banner banner-warn">{c.unpricedReason}</p> : null}
          {c.estimated ? <p className="banner banner-warn">Part of the usage was estimated (the response did not report it in full).</p> : null}
          {c.error || c.blockedBy ? (
            <div className="banner banner-bad" data-testid="detail-error">
              {c.blockedBy ? (
                <div>
                  <strong>Blocked by</strong> {c.blockedBy}
                </div>
              ) : null}
              {c.error ? <div>{c.error}</div> : null}
            </div>
          ) : null}
          <h3>Line items</h3>
          {c.items.length === 0 ? (
            <p className="muted">No billable lines.</p>
          ) : (
            <table className="table items" data-testid="detail-items">
              <thead>
                <tr>
                  <th scope="col">Item</th>
                  <th scope="col" className="num">
                    Quantity
                  </th>
                  <th scope="col" className="num">
                    Unit price
                  </th>
                  <th scope="col" className="num">
                    Cost
                  </th>
                </tr>
              </thead>
              <tbody>
                {c.items.map((it, i) => (
                  <tr key={i} title={`priced by ${it.source}`}>
                    <td>{it.label}</td>
                    <td className="num">{formatQuantity(it.quantity, locale)}</td>
                    <td className="num small">{formatUnitPrice(it.unitPrice, it.per, it.unit, locale)}</td>
                    <td className="num">
                      <Money usd={it.cost} />
                    </td>
                  </tr>
                ))}
              </tbody>
              <tfoot>
                <tr>
                  <th scope="row" colSpan={3}>
                    Total
                  </th>
                  <td className="num">
                    <Money usd={c.cost} />
                  </td>
                </tr>
              </tfoot>
            </table>
          )}
          <dl className="kv">
            <dt>Time</dt>
            <dd>{formatDateTime(c.ts, tz, locale)}</dd>
            <dt>Endpoint</dt>
            <dd className="mono">{c.endpoint}</dd>
            <dt>Project</dt>
            <dd>{c.project ?? '—'}</dd>
            <dt>Key</dt>
            <dd>{c.keyName ? `${c.keyName}` : c.keyFingerprint ?? '—'}</dd>
            {c.workflow ? (
              <>
                <dt>Workflow</dt>
                <dd>
                  {c.workflow} · {c.run} · node <code>{c.node}</code>
                </dd>
              </>
            ) : null}
            <dt>HTTP</dt>
            <dd>
              {c.httpStatus ?? '—'}
              {c.stream ? ' · streamed' : ''}
            </dd>
            <dt>Duration</dt>
            <dd>
              {formatMs(c.durationMs)}
              {c.ttfbMs !== null ? ` (first byte ${formatMs(c.ttfbMs)})` : ''}
            </dd>
            <dt>Price source</dt>
            <dd className="mono small">{c.priceSource ?? '—'}</dd>
            {c.reserved !== '0' ? (
              <>
                <dt>Reserved</dt>
                <dd>
                  <Money usd={c.reserved} />
                </dd>
              </>
            ) : null}
            <dt>Call id</dt>
            <dd className="mono small">{c.id}</dd>
          </dl>
          <h3>Usage</h3>
          <dl className="kv" data-testid="detail-usage">
            {(Object.entries(c.usage) as [keyof Usage, number | string][]).map(([k, v]) => (
              <div key={k} className="kv-row">
                <dt>{USAGE_LABELS[k] ?? k}</dt>
                <dd>{typeof v === 'number' ? formatCount(v, locale) : v}</dd>
              </div>
            ))}
          </dl>
        </>
      )}
    </aside>
  );
}

function RunsTable() {
  const bridge = useBridge();
  const locale = useLocale();
  const tz = useApp((s) => s.settings?.timeZone);
  const { data, error, loading } = useAsync(() => bridge.runs({ limit: 100 }), [bridge]);
  const [open, setOpen] = useState<string | null>(null);
  if (error) return <ErrorNote error={error} />;
  if (!data) return loading ? <Loading /> : null;
  if (data.length === 0)
    return (
      <Empty title="No workflow runs yet" testId="runs-empty">
        <p className="muted">
          Tag calls with <code>x-tollgate-workflow</code>, <code>x-tollgate-run</code> and <code>x-tollgate-node</code> headers to see a run&apos;s quoted vs actual cost per node.
        </p>
      </Empty>
    );
  return (
    <Card>
      <table className="table runs" data-testid="runs-table">
        <thead>
          <tr>
            <th scope="col">Workflow</th>
            <th scope="col">Run</th>
            <th scope="col">Started</th>
            <th scope="col" className="num">
              Calls
            </th>
            <th scope="col" className="num">
              Quoted
            </th>
            <th scope="col" className="num">
              Actual
            </th>
            <th scope="col" className="num">
              Δ
            </th>
          </tr>
        </thead>
        <tbody>
          {data.map((r) => (
            <RunRow key={r.run} run={r} open={open === r.run} onToggle={() => setOpen(open === r.run ? null : r.run)} tz={tz} locale={locale} />
          ))}
        </tbody>
      </table>
    </Card>
  );
}

function Delta({ quoted, actual }: { quoted: string | null; actual: string }) {
  if (quoted === null) return <span className="muted">—</span>;
  const p = percentChange(actual, quoted);
  const tone = p === null ? '' : p > 10 ? 'tone-bad' : p < -10 ? 'tone-good' : 'muted';
  return (
    <span className={tone} title={`actual − quoted = ${formatUsd(subUsd(actual, quoted))}`}>
      {formatPercent(p, true)}
    </span>
  );
}

function RunRow({ run, open, onToggle, tz, locale }: { run: RunSummary; open: boolean; onToggle: () => void; tz: string | undefined; locale: string | undefined }) {
  return (
    <>
      <tr data-testid="runs-row" className="clickable">
        <td>
          <button type="button" className="link" aria-expanded={open} onClick={onToggle}>
            {open ? '▾' : '▸'} {run.workflow ?? '(unnamed)'}
          </button>
        </td>
        <td className="mono small">{run.run}</td>
        <td className="small">{formatDateTime(run.started, tz, locale)}</td>
        <td className="num">{run.calls}</td>
        <td className="num">{run.quoted === null ? '—' : <Money usd={run.quoted} />}</td>
        <td className="num">
          <Money usd={run.cost} />
        </td>
        <td className="num">
          <Delta quoted={run.quoted} actual={run.cost} />
        </td>
      </tr>
      {open
        ? run.nodes.map((n) => (
            <tr key={n.node} className="subrow">
              <td colSpan={3}>
                <span className="indent">node</span> <code>{n.node}</code>
              </td>
              <td className="num">{n.calls}</td>
              <td className="num">{n.quoted === null ? '—' : <Money usd={n.quoted} />}</td>
              <td className="num">
                <Money usd={n.cost} />
              </td>
              <td className="num">
                <Delta quoted={n.quoted} actual={n.cost} />
              </td>
            </tr>
          ))
        : null}
    </>
  );
}
