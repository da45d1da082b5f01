/**
 * Settings → Sync (issue 12): join a tollgate-ledger service with a one-time code, this device's
 * sync state, every device of the account with its last contact; and the banner shown on every
 * view when a device has been silent for more than 24 h. Through the bridge only.
 */
import { useCallback, useEffect, useState } from 'react';
import type { SyncStatus } from '../../../shared/api.ts';
import { toApiCallError, type ApiCallError } from '../bridge/errors.ts';
import { Badge, Card, ErrorNote, Switch } from '../components/ui.tsx';
import { formatDateTime, relativeAgo } from '../format.ts';
import { useApp, useBridge } from '../store.ts';

const when = (ts: number | null) => (ts === null ? 'never' : `${relativeAgo(ts)} (${formatDateTime(ts)})`);

export function SyncCard() {
  const bridge = useBridge();
  const [status, setStatus] = useState<SyncStatus | null>(null);
  const [error, setError] = useState<ApiCallError | null>(null);
  const [url, setUrl] = useState('');
  const [code, setCode] = useState('');
  const [name, setName] = useState('');
  const [insecure, setInsecure] = useState(false);
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState<string | null>(null);

  const load = useCallback(async (refresh: boolean) => {
    try {
      setStatus(await bridge.syncStatus({ refresh }));
    } catch (err) {
      setError(toApiCallError(err));
    }
  }, [bridge]);

  useEffect(() => {
    void load(true);
    const t = setInterval(() => void load(false), 5000);
    return () => clearInterval(t);
  }, [load]);

  const act = async (fn: () => Promise<unknown>, done: string) => {
    setBusy(true);
    setNote(null);
    try {
      await fn();
      setError(null);
      setNote(done);
      await load(true);
      useApp.getState().scheduleOverviewRefresh();
    } catch (err) {
      setError(toApiCallError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Card title="Sync" className="span-2" testId="settings-sync">
      <ErrorNote error={error} />
      {note ? <p className="ok-note" role="status">{note}</p> : null}
      {!status ? <p className="muted">Loading…</p> : !status.joined ? (
        <form
          className="form"
          onSubmit={(e) => {
            e.preventDefault();
            void act(() => bridge.syncJoin({ url: url.trim(), code: code.trim(), name: name.trim() || undefined, insecure }), 'Joined: this device syncs in the background.');
          }}
        >
          <p className="muted small">
            Add up every machine's spend: run a ledger service (<code>npx tollgate-ledger serve</code>), print a one-time code there
            (<code>npx tollgate-ledger enroll</code>) and join with it. This device's calls are pushed, the other devices' pulled.
          </p>
          <div className="form-grid">
            <label>
              Service URL
              <input value={url} onChange={(e) => setUrl(e.target.value)} placeholder="https://ledger.example.com" data-testid="sync-url" required />
            </label>
            <label>
              Enrolment code
              <input value={code} onChange={(e) => setCode(e.target.value)} placeholder="K7QM-3XWD-PZ9A-HT4R" data-testid="sync-code" required />
            </label>
            <label>
              This device's name
              <input value={name} onChange={(e) => setName(e.target.value)} placeholder="laptop" data-testid="sync-name" />
            </label>
          </div>
          <Switch checked={insecure} onChange={setInsecure} label="Allow plain http:// on another machine (insecure)" testId="sync-insecure" />
          <div className="row">
            <button type="submit" className="btn" disabled={busy || !url.trim() || !code.trim()} data-testid="sync-join">
              Join
            </button>
          </div>
        </form>
      ) : (
        <>
          <dl className="kv" data-testid="sync-status">
            <dt>Service</dt>
            <dd className="mono">{status.url}</dd>
            <dt>Account</dt>
            <dd>{status.account}</dd>
            <dt>This device</dt>
            <dd data-testid="sync-device">{status.device?.name}</dd>
            <dt>Not yet pushed</dt>
            <dd data-testid="sync-pending">{status.pending} call(s)</dd>
            <dt>Last push</dt>
            <dd>{when(status.lastPushAt)}</dd>
            <dt>Last pull</dt>
            <dd>{when(status.lastPullAt)}</dd>
            {status.conflicts ? (<><dt>Conflicts</dt><dd className="tone-bad">{status.conflicts} call(s) held in another version by the service (never merged)</dd></>) : null}
            {status.lastError ? (<><dt>Last error</dt><dd className="tone-bad" data-testid="sync-error">{status.lastError}</dd></>) : null}
          </dl>
          <table className="table" data-testid="sync-devices">
            <thead>
              <tr><th>Device</th><th>Last contact</th><th /></tr>
            </thead>
            <tbody>
              {status.devices.map((d) => (
                <tr key={d.id}>
                  <td>{d.name}{d.self ? ' (this device)' : ''}</td>
                  <td>{when(d.lastSeenAt)}</td>
                  <td>{d.revoked ? <Badge tone="bad">revoked</Badge> : d.silent ? <Badge tone="warn">silent &gt; 24 h</Badge> : <Badge tone="good">ok</Badge>}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <div className="row">
            <button type="button" className="btn" disabled={busy} onClick={() => void act(async () => {
              const r = await bridge.syncNow({});
              setNote(`Pushed ${r.pushed}, pulled ${r.pulled}.`);
            }, 'Synced.')} data-testid="sync-now">
              Sync now
            </button>
            <button type="button" className="btn btn-ghost" disabled={busy} onClick={() => void act(() => bridge.syncLeave({}), 'Left the account; synced calls stay here.')} data-testid="sync-leave">
              Leave
            </button>
          </div>
        </>
      )}
    </Card>
  );
}

/** Shown on every view while a device of the account has been silent for more than 24 h. */
export function SyncBanner() {
  const bridge = useApp((s) => s.bridge);
  const [silent, setSilent] = useState<string[]>([]);
  useEffect(() => {
    if (!bridge) return;
    let alive = true;
    const check = () => bridge.syncStatus({}).then((s) => { if (alive) setSilent(s.joined ? s.silentDevices : []); }, () => {});
    void check();
    const t = setInterval(check, 60_000);
    return () => { alive = false; clearInterval(t); };
  }, [bridge]);
  if (!silent.length) return null;
  return (
    <div className="banner banner-warn" role="status" data-testid="sync-silent-banner">
      Spend may be incomplete: {silent.join(', ')} {silent.length > 1 ? 'have' : 'has'} not synced for more than 24 h.
    </div>
  );
}
