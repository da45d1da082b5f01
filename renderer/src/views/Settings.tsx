import { useMemo, useState } from 'react';
import type { Settings } from '../../../shared/api.ts';
import { toApiCallError, type ApiCallError } from '../bridge/errors.ts';
import { Card, CodeBlock, ErrorNote, Loading, PageHeader, Switch } from '../components/ui.tsx';
import { COMMANDS } from '../snippets.ts';
import { useApp, useBridge } from '../store.ts';
import { SyncCard } from './Sync.tsx';

type Editable = Partial<Pick<Settings, 'timeZone' | 'weekStart' | 'storePrompts' | 'failOpen'>>;

export function SettingsView() {
  const bridge = useBridge();
  const settings = useApp((s) => s.settings);
  const setSettings = useApp((s) => s.setSettings);
  const [error, setError] = useState<ApiCallError | null>(null);
  const [tz, setTz] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const zones = useMemo(() => {
    try {
      return (Intl as unknown as { supportedValuesOf?: (k: string) => string[] }).supportedValuesOf?.('timeZone') ?? [];
    } catch {
      return [];
    }
  }, []);

  if (!settings) return (
    <>
      <PageHeader title="Settings" />
      <Loading />
    </>
  );

  const update = async (patch: Editable, label: string) => {
    try {
      const s = await bridge.updateSettings(patch);
      setSettings(s);
      setError(null);
      setSaved(label);
      useApp.getState().scheduleOverviewRefresh();
    } catch (err) {
      setError(toApiCallError(err));
      setSaved(null);
    }
  };

  const tzValue = tz ?? settings.timeZone;
  return (
    <>
      <PageHeader title="Settings" sub={`Tollgate ${settings.version}`} />
      <ErrorNote error={error} />
      {saved ? (
        <p className="ok-note" role="status">
          Saved: {saved}
        </p>
      ) : null}
      <div className="grid-2">
        <Card title="Engine" testId="settings-engine">
          <dl className="kv">
            <dt>Data directory</dt>
            <dd className="mono" data-testid="settings-datadir">
              {settings.dataDir}
            </dd>
            <dt>Port</dt>
            <dd className="mono">{settings.port}</dd>
            <dt>Proxy URL</dt>
            <dd className="mono" data-testid="settings-proxy-url">
              {settings.proxyUrl}
            </dd>
            <dt>Currency</dt>
            <dd>{settings.currencyDisplay}</dd>
          </dl>
          <p className="muted small">
            These are set when the engine starts (another data directory: set <code>TOLLGATE_DATA_DIR</code> first):
          </p>
          <CodeBlock label="Terminal" code={COMMANDS.serve} testId="settings-start-commands" />
        </Card>

        <Card title="Time" testId="settings-time">
          <form
            className="form"
            onSubmit={(e) => {
              e.preventDefault();
              if (tzValue !== settings.timeZone) void update({ timeZone: tzValue }, 'time zone');
            }}
          >
            <div className="form-grid">
              <label>
                Time zone
                <input list="tz-list" value={tzValue} onChange={(e) => setTz(e.target.value)} data-testid="settings-tz" />
                <datalist id="tz-list">
                  {zones.map((z) => (
                    <option key={z} value={z} />
                  ))}
                </datalist>
                <span className="hint">Days, weeks and months (for caps and reports) start at midnight here.</span>
              </label>
              <label>
                Week starts on
                <select value={settings.weekStart} onChange={(e) => void update({ weekStart: Number(e.target.value) === 7 ? 7 : 1 }, 'week start')} data-testid="settings-weekstart">
                  <option value={1}>Monday (ISO)</option>
                  <option value={7}>Sunday</option>
                </select>
              </label>
            </div>
            <div className="row">
              <button type="submit" className="btn" disabled={tzValue === settings.timeZone}>
                Save time zone
              </button>
            </div>
          </form>
        </Card>

        <Card title="Privacy" testId="settings-privacy">
          <Switch checked={settings.storePrompts} onChange={(v) => void update({ storePrompts: v }, v ? 'store prompts on' : 'store prompts off')} label="Store prompts and responses" testId="settings-store-prompts" />
          <p className="muted small explain">
            Off by default. When off, the ledger keeps only metadata needed for pricing (model, token counts, cost, timing) — never message content. Turn it on to
            inspect full request and response bodies locally; they stay in your data directory and are included in exports.
          </p>
        </Card>

        <Card title="When the engine cannot decide" testId="settings-failopen">
          <Switch checked={settings.failOpen} onChange={(v) => void update({ failOpen: v }, v ? 'fail open' : 'fail closed')} label="Fail open" testId="settings-fail-open" />
          <p className={`small explain ${settings.failOpen ? 'tone-bad' : 'muted'}`}>
            {settings.failOpen ? <strong>Risk: </strong> : null}
            When a call cannot be checked against a hard cap (a model with no price, so its cost has no bound) or the ledger cannot record it, <strong>fail closed</strong> (default) refuses it; with no hard cap, an unpriced call runs and is listed as unpriced.{' '}
            <strong>Fail open</strong> lets it through unmetered, so your caps can be exceeded by calls Tollgate could not count. Use it only if an outage of
            your tools is worse than an overspend.
          </p>
        </Card>

        <SyncCard />

        <Card title="Export" className="span-2" testId="settings-export">
          <p className="muted small">The ledger is yours. Export it from a terminal:</p>
          <CodeBlock
            label="Terminal"
            code={[COMMANDS.exportCsv, COMMANDS.exportJsonl, COMMANDS.reportByProject].join('\n')}
            testId="settings-export-commands"
          />
        </Card>
      </div>
    </>
  );
}
