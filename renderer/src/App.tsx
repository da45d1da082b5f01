import { lazy, Suspense, useEffect, useRef, useState } from 'react';
import { chooseBridge, forgetToken } from './bridge/index.ts';
import { COMMANDS } from './snippets.ts';
import { useApp, viewFromHash, VIEWS, type ViewId } from './store.ts';
import { OverviewView } from './views/Overview.tsx';
import { SyncBanner } from './views/Sync.tsx';

type Boot = { state: 'loading' } | { state: 'no-token' } | { state: 'ready' } | { state: 'error'; message: string };

export function App() {
  const [boot, setBoot] = useState<Boot>({ state: 'loading' });
  const unauthorized = useApp((s) => s.unauthorized);

  useEffect(() => {
    let unsubscribe: (() => void) | undefined;
    let cancelled = false;
    const { setConnection, setUnauthorized, init } = useApp.getState();
    chooseBridge({ onConnection: (c) => setConnection(c), onUnauthorized: () => setUnauthorized() })
      .then((choice) => {
        if (cancelled) return;
        if (choice.kind === 'no-token') {
          setBoot({ state: 'no-token' });
          return;
        }
        unsubscribe = init(choice.bridge, choice.kind);
        setBoot({ state: 'ready' });
      })
      .catch((err: unknown) => setBoot({ state: 'error', message: (err as Error).message }));
    return () => {
      cancelled = true;
      unsubscribe?.();
    };
  }, []);

  if (boot.state === 'loading') return <div className="boot muted">Starting Tollgate…</div>;
  if (boot.state === 'error') return <NotAuthorised reason={`The UI could not start: ${boot.message}`} />;
  if (boot.state === 'no-token') return <NotAuthorised />;
  if (unauthorized) return <NotAuthorised reason="The engine rejected this page's token (it may have been restarted with a new one)." />;
  return <Shell />;
}

function NotAuthorised({ reason }: { reason?: string }) {
  useEffect(() => forgetToken(), []);
  return (
    <main className="gate" data-testid="no-token">
      <div className="gate-card">
        <div className="brand brand-big">
          <Logo /> Tollgate
        </div>
        <h1>This page is not authorised</h1>
        {reason ? <p>{reason}</p> : null}
        <p>
          Open Tollgate with <code>{COMMANDS.open}</code> (or <code>{COMMANDS.openPrintUrl}</code>) so this page is authorised.
        </p>
        <p className="muted">
          The control API only answers requests that carry the local session token. The link printed by <code>{COMMANDS.openPrintUrl}</code> hands it to this page once, in
          the URL fragment; it is kept for this tab only and removed from the address bar.
        </p>
      </div>
    </main>
  );
}

export function Logo() {
  return (
    <svg className="logo" viewBox="0 0 24 24" width="22" height="22" aria-hidden="true">
      <rect x="2" y="4" width="3" height="17" rx="1" fill="currentColor" />
      <rect x="19" y="4" width="3" height="17" rx="1" fill="currentColor" />
      <rect x="5" y="9" width="14" height="2.6" rx="1.3" fill="var(--accent)" />
      <circle cx="3.5" cy="3" r="1.6" fill="currentColor" />
      <circle cx="20.5" cy="3" r="1.6" fill="currentColor" />
    </svg>
  );
}

// Only the Overview ships in the first bundle: every other view is its own chunk, loaded when
// opened (the first paint on a big ledger is mostly JavaScript parse time).
const CompareView = lazy(() => import('./views/Compare.tsx').then((m) => ({ default: m.CompareView })));
const CallsView = lazy(() => import('./views/Calls.tsx').then((m) => ({ default: m.CallsView })));
const QuoteView = lazy(() => import('./views/Quote.tsx').then((m) => ({ default: m.QuoteView })));
const BudgetsView = lazy(() => import('./views/Budgets.tsx').then((m) => ({ default: m.BudgetsView })));
const KeysView = lazy(() => import('./views/Keys.tsx').then((m) => ({ default: m.KeysView })));
const PricesView = lazy(() => import('./views/Prices.tsx').then((m) => ({ default: m.PricesView })));
const SettingsView = lazy(() => import('./views/Settings.tsx').then((m) => ({ default: m.SettingsView })));
const CreditsView = lazy(() => import('./views/Credits.tsx').then((m) => ({ default: m.CreditsView })));
const StatementsView = lazy(() => import('./views/Statements.tsx').then((m) => ({ default: m.StatementsView })));

const VIEW_COMPONENTS: Record<ViewId, React.ComponentType> = {
  overview: OverviewView,
  calls: CallsView,
  compare: CompareView,
  quote: QuoteView,
  budgets: BudgetsView,
  keys: KeysView,
  prices: PricesView,
  settings: SettingsView,
  credits: CreditsView,
  statements: StatementsView,
};

function Shell() {
  const view = useApp((s) => s.view);
  const setView = useApp((s) => s.setView);
  const paused = useApp((s) => s.paused);
  const connection = useApp((s) => s.connection);
  const transport = useApp((s) => s.transport);
  const version = useApp((s) => s.settings?.version);
  const mainRef = useRef<HTMLElement>(null);
  const first = useRef(true);

  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    // move focus to the new page's heading for keyboard and screen-reader users
    mainRef.current?.querySelector<HTMLElement>('h1')?.focus();
  }, [view]);

  useEffect(() => {
    const onHash = () => {
      const v = viewFromHash(window.location.hash);
      if (v && v !== useApp.getState().view) useApp.setState({ view: v });
    };
    // the address bar names the view from the start (the token fragment was just scrubbed)
    if (!viewFromHash(window.location.hash)) history.replaceState(history.state, '', `${window.location.pathname}${window.location.search}#/${useApp.getState().view}`);
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  useEffect(
    () =>
      window.tollgateDesktop?.onNavigate((req) => {
        const v = VIEWS.find((x) => x.id === req.view);
        if (v) setView(v.id);
      }),
    [setView],
  );

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (!e.altKey || e.ctrlKey || e.metaKey) return;
      const v = VIEWS.find((x) => x.key === e.key || `Digit${x.key}` === e.code);
      if (v) {
        e.preventDefault();
        setView(v.id);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [setView]);

  const View = VIEW_COMPONENTS[view];
  return (
    <div className="shell">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <nav className="nav" aria-label="Main">
        <div className="brand">
          <Logo /> <span>Tollgate</span>
        </div>
        <ul>
          {VIEWS.map((v) => (
            <li key={v.id}>
              <button
                type="button"
                className={`nav-item ${view === v.id ? 'on' : ''}`}
                aria-current={view === v.id ? 'page' : undefined}
                onClick={() => setView(v.id)}
                data-testid={`nav-${v.id}`}
                title={`${v.label} (Alt+${v.key})`}
              >
                <NavIcon id={v.id} />
                <span>{v.label}</span>
              </button>
            </li>
          ))}
        </ul>
        <div className="nav-foot">
          {paused ? (
            <div className="nav-paused" data-testid="paused-banner">
              Paused: all calls blocked
            </div>
          ) : null}
          <div className="conn" data-testid="connection">
            <span className={`dot dot-${transport === 'http' ? connection : 'open'}`} aria-hidden="true" />
            {transport === 'ipc' ? 'Connected' : connection === 'open' ? 'Live' : connection === 'connecting' ? 'Connecting…' : 'Reconnecting…'}
          </div>
          {version ? <div className="muted small">v{version}</div> : null}
        </div>
      </nav>
      <main id="main" className="main" ref={mainRef} data-testid={`view-${view}`}>
        <SyncBanner />
        <Suspense fallback={<p className="muted">Loading…</p>}>
          <View />
        </Suspense>
      </main>
    </div>
  );
}

function NavIcon({ id }: { id: ViewId }) {
  const paths: Record<ViewId, string> = {
    overview: 'M3 13h4v8H3zM10 8h4v13h-4zM17 3h4v18h-4z',
    calls: 'M4 5h16v2H4zM4 11h16v2H4zM4 17h16v2H4z',
    compare: 'M4 20V10h3v10zM10.5 20V4h3v16zM17 20v-7h3v7z',
    quote: 'M6 3h9l4 4v14H6zM9 11h7v1.6H9zM9 15h7v1.6H9z',
    budgets: 'M12 3a9 9 0 1 0 9 9h-9z M14 1.5V10h8.5A8.5 8.5 0 0 0 14 1.5z',
    keys: 'M14 3a6 6 0 0 0-5.7 7.9L3 16.2V21h4.8v-2.4h2.4v-2.4h2.4l1.2-1.3A6 6 0 1 0 14 3zm2 3.6a1.6 1.6 0 1 1 0 3.2 1.6 1.6 0 0 1 0-3.2z',
    prices: 'M3 12V3h9l9 9-9 9zM7.5 6a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z',
    settings: 'M10 2h4l.6 3 2.4 1.4 2.9-1 2 3.4-2.3 2v2.4l2.3 2-2 3.4-2.9-1L14.6 19l-.6 3h-4l-.6-3L7 17.6l-2.9 1-2-3.4 2.3-2v-2.4l-2.3-2 2-3.4 2.9 1L9.4 5zM12 9a3 3 0 1 0 0 6 3 3 0 0 0 0-6z',
    credits: 'M2 6h20v12H2zM4 9v6h16V9zM12 10a2 2 0 1 1 0 4 2 2 0 0 1 0-4z',
    statements: 'M5 2h10l4 4v16H5zM8 9h8v1.6H8zM8 13h8v1.6H8zM8 17h5v1.6H8z',
  };
  return (
    <svg className="nav-icon" viewBox="0 0 24 24" width="16" height="16" aria-hidden="true">
      <path d={paths[id]} fill="currentColor" fillRule="evenodd" />
    </svg>
  );
}
