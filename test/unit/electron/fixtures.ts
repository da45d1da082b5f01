import type { Alert, CallRecord, Cap, CapStatus, Overview } from '../../../shared/api.ts';

export function cap(over: Partial<Cap> = {}): Cap {
  return { id: 'cap_month', scope: 'global', scopeValue: null, period: 'month', limit: '100', alerts: [50, 80, 100], hard: true, createdAt: 0, ...over };
}

export function capStatus(spent: string, over: Partial<Cap> = {}, blocked = false): CapStatus {
  return { cap: cap(over), spent, reserved: '0', percent: 0, periodStart: 0, resetsAt: null, blocked };
}

export function overview(over: Partial<Overview> = {}): Overview {
  return {
    today: { current: '1.25', previous: '0.5', calls: 12 },
    week: { current: '8', previous: '7', calls: 80 },
    month: { current: '42.5', previous: '30', calls: 400 },
    burnRatePerHour: '0.1',
    projectedMonth: '60',
    projection: { basis: 'last24h', monthSoFar: '42.5', ratePerHour: '0.1', hoursLeft: 175, monthEnd: 0 },
    caps: [],
    series: { granularity: 'hour', groupBy: 'model', points: [] },
    topModels: [],
    topProjects: [],
    alerts: [],
    unpricedCalls: 0,
    paused: false,
    totalCalls: 400,
    ...over,
  };
}

export function alert(over: Partial<Alert> = {}): Alert {
  return {
    id: 'al_1', capId: 'cap_month', capLabel: 'global month', threshold: 80, periodKey: '2026-11',
    spent: '80.5', limit: '100', ts: 1_000, kind: 'threshold', ...over,
  };
}

export function blockedCall(blockedBy: string, over: Partial<CallRecord> = {}): CallRecord {
  return {
    id: `call_${Math.random()}`, ts: 0, provider: 'openai', model: 'gpt-4o', endpoint: 'chat.completions', project: null,
    workflow: null, run: null, node: null, keyFingerprint: null, keyName: null, status: 'blocked', httpStatus: 402,
    stream: false, durationMs: 1, ttfbMs: null, usage: {}, items: [], cost: '0', reserved: '0', estimated: false,
    unpriced: false, unpricedReason: null, priceSource: null, error: null, blockedBy, ...over,
  };
}
