import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TOOLTIP_MAX, buildTrayModel, capPermille, tightestCap } from '../../../electron/tray-model.ts';
import type { MenuItemModel, TrayInput } from '../../../electron/tray-model.ts';
import { alert, capStatus, overview } from './fixtures.ts';

const input = (over: Partial<TrayInput> = {}): TrayInput => ({
  overview: overview(),
  paused: false,
  lastAlert: null,
  proxyUrl: 'http://127.0.0.1:4141',
  ...over,
});
const labels = (menu: MenuItemModel[]): string[] => menu.flatMap((i) => ('label' in i ? [i.label] : []));
const actions = (menu: MenuItemModel[]): string[] => menu.flatMap((i) => (i.kind === 'action' || i.kind === 'checkbox' ? [i.id] : []));

test('normal state: spend today and this month, no caps', () => {
  const m = buildTrayModel(input());
  assert.equal(m.icon, 'normal');
  assert.ok(labels(m.menu).includes('Today: $1.25'));
  assert.ok(labels(m.menu).includes('This month: $42.50'));
  assert.ok(labels(m.menu).includes('No spending caps set'));
  assert.deepEqual(actions(m.menu), ['pause', 'open', 'copyProxyUrl', 'toggleStartAtLogin', 'toggleDoNotDisturb', 'quit']);
  assert.ok(labels(m.menu).includes('Copy proxy URL (http://127.0.0.1:4141)'));
  assert.match(m.tooltip, /today \$1\.25/);
});

test('the tightest cap is the one closest to its limit, compared exactly', () => {
  const caps = [
    capStatus('50', { id: 'a', limit: '100' }),
    capStatus('7.9', { id: 'b', scope: 'project', scopeValue: 'acme', period: 'day', limit: '10' }),
    capStatus('0.000000001', { id: 'c', limit: '0.000000002' }),
  ];
  assert.equal(tightestCap(caps)?.status.cap.id, 'b');
  assert.equal(capPermille(caps[1]!), 790n);
  const m = buildTrayModel(input({ overview: overview({ caps }) }));
  assert.ok(labels(m.menu).includes('Tightest cap: project:acme day 79% of $10.00'));
  assert.equal(m.icon, 'normal');
});

test('warning at 80 % of the tightest cap, not at 79.99 %', () => {
  const at = (spent: string) => buildTrayModel(input({ overview: overview({ caps: [capStatus(spent, { limit: '100' })] }) })).icon;
  assert.equal(at('79.999999999'), 'normal');
  assert.equal(at('80'), 'warning');
  assert.equal(at('99'), 'warning');
  // a soft cap over its limit warns but does not show blocked
  assert.equal(buildTrayModel(input({ overview: overview({ caps: [capStatus('150', { hard: false }, false)] }) })).icon, 'warning');
});

test('blocked when paused or when any hard cap blocks', () => {
  const paused = buildTrayModel(input({ paused: true }));
  assert.equal(paused.icon, 'blocked');
  assert.deepEqual(actions(paused.menu).slice(0, 1), ['resume']);
  assert.match(paused.tooltip, /PAUSED/);

  const caps = [capStatus('10', { id: 'loose', limit: '1000' }), capStatus('5', { id: 'tight', limit: '5', hard: true }, true)];
  const blocked = buildTrayModel(input({ overview: overview({ caps }) }));
  assert.equal(blocked.icon, 'blocked');
  assert.ok(labels(blocked.menu).some((l) => l.endsWith('(blocking)')));
  assert.match(blocked.tooltip, /BLOCKING/);
});

test('last alert links to its cap; falls back to the newest overview alert', () => {
  const explicit = buildTrayModel(input({ lastAlert: alert({ capId: 'cap_x', capLabel: 'project:acme month', threshold: 80 }) }));
  const item = explicit.menu.find((i) => i.kind === 'action' && i.id === 'openCap');
  assert.ok(item && item.kind === 'action');
  assert.equal(item.capId, 'cap_x');
  assert.equal(item.label, 'Last alert: project:acme month reached 80%');

  const fallback = buildTrayModel(input({ overview: overview({ alerts: [alert({ ts: 1, threshold: 50 }), alert({ ts: 9, kind: 'blocked', threshold: 100 })] }) }));
  assert.ok(labels(fallback.menu).includes('Last alert: global month cap reached: calls blocked'));
});

test('engine not ready: Open and Quit work, pause is disabled, no proxy URL', () => {
  const m = buildTrayModel(input({ overview: null, proxyUrl: null }));
  assert.equal(m.icon, 'normal');
  assert.ok(labels(m.menu).includes('Starting…'));
  const pause = m.menu.find((i) => i.kind === 'action' && i.id === 'pause');
  assert.ok(pause && pause.kind === 'action' && !pause.enabled);
  const copy = m.menu.find((i) => i.kind === 'action' && i.id === 'copyProxyUrl');
  assert.ok(copy && copy.kind === 'action' && !copy.enabled);
  assert.ok(buildTrayModel(input({ overview: null, engineError: 'EADDRINUSE' })).menu.some((i) => 'label' in i && i.label.includes('EADDRINUSE')));
});

test('toggles reflect preferences; start-at-login hidden where unsupported', () => {
  const m = buildTrayModel(input({ startAtLogin: true, doNotDisturb: true }));
  const checked = m.menu.flatMap((i) => (i.kind === 'checkbox' ? [[i.id, i.checked]] : []));
  assert.deepEqual(checked, [['toggleStartAtLogin', true], ['toggleDoNotDisturb', true]]);
  assert.ok(!actions(buildTrayModel(input({ canStartAtLogin: false })).menu).includes('toggleStartAtLogin'));
});

test('tooltip fits the Windows limit', () => {
  const caps = [capStatus('90', { scope: 'project', scopeValue: 'p'.repeat(150) })];
  const m = buildTrayModel(input({ paused: true, overview: overview({ caps }) }));
  assert.ok(m.tooltip.length <= TOOLTIP_MAX);
});
