import { useEffect, useMemo, useState } from 'react';
import type { PriceDataInfo, PriceOverride, PriceRow, VolumeTier, VolumeTierPlan } from '../../../shared/api.ts';
import { toApiCallError, type ApiCallError } from '../bridge/errors.ts';
import { Badge, Card, Empty, ErrorNote, Loading, PageHeader, Tabs, useAsync, useLocale } from '../components/ui.tsx';
import { formatCount, formatCountOf, formatDate, formatDateTime, formatUnitPrice, formatUsd, isDecimal, priceLabel } from '../format.ts';
import { useApp, useBridge } from '../store.ts';

type Tab = 'catalog' | 'overrides' | 'locks' | 'tiers' | 'unpriced';
const TABS: { value: Tab; label: string }[] = [
  { value: 'catalog', label: 'Catalog' },
  { value: 'overrides', label: 'Overrides' },
  { value: 'locks', label: 'Rate locks' },
  { value: 'tiers', label: 'Volume tiers' },
  { value: 'unpriced', label: 'Unpriced models' },
];

function initialTab(): Tab {
  try {
    const t = sessionStorage.getItem('tollgate.pricesTab');
    sessionStorage.removeItem('tollgate.pricesTab');
    if (t && TABS.some((x) => x.value === t)) return t as Tab;
  } catch {
    /* ignore */
  }
  return 'catalog';
}

export function PricesView() {
  const [tab, setTab] = useState<Tab>(initialTab);
  const draft = useApp((s) => s.priceDraft);
  useEffect(() => {
    if (draft) setTab('overrides');
  }, [draft]);
  return (
    <>
      <PageHeader title="Prices" sub="Where every cost comes from: the bundled catalog, your overrides, locked rates and volume tiers." />
      <Tabs label="Price sections" value={tab} onChange={setTab} tabs={TABS} testId="prices-tab" />
      {tab === 'catalog' ? <Catalog /> : tab === 'overrides' ? <Overrides /> : tab === 'locks' ? <Locks /> : tab === 'tiers' ? <Tiers /> : <Unpriced onSetPrice={() => setTab('overrides')} />}
    </>
  );
}

function SourceCell({ row }: { row: PriceRow }) {
  const s = row.source;
  return (
    <div className="small">
      <Badge tone={s.kind === 'catalog' ? 'neutral' : s.kind === 'override' ? 'warn' : 'info'}>{s.kind}</Badge> <span className="mono">{s.catalog}</span>
      {s.detail ? <span className="muted"> · {s.detail}</span> : null}
      <div className="muted">
        {s.asOf ? `as of ${s.asOf}` : null}
        {s.url ? (
          <>
            {s.asOf ? ' · ' : null}
            <a href={s.url} target="_blank" rel="noreferrer noopener">
              source
            </a>
          </>
        ) : null}
      </div>
    </div>
  );
}

const PAGE_SIZE = 50;

/** Which token price data the engine prices with: bundled, or a file loaded with `prices update`. */
function PriceDataLine({ data }: { data: PriceDataInfo }) {
  return (
    <div className="small" data-testid="price-data">
      <span className="muted">Token prices: </span>
      {data.kind === 'bundled' ? (
        <>
          bundled genai-prices data <span className="mono">{data.version}</span>
        </>
      ) : (
        <>
          genai-prices data file <span className="mono">{data.file}</span> <span className="mono muted">sha256:{data.sha256?.slice(0, 12)}</span>
          {data.fileDate ? <span className="muted"> · file dated {data.fileDate.slice(0, 10)}</span> : null}
          {data.loadedAt ? <span className="muted"> · loaded {formatDateTime(Date.parse(data.loadedAt))}</span> : null}
        </>
      )}
      <span className="muted"> + {data.supplement}. Load newer data (genai-prices' data.json, downloaded) with </span>
      <code>npx tollgate prices update --from data.json</code>
      {data.kind === 'file' ? (
        <>
          <span className="muted">; back to the bundled data with </span>
          <code>npx tollgate prices update --reset</code>
        </>
      ) : null}
      <span className="muted">.</span>
      {data.problem ? <div className="field-error" role="alert">{data.problem}</div> : null}
    </div>
  );
}

function Catalog() {
  const bridge = useBridge();
  const locale = useLocale();
  const [search, setSearch] = useState('');
  const [q, setQ] = useState('');
  const [provider, setProvider] = useState('');
  const [page, setPage] = useState(0);
  useEffect(() => {
    const t = setTimeout(() => setQ(search.trim()), 200);
    return () => clearTimeout(t);
  }, [search]);
  useEffect(() => setPage(0), [q, provider]);
  // every matching row (the catalog is a few thousand rows at most): the count is the true total
  const rows = useAsync(() => bridge.prices({ ...(q ? { search: q } : {}), ...(provider ? { provider } : {}), limit: 10_000 }), [bridge, q, provider]);
  const everything = useAsync(() => bridge.prices({ limit: 10_000 }), [bridge]);
  const priceData = useAsync(() => bridge.priceData({}), [bridge]);
  const providers = useMemo(() => {
    const n = new Map<string, number>();
    for (const r of everything.data ?? []) n.set(r.provider, (n.get(r.provider) ?? 0) + 1);
    return [...n.entries()].sort((a, b) => a[0].localeCompare(b[0]));
  }, [everything.data]);
  const total = rows.data?.length ?? 0;
  const pages = Math.max(1, Math.ceil(total / PAGE_SIZE));
  const shown = (rows.data ?? []).slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
  return (
    <Card testId="prices-catalog">
      {priceData.data ? <PriceDataLine data={priceData.data} /> : null}
      <div className="filters">
        <label className="grow">
          Search
          <input type="search" value={search} onChange={(e) => setSearch(e.target.value)} placeholder="gpt-4o, claude, flux…" data-testid="prices-search" />
        </label>
        <label>
          Provider
          <select value={provider} onChange={(e) => setProvider(e.target.value)} data-testid="prices-provider">
            <option value="">All providers</option>
            {providers.map(([p, n]) => (
              <option key={p} value={p}>
                {p} ({formatCount(n, locale)})
              </option>
            ))}
          </select>
        </label>
        <span className="muted small filters-count" data-testid="prices-count">
          {rows.data ? `${formatCountOf(total, 'model', locale)}${total > PAGE_SIZE ? ` · showing ${formatCount(page * PAGE_SIZE + 1, locale)}–${formatCount(page * PAGE_SIZE + shown.length, locale)}` : ''}` : ''}
        </span>
      </div>
      <ErrorNote error={rows.error} />
      {!rows.data ? (
        <Loading />
      ) : rows.data.length === 0 ? (
        <p className="muted">No models match{q ? ` “${q}”` : ''}{provider ? ` from ${provider}` : ''}.</p>
      ) : (
        <>
          <table className="table">
            <thead>
              <tr>
                <th scope="col">Provider</th>
                <th scope="col">Model</th>
                <th scope="col">Kind</th>
                <th scope="col">Prices</th>
                <th scope="col">Source</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((r) => (
                <tr key={`${r.provider}:${r.model}`} data-testid="price-row">
                  <td>{r.provider}</td>
                  <td>
                    <div>{r.name}</div>
                    <div className="muted small mono">{r.model}</div>
                  </td>
                  <td>
                    <Badge>{r.kind}</Badge>
                  </td>
                  <td className="small">
                    {r.prices.map((p) => (
                      <div key={p.label} className="price-line" title={p.label}>
                        <span className="muted">{priceLabel(p.label)}</span> <span className="num">{formatUnitPrice(p.unitPrice, p.per, p.unit, locale)}</span>
                      </div>
                    ))}
                  </td>
                  <td>
                    <SourceCell row={r} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {pages > 1 ? (
            <nav className="pager row" aria-label="Pages">
              <button type="button" className="btn btn-small" disabled={page === 0} onClick={() => setPage(page - 1)} data-testid="prices-prev">
                ← Previous
              </button>
              <span className="muted small" data-testid="prices-page">
                Page {page + 1} of {pages}
              </span>
              <button type="button" className="btn btn-small" disabled={page + 1 >= pages} onClick={() => setPage(page + 1)} data-testid="prices-next">
                Next →
              </button>
            </nav>
          ) : null}
        </>
      )}
    </Card>
  );
}

function parsePriceLines(text: string): { prices: Record<string, string> } | { error: string } {
  const prices: Record<string, string> = {};
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-z0-9_]+)\s*[=:]\s*\$?(\S+)$/i.exec(line);
    if (!m) return { error: `Line ${i + 1}: write key=price, e.g. input_mtok=0.15` };
    if (!isDecimal(m[2]!)) return { error: `Line ${i + 1}: "${m[2]}" is not a decimal USD amount` };
    prices[m[1]!] = m[2]!;
  }
  if (Object.keys(prices).length === 0) return { error: 'Give at least one price, e.g. input_mtok=0.15' };
  return { prices };
}

function Overrides() {
  const bridge = useBridge();
  const locale = useLocale();
  const tz = useApp((s) => s.settings?.timeZone);
  const draft = useApp((s) => s.priceDraft);
  const setDraft = useApp((s) => s.setPriceDraft);
  const list = useAsync(() => bridge.overrides({}), [bridge]);
  const [form, setForm] = useState({ provider: '', model: '', prices: 'input_mtok=\noutput_mtok=', note: '' });
  const [localErr, setLocalErr] = useState<string | null>(null);
  const [error, setError] = useState<ApiCallError | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  /** Earlier unpriced calls of the model just priced, offered for re-pricing (the engine decides which it can). */
  const [offer, setOffer] = useState<{ provider: string; model: string; calls: number } | null>(null);
  const [repriced, setRepriced] = useState<string | null>(null);

  useEffect(() => {
    if (!draft) return;
    setForm({ provider: draft.provider, model: draft.model, prices: 'input_mtok=\noutput_mtok=', note: '' });
    setDraft(null);
    setTimeout(() => document.getElementById('ovr-prices')?.focus(), 0);
  }, [draft, setDraft]);

  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    if (!form.provider.trim() || !form.model.trim()) {
      setLocalErr('Provider and model are required');
      return;
    }
    const p = parsePriceLines(form.prices);
    if ('error' in p) {
      setLocalErr(p.error);
      return;
    }
    setLocalErr(null);
    try {
      const saved_ = await bridge.setOverride({ provider: form.provider.trim(), model: form.model.trim(), prices: p.prices, note: form.note.trim() || null });
      setError(null);
      setSaved(`Override saved for ${form.provider}:${form.model}. New calls use it.`);
      setRepriced(null);
      const past = (await bridge.unpriced({})).find((u) => u.provider === saved_.provider && u.model === saved_.model);
      setOffer(past && past.calls > 0 ? { provider: saved_.provider, model: saved_.model, calls: past.calls } : null);
      void list.reload();
    } catch (err) {
      setError(toApiCallError(err));
    }
  };
  const reprice = async () => {
    if (!offer) return;
    try {
      const r = await bridge.reprice({ provider: offer.provider, model: offer.model });
      const parts = [r.repriced ? `Re-priced ${formatCount(r.repriced, locale)} ${r.repriced === 1 ? 'call' : 'calls'}: ${formatUsd(r.cost, locale)} booked.` : 'No call could be priced.'];
      if (r.stillUnpriced) parts.push(`${formatCount(r.stillUnpriced, locale)} still unpriced: ${r.reasons.join('; ')}.`);
      if (r.skippedSynced) parts.push(`${formatCount(r.skippedSynced, locale)} already sent to the sync service stay as they were.`);
      if (r.skippedClosed) parts.push(`${formatCount(r.skippedClosed, locale)} in a closed client statement stay as they were.`);
      setRepriced(parts.join(' '));
      setOffer(null);
    } catch (err) {
      setError(toApiCallError(err));
    }
  };
  const edit = (o: PriceOverride) => setForm({ provider: o.provider, model: o.model, prices: Object.entries(o.prices).map(([k, v]) => `${k}=${v}`).join('\n'), note: o.note ?? '' });
  const remove = async (id: string) => {
    try {
      await bridge.removeOverride({ id });
      void list.reload();
    } catch (err) {
      setError(toApiCallError(err));
    }
  };
  return (
    <div className="grid-2">
      <Card title="Your price overrides" testId="overrides-list">
        <p className="muted small">An override beats the catalog for every new call of that model (e.g. a negotiated rate, or a model the catalog does not know).</p>
        <ErrorNote error={list.error} />
        {!list.data ? (
          <Loading />
        ) : list.data.length === 0 ? (
          <p className="muted">No overrides.</p>
        ) : (
          <ul className="plain-list">
            {list.data.map((o) => (
              <li key={o.id} data-testid="override-row">
                <div className="row-between">
                  <strong>
                    {o.provider}:{o.model}
                  </strong>
                  <span>
                    <button type="button" className="btn btn-small" onClick={() => edit(o)}>
                      Edit
                    </button>{' '}
                    <button type="button" className="btn btn-small" onClick={() => void remove(o.id)}>
                      Remove
                    </button>
                  </span>
                </div>
                <div className="small mono">
                  {Object.entries(o.prices).map(([k, v]) => (
                    <span key={k} className="kv-chip">
                      {k} = {formatUsd(v, locale, { exact: true })}
                    </span>
                  ))}
                </div>
                <div className="muted small">
                  {o.note ? `${o.note} · ` : ''}since {formatDateTime(o.createdAt, tz, locale)}
                </div>
              </li>
            ))}
          </ul>
        )}
      </Card>
      <Card title="Set a price" testId="override-form-card">
        <form className="form" onSubmit={(e) => void submit(e)} noValidate data-testid="override-form">
          <div className="form-grid">
            <label>
              Provider
              <input value={form.provider} onChange={(e) => setForm({ ...form, provider: e.target.value })} placeholder="openrouter" data-testid="override-provider" />
            </label>
            <label>
              Model
              <input value={form.model} onChange={(e) => setForm({ ...form, model: e.target.value })} placeholder="acme/model" data-testid="override-model" />
            </label>
            <label className="span-all">
              Prices (one per line, USD)
              <textarea id="ovr-prices" rows={5} value={form.prices} onChange={(e) => setForm({ ...form, prices: e.target.value })} spellCheck={false} data-testid="override-prices" />
              <span className="hint">
                Token models: <code>input_mtok</code>, <code>output_mtok</code>, <code>cache_read_mtok</code> (per 1M tokens). Media: <code>image</code>, <code>second</code>,{' '}
                <code>megapixel</code>, <code>request</code>.
              </span>
            </label>
            <label className="span-all">
              Note <span className="muted">(optional)</span>
              <input value={form.note} onChange={(e) => setForm({ ...form, note: e.target.value })} placeholder="enterprise contract 2026" />
            </label>
          </div>
          <ErrorNote error={localErr ?? error} />
          {saved && !localErr && !error ? (
            <p className="ok-note" role="status">
              {saved}
            </p>
          ) : null}
          {offer && !repriced ? (
            <p className="row" data-testid="reprice-offer">
              <span>
                {offer.calls} earlier {offer.calls === 1 ? 'call' : 'calls'} of {offer.provider}:{offer.model} {offer.calls === 1 ? 'is' : 'are'} unpriced.
              </span>
              <button type="button" className="btn" data-testid="reprice" onClick={() => void reprice()}>
                Price {offer.calls === 1 ? 'it' : 'them'} with this price
              </button>
            </p>
          ) : null}
          {repriced ? (
            <p className="ok-note" role="status" data-testid="reprice-result">
              {repriced}
            </p>
          ) : null}
          <div className="row">
            <button type="submit" className="btn btn-primary" data-testid="override-save">
              Save override
            </button>
          </div>
        </form>
      </Card>
    </div>
  );
}

function Locks() {
  const bridge = useBridge();
  const locale = useLocale();
  const tz = useApp((s) => s.settings?.timeZone);
  const list = useAsync(() => bridge.locks({}), [bridge]);
  const [form, setForm] = useState({ provider: 'anthropic', model: '', from: '', to: '' });
  const [error, setError] = useState<ApiCallError | null>(null);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    try {
      await bridge.addLock({ provider: form.provider.trim(), model: form.model.trim() || null, from: form.from || null, to: form.to || null });
      setError(null);
      setForm({ ...form, model: '', from: '', to: '' });
      void list.reload();
    } catch (err) {
      setError(toApiCallError(err));
    }
  };
  return (
    <div className="grid-2">
      <Card title="Rate locks" testId="locks-list">
        <p className="muted small">A lock freezes today&apos;s catalog prices for a provider (or one model) over a date range, so a catalog update does not reprice your contract.</p>
        <ErrorNote error={list.error} />
        {!list.data ? (
          <Loading />
        ) : list.data.length === 0 ? (
          <p className="muted">No locks.</p>
        ) : (
          <ul className="plain-list">
            {list.data.map((l) => (
              <li key={l.id} data-testid="lock-row">
                <div className="row-between">
                  <strong>
                    {l.provider}:{l.model ?? '(all models)'}
                  </strong>
                  <button
                    type="button"
                    className="btn btn-small"
                    onClick={() =>
                      void bridge
                        .removeLock({ id: l.id })
                        .then(() => list.reload())
                        .catch((err: unknown) => setError(toApiCallError(err)))
                    }
                  >
                    Remove
                  </button>
                </div>
                <div className="small">
                  <span className="mono">{l.catalog}</span> · {l.from ? formatDate(l.from, tz, locale) : 'always'} → {l.to ? formatDate(l.to, tz, locale) : 'open-ended'}
                </div>
                <div className="muted small">
                  {Object.entries(l.prices)
                    .map(([m, p]) => `${m}: ${Object.entries(p).map(([k, v]) => `${k} ${formatUsd(v, locale, { exact: true })}`).join(', ')}`)
                    .join(' · ')}
                </div>
              </li>
            ))}
          </ul>
        )}
      </Card>
      <Card title="Lock current rates" testId="lock-form-card">
        <form className="form" onSubmit={(e) => void submit(e)} data-testid="lock-form">
          <div className="form-grid">
            <label>
              Provider
              <input value={form.provider} onChange={(e) => setForm({ ...form, provider: e.target.value })} required data-testid="lock-provider" />
            </label>
            <label>
              Model <span className="muted">(blank = all)</span>
              <input value={form.model} onChange={(e) => setForm({ ...form, model: e.target.value })} data-testid="lock-model" />
            </label>
            <label>
              From
              <input type="date" value={form.from} onChange={(e) => setForm({ ...form, from: e.target.value })} />
            </label>
            <label>
              To
              <input type="date" value={form.to} onChange={(e) => setForm({ ...form, to: e.target.value })} />
            </label>
          </div>
          <ErrorNote error={error} />
          <div className="row">
            <button type="submit" className="btn btn-primary" data-testid="lock-save">
              Add lock
            </button>
          </div>
        </form>
      </Card>
    </div>
  );
}

function parseTiers(text: string): { tiers: VolumeTier[] } | { error: string } {
  const tiers: VolumeTier[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (!line) continue;
    const m = /^(\d+|-|∞|rest)\s+\$?(\S+)$/.exec(line);
    if (!m) return { error: `Line ${i + 1}: write "<up to> <price>", e.g. "1000 0.04" (use "-" for no upper bound)` };
    if (!isDecimal(m[2]!)) return { error: `Line ${i + 1}: "${m[2]}" is not a decimal USD amount` };
    tiers.push({ upTo: /^\d+$/.test(m[1]!) ? Number(m[1]) : null, price: m[2]! });
  }
  if (tiers.length === 0) return { error: 'Add at least one tier' };
  for (let i = 0; i < tiers.length - 1; i++) {
    const a = tiers[i]!.upTo;
    const b = tiers[i + 1]!.upTo;
    if (a === null) return { error: 'Only the last tier can be unbounded' };
    if (b !== null && b <= a) return { error: 'Tier bounds must increase' };
  }
  return { tiers };
}

function Tiers() {
  const bridge = useBridge();
  const locale = useLocale();
  const list = useAsync(() => bridge.tiers({}), [bridge]);
  const [form, setForm] = useState<{ id?: string; provider: string; model: string; unit: VolumeTierPlan['unit']; mode: VolumeTierPlan['mode']; period: VolumeTierPlan['period']; tiers: string }>({
    provider: 'fal', model: '', unit: 'image', mode: 'graduated', period: 'month', tiers: '1000 0.04\n10000 0.035\n- 0.03',
  });
  const [localErr, setLocalErr] = useState<string | null>(null);
  const [error, setError] = useState<ApiCallError | null>(null);
  const submit = async (e: React.FormEvent) => {
    e.preventDefault();
    const t = parseTiers(form.tiers);
    if ('error' in t) return setLocalErr(t.error);
    if (!form.provider.trim()) return setLocalErr('Provider is required');
    setLocalErr(null);
    try {
      await bridge.setTiers({ ...(form.id ? { id: form.id } : {}), provider: form.provider.trim(), model: form.model.trim() || null, unit: form.unit, mode: form.mode, period: form.period, tiers: t.tiers });
      setError(null);
      setForm({ ...form, id: undefined });
      void list.reload();
    } catch (err) {
      setError(toApiCallError(err));
    }
  };
  const edit = (p: VolumeTierPlan) =>
    setForm({ id: p.id, provider: p.provider, model: p.model ?? '', unit: p.unit, mode: p.mode, period: p.period, tiers: p.tiers.map((t) => `${t.upTo ?? '-'} ${t.price}`).join('\n') });
  return (
    <div className="grid-2">
      <Card title="Volume tier plans" testId="tiers-list">
        <p className="muted small">
          <strong>Graduated</strong>: each unit is priced by the tier it falls in. <strong>Volume</strong>: once you pass a bound, every unit in the period gets that
          tier&apos;s price.
        </p>
        <ErrorNote error={list.error} />
        {!list.data ? (
          <Loading />
        ) : list.data.length === 0 ? (
          <p className="muted">No tier plans.</p>
        ) : (
          <ul className="plain-list">
            {list.data.map((p) => (
              <li key={p.id} data-testid="tier-row">
                <div className="row-between">
                  <strong>
                    {p.provider}:{p.model ?? '(all models)'}
                  </strong>
                  <span>
                    <button type="button" className="btn btn-small" onClick={() => edit(p)}>
                      Edit
                    </button>{' '}
                    <button
                      type="button"
                      className="btn btn-small"
                      onClick={() =>
                        void bridge
                          .removeTiers({ id: p.id })
                          .then(() => list.reload())
                          .catch((err: unknown) => setError(toApiCallError(err)))
                      }
                    >
                      Remove
                    </button>
                  </span>
                </div>
                <div className="muted small">
                  {p.mode} · per {p.unit} · resets each {p.period}
                </div>
                <table className="table compact">
                  <tbody>
                    {p.tiers.map((t, i) => (
                      <tr key={i}>
                        <td className="small">
                          {i === 0 ? '0' : formatCount((p.tiers[i - 1]!.upTo ?? 0) + 1, locale)} – {t.upTo === null ? '∞' : formatCount(t.upTo, locale)} {p.unit}s
                        </td>
                        <td className="num small">{formatUnitPrice(t.price, 1, p.unit, locale)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </li>
            ))}
          </ul>
        )}
      </Card>
      <Card title={form.id ? 'Edit tier plan' : 'New tier plan'} testId="tier-form-card">
        <form className="form" onSubmit={(e) => void submit(e)} noValidate data-testid="tier-form">
          <div className="form-grid">
            <label>
              Provider
              <input value={form.provider} onChange={(e) => setForm({ ...form, provider: e.target.value })} />
            </label>
            <label>
              Model <span className="muted">(blank = all)</span>
              <input value={form.model} onChange={(e) => setForm({ ...form, model: e.target.value })} />
            </label>
            <label>
              Unit
              <select value={form.unit} onChange={(e) => setForm({ ...form, unit: e.target.value as VolumeTierPlan['unit'] })}>
                {(['image', 'request', 'second', 'megapixel', 'token'] as const).map((u) => (
                  <option key={u}>{u}</option>
                ))}
              </select>
            </label>
            <label>
              Mode
              <select value={form.mode} onChange={(e) => setForm({ ...form, mode: e.target.value as VolumeTierPlan['mode'] })}>
                <option value="graduated">graduated</option>
                <option value="volume">volume</option>
              </select>
            </label>
            <label>
              Period
              <select value={form.period} onChange={(e) => setForm({ ...form, period: e.target.value as VolumeTierPlan['period'] })}>
                <option value="day">day</option>
                <option value="week">week</option>
                <option value="month">month</option>
              </select>
            </label>
            <label className="span-all">
              Tiers (“up-to price” per line; “-” = no upper bound)
              <textarea rows={4} value={form.tiers} onChange={(e) => setForm({ ...form, tiers: e.target.value })} spellCheck={false} data-testid="tier-lines" />
            </label>
          </div>
          <ErrorNote error={localErr ?? error} />
          <div className="row">
            <button type="submit" className="btn btn-primary">
              {form.id ? 'Save plan' : 'Add plan'}
            </button>
          </div>
        </form>
      </Card>
    </div>
  );
}

function Unpriced({ onSetPrice }: { onSetPrice: () => void }) {
  const bridge = useBridge();
  const locale = useLocale();
  const tz = useApp((s) => s.settings?.timeZone);
  const setDraft = useApp((s) => s.setPriceDraft);
  const list = useAsync(() => bridge.unpriced({}), [bridge]);
  return (
    <Card testId="unpriced-list">
      <p className="muted small">
        Calls to these models went through but could not be priced: they show as “unpriced” and add nothing to your totals and caps. A price you set applies to new
        calls; calls already booked stay unpriced.
      </p>
      <ErrorNote error={list.error} />
      {!list.data ? (
        <Loading />
      ) : list.data.length === 0 ? (
        <Empty title="Every call is priced">
          <p className="muted">Nothing to do here.</p>
        </Empty>
      ) : (
        <table className="table">
          <thead>
            <tr>
              <th scope="col">Model</th>
              <th scope="col" className="num">
                Calls
              </th>
              <th scope="col">Last seen</th>
              <th scope="col">Why</th>
              <th scope="col">
                <span className="sr-only">Action</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {list.data.map((u) => (
              <tr key={`${u.provider}:${u.model}`} data-testid="unpriced-row">
                <td>
                  <span className="muted">{u.provider}:</span>
                  {u.model}
                </td>
                <td className="num">{formatCount(u.calls, locale)}</td>
                <td className="small">{formatDateTime(u.lastSeen, tz, locale)}</td>
                <td className="small muted">{u.reason}</td>
                <td className="num">
                  <button
                    type="button"
                    className="btn btn-small btn-primary"
                    onClick={() => {
                      setDraft({ provider: u.provider, model: u.model });
                      onSetPrice();
                    }}
                    data-testid="unpriced-set-price"
                  >
                    Set price
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Card>
  );
}
