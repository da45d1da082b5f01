import { useEffect, useState } from 'react';
import type { LocalKey } from '../../../shared/api.ts';
import { toApiCallError, type ApiCallError } from '../bridge/errors.ts';
import { Badge, Card, CodeBlock, CopyButton, Empty, ErrorNote, Loading, PageHeader, Tabs, useAsync, useLocale } from '../components/ui.tsx';
import { formatCount, formatCountOf, formatDate, formatDateTime, formatUsd } from '../format.ts';
import { projectSnippet, snippets } from '../snippets.ts';
import { useApp, useBridge } from '../store.ts';

const PROVIDERS = ['openai', 'anthropic', 'gemini', 'openrouter', 'fal', 'replicate'];

export function KeysView() {
  const bridge = useBridge();
  const locale = useLocale();
  const settings = useApp((s) => s.settings);
  const tz = settings?.timeZone;
  const keys = useAsync(() => bridge.keys({}), [bridge]);
  const keyUse = useAsync(() => bridge.usageBy({ by: 'key' }), [bridge]);
  const projectUse = useAsync(() => bridge.usageBy({ by: 'project' }), [bridge]);
  // spend and last use move live with each call
  useEffect(() => {
    let t: ReturnType<typeof setTimeout> | null = null;
    const off = bridge.subscribe((e) => {
      if (e.type !== 'call') return;
      if (t) clearTimeout(t);
      t = setTimeout(() => {
        void keyUse.reload();
        void projectUse.reload();
      }, 200);
    });
    return () => {
      off();
      if (t) clearTimeout(t);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [bridge]);
  const useOfKey = new Map((keyUse.data ?? []).map((u) => [u.key, u]));
  const [form, setForm] = useState({ name: '', provider: 'openai', project: '', secret: '' });
  const [created, setCreated] = useState<{ key: LocalKey; token: string } | null>(null);
  const [error, setError] = useState<ApiCallError | null>(null);
  const [fieldErr, setFieldErr] = useState<{ name?: string; secret?: string }>({});
  const [confirm, setConfirm] = useState<string | null>(null);
  const [snippet, setSnippet] = useState('openai');
  const [busy, setBusy] = useState(false);
  const proxyUrl = settings?.proxyUrl ?? 'http://127.0.0.1:4747';

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    const fe: typeof fieldErr = {};
    if (!form.name.trim()) fe.name = 'Give the key a name you will recognise';
    if (form.secret.trim().length < 8) fe.secret = 'Paste the real provider API key';
    setFieldErr(fe);
    if (Object.keys(fe).length) return;
    setBusy(true);
    try {
      const res = await bridge.addKey({ name: form.name.trim(), provider: form.provider, project: form.project.trim() || null, secret: form.secret.trim() });
      setCreated(res);
      setForm({ name: '', provider: form.provider, project: '', secret: '' });
      setError(null);
      void keys.reload();
    } catch (err) {
      setError(toApiCallError(err));
    } finally {
      setBusy(false);
    }
  };

  const revoke = async (id: string) => {
    setConfirm(null);
    try {
      await bridge.revokeKey({ id });
      void keys.reload();
    } catch (err) {
      setError(toApiCallError(err));
    }
  };

  const all = snippets(proxyUrl);
  const current = all.find((s) => s.id === snippet) ?? all[0]!;
  return (
    <>
      <PageHeader
        title="Projects & keys"
        sub="Local tgk_ keys stand in for your real provider keys: tools get a key that only works through Tollgate, and spend is attributed to a project."
      />
      <div className="grid-2">
        <Card title="Local keys" className="span-2" testId="keys-list">
          {keys.error ? <ErrorNote error={keys.error} /> : null}
          {!keys.data ? (
            <Loading />
          ) : keys.data.length === 0 ? (
            <Empty title="No local keys yet">
              <p className="muted">You can also keep using your real key directly against the proxy; local keys add per-project attribution and an easy kill switch.</p>
            </Empty>
          ) : (
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Provider</th>
                  <th scope="col">Project</th>
                  <th scope="col">Key</th>
                  <th scope="col">Created</th>
                  <th scope="col" className="num">
                    Spent
                  </th>
                  <th scope="col">Last used</th>
                  <th scope="col">Status</th>
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {keys.data.map((k) => (
                  <tr key={k.id} data-testid="key-row" className={k.revokedAt ? 'revoked' : ''}>
                    <td>{k.name}</td>
                    <td>{k.provider}</td>
                    <td>{k.project ?? <span className="muted">—</span>}</td>
                    <td className="mono small" title={`real key fingerprint ${k.fingerprint}`}>
                      {k.prefix}…
                    </td>
                    <td className="small">{formatDate(k.createdAt, tz, locale)}</td>
                    <td className="num" data-testid="key-spent">
                      {formatUsd(useOfKey.get(k.id)?.cost ?? '0', locale)}
                      <div className="muted small">{formatCountOf(useOfKey.get(k.id)?.calls ?? 0, 'call', locale)}</div>
                    </td>
                    <td className="small" data-testid="key-last-used">
                      {useOfKey.get(k.id)?.lastUsed ? formatDateTime(useOfKey.get(k.id)!.lastUsed!, tz, locale) : <span className="muted">never</span>}
                    </td>
                    <td>{k.revokedAt ? <Badge tone="bad">revoked {formatDate(k.revokedAt, tz, locale)}</Badge> : <Badge tone="good">active</Badge>}</td>
                    <td className="num">
                      {k.revokedAt ? null : confirm === k.id ? (
                        <span className="inline-confirm">
                          <span className="small">Revoke? Tools using it stop working.</span>
                          <button type="button" className="btn btn-small btn-danger" onClick={() => void revoke(k.id)} data-testid={`key-revoke-confirm-${k.id}`}>
                            Revoke
                          </button>
                          <button type="button" className="btn btn-small" onClick={() => setConfirm(null)}>
                            Cancel
                          </button>
                        </span>
                      ) : (
                        <button type="button" className="btn btn-small" onClick={() => setConfirm(k.id)} data-testid={`key-revoke-${k.id}`}>
                          Revoke
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Card>

        <Card title="Projects" className="span-2" testId="projects-list">
          {projectUse.error ? <ErrorNote error={projectUse.error} /> : null}
          {!projectUse.data ? (
            <Loading />
          ) : projectUse.data.length === 0 ? (
            <p className="muted">
              No project has spent anything yet. Tag calls with the <code>x-tollgate-project</code> header, a <code>/p/NAME/</code> path prefix, or a local key
              bound to a project (below).
            </p>
          ) : (
            <table className="table">
              <thead>
                <tr>
                  <th scope="col">Project</th>
                  <th scope="col" className="num">
                    Calls
                  </th>
                  <th scope="col" className="num">
                    Spent (all time)
                  </th>
                  <th scope="col">Last used</th>
                </tr>
              </thead>
              <tbody>
                {[...projectUse.data]
                  .sort((a, b) => (b.lastUsed ?? 0) - (a.lastUsed ?? 0))
                  .map((u) => (
                    <tr key={u.key} data-testid="project-row">
                      <td>{u.key}</td>
                      <td className="num">{formatCount(u.calls, locale)}</td>
                      <td className="num">
                        {u.unpriced && u.unpriced >= u.calls ? <Badge tone="warn">unpriced</Badge> : formatUsd(u.cost, locale)}
                        {u.unpriced && u.unpriced < u.calls ? <div className="muted small">+ {formatCount(u.unpriced, locale)} unpriced</div> : null}
                      </td>
                      <td className="small">{u.lastUsed ? formatDateTime(u.lastUsed, tz, locale) : '—'}</td>
                    </tr>
                  ))}
              </tbody>
            </table>
          )}
        </Card>

        <Card title="Create a local key" testId="key-form-card">
          {created ? (
            <div className="token-once" data-testid="key-token" role="status">
              <p>
                <strong>Copy this key now.</strong> It is shown once; Tollgate only keeps a hash.
              </p>
              <div className="token-row">
                <code className="token" data-testid="key-token-value">
                  {created.token}
                </code>
                <CopyButton text={created.token} testId="key-token-copy" />
              </div>
              <button type="button" className="btn btn-small" onClick={() => setCreated(null)}>
                Done, I copied it
              </button>
            </div>
          ) : null}
          <form className="form" onSubmit={(e) => void submit(e)} noValidate data-testid="key-form">
            <div className="form-grid">
              <label>
                Name
                <input value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} placeholder="acme-backend" aria-invalid={fieldErr.name ? true : undefined} data-testid="key-name" />
                {fieldErr.name ? (
                  <span className="field-error" role="alert">
                    {fieldErr.name}
                  </span>
                ) : null}
              </label>
              <label>
                Provider
                <select value={form.provider} onChange={(e) => setForm({ ...form, provider: e.target.value })} data-testid="key-provider">
                  {PROVIDERS.map((p) => (
                    <option key={p}>{p}</option>
                  ))}
                </select>
              </label>
              <label>
                Project <span className="muted">(optional)</span>
                <input value={form.project} onChange={(e) => setForm({ ...form, project: e.target.value })} placeholder="acme" data-testid="key-project" />
              </label>
              <label className="span-all">
                Real provider key
                <input
                  type="password"
                  autoComplete="off"
                  value={form.secret}
                  onChange={(e) => setForm({ ...form, secret: e.target.value })}
                  placeholder="sk-…"
                  aria-invalid={fieldErr.secret ? true : undefined}
                  data-testid="key-secret"
                />
                {fieldErr.secret ? (
                  <span className="field-error" role="alert">
                    {fieldErr.secret}
                  </span>
                ) : (
                  <span className="hint">Stored encrypted on this machine; never shown again.</span>
                )}
              </label>
            </div>
            <ErrorNote error={error} />
            <div className="row">
              <button type="submit" className="btn btn-primary" disabled={busy} data-testid="key-create">
                Create key
              </button>
            </div>
          </form>
        </Card>

        <Card title="Point your tools at Tollgate" testId="snippets">
          <p className="muted small">
            Proxy URL: <code data-testid="proxy-url">{proxyUrl}</code>
          </p>
          <Tabs label="Tool" value={snippet} onChange={setSnippet} tabs={all.map((s) => ({ value: s.id, label: s.label.replace(/ \(.*\)$/, '') }))} testId="snippet-tab" />
          <CodeBlock code={current.code} label={current.label} testId={`snippet-${current.id}`} />
          <h3>Projects</h3>
          <CodeBlock code={projectSnippet(proxyUrl)} label="x-tollgate-project header or /p/PROJECT/ prefix" testId="snippet-project" />
        </Card>
      </div>
    </>
  );
}
