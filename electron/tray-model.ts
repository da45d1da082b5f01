/**
 * What the tray shows, as data. Pure (no electron import): main.ts turns the model into a
 * `Tray` icon/tooltip and a `Menu`, and the unit tests check the model directly.
 *
 * Money stays exact: cap tightness is compared in nano-USD bigints, never as floats.
 */
import type { Alert, CapStatus, Overview } from '../shared/api.ts';
import { formatUsd, usdToNano } from '../shared/money.ts';

export type TrayIconState = 'normal' | 'warning' | 'blocked';

export type TrayAction =
  | 'pause'
  | 'resume'
  | 'open'
  | 'openCap'
  | 'copyProxyUrl'
  | 'toggleStartAtLogin'
  | 'toggleDoNotDisturb'
  | 'quit';

export type MenuItemModel =
  | { kind: 'info'; id: string; label: string }
  | { kind: 'separator' }
  | { kind: 'action'; id: TrayAction; label: string; enabled: boolean; capId?: string }
  | { kind: 'checkbox'; id: TrayAction; label: string; checked: boolean };

export interface TrayModel {
  icon: TrayIconState;
  tooltip: string;
  menu: MenuItemModel[];
}

export interface TrayInput {
  /** null while the engine is starting or unreachable. */
  overview: Overview | null;
  paused: boolean;
  lastAlert: Alert | null;
  proxyUrl: string | null;
  startAtLogin?: boolean;
  doNotDisturb?: boolean;
  /** Whether the platform supports start-at-login (macOS, Windows). */
  canStartAtLogin?: boolean;
  locale?: string;
  /** Shown instead of spend when the engine failed to start. */
  engineError?: string | null;
}

/** Warning state from this share of the tightest cap. */
export const WARNING_PERCENT = 80;
/** Windows truncates tray tooltips at 127 characters. */
export const TOOLTIP_MAX = 127;

export function capLabel(cap: CapStatus['cap']): string {
  return cap.scope === 'global' ? `global ${cap.period}` : `${cap.scope}:${cap.scopeValue ?? '?'} ${cap.period}`;
}

/** Spent share of the limit in tenths of a percent, floored (799 = 79.9 %): exact, no floats. */
export function capPermille(status: CapStatus): bigint {
  const limit = usdToNano(status.cap.limit);
  if (limit <= 0n) return 0n;
  const spent = usdToNano(status.spent);
  return (spent * 1000n) / limit;
}

/** The cap closest to its limit (highest spent/limit), or null when there are no caps. */
export function tightestCap(caps: readonly CapStatus[]): { status: CapStatus; permille: bigint } | null {
  let best: { status: CapStatus; permille: bigint } | null = null;
  for (const status of caps) {
    const permille = capPermille(status);
    if (!best || permille > best.permille || (permille === best.permille && status.blocked && !best.status.blocked)) {
      best = { status, permille };
    }
  }
  return best;
}

function formatPermille(permille: bigint): string {
  const whole = permille / 10n;
  return `${whole.toString()}%`;
}

export function newestAlert(alerts: readonly Alert[]): Alert | null {
  let newest: Alert | null = null;
  for (const a of alerts) if (!newest || a.ts > newest.ts) newest = a;
  return newest;
}

export function alertSentence(alert: Alert): string {
  return alert.kind === 'blocked'
    ? `${alert.capLabel} cap reached: calls blocked`
    : `${alert.capLabel} reached ${alert.threshold}%`;
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

export function buildTrayModel(input: TrayInput): TrayModel {
  const { overview, paused } = input;
  const money = (usd: string): string => formatUsd(usd, { locale: input.locale ?? 'en-US' });
  const menu: MenuItemModel[] = [];
  let icon: TrayIconState = 'normal';
  const tip: string[] = [];

  if (!overview) {
    menu.push({ kind: 'info', id: 'status', label: input.engineError ? `Engine error: ${input.engineError}` : 'Starting…' });
    tip.push(input.engineError ? 'engine error' : 'starting…');
  } else {
    const tight = tightestCap(overview.caps);
    const hardBlocked = overview.caps.some((c) => c.blocked && c.cap.hard);
    if (paused || hardBlocked) icon = 'blocked';
    else if (tight && tight.permille >= BigInt(WARNING_PERCENT * 10)) icon = 'warning';

    menu.push({ kind: 'info', id: 'today', label: `Today: ${money(overview.today.current)}` });
    menu.push({ kind: 'info', id: 'month', label: `This month: ${money(overview.month.current)}` });
    if (tight) {
      const c = tight.status;
      const state = c.blocked && c.cap.hard ? ' (blocking)' : '';
      menu.push({
        kind: 'info',
        id: 'tightest',
        label: `Tightest cap: ${capLabel(c.cap)} ${formatPermille(tight.permille)} of ${money(c.cap.limit)}${state}`,
      });
    } else {
      menu.push({ kind: 'info', id: 'tightest', label: 'No spending caps set' });
    }
    const alert = input.lastAlert ?? newestAlert(overview.alerts);
    if (alert) {
      menu.push({ kind: 'action', id: 'openCap', label: `Last alert: ${alertSentence(alert)}`, enabled: true, capId: alert.capId });
    }

    if (paused) tip.push('PAUSED');
    else if (hardBlocked) tip.push('BLOCKING');
    tip.push(`today ${money(overview.today.current)}`, `month ${money(overview.month.current)}`);
    if (tight) tip.push(`${formatPermille(tight.permille)} of ${capLabel(tight.status.cap)}`);
  }

  menu.push({ kind: 'separator' });
  menu.push(
    paused
      ? { kind: 'action', id: 'resume', label: 'Resume all calls', enabled: overview !== null }
      : { kind: 'action', id: 'pause', label: 'Pause all calls', enabled: overview !== null },
  );
  menu.push({ kind: 'action', id: 'open', label: 'Open Tollgate', enabled: true });
  menu.push({
    kind: 'action',
    id: 'copyProxyUrl',
    label: input.proxyUrl ? `Copy proxy URL (${input.proxyUrl})` : 'Copy proxy URL',
    enabled: input.proxyUrl !== null,
  });
  menu.push({ kind: 'separator' });
  if (input.canStartAtLogin ?? true) {
    menu.push({ kind: 'checkbox', id: 'toggleStartAtLogin', label: 'Start at login', checked: input.startAtLogin ?? false });
  }
  menu.push({ kind: 'checkbox', id: 'toggleDoNotDisturb', label: 'Do not disturb', checked: input.doNotDisturb ?? false });
  menu.push({ kind: 'separator' });
  menu.push({ kind: 'action', id: 'quit', label: 'Quit Tollgate', enabled: true });

  return { icon, tooltip: truncate(`Tollgate: ${tip.join(' · ')}`, TOOLTIP_MAX), menu };
}
