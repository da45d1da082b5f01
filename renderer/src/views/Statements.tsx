import { useState } from 'react';
import type { Statement, StatementFormat } from '../../../shared/api.ts';
import { toApiCallError, type ApiCallError } from '../bridge/errors.ts';
import { Badge, Card, downloadText, Empty, ErrorNote, Loading, Money, PageHeader, useAsync } from '../components/ui.tsx';
import { useBridge } from '../store.ts';

const thisMonth = () => new Date().toISOString().slice(0, 7);

export function StatementsView() {
  const bridge = useBridge();
  const list = useAsync(() => bridge.statements({}), [bridge]);
  const [form, setForm] = useState({ project: '', period: thisMonth(), markup: '', fee: '' });
  const [shown, setShown] = useState<Statement | null>(null);
  const [error, setError] = useState<ApiCallError | null>(null);
  const [busy, setBusy] = useState(false);

  const args = (f = form) => ({ project: f.project.trim(), period: f.period.trim(), ...(f.markup.trim() ? { markup: f.markup.trim() } : {}), ...(f.fee.trim() ? { fee: f.fee.trim() } : {}) });
  const show = async (f = form) => {
    setBusy(true);
    try {
      const r = await bridge.statement({ ...args(f), format: 'json' });
      setShown(r.statement);
      setError(null);
      void list.reload();
    } catch (err) {
      setShown(null);
      setError(toApiCallError(err));
    } finally {
      setBusy(false);
    }
  };
  const download = async (format: StatementFormat) => {
    if (!shown) return;
    try {
      const r = await bridge.statement({ project: shown.project, period: shown.period, format });
      const type = format === 'csv' ? 'text/csv' : format === 'html' ? 'text/html' : 'application/json';
      downloadText(`statement-${shown.project}-${shown.period}.${format}`, r.content, type);
    } catch (err) {
      setError(toApiCallError(err));
    }
  };

  return (
    <>
      <PageHeader
        title="Statements"
        sub="What to bill each client (project) per day, ISO week or month (UTC). A period stays open 48 h after it ends, then closes for good with a SHA-256; later calls land in the next open statement as prior-period adjustments."
      />
      <div className="grid-2">
        <Card title="Statement" className="span-2" testId="statement-card">
          <form
            className="form"
            noValidate
            data-testid="statement-form"
            onSubmit={(e) => {
              e.preventDefault();
              void show();
            }}
          >
            <div className="form-grid">
              <label>
                Project
                <input value={form.project} onChange={(e) => setForm({ ...form, project: e.target.value })} placeholder="acme" data-testid="statement-project" />
              </label>
              <label>
                Period <span className="muted">(2026-11, 2026-W48 or 2026-11-30)</span>
                <input value={form.period} onChange={(e) => setForm({ ...form, period: e.target.value })} data-testid="statement-period" />
              </label>
              <label>
                Markup % <span className="muted">(optional)</span>
                <input value={form.markup} inputMode="decimal" onChange={(e) => setForm({ ...form, markup: e.target.value })} placeholder="15" data-testid="statement-markup" />
              </label>
              <label>
                Fixed fee USD <span className="muted">(optional)</span>
                <input value={form.fee} inputMode="decimal" onChange={(e) => setForm({ ...form, fee: e.target.value })} placeholder="5" data-testid="statement-fee" />
              </label>
            </div>
            <ErrorNote error={error} />
            <div className="row">
              <button type="submit" className="btn btn-primary" disabled={busy} data-testid="statement-show">
                Show statement
              </button>
            </div>
          </form>
          {shown ? <StatementTable s={shown} onDownload={(f) => void download(f)} /> : null}
        </Card>
        <Card title="Open and closed statements" className="span-2" testId="statements-list">
          {list.error ? <ErrorNote error={list.error} /> : null}
          {!list.data ? (
            <Loading />
          ) : list.data.length === 0 ? (
            <Empty title="No statements yet">
              <p className="muted">Calls made with a project (a key bound to a project, or the x-tollgate-project header) make statements.</p>
            </Empty>
          ) : (
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">Project</th>
                  <th scope="col">Period</th>
                  <th scope="col">Status</th>
                  <th scope="col" className="num">Calls</th>
                  <th scope="col" className="num">Cost</th>
                  <th scope="col" className="num">Billed</th>
                  <th scope="col">Closes / hash</th>
                  <th scope="col" />
                </tr>
              </thead>
              <tbody>
                {list.data.map((r) => (
                  <tr key={`${r.project}-${r.period}`} data-testid={`statement-row-${r.project}-${r.period}`}>
                    <td>{r.project}</td>
                    <td>{r.period}</td>
                    <td>{r.status === 'open' ? <Badge tone="info">open</Badge> : <Badge tone="good">closed</Badge>}</td>
                    <td className="num">{r.calls}</td>
                    <td className="num">
                      <Money usd={r.cost} />
                    </td>
                    <td className="num">
                      <Money usd={r.total} />
                    </td>
                    <td className="small">{r.status === 'open' ? `closes ${r.closesAt.slice(0, 16).replace('T', ' ')} UTC` : <code title={r.hash ?? ''}>{(r.hash ?? '').slice(0, 16)}…</code>}</td>
                    <td>
                      <button
                        type="button"
                        className="btn btn-small"
                        data-testid={`statement-open-${r.project}-${r.period}`}
                        onClick={() => {
                          const f = { project: r.project, period: r.period, markup: '', fee: '' };
                          setForm(f);
                          void show(f);
                        }}
                      >
                        View
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Card>
      </div>
    </>
  );
}

function StatementTable({ s, onDownload }: { s: Statement; onDownload: (f: StatementFormat) => void }) {
  return (
    <div data-testid="statement-view">
      <h3>
        {s.project} — {s.period} {s.status === 'open' ? <Badge tone="info">open: running totals</Badge> : <Badge tone="good">closed {s.closedAt?.slice(0, 16).replace('T', ' ')} UTC</Badge>}
      </h3>
      <table className="table">
        <thead>
          <tr>
            <th scope="col">Item</th>
            <th scope="col" className="num">Quantity</th>
            <th scope="col" className="num">Unit rate</th>
            <th scope="col" className="num">Cost</th>
            <th scope="col" className="num">Markup</th>
            <th scope="col" className="num">Billed</th>
          </tr>
        </thead>
        <tbody>
          {s.lines.map((l, i) => (
            <tr key={i} className={l.kind === 'adjustment' ? 'row-warn' : ''} data-testid="statement-line">
              <td>
                {l.kind === 'fee' ? 'Service fee' : `${l.model}${l.workflow ? ` · ${l.workflow}` : ''}${l.node ? ` · ${l.node}` : ''}`}
                {l.kind === 'fee' ? null : (
                  <div className="muted small">
                    {l.provider} — {l.label}
                    {l.kind === 'adjustment' ? ` — prior-period adjustment for ${l.originalPeriod}` : ''}
                  </div>
                )}
              </td>
              <td className="num">
                {l.quantity} {l.unit}
                {l.quantity === '1' ? '' : 's'}
              </td>
              <td className="num">{l.unitPrice ? `$${l.unitPrice}${l.per > 1 ? ` / ${l.per === 1_000_000 ? '1M' : l.per}` : ''}` : '—'}</td>
              <td className="num">
                <Money usd={l.cost} />
              </td>
              <td className="num">{l.markupPct === '0' ? '' : `${l.markupPct} %`}</td>
              <td className="num" data-testid="statement-line-billed">
                ${l.billed}
              </td>
            </tr>
          ))}
        </tbody>
        <tfoot>
          <tr>
            <td colSpan={3}>
              Total ({s.calls} call{s.calls === 1 ? '' : 's'}
              {s.unpricedCalls ? `, ${s.unpricedCalls} unpriced not billed` : ''})
            </td>
            <td className="num">
              <Money usd={s.cost} />
            </td>
            <td />
            <td className="num" data-testid="statement-total">
              ${s.total}
            </td>
          </tr>
        </tfoot>
      </table>
      {s.hash ? (
        <p className="small muted" data-testid="statement-hash">
          SHA-256 <code>{s.hash}</code>
        </p>
      ) : null}
      <div className="row">
        <button type="button" className="btn btn-small" onClick={() => onDownload('csv')} data-testid="statement-download-csv">
          Download CSV
        </button>
        <button type="button" className="btn btn-small" onClick={() => onDownload('json')} data-testid="statement-download-json">
          Download JSON
        </button>
        <button type="button" className="btn btn-small" onClick={() => onDownload('html')} data-testid="statement-download-html">
          Download printable page (HTML)
        </button>
      </div>
    </div>
  );
}
