import { useEffect, useState } from 'react';
import type { Cap, CapInput, CapPeriod, CapScopeType } from '../../../shared/api.ts';
import { toApiCallError, type ApiCallError } from '../bridge/errors.ts';
import { Badge, CapBar, Card, Empty, ErrorNote, Loading, PageHeader, useAsync, useLocale } from '../components/ui.tsx';
import { formatDateTime, formatUsd } from '../format.ts';
import { apiArgSchemas } from '../../../shared/schemas.ts';
import { useApp, useBridge } from '../store.ts';

const SCOPES: { value: CapScopeType; label: string; placeholder: string }[] = [
  { value: 'global', label: 'Everything', placeholder: '' },
  { value: 'provider', label: 'Provider', placeholder: 'openai' },
  { value: 'project', label: 'Project', placeholder: 'acme' },
  { value: 'key', label: 'Local key', placeholder: 'key name' },
  { value: 'model', label: 'Model', placeholder: 'openai:gpt-4o-mini' },
  { value: 'workflow', label: 'Workflow', placeholder: 'thumbnail-pipeline' },
];

interface FormState {
  id?: string;
  scope: CapScopeType;
  scopeValue: string;
  period: CapPeriod;
  limit: string;
  thresholds: string;
  hard: boolean;
}
const EMPTY_FORM: FormState = { scope: 'global', scopeValue: '', period: 'month', limit: '', thresholds: '50,80,100', hard: true };

type FieldErrors = Partial<Record<'scopeValue' | 'limit' | 'thresholds', string>>;

/**
 * Turn the form into a CapInput and check it with the engine's own schema (shared/schemas.ts), so
 * the form refuses exactly what the engine would; messages are shown in plain words by the field.
 */
export function validateCapForm(f: FormState): { input: CapInput & { id?: string } } | { errors: FieldErrors } {
  const errors: FieldErrors = {};
  const parts = f.thresholds.split(',').map((s) => s.trim()).filter(Boolean);
  const alerts: number[] = [];
  for (const p of parts) {
    if (!/^\d+$/.test(p)) {
      errors.thresholds = `"${p}" is not a whole percent, e.g. 50,80,100`;
      break;
    }
    alerts.push(Number(p));
  }
  const input: CapInput & { id?: string } = {
    ...(f.id ? { id: f.id } : {}),
    scope: f.scope,
    scopeValue: f.scope === 'global' ? null : f.scopeValue.trim() || null,
    period: f.period,
    limit: f.limit.trim().replace(/^\$/, ''),
    alerts: [...new Set(alerts)].sort((a, b) => a - b),
    hard: f.hard,
  };
  const r = apiArgSchemas.setCap.safeParse(input);
  if (!r.success) {
    for (const issue of r.error.issues) {
      const field = issue.path[0];
      const key: keyof FieldErrors | null = field === 'limit' ? 'limit' : field === 'alerts' ? 'thresholds' : field === 'scopeValue' ? 'scopeValue' : null;
      if (key && !errors[key]) errors[key] = plainMessage(key, issue.message);
    }
    if (Object.keys(errors).length === 0) errors.limit = plainMessage('limit', r.error.issues[0]?.message ?? 'is not valid');
  }
  if (Object.keys(errors).length) return { errors };
  return { input };
}

const FIELD_WORDS: Record<keyof FieldErrors, string> = { limit: 'The limit', thresholds: 'Each alert threshold', scopeValue: 'The name' };

/** "must be greater than zero" → "The limit must be greater than zero" (no codes, no JSON words). */
function plainMessage(field: keyof FieldErrors, message: string): string {
  const m = message.replace(/decimal string/g, 'amount in USD').replace(/"(\d[\d.]*)"/g, '$1');
  return /^(must|is|has)\b/.test(m) ? `${FIELD_WORDS[field]} ${m}` : m;
}

export function BudgetsView() {
  const bridge = useBridge();
  const locale = useLocale();
  const tz = useApp((s) => s.settings?.timeZone);
  const paused = useApp((s) => s.paused);
  const setPaused = useApp((s) => s.setPaused);
  const caps = useAsync(() => bridge.caps({}), [bridge]);
  const alerts = useAsync(() => bridge.alerts({ limit: 100 }), [bridge]);
  const [form, setForm] = useState<FormState>(EMPTY_FORM);
  const [touched, setTouched] = useState(false);
  const [saveError, setSaveError] = useState<ApiCallError | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [confirmDelete, setConfirmDelete] = useState<string | null>(null);
  const [pauseError, setPauseError] = useState<ApiCallError | null>(null);

  useEffect(
    () =>
      bridge.subscribe((e) => {
        if (e.type === 'caps') caps.setData(e.caps);
        if (e.type === 'alert') void alerts.reload();
      }),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [bridge],
  );

  const v = validateCapForm(form);
  const errs: FieldErrors = touched && 'errors' in v ? v.errors : {};
  const set = (patch: Partial<FormState>) => {
    setForm((f) => ({ ...f, ...patch }));
    setSaved(null);
  };

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    setTouched(true);
    if (!('input' in v)) return; // invalid: nothing is sent
    try {
      const cap = await bridge.setCap(v.input);
      setSaveError(null);
      setSaved(form.id ? 'Cap updated.' : 'Cap created.');
      setForm(EMPTY_FORM);
      setTouched(false);
      void caps.reload();
      useApp.getState().scheduleOverviewRefresh();
      return cap;
    } catch (err) {
      setSaveError(toApiCallError(err));
    }
  };

  const edit = (c: Cap) => {
    setForm({ id: c.id, scope: c.scope, scopeValue: c.scopeValue ?? '', period: c.period, limit: c.limit, thresholds: c.alerts.join(','), hard: c.hard });
    setTouched(false);
    setSaved(null);
    document.getElementById('cap-form')?.scrollIntoView({ block: 'nearest' });
    document.getElementById('cap-limit')?.focus();
  };

  const remove = async (id: string) => {
    setConfirmDelete(null);
    try {
      await bridge.removeCap({ id });
      void caps.reload();
      useApp.getState().scheduleOverviewRefresh();
    } catch (err) {
      setSaveError(toApiCallError(err));
    }
  };

  const togglePause = async () => {
    try {
      await setPaused(!paused);
      setPauseError(null);
    } catch (err) {
      setPauseError(toApiCallError(err));
    }
  };

  const scopeMeta = SCOPES.find((s) => s.value === form.scope)!;
  return (
    <>
      <PageHeader title="Budgets" sub="Caps block calls (or just alert) when spend reaches a limit. Reserved = in-flight calls counted before they finish." />
      <div className={`pause-panel ${paused ? 'is-paused' : ''}`}>
        <div>
          <h2>{paused ? 'All calls are paused' : 'Calls are flowing'}</h2>
          <p className="muted">{paused ? 'Every request through the proxy is refused with HTTP 402 until you resume.' : 'Emergency stop: pause refuses every request through the proxy, whatever the caps say.'}</p>
          <ErrorNote error={pauseError} />
        </div>
        <button
          type="button"
          role="switch"
          aria-checked={paused}
          aria-label="Pause all calls"
          className={`big-switch ${paused ? 'on' : ''}`}
          onClick={() => void togglePause()}
          data-testid="pause-switch"
        >
          <span className="big-switch-track" aria-hidden="true">
            <span className="big-switch-thumb" />
          </span>
          <span>
            Pause all calls: <strong data-testid="pause-state">{paused ? 'on' : 'off'}</strong>
          </span>
        </button>
      </div>

      <div className="grid-2">
        <Card title="Caps" testId="caps-list">
          {caps.error ? <ErrorNote error={caps.error} /> : null}
          {!caps.data ? (
            <Loading />
          ) : caps.data.length === 0 ? (
            <Empty title="No caps yet">
              <p className="muted">Start with one global monthly cap, e.g. $100 blocking at the limit with alerts at 50 %, 80 % and 100 %.</p>
            </Empty>
          ) : (
            <ul className="cap-list">
              {caps.data.map((st) => (
                <li key={st.cap.id} className={form.id === st.cap.id ? 'editing' : ''}>
                  <CapBar status={st} />
                  <div className="cap-actions">
                    <span className="muted small">alerts at {st.cap.alerts.map((a) => `${a}%`).join(', ') || 'none'}</span>
                    <span className="grow" />
                    <button type="button" className="btn btn-small" onClick={() => edit(st.cap)} data-testid={`cap-edit-${st.cap.id}`}>
                      Edit
                    </button>
                    {confirmDelete === st.cap.id ? (
                      <>
                        <button type="button" className="btn btn-small btn-danger" onClick={() => void remove(st.cap.id)} data-testid={`cap-delete-confirm-${st.cap.id}`}>
                          Delete cap
                        </button>
                        <button type="button" className="btn btn-small" onClick={() => setConfirmDelete(null)}>
                          Cancel
                        </button>
                      </>
                    ) : (
                      <button type="button" className="btn btn-small" onClick={() => setConfirmDelete(st.cap.id)} data-testid={`cap-delete-${st.cap.id}`}>
                        Delete
                      </button>
                    )}
                  </div>
                </li>
              ))}
            </ul>
          )}
        </Card>

        <Card title={form.id ? 'Edit cap' : 'New cap'} testId="cap-form-card">
          <form id="cap-form" className="form" onSubmit={(e) => void submit(e)} noValidate data-testid="cap-form">
            <div className="form-grid">
              <label>
                Applies to
                <select value={form.scope} onChange={(e) => set({ scope: e.target.value as CapScopeType })} data-testid="cap-scope">
                  {SCOPES.map((s) => (
                    <option key={s.value} value={s.value}>
                      {s.label}
                    </option>
                  ))}
                </select>
              </label>
              <label>
                {form.scope === 'global' ? 'Value' : scopeMeta.label}
                <input
                  value={form.scope === 'global' ? '' : form.scopeValue}
                  disabled={form.scope === 'global'}
                  placeholder={form.scope === 'global' ? 'all calls' : scopeMeta.placeholder}
                  onChange={(e) => set({ scopeValue: e.target.value })}
                  aria-invalid={errs.scopeValue ? true : undefined}
                  aria-describedby={errs.scopeValue ? 'err-scope' : undefined}
                  data-testid="cap-scope-value"
                />
                {errs.scopeValue ? (
                  <span className="field-error" id="err-scope" role="alert" data-testid="cap-scope-value-error">
                    {errs.scopeValue}
                  </span>
                ) : null}
              </label>
              <label>
                Period
                <select value={form.period} onChange={(e) => set({ period: e.target.value as CapPeriod })} data-testid="cap-period">
                  <option value="day">Day</option>
                  <option value="week">Week</option>
                  <option value="month">Month</option>
                  <option value="total">Total (never resets)</option>
                </select>
              </label>
              <label>
                Limit (USD)
                <input
                  id="cap-limit"
                  inputMode="decimal"
                  value={form.limit}
                  placeholder="100"
                  onChange={(e) => set({ limit: e.target.value })}
                  aria-invalid={errs.limit ? true : undefined}
                  aria-describedby={errs.limit ? 'err-limit' : undefined}
                  data-testid="cap-limit"
                />
                {errs.limit ? (
                  <span className="field-error" id="err-limit" role="alert" data-testid="cap-limit-error">
                    {errs.limit}
                  </span>
                ) : null}
              </label>
              <label>
                Alert at (%)
                <input
                  value={form.thresholds}
                  placeholder="50,80,100"
                  onChange={(e) => set({ thresholds: e.target.value })}
                  aria-invalid={errs.thresholds ? true : undefined}
                  aria-describedby={errs.thresholds ? 'err-th' : 'hint-th'}
                  data-testid="cap-thresholds"
                />
                {errs.thresholds ? (
                  <span className="field-error" id="err-th" role="alert" data-testid="cap-thresholds-error">
                    {errs.thresholds}
                  </span>
                ) : (
                  <span className="hint" id="hint-th">
                    comma-separated, 1–100
                  </span>
                )}
              </label>
              <fieldset className="radio-group">
                <legend>At the limit</legend>
                <label className="check">
                  <input type="radio" name="hard" checked={form.hard} onChange={() => set({ hard: true })} data-testid="cap-hard" /> Block calls
                </label>
                <label className="check">
                  <input type="radio" name="hard" checked={!form.hard} onChange={() => set({ hard: false })} data-testid="cap-alert-only" /> Alert only
                </label>
              </fieldset>
            </div>
            <ErrorNote error={saveError} />
            {saved ? (
              <p className="ok-note" role="status">
                {saved}
              </p>
            ) : null}
            <div className="row">
              <button type="submit" className="btn btn-primary" data-testid="cap-save">
                {form.id ? 'Save changes' : 'Create cap'}
              </button>
              {form.id ? (
                <button
                  type="button"
                  className="btn"
                  onClick={() => {
                    setForm(EMPTY_FORM);
                    setTouched(false);
                  }}
                >
                  Cancel edit
                </button>
              ) : null}
            </div>
          </form>
        </Card>

        <Card title="Alert history" className="span-2" testId="alert-history">
          {alerts.error ? <ErrorNote error={alerts.error} /> : null}
          {!alerts.data ? (
            <Loading />
          ) : alerts.data.length === 0 ? (
            <p className="muted">No alerts yet.</p>
          ) : (
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Cap</th>
                  <th scope="col">Period</th>
                  <th scope="col">Threshold</th>
                  <th scope="col" className="num">
                    Spent / limit
                  </th>
                </tr>
              </thead>
              <tbody>
                {alerts.data.map((a) => (
                  <tr key={a.id} data-testid="alert-row">
                    <td className="small">{formatDateTime(a.ts, tz, locale)}</td>
                    <td>{a.capLabel}</td>
                    <td className="mono small">{a.periodKey}</td>
                    <td>{a.kind === 'credit' ? <Badge tone="warn">credits</Badge> : a.kind === 'blocked' ? <Badge tone="bad">blocked at {a.threshold}%</Badge> : <Badge tone={a.threshold >= 80 ? 'warn' : 'info'}>{a.threshold}%</Badge>}</td>
                    <td className="num">
                      {formatUsd(a.spent, locale)} / {formatUsd(a.limit, locale)}
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
