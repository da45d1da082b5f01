import { useCallback, useEffect, useRef, useState, type ReactNode } from 'react';
import type { CapStatus } from '../../../shared/api.ts';
import { toApiCallError, type ApiCallError } from '../bridge/errors.ts';
import { formatDuration, formatUsd } from '../format.ts';
import { useApp } from '../store.ts';

export function useLocale(): string | undefined {
  return useApp((s) => s.locale);
}

/** Money from a decimal string; the exact value is in the tooltip. */
export function Money({ usd, testId, compact, signed, className }: { usd: string | null | undefined; testId?: string; compact?: boolean; signed?: boolean; className?: string }) {
  const locale = useLocale();
  return (
    <span className={`money ${className ?? ''}`} data-testid={testId} title={usd ? `$${usd} exactly` : undefined}>
      {formatUsd(usd, locale, { ...(compact ? { compact } : {}), ...(signed ? { signed } : {}) })}
    </span>
  );
}

export interface AsyncState<T> {
  data: T | undefined;
  error: ApiCallError | null;
  loading: boolean;
  reload: () => Promise<void>;
  setData: (d: T) => void;
}

/** Run `fn` on mount and whenever `deps` change; newer runs win. */
export function useAsync<T>(fn: () => Promise<T>, deps: unknown[]): AsyncState<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<ApiCallError | null>(null);
  const [loading, setLoading] = useState(true);
  const seq = useRef(0);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const reload = useCallback(async () => {
    const my = ++seq.current;
    setLoading(true);
    try {
      const d = await fnRef.current();
      if (my !== seq.current) return;
      setData(d);
      setError(null);
    } catch (err) {
      if (my !== seq.current) return;
      setError(toApiCallError(err));
    } finally {
      if (my === seq.current) setLoading(false);
    }
  }, []);
  // eslint-disable-next-line react-hooks/exhaustive-deps
  useEffect(() => void reload(), deps);
  return { data, error, loading, reload, setData };
}

/** An error in plain words: never the engine's E_… code, never a JSON path. */
export function ErrorNote({ error, id }: { error: ApiCallError | string | null | undefined; id?: string }) {
  if (!error) return null;
  const e = typeof error === 'string' ? { message: error, code: '', issues: undefined } : error;
  const issues = e.issues ?? [];
  return (
    <div className="error-note" role="alert" id={id} data-testid="error">
      {issues.length > 0 ? (
        <>
          <span>{issues.length === 1 ? 'This needs fixing:' : 'These need fixing:'}</span>
          <ul>
            {issues.map((i, n) => (
              <li key={n}>{plainIssue(i.path, i.message)}</li>
            ))}
          </ul>
        </>
      ) : (
        <span>{plainError(e.message)}</span>
      )}
    </div>
  );
}

/** "body.max_tokens" + "must be …" → "max tokens (in body) must be …". */
export function plainIssue(path: string, message: string): string {
  if (!path) return capitalise(message);
  const parts = path.split('.').filter((p) => !/^\d+$/.test(p));
  const last = (parts[parts.length - 1] ?? path).replace(/_/g, ' ').replace(/([a-z])([A-Z])/g, (_, a: string, b: string) => `${a} ${b.toLowerCase()}`);
  const where = parts.length > 1 ? ` (in ${parts.slice(0, -1).join(' → ')})` : '';
  return `${capitalise(last)}${where} ${message}`;
}

function plainError(message: string): string {
  return capitalise(message.replace(/^invalid argument for \w+: /, '').replace(/^E_[A-Z_]+:?\s*/, ''));
}

function capitalise(s: string): string {
  return s ? s[0]!.toUpperCase() + s.slice(1) : s;
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <div className="loading" role="status" aria-live="polite">
      {label}
    </div>
  );
}

export function Badge({ tone = 'neutral', children, title }: { tone?: 'neutral' | 'good' | 'warn' | 'bad' | 'info'; children: ReactNode; title?: string }) {
  return (
    <span className={`badge badge-${tone}`} title={title}>
      {children}
    </span>
  );
}

export function Card({ title, actions, children, className, testId }: { title?: ReactNode; actions?: ReactNode; children: ReactNode; className?: string; testId?: string }) {
  return (
    <section className={`card ${className ?? ''}`} data-testid={testId}>
      {title || actions ? (
        <header className="card-head">
          {title ? <h2>{title}</h2> : <span />}
          {actions ? <div className="card-actions">{actions}</div> : null}
        </header>
      ) : null}
      {children}
    </section>
  );
}

export function CopyButton({ text, label = 'Copy', testId }: { text: string; label?: string; testId?: string }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const ta = document.createElement('textarea');
      ta.value = text;
      ta.setAttribute('readonly', '');
      ta.style.position = 'fixed';
      ta.style.opacity = '0';
      document.body.appendChild(ta);
      ta.select();
      document.execCommand('copy');
      ta.remove();
    }
    setCopied(true);
    setTimeout(() => setCopied(false), 1500);
  };
  return (
    <button type="button" className="btn btn-small" onClick={() => void copy()} data-testid={testId} aria-live="polite">
      {copied ? 'Copied' : label}
    </button>
  );
}

export function CodeBlock({ code, label, testId }: { code: string; label?: string; testId?: string }) {
  return (
    <div className="code-block" data-testid={testId}>
      <div className="code-head">
        <span>{label}</span>
        <CopyButton text={code} />
      </div>
      <pre tabIndex={0}>
        <code>{code}</code>
      </pre>
    </div>
  );
}

export function capLabel(s: CapStatus['cap']): string {
  const scope = s.scope === 'global' ? 'All spend' : `${s.scope}: ${s.scopeValue ?? ''}`;
  const period = s.period === 'total' ? 'total' : `per ${s.period}`;
  return `${scope} · ${period}${s.allDevices ? ' · all devices' : ''}`;
}

export function CapBar({ status, compact }: { status: CapStatus; compact?: boolean }) {
  const locale = useLocale();
  const { cap } = status;
  const pct = Math.min(100, Math.max(0, status.percent));
  // reserved as a share of the limit: display ratio computed from the API's percent scale
  const reservedPct = Math.min(100 - pct, pctOf(status.reserved, cap.limit));
  const tone = status.blocked || status.percent >= 100 ? 'bad' : status.percent >= 80 ? 'warn' : 'good';
  const resets = status.resetsAt === null ? 'never resets' : `resets in ${formatDuration(status.resetsAt - Date.now())}`;
  return (
    <div className={`cap ${compact ? 'cap-compact' : ''}`} data-testid={`cap-bar-${cap.id}`}>
      <div className="cap-top">
        <span className="cap-label">
          {capLabel(cap)}
          {!cap.hard ? <Badge tone="info" title="Alerts only: calls are never blocked by this cap">alert only</Badge> : null}
          {status.blocked ? <Badge tone="bad">blocking</Badge> : null}
        </span>
        <span className="cap-nums">
          <strong>{formatUsd(status.spent, locale)}</strong> of {formatUsd(cap.limit, locale)}
          <span className={`cap-pct tone-${tone}`}> {status.percent.toFixed(1).replace(/\.0$/, '')}%</span>
        </span>
      </div>
      <div
        className="bar"
        role="meter"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={Math.round(pct)}
        aria-label={`${capLabel(cap)}: ${formatUsd(status.spent, locale)} of ${formatUsd(cap.limit, locale)}`}
      >
        <div className={`bar-fill tone-bg-${tone}`} style={{ width: `${pct}%` }} />
        {reservedPct > 0 ? <div className="bar-reserved" style={{ left: `${pct}%`, width: `${reservedPct}%` }} title={`${formatUsd(status.reserved, locale)} reserved by in-flight calls`} /> : null}
        {cap.alerts
          .filter((a) => a < 100)
          .map((a) => (
            <span key={a} className="bar-tick" style={{ left: `${a}%` }} aria-hidden="true" />
          ))}
      </div>
      <div className="cap-bottom muted">
        <span>
          {status.reserved !== '0' ? <>+{formatUsd(status.reserved, locale)} reserved · </> : null}
          {cap.hard ? 'blocks at limit' : 'alerts only'}
        </span>
        <span>{resets}</span>
      </div>
    </div>
  );
}

function pctOf(part: string, whole: string): number {
  // import-free local helper: tenths of a percent with BigInt
  try {
    const toNano = (s: string) => {
      const [i = '0', f = ''] = s.split('.');
      return BigInt(i + f.slice(0, 9).padEnd(9, '0'));
    };
    const w = toNano(whole);
    if (w <= 0n) return 0;
    return Number((toNano(part) * 1000n) / w) / 10;
  } catch {
    return 0;
  }
}

export function Segmented<T extends string>({ value, options, onChange, label, testId }: { value: T; options: { value: T; label: string }[]; onChange: (v: T) => void; label: string; testId?: string }) {
  return (
    <div className="segmented" role="radiogroup" aria-label={label} data-testid={testId}>
      {options.map((o) => (
        <button
          key={o.value}
          type="button"
          role="radio"
          aria-checked={value === o.value}
          className={value === o.value ? 'on' : ''}
          onClick={() => onChange(o.value)}
          data-testid={testId ? `${testId}-${o.value}` : undefined}
        >
          {o.label}
        </button>
      ))}
    </div>
  );
}

export function Tabs<T extends string>({ value, tabs, onChange, label, testId }: { value: T; tabs: { value: T; label: string }[]; onChange: (v: T) => void; label: string; testId?: string }) {
  return (
    <div className="tabs" role="tablist" aria-label={label}>
      {tabs.map((t) => (
        <button
          key={t.value}
          type="button"
          role="tab"
          aria-selected={value === t.value}
          className={value === t.value ? 'on' : ''}
          onClick={() => onChange(t.value)}
          data-testid={testId ? `${testId}-${t.value}` : undefined}
        >
          {t.label}
        </button>
      ))}
    </div>
  );
}

export function Switch({ checked, onChange, label, testId, disabled }: { checked: boolean; onChange: (v: boolean) => void; label: ReactNode; testId?: string; disabled?: boolean }) {
  return (
    <button type="button" role="switch" aria-checked={checked} className={`switch ${checked ? 'on' : ''}`} onClick={() => onChange(!checked)} data-testid={testId} disabled={disabled}>
      <span className="switch-track" aria-hidden="true">
        <span className="switch-thumb" />
      </span>
      <span className="switch-label">{label}</span>
    </button>
  );
}

export function Empty({ title, children, testId }: { title: string; children?: ReactNode; testId?: string }) {
  return (
    <div className="empty" data-testid={testId}>
      <h3>{title}</h3>
      {children}
    </div>
  );
}

export function PageHeader({ title, sub, actions }: { title: string; sub?: ReactNode; actions?: ReactNode }) {
  return (
    <header className="page-head">
      <div>
        <h1>{title}</h1>
        {sub ? <p className="muted">{sub}</p> : null}
      </div>
      {actions ? <div className="page-actions">{actions}</div> : null}
    </header>
  );
}

/** Save text as a file through the browser's download (the engine never writes files for the UI). */
export function downloadText(filename: string, content: string, type: string): void {
  const url = URL.createObjectURL(new Blob([content], { type: `${type};charset=utf-8` }));
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
