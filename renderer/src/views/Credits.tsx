import { lazy, Suspense, useEffect, useState } from 'react';
import type { ReconcileResult } from '../../../shared/api.ts';
import { toApiCallError, type ApiCallError } from '../bridge/errors.ts';
import { Badge, Card, Empty, ErrorNote, Loading, Money, PageHeader, useAsync } from '../components/ui.tsx';
import { useBridge } from '../store.ts';

const DiffChart = lazy(() => import('../components/DiffChart.tsx'));
const PROVIDERS = ['openai', 'anthropic', 'openrouter', 'gemini', 'fal', 'replicate'];

function inAYear(): string {
  const d = new Date();
  d.setUTCFullYear(d.getUTCFullYear() + 1);
  return d.toISOString().slice(0, 10);
}

export function CreditsView() {
  const bridge = useBridge();
  const credits = useAsync(() => bridge.credits({}), [bridge]);
  const [form, setForm] = useState({ provider: 'openai', amount: '', expires: inAYear(), effective: '', priority: '50', promo: false, note: '' });
  const [error, setError] = useState<ApiCallError | null>(null);
  const [busy, setBusy] = useState(false);
  const [confirm, setConfirm] = useState<string | null>(null);

  // grants and calls from other devices (sync) change the balances: refresh, at most every 2 s
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | null = null;
    const off = bridge.subscribe((e) => {
      if ((e.type === 'caps' || e.type === 'alert') && !timer) timer = setTimeout(() => { timer = null; void credits.reload(); }, 2000);
    });
    return () => {
      off();
      if (timer) clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [bridge]);

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setBusy(true);
    try {
      await bridge.addCredit({
        provider: form.provider, amount: form.amount.trim(), expires: form.expires, effective: form.effective || null,
        priority: Number(form.priority), promo: form.promo, note: form.note.trim() || null,
      });
      setForm({ ...form, amount: '', note: '' });
      setError(null);
      void credits.reload();
    } catch (err) {
      setError(toApiCallError(err));
    } finally {
      setBusy(false);
    }
  };
  const remove = async (id: string) => {
    setConfirm(null);
    try {
      await bridge.removeCredit({ id });
      void credits.reload();
    } catch (err) {
      setError(toApiCallError(err));
    }
  };

  return (
    <>
      <PageHeader
        title="Credits"
        sub="Prepaid credits per provider: what is left, how fast it goes, and what would expire unused. Burn order: priority (lower first), soonest expiry, promotional before paid, oldest, then id. Dates are UTC."
      />
      {credits.error ? <ErrorNote error={credits.error} /> : null}
      {!credits.data ? (
        <Loading />
      ) : credits.data.providers.length === 0 ? (
        <Card testId="credits-empty">
          <Empty title="No credits recorded">
            <p className="muted">Record what you bought (or were given) below; Tollgate draws every metered call from it in burn order.</p>
          </Empty>
        </Card>
      ) : (
        <div className="grid-2">
          {credits.data.providers.map((p) => (
            <Card key={p.provider} title={p.provider} className="span-2" testId={`credits-${p.provider}`}>
              <div className="stats">
                <div className="stat">
                  <div className="stat-label">Balance</div>
                  <div className="stat-value">
                    <Money usd={p.balance} testId={`credits-balance-${p.provider}`} />
                  </div>
                </div>
                <div className="stat">
                  <div className="stat-label">Burn (7 days)</div>
                  <div className="stat-value">
                    <Money usd={p.burnPerDay} /> <span className="muted small">/ day</span>
                  </div>
                </div>
                <div className="stat">
                  <div className="stat-label">Runway</div>
                  <div className="stat-value" data-testid={`credits-runway-${p.provider}`}>
                    {p.runwayDays === null ? '—' : `${p.runwayDays} days`}
                  </div>
                </div>
                <div className="stat">
                  <div className="stat-label">Not covered by credits</div>
                  <div className="stat-value">
                    <Money usd={p.uncovered} testId={`credits-uncovered-${p.provider}`} />
                  </div>
                </div>
              </div>
              <p data-testid={`credits-summary-${p.provider}`}>{p.summary}</p>
              <table className="table">
                <thead>
                  <tr>
                    <th scope="col">Grant</th>
                    <th scope="col" className="num">Amount</th>
                    <th scope="col" className="num">Used</th>
                    <th scope="col" className="num">Left</th>
                    <th scope="col">Usable</th>
                    <th scope="col">Priority</th>
                    <th scope="col">State</th>
                    <th scope="col" />
                  </tr>
                </thead>
                <tbody>
                  {p.grants.map((g) => (
                    <tr key={g.id} data-testid={`grant-${g.id}`}>
                      <td>
                        <code>{g.id}</code> {g.promo ? <Badge tone="info">promo</Badge> : <Badge>paid</Badge>}
                        {g.note ? <div className="muted small">{g.note}</div> : null}
                      </td>
                      <td className="num">
                        <Money usd={g.amount} />
                      </td>
                      <td className="num">
                        <Money usd={g.drawn} />
                      </td>
                      <td className="num">{g.state === 'expired' ? <span className="muted">expired unused <Money usd={g.expiredUnused} /></span> : <Money usd={g.remaining} testId={`grant-left-${g.id}`} />}</td>
                      <td className="small">
                        {g.effective} → {g.expires}
                      </td>
                      <td>{g.priority}</td>
                      <td>
                        <Badge tone={g.state === 'active' ? 'good' : g.state === 'used' ? 'warn' : g.state === 'expired' ? 'bad' : 'neutral'}>{g.state}</Badge>
                      </td>
                      <td className="row-actions">
                        {confirm === g.id ? (
                          <>
                            <button type="button" className="btn btn-small btn-danger" onClick={() => void remove(g.id)} data-testid={`grant-remove-confirm-${g.id}`}>
                              Remove
                            </button>
                            <button type="button" className="btn btn-small" onClick={() => setConfirm(null)}>
                              Keep
                            </button>
                          </>
                        ) : (
                          <button type="button" className="btn btn-small" onClick={() => setConfirm(g.id)} data-testid={`grant-remove-${g.id}`}>
                            Remove…
                          </button>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </Card>
          ))}
        </div>
      )}
      <div className="grid-2">
        <Card title="Add credits" testId="credit-form-card">
          <form className="form" onSubmit={(e) => void submit(e)} noValidate data-testid="credit-form">
            <div className="form-grid">
              <label>
                Provider
                <select value={form.provider} onChange={(e) => setForm({ ...form, provider: e.target.value })} data-testid="credit-provider">
                  {PROVIDERS.map((p) => (
                    <option key={p}>{p}</option>
                  ))}
                </select>
              </label>
              <label>
                Amount (USD)
                <input value={form.amount} inputMode="decimal" onChange={(e) => setForm({ ...form, amount: e.target.value })} placeholder="50" data-testid="credit-amount" />
              </label>
              <label>
                Expires (last usable day)
                <input type="date" value={form.expires} onChange={(e) => setForm({ ...form, expires: e.target.value })} data-testid="credit-expires" />
              </label>
              <label>
                Effective <span className="muted">(default today)</span>
                <input type="date" value={form.effective} onChange={(e) => setForm({ ...form, effective: e.target.value })} data-testid="credit-effective" />
              </label>
              <label>
                Priority <span className="muted">(0–100, lower burns first)</span>
                <input value={form.priority} inputMode="numeric" onChange={(e) => setForm({ ...form, priority: e.target.value })} data-testid="credit-priority" />
              </label>
              <label className="check">
                <input type="checkbox" checked={form.promo} onChange={(e) => setForm({ ...form, promo: e.target.checked })} data-testid="credit-promo" /> Promotional credit
              </label>
              <label className="span-all">
                Note <span className="muted">(optional)</span>
                <input value={form.note} onChange={(e) => setForm({ ...form, note: e.target.value })} placeholder="invoice 2026-118" data-testid="credit-note" />
              </label>
            </div>
            <ErrorNote error={error} />
            <div className="row">
              <button type="submit" className="btn btn-primary" disabled={busy} data-testid="credit-add">
                Add credits
              </button>
            </div>
          </form>
        </Card>
        <Reconcile />
      </div>
    </>
  );
}

function Reconcile() {
  const bridge = useBridge();
  const [provider, setProvider] = useState<'openai' | 'anthropic' | 'openrouter'>('openai');
  const [result, setResult] = useState<ReconcileResult | null>(null);
  const [error, setError] = useState<ApiCallError | null>(null);
  const [busy, setBusy] = useState(false);

  const onFile = async (file: File | undefined) => {
    if (!file) return;
    setBusy(true);
    try {
      setResult(await bridge.reconcile({ provider, csv: await file.text() }));
      setError(null);
    } catch (err) {
      setResult(null);
      setError(toApiCallError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Card title="Reconcile with the provider's bill" className="span-2" testId="reconcile-card">
      <p className="muted small">
        Import OpenAI's cost or usage export, Anthropic's usage or cost export, or OpenRouter's activity export (CSV). Each day × model matches within max(1 %, $0.01).
      </p>
      <div className="form-grid">
        <label>
          Provider
          <select value={provider} onChange={(e) => setProvider(e.target.value as typeof provider)} data-testid="reconcile-provider">
            <option>openai</option>
            <option>anthropic</option>
            <option>openrouter</option>
          </select>
        </label>
        <label>
          Export (CSV)
          <input type="file" accept=".csv,text/csv" disabled={busy} onChange={(e) => void onFile(e.target.files?.[0])} data-testid="reconcile-file" />
        </label>
      </div>
      <ErrorNote error={error} />
      {result ? (
        <div data-testid="reconcile-result">
          <p>
            {result.label}
            {result.pricedByTollgate ? ' (token counts priced with Tollgate’s catalog)' : ''}, {result.from} to {result.to}:{' '}
            {result.mismatches ? <Badge tone="bad">{result.mismatches} not matching</Badge> : <Badge tone="good">everything matches</Badge>}
          </p>
          <p>
            Tollgate <Money usd={result.tollgateTotal} /> · provider <Money usd={result.providerTotal} /> · difference <Money usd={result.difference} signed />
          </p>
          <p data-testid="reconcile-unmetered">
            Billed by the provider but not metered: <Money usd={result.unmetered} />
          </p>
          <Suspense fallback={null}>
            <DiffChart daily={result.daily} />
          </Suspense>
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Day</th>
                <th scope="col">Model</th>
                <th scope="col" className="num">Tollgate</th>
                <th scope="col" className="num">Provider</th>
                <th scope="col" className="num">Difference</th>
                <th scope="col">Status</th>
              </tr>
            </thead>
            <tbody>
              {result.rows.map((r) => (
                <tr key={`${r.day}-${r.model}`} className={r.status === 'match' ? '' : 'row-warn'} data-testid={`reconcile-row-${r.day}-${r.model}`}>
                  <td>{r.day}</td>
                  <td>{r.model}</td>
                  <td className="num">
                    <Money usd={r.tollgate} />
                  </td>
                  <td className="num">{r.provider === null ? <span className="muted">no price</span> : <Money usd={r.provider} />}</td>
                  <td className="num">
                    <Money usd={r.difference} signed />
                  </td>
                  <td>
                    <Badge tone={r.status === 'match' ? 'good' : 'bad'}>{r.status === 'unmetered' ? 'billed by the provider but not metered' : r.status === 'not billed' ? 'metered but not billed' : r.status}</Badge>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {result.generations ? (
            <>
              <p data-testid="reconcile-generations">
                Joined per generation id: {result.generations.counts.matched} matched · {result.generations.counts.costDiffers} cost differs ·{' '}
                {result.generations.counts.billedNotMetered} billed by the provider but not metered · {result.generations.counts.meteredNotBilled} metered but not billed
              </p>
              {result.generations.unmatched.length ? (
                <table className="table" data-testid="reconcile-generations-table">
                  <thead>
                    <tr>
                      <th scope="col">Generation</th>
                      <th scope="col">Day</th>
                      <th scope="col">Model</th>
                      <th scope="col" className="num">Tollgate</th>
                      <th scope="col" className="num">Provider</th>
                      <th scope="col" className="num">Difference</th>
                      <th scope="col">Status</th>
                    </tr>
                  </thead>
                  <tbody>
                    {result.generations.unmatched.map((g) => (
                      <tr key={`${g.generationId ?? ''}-${g.callId ?? ''}`} className="row-warn" data-testid={`reconcile-gen-${g.generationId ?? g.callId}`}>
                        <td>
                          <code>{g.generationId ?? 'no id'}</code>
                          {g.callId ? <div className="muted">call {g.callId}</div> : null}
                        </td>
                        <td>{g.day}</td>
                        <td>{g.model}</td>
                        <td className="num">{g.tollgate === null ? <span className="muted">—</span> : <Money usd={g.tollgate} />}</td>
                        <td className="num">{g.provider === null ? <span className="muted">—</span> : <Money usd={g.provider} />}</td>
                        <td className="num">
                          <Money usd={g.difference} signed />
                        </td>
                        <td>
                          <Badge tone="bad">{g.status}</Badge>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              ) : null}
            </>
          ) : null}
        </div>
      ) : null}
    </Card>
  );
}
