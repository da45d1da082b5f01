/**
 * Caps across devices, kept on the service, and the leases devices spend them from.
 *
 * For a cap in its current period:
 *   available = limit − spent − held
 *   spent     = the account's pushed calls in the cap's scope, received in the cap's current period
 *               (the service's own clock: a device's clock never moves spend out of a period)
 *   held      = Σ over the period's leases of unrevoked devices: max(base − pushed, 0), where base is
 *               the lease's amount, or once returned the amount the device says it used, and pushed
 *               is what the device has pushed so far of calls naming that lease.
 * An expired lease that was never returned keeps holding what it may have spent (amount − pushed):
 * the device may have spent it offline and will push those calls later. Returning the lease (or
 * revoking the device) releases it. So no number of devices, processes or lost messages can make
 * the granted allowances plus the spend exceed the limit.
 *
 * Grants, returns and pushes all lock the account's row first (SQLite: BEGIN IMMEDIATE), so they
 * happen one at a time per account, whichever service process serves them.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { periodBounds } from '../shared/caps.ts';
import { MoneyError, nanoToUsd, usdToNanoExact } from '../shared/money.ts';
import type { CapPeriod, CapScopeType } from '../shared/api.ts';
import { big, num, type Db, type Query, type Row } from './db.ts';
import { LedgerError, PROTOCOL } from './protocol.ts';
import type { Auth } from './store.ts';

export const LEASE_TTL_MS = 15 * 60 * 1000;

const SCOPE_COLUMN: Record<Exclude<CapScopeType, 'global'>, string> = {
  provider: 'provider', project: 'project', key: 'key_fp', model: 'model', workflow: 'workflow',
};

export const capInputSchema = z.object({
  scope: z.enum(['global', 'provider', 'project', 'key', 'model', 'workflow']),
  scope_value: z.string().min(1).max(500).nullable().optional(),
  period: z.enum(['day', 'week', 'month', 'total']),
  limit: z.string().regex(/^(0|[1-9][0-9]*)(\.[0-9]+)?$/, 'must be a non-negative decimal string (USD)'),
  tz: z.string().max(100).optional(),
  alerts: z.array(z.number().int().min(1).max(1000)).max(10).optional(),
});

export interface ServiceCap {
  id: string;
  scope: CapScopeType;
  scope_value: string | null;
  period: CapPeriod;
  tz: string;
  limit: string;
  /** Percent thresholds; each fires once per period for the whole account (GET /v1/alerts). */
  alerts: number[];
  /** In the current period, USD decimal strings. */
  spent: string;
  held: string;
  available: string;
  period_start: number;
  period_end: number | null;
}

export interface Lease {
  id: string;
  cap: string;
  amount: string;
  used: string | null;
  /** How long the device may spend from it, counted on its own clock from receipt. */
  ttl_ms: number;
  expires_at: number;
  period_start: number;
  returned_at: number | null;
}

function money(v: string, what: string): bigint {
  try {
    return usdToNanoExact(v);
  } catch (e) {
    if (e instanceof MoneyError) throw new LedgerError(400, 'malformed', `${what}: ${e.message}`);
    throw e;
  }
}

async function lockAccount(q: Query, auth: Auth): Promise<void> {
  await q.get(`SELECT last_seq FROM accounts WHERE id = ?${q.forUpdate}`, [auth.accountId]);
}

async function capRow(q: Query, auth: Auth, id: string): Promise<Row> {
  const row = await q.get('SELECT * FROM caps WHERE id = ? AND account_id = ? AND deleted_at IS NULL', [id, auth.accountId]);
  if (!row) throw new LedgerError(404, 'no_such_cap', `this account has no cap ${id}`);
  return row;
}

/** The cap's figures now; run inside a transaction that holds the account's lock for a consistent picture. */
async function capState(q: Query, cap: Row, now: number): Promise<ServiceCap & { limitNano: bigint; availableNano: bigint; spentNano: bigint }> {
  const b = periodBounds(cap.period as CapPeriod, now, String(cap.tz));
  const params: unknown[] = [cap.account_id, b.start];
  let where = 'account_id = ? AND received_at >= ?';
  if (b.end !== null) { where += ' AND received_at < ?'; params.push(b.end); }
  if (cap.scope !== 'global') {
    const col = SCOPE_COLUMN[cap.scope as Exclude<CapScopeType, 'global'>];
    if (cap.scope === 'model') { where += ` AND (model = ? OR provider || ':' || model = ?)`; params.push(cap.scope_value, cap.scope_value); }
    else { where += ` AND ${col} = ?`; params.push(cap.scope_value); }
  }
  const spent = big((await q.get(`SELECT COALESCE(SUM(cost_nano), 0) AS s FROM calls WHERE ${where}`, params))?.s);
  const leases = await q.all(
    `SELECT l.amount_nano, l.pushed_nano, l.used_nano, l.returned_at FROM leases l JOIN devices d ON d.id = l.device_id
     WHERE l.cap_id = ? AND l.period_start = ? AND d.revoked_at IS NULL`,
    [cap.id, b.start],
  );
  let held = 0n;
  for (const l of leases) {
    const base = l.returned_at === null ? big(l.amount_nano) : big(l.used_nano);
    const h = base - big(l.pushed_nano);
    if (h > 0n) held += h;
  }
  const limitNano = big(cap.limit_nano);
  const availableNano = limitNano - spent - held;
  return {
    spentNano: spent,
    id: String(cap.id), scope: cap.scope as CapScopeType, scope_value: cap.scope_value === null ? null : String(cap.scope_value),
    period: cap.period as CapPeriod, tz: String(cap.tz), limit: nanoToUsd(limitNano), alerts: JSON.parse(String(cap.alerts ?? '[]')) as number[],
    spent: nanoToUsd(spent), held: nanoToUsd(held), available: nanoToUsd(availableNano > 0n ? availableNano : 0n),
    period_start: b.start, period_end: b.end, limitNano, availableNano,
  };
}

const publicCap = ({ limitNano: _l, availableNano: _a, spentNano: _s, ...c }: Awaited<ReturnType<typeof capState>>): ServiceCap => c;

export async function createCap(db: Db, auth: Auth, body: Record<string, unknown>): Promise<{ protocol: number; cap: ServiceCap }> {
  const r = capInputSchema.safeParse(body);
  if (!r.success) throw new LedgerError(400, 'malformed', `not a valid cap: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const c = r.data;
  if ((c.scope === 'global') !== (c.scope_value === undefined || c.scope_value === null)) {
    throw new LedgerError(400, 'malformed', c.scope === 'global' ? 'a global cap has no scope_value' : `a ${c.scope} cap needs a scope_value`);
  }
  const tz = c.tz ?? 'UTC';
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    throw new LedgerError(400, 'malformed', `unknown time zone "${tz}"`);
  }
  const limitNano = money(c.limit, 'limit');
  const id = randomUUID();
  return db.tx(async (q) => {
    const alerts = [...new Set(c.alerts ?? [])].sort((x, y) => x - y);
    await q.run('INSERT INTO caps (id, account_id, scope, scope_value, period, tz, limit_nano, created_at, deleted_at, alerts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)',
      [id, auth.accountId, c.scope, c.scope_value ?? null, c.period, tz, limitNano, Date.now(), JSON.stringify(alerts)]);
    await fireAlerts(q, auth.accountId, Date.now());
    return { protocol: PROTOCOL, cap: publicCap(await capState(q, await capRow(q, auth, id), Date.now())) };
  });
}

export async function listCaps(db: Db, auth: Auth): Promise<{ protocol: number; caps: ServiceCap[] }> {
  return db.tx(async (q) => {
    const rows = await q.all('SELECT * FROM caps WHERE account_id = ? AND deleted_at IS NULL ORDER BY created_at, id', [auth.accountId]);
    const now = Date.now();
    const caps: ServiceCap[] = [];
    for (const r of rows) caps.push(publicCap(await capState(q, r, now)));
    return { protocol: PROTOCOL, caps };
  });
}

export async function deleteCap(db: Db, auth: Auth, id: string): Promise<{ protocol: number; deleted: string }> {
  return db.tx(async (q) => {
    await capRow(q, auth, id);
    await q.run('UPDATE caps SET deleted_at = ? WHERE id = ? AND account_id = ?', [Date.now(), id, auth.accountId]);
    return { protocol: PROTOCOL, deleted: id };
  });
}

const leaseOut = (r: Row, now: number): Lease => ({
  id: String(r.id), cap: String(r.cap_id), amount: nanoToUsd(big(r.amount_nano)),
  used: r.used_nano === null ? null : nanoToUsd(big(r.used_nano)),
  ttl_ms: Math.max(0, num(r.expires_at) - now), expires_at: num(r.expires_at), period_start: num(r.period_start),
  returned_at: r.returned_at === null ? null : num(r.returned_at),
});

/**
 * Grant this device up to `amount` from the cap: never more than what is available. A grant of
 * zero (`lease: null`) means the cap is spent or fully leased out right now.
 */
export async function grantLease(db: Db, auth: Auth, body: Record<string, unknown>): Promise<{ protocol: number; granted: string; lease: Lease | null; cap: ServiceCap }> {
  if (typeof body.cap !== 'string') throw new LedgerError(400, 'malformed', '"cap" must be the cap id');
  if (typeof body.amount !== 'string') throw new LedgerError(400, 'malformed', '"amount" must be a decimal string (USD)');
  const wanted = money(body.amount, 'amount');
  if (wanted <= 0n) throw new LedgerError(400, 'malformed', '"amount" must be more than zero');
  const ttl = body.ttl_ms === undefined ? LEASE_TTL_MS : Number(body.ttl_ms);
  if (!Number.isInteger(ttl) || ttl < 1000 || ttl > LEASE_TTL_MS) throw new LedgerError(400, 'malformed', `"ttl_ms" must be an integer from 1000 to ${LEASE_TTL_MS}`);
  const capId = body.cap;
  return db.tx(async (q) => {
    await lockAccount(q, auth);
    const now = Date.now();
    const state = await capState(q, await capRow(q, auth, capId), now);
    const grant = state.availableNano <= 0n ? 0n : wanted < state.availableNano ? wanted : state.availableNano;
    let lease: Lease | null = null;
    if (grant > 0n) {
      const id = randomUUID();
      await q.run(
        'INSERT INTO leases (id, account_id, cap_id, device_id, period_start, amount_nano, pushed_nano, used_nano, granted_at, expires_at, returned_at) VALUES (?, ?, ?, ?, ?, ?, 0, NULL, ?, ?, NULL)',
        [id, auth.accountId, capId, auth.deviceId, state.period_start, grant, now, now + ttl],
      );
      lease = leaseOut((await q.get('SELECT * FROM leases WHERE id = ?', [id]))!, now);
    }
    const after = await capState(q, await capRow(q, auth, capId), now);
    return { protocol: PROTOCOL, granted: nanoToUsd(grant), lease, cap: publicCap(after) };
  });
}

/** Return a lease, saying how much of it was used; what is unused goes back to the cap. Idempotent. */
export async function returnLease(db: Db, auth: Auth, id: string, body: Record<string, unknown>): Promise<{ protocol: number; lease: Lease }> {
  if (typeof body.used !== 'string') throw new LedgerError(400, 'malformed', '"used" must be a decimal string (USD): what the device spent from this lease');
  const used = money(body.used, 'used');
  if (used < 0n) throw new LedgerError(400, 'malformed', '"used" cannot be negative');
  return db.tx(async (q) => {
    await lockAccount(q, auth);
    const row = await q.get('SELECT * FROM leases WHERE id = ? AND account_id = ? AND device_id = ?', [id, auth.accountId, auth.deviceId]);
    if (!row) throw new LedgerError(404, 'no_such_lease', `this device has no lease ${id}`);
    if (row.returned_at === null) {
      await q.run('UPDATE leases SET returned_at = ?, used_nano = ? WHERE id = ?', [Date.now(), used, id]);
    } else if (big(row.used_nano) !== used) {
      throw new LedgerError(409, 'lease_returned', `lease ${id} was already returned with used ${nanoToUsd(big(row.used_nano))}`);
    }
    return { protocol: PROTOCOL, lease: leaseOut((await q.get('SELECT * FROM leases WHERE id = ?', [id]))!, Date.now()) };
  });
}

/** This device's leases that are not returned yet (to settle after a restart). */
export async function openLeases(db: Db, auth: Auth): Promise<{ protocol: number; leases: Lease[] }> {
  const now = Date.now();
  const rows = await db.all('SELECT * FROM leases WHERE account_id = ? AND device_id = ? AND returned_at IS NULL ORDER BY granted_at, id', [auth.accountId, auth.deviceId]);
  return { protocol: PROTOCOL, leases: rows.map((r) => leaseOut(r, now)) };
}

/**
 * Record every alert threshold the account's caps have now crossed, once per cap, period and
 * threshold (the unique key decides, whichever process gets there first). Runs inside the push
 * transaction, under the account's lock.
 */
export async function fireAlerts(q: Query, accountIdValue: string, now: number): Promise<void> {
  const caps = await q.all("SELECT * FROM caps WHERE account_id = ? AND deleted_at IS NULL AND alerts <> '[]'", [accountIdValue]);
  for (const cap of caps) {
    const thresholds = JSON.parse(String(cap.alerts)) as number[];
    const start = periodBounds(cap.period as CapPeriod, now, String(cap.tz)).start;
    const fired = num((await q.get('SELECT COUNT(*) AS n FROM cap_alerts WHERE cap_id = ? AND period_start = ?', [cap.id, start]))?.n);
    if (fired >= thresholds.length) continue; // all fired this period: skip summing the spend
    const st = await capState(q, cap, now);
    for (const t of st.alerts) {
      if (st.spentNano * 100n < BigInt(t) * st.limitNano) continue;
      await q.run(
        'INSERT INTO cap_alerts (account_id, cap_id, period_start, threshold, spent_nano, limit_nano, fired_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (cap_id, period_start, threshold) DO NOTHING',
        [accountIdValue, st.id, st.period_start, t, st.spentNano, st.limitNano, now],
      );
    }
  }
}

export interface CapAlert {
  id: number;
  cap: string;
  threshold: number;
  period_start: number;
  spent: string;
  limit: string;
  fired_at: number;
}

/** The account's fired alerts after `after`, oldest first: every device shows each one once. */
export async function listAlerts(db: Db, auth: Auth, after: number, limit: number): Promise<{ protocol: number; alerts: CapAlert[]; next: number; has_more: boolean }> {
  const rows = await db.all('SELECT * FROM cap_alerts WHERE account_id = ? AND id > ? ORDER BY id LIMIT ?', [auth.accountId, after, limit + 1]);
  const alerts = rows.slice(0, limit).map((r) => ({
    id: num(r.id), cap: String(r.cap_id), threshold: num(r.threshold), period_start: num(r.period_start),
    spent: nanoToUsd(big(r.spent_nano)), limit: nanoToUsd(big(r.limit_nano)), fired_at: num(r.fired_at),
  }));
  return { protocol: PROTOCOL, alerts, next: alerts.length ? alerts[alerts.length - 1]!.id : after, has_more: rows.length > limit };
}
