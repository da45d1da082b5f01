/**
 * What the ledger service does, over either database. Every query that serves a device is scoped
 * to that device's account. The service keeps no state of its own between requests, so any number
 * of processes may share one PostgreSQL.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { big, num, type Db, type Query } from './db.ts';
import {
  ENROL_CODE_TTL_MS, LedgerError, MAX_PULL_LIMIT, PROTOCOL, sha256,
  type DeviceInfo, type GrantEvent, type GrantPushResult, type PulledGrantEvent, type PullResponse, type PushResponse, type PushResult, type ValidCall,
} from './protocol.ts';
import { fireAlerts } from './leases.ts';

export interface Auth {
  deviceId: string;
  deviceName: string;
  accountId: string;
}

const CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTVWXYZ23456789'; // no 0/O, 1/I/L, U

/** A readable one-time code, 16 symbols (~78 bits), e.g. "K7QM-3XWD-PZ9A-HT4R". */
function newCode(): string {
  const bytes = randomBytes(16);
  let s = '';
  for (let i = 0; i < 16; i++) {
    if (i && i % 4 === 0) s += '-';
    s += CODE_ALPHABET[bytes[i]! % CODE_ALPHABET.length];
  }
  return s;
}
const normalizeCode = (code: string): string => code.toUpperCase().replace(/[^A-Z0-9]/g, '');
const hashCode = (code: string): string => sha256(`enrol:${normalizeCode(code)}`);
export const hashToken = (token: string): string => sha256(token);

async function accountId(q: Query, name: string, create: boolean): Promise<string | null> {
  const row = await q.get('SELECT id FROM accounts WHERE name = ?', [name]);
  if (row) return String(row.id);
  if (!create) return null;
  const id = randomUUID();
  await q.run('INSERT INTO accounts (id, name, last_seq, created_at) VALUES (?, ?, 0, ?) ON CONFLICT (name) DO NOTHING', [id, name, Date.now()]);
  return String((await q.get('SELECT id FROM accounts WHERE name = ?', [name]))!.id);
}

/** A one-time enrolment code for the account (created if new). Only its hash is stored. */
export async function createEnrolCode(db: Db, account: string, ttlMs = ENROL_CODE_TTL_MS): Promise<{ code: string; account: string; expires_at: number }> {
  const code = newCode();
  const now = Date.now();
  const expires_at = now + ttlMs;
  await db.tx(async (q) => {
    const acc = (await accountId(q, account, true))!;
    await q.run('INSERT INTO enrol_codes (code_hash, account_id, expires_at, used_at, created_at) VALUES (?, ?, ?, NULL, ?)', [hashCode(code), acc, expires_at, now]);
  });
  return { code, account, expires_at };
}

/** Exchange an enrolment code for a device token. The code works once, before it expires. */
export async function enrol(db: Db, code: string, name: string | undefined): Promise<{ token: string; device: { id: string; name: string }; account: string }> {
  const token = `tgl_${randomBytes(32).toString('base64url')}`;
  return db.tx(async (q) => {
    const row = await q.get(
      `SELECT c.account_id, c.expires_at, c.used_at, a.name FROM enrol_codes c JOIN accounts a ON a.id = c.account_id WHERE c.code_hash = ?${q.forUpdate}`,
      [hashCode(code)],
    );
    const now = Date.now();
    if (!row) throw new LedgerError(401, 'invalid_code', 'this enrolment code is not known; ask for a new one (tollgate-ledger enroll)');
    if (row.used_at !== null) throw new LedgerError(401, 'code_used', 'this enrolment code has already been used; ask for a new one (tollgate-ledger enroll)');
    if (num(row.expires_at) <= now) throw new LedgerError(401, 'code_expired', 'this enrolment code has expired; ask for a new one (tollgate-ledger enroll)');
    const changed = await q.run('UPDATE enrol_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL', [now, hashCode(code)]);
    if (changed !== 1) throw new LedgerError(401, 'code_used', 'this enrolment code has already been used; ask for a new one (tollgate-ledger enroll)');
    const accountIdValue = String(row.account_id);
    const count = num((await q.get('SELECT COUNT(*) AS n FROM devices WHERE account_id = ?', [accountIdValue]))?.n);
    const deviceName = name?.trim() || `device-${count + 1}`;
    const id = randomUUID();
    await q.run('INSERT INTO devices (id, account_id, name, token_hash, created_at, last_seen_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, NULL)',
      [id, accountIdValue, deviceName, hashToken(token), now, now]);
    return { token, device: { id, name: deviceName }, account: String(row.name) };
  });
}

/** The device a bearer token belongs to; 401 for an unknown or revoked one. */
export async function authenticate(db: Db, token: string | undefined): Promise<Auth> {
  if (!token) throw new LedgerError(401, 'unauthorized', 'send the device token as "Authorization: Bearer <token>"');
  const row = await db.get('SELECT id, name, account_id, revoked_at, last_seen_at FROM devices WHERE token_hash = ?', [hashToken(token)]);
  if (!row) throw new LedgerError(401, 'unauthorized', 'this token is not known to the ledger');
  if (row.revoked_at !== null) throw new LedgerError(401, 'revoked', 'this device has been revoked; join again with a new enrolment code');
  const now = Date.now();
  if (now - num(row.last_seen_at) > 5000) await db.run('UPDATE devices SET last_seen_at = ? WHERE id = ?', [now, row.id]);
  return { deviceId: String(row.id), deviceName: String(row.name), accountId: String(row.account_id) };
}

const deviceInfo = (r: Record<string, unknown>): DeviceInfo => ({
  id: String(r.id), name: String(r.name), account: String(r.account),
  created_at: num(r.created_at),
  last_seen_at: r.last_seen_at === null ? null : num(r.last_seen_at),
  revoked_at: r.revoked_at === null ? null : num(r.revoked_at),
});

/** Devices of one account (for a device) or of every account (for the operator's CLI). */
export async function listDevices(db: Db, accountIdValue?: string): Promise<DeviceInfo[]> {
  const sql = 'SELECT d.id, d.name, a.name AS account, d.created_at, d.last_seen_at, d.revoked_at FROM devices d JOIN accounts a ON a.id = d.account_id';
  const rows = accountIdValue
    ? await db.all(`${sql} WHERE d.account_id = ? ORDER BY d.created_at, d.id`, [accountIdValue])
    : await db.all(`${sql} ORDER BY a.name, d.created_at, d.id`);
  return rows.map(deviceInfo);
}

/** Revoke a device by id (or by name when that name is unique). Its next request gets 401. */
export async function revokeDevice(db: Db, idOrName: string): Promise<DeviceInfo> {
  return db.tx(async (q) => {
    let rows = await q.all('SELECT id FROM devices WHERE id = ?', [idOrName]);
    if (rows.length === 0) rows = await q.all('SELECT id FROM devices WHERE name = ?', [idOrName]);
    if (rows.length === 0) throw new LedgerError(404, 'no_such_device', `no device "${idOrName}" (see tollgate-ledger devices)`);
    if (rows.length > 1) throw new LedgerError(409, 'ambiguous_device', `several devices are named "${idOrName}"; revoke by id`);
    const id = String(rows[0]!.id);
    await q.run('UPDATE devices SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL', [Date.now(), id]);
    const r = await q.get('SELECT d.id, d.name, a.name AS account, d.created_at, d.last_seen_at, d.revoked_at FROM devices d JOIN accounts a ON a.id = d.account_id WHERE d.id = ?', [id]);
    return deviceInfo(r!);
  });
}

const chunks = <T>(xs: T[], n: number): T[][] => Array.from({ length: Math.ceil(xs.length / n) }, (_, i) => xs.slice(i * n, i * n + n));

/**
 * Store a batch in one transaction: all of it or none of it. Keyed by (account, call id) forever:
 * the same content again is a `duplicate`, other content under a known id is a `conflict` (kept in
 * `conflicts` for the operator, never merged). Sequence numbers come from the account's row,
 * locked for the transaction, so they are gap-free and committed in order.
 */
export async function push(db: Db, auth: Auth, calls: ValidCall[]): Promise<PushResponse> {
  const now = Date.now();
  return db.tx(async (q) => {
    const acc = await q.get(`SELECT last_seq FROM accounts WHERE id = ?${q.forUpdate}`, [auth.accountId]);
    if (!acc) throw new LedgerError(401, 'unauthorized', 'this device has no account');
    let seq = num(acc.last_seq);

    // SQLite, the usual batch (calls the service has never seen, each once): inserted straight away
    // in a savepoint, without looking the ids up first; a known id fails the insert (primary key),
    // which rolls the savepoint back and takes the path below. Only the originals of corrections are
    // looked up first. (PostgreSQL looks every id up in one statement: an error there would abort the
    // whole transaction, and the lookup is one round trip.)
    if (db.kind === 'sqlite' && calls.length > 0 && new Set(calls.map((c) => c.call.id)).size === calls.length) {
      const fast = await pushFresh(q, auth, calls, seq, now);
      if (fast) {
        await q.run('UPDATE accounts SET last_seq = ? WHERE id = ?', [fast.seq, auth.accountId]);
        await fireAlerts(q, auth.accountId, now);
        return { protocol: PROTOCOL, results: fast.results, stored: calls.length, duplicates: 0, conflicts: 0 };
      }
    }

    const known = new Map<string, { seq: number; hash: string }>();
    const wanted = [...new Set(calls.flatMap((c) => (c.call.corrects ? [c.call.id, c.call.corrects] : [c.call.id])))];
    // PostgreSQL: one array parameter (one short statement to parse and plan); SQLite: lists of placeholders
    const lookups = db.kind === 'postgres'
      ? [q.all('SELECT id, seq, content_hash FROM calls WHERE account_id = ? AND id = ANY(?::text[])', [auth.accountId, wanted])]
      : chunks(wanted, 500).map((ids) => q.all(`SELECT id, seq, content_hash FROM calls WHERE account_id = ? AND id IN (${ids.map(() => '?').join(',')})`, [auth.accountId, ...ids]));
    for (const rows of await Promise.all(lookups)) {
      for (const r of rows) known.set(String(r.id), { seq: num(r.seq), hash: String(r.content_hash) });
    }

    const results: PushResult[] = [];
    const conflicts: unknown[][] = [];
    const spentFromLeases = new Map<string, bigint>();
    let inserts: unknown[][] = [];
    const flush = async () => {
      if (!inserts.length) return;
      await q.run(
        `INSERT INTO calls (account_id, id, seq, device_id, content_hash, body, ts, cost_nano, corrects, received_at, provider, model, project, workflow, key_fp) VALUES ${inserts.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
        inserts.flat(),
      );
      inserts = [];
    };
    for (const [index, c] of calls.entries()) {
      const id = c.call.id;
      const prior = known.get(id);
      if (prior) {
        const same = prior.hash === c.hash;
        results.push({ id, status: same ? 'duplicate' : 'conflict', seq: prior.seq });
        if (!same) conflicts.push([auth.accountId, id, auth.deviceId, c.hash, c.body, now]);
        continue;
      }
      // a failure here rolls back the rows of this batch already written
      if (c.call.corrects && !known.has(c.call.corrects)) {
        throw new LedgerError(400, 'unknown_original', `calls[${index}] corrects ${c.call.corrects}, which this account does not have; push the original first`, { index });
      }
      seq += 1;
      known.set(id, { seq, hash: c.hash });
      results.push({ id, status: 'stored', seq });
      const k = c.call;
      inserts.push([auth.accountId, id, seq, auth.deviceId, c.hash, c.body, k.ts, c.costNano, k.corrects ?? null, now, k.provider, k.model ?? null, k.project ?? null, k.workflow ?? null, k.keyFingerprint ?? null]);
      for (const lease of new Set(k.leases ?? [])) spentFromLeases.set(lease, (spentFromLeases.get(lease) ?? 0n) + c.costNano);
      if (inserts.length === 500) await flush();
    }
    await flush();
    // what a lease's device has pushed moves from the lease's hold into the cap's spend, in this same transaction
    for (const [lease, nano] of spentFromLeases) {
      await q.run('UPDATE leases SET pushed_nano = pushed_nano + ? WHERE id = ? AND account_id = ?', [nano, lease, auth.accountId]);
    }
    for (const rows of chunks(conflicts, 100)) {
      await q.run(`INSERT INTO conflicts (account_id, call_id, device_id, content_hash, body, received_at) VALUES ${rows.map(() => '(?, ?, ?, ?, ?, ?)').join(', ')}`, rows.flat());
    }
    if (seq !== num(acc.last_seq)) {
      await q.run('UPDATE accounts SET last_seq = ? WHERE id = ?', [seq, auth.accountId]);
      await fireAlerts(q, auth.accountId, now);
    }

    const count = (s: string) => results.filter((r) => r.status === s).length;
    return { protocol: PROTOCOL, results, stored: count('stored'), duplicates: count('duplicate'), conflicts: count('conflict') };
  });
}

const INSERT_CALLS = 'INSERT INTO calls (account_id, id, seq, device_id, content_hash, body, ts, cost_nano, corrects, received_at, provider, model, project, workflow, key_fp) VALUES ';
const callRow = (auth: Auth, c: ValidCall, seq: number, now: number): unknown[] => {
  const k = c.call;
  return [auth.accountId, k.id, seq, auth.deviceId, c.hash, c.body, k.ts, c.costNano, k.corrects ?? null, now, k.provider, k.model ?? null, k.project ?? null, k.workflow ?? null, k.keyFingerprint ?? null];
};

/**
 * The SQLite fast path of push(): every call of the batch stored, in a savepoint, with no lookup of
 * its id first; null (and nothing written) when one of them is already known (the primary key
 * refuses it) or corrects a call the account does not have: push() then takes its careful path.
 */
async function pushFresh(q: Query, auth: Auth, calls: ValidCall[], lastSeq: number, now: number): Promise<{ seq: number; results: PushResult[] } | null> {
  const originals = [...new Set(calls.flatMap((c) => (c.call.corrects ? [c.call.corrects] : [])))];
  if (originals.length) {
    const inBatch = new Set(calls.map((c) => c.call.id));
    const outside = originals.filter((id) => !inBatch.has(id));
    for (const ids of chunks(outside, 500)) {
      const found = await q.all(`SELECT id FROM calls WHERE account_id = ? AND id IN (${ids.map(() => '?').join(',')})`, [auth.accountId, ...ids]);
      if (found.length !== ids.length) return null;
    }
    // an original in the batch must come before its correction
    const seen = new Set<string>();
    for (const c of calls) {
      if (c.call.corrects && inBatch.has(c.call.corrects) && !seen.has(c.call.corrects)) return null;
      seen.add(c.call.id);
    }
  }
  let seq = lastSeq;
  const results: PushResult[] = [];
  const spentFromLeases = new Map<string, bigint>();
  await q.exec('SAVEPOINT push_fresh');
  try {
    for (const part of chunks(calls, 500)) {
      const rows: unknown[] = [];
      for (const c of part) {
        seq += 1;
        results.push({ id: c.call.id, status: 'stored', seq });
        rows.push(...callRow(auth, c, seq, now));
        for (const lease of new Set(c.call.leases ?? [])) spentFromLeases.set(lease, (spentFromLeases.get(lease) ?? 0n) + c.costNano);
      }
      await q.run(INSERT_CALLS + part.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', '), rows);
    }
  } catch (e) {
    await q.exec('ROLLBACK TO push_fresh');
    await q.exec('RELEASE push_fresh');
    if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') return null; // an id the account already has
    throw e;
  }
  await q.exec('RELEASE push_fresh');
  for (const [lease, nano] of spentFromLeases) {
    await q.run('UPDATE leases SET pushed_nano = pushed_nano + ? WHERE id = ? AND account_id = ?', [nano, lease, auth.accountId]);
  }
  return { seq, results };
}

/**
 * Calls of the account after `after`, in sequence order, at most `limit` of them: the JSON text of a
 * PullResponse. Each call is its stored canonical JSON, written into the answer as it is (it was
 * made by JSON.stringify on the way in), so a page is not parsed and serialized again.
 */
export async function pull(db: Db, auth: Auth, after: number, limit: number, othersOnly = false): Promise<string> {
  const n = Math.min(Math.max(1, limit), MAX_PULL_LIMIT);
  // othersOnly: the device's own calls are scanned (they move `next`) but not sent
  const rows = await db.all(
    `SELECT c.seq, c.device_id, d.name AS device_name, c.received_at, ${othersOnly ? 'CASE WHEN c.device_id = ? THEN NULL ELSE c.body END' : 'c.body'} AS body FROM calls c JOIN devices d ON d.id = c.device_id WHERE c.account_id = ? AND c.seq > ? ORDER BY c.seq LIMIT ?`,
    othersOnly ? [auth.deviceId, auth.accountId, after, n + 1] : [auth.accountId, after, n + 1],
  );
  const count = Math.min(rows.length, n);
  const names = new Map<unknown, string>();
  const parts: string[] = [];
  let next = after;
  for (let i = 0; i < count; i++) {
    const r = rows[i]!;
    next = num(r.seq);
    if (r.body === null) continue;
    let dev = names.get(r.device_id);
    if (dev === undefined) {
      dev = `"device":${JSON.stringify(String(r.device_id))},"device_name":${JSON.stringify(String(r.device_name))}`;
      names.set(r.device_id, dev);
    }
    parts.push(`{"seq":${next},${dev},"received_at":${num(r.received_at)},"call":${String(r.body)}}`);
  }
  return `{"protocol":${PROTOCOL},"calls":[${parts.join(',')}],"next":${next},"has_more":${rows.length > n}}`;
}

/** The account's totals as the service sees them: calls and exact spend, per device. */
export async function totals(db: Db, auth: Auth): Promise<{ protocol: number; calls: number; cost_nano: string; last_seq: number; devices: { device: string; calls: number; cost_nano: string }[] }> {
  const rows = await db.all('SELECT device_id, COUNT(*) AS n, SUM(cost_nano) AS cost FROM calls WHERE account_id = ? GROUP BY device_id ORDER BY device_id', [auth.accountId]);
  const acc = await db.get('SELECT last_seq FROM accounts WHERE id = ?', [auth.accountId]);
  const devices = rows.map((r) => ({ device: String(r.device_id), calls: num(r.n), cost_nano: big(r.cost).toString() }));
  return {
    protocol: PROTOCOL,
    calls: devices.reduce((s, d) => s + d.calls, 0),
    cost_nano: devices.reduce((s, d) => s + BigInt(d.cost_nano), 0n).toString(),
    last_seq: num(acc?.last_seq),
    devices,
  };
}

// ---- credit grants (protocol 2) ----

/**
 * Store a batch of grant events in order, in one transaction under the account's row lock (so the
 * grant sequence is gap-free across processes). Idempotent forever by (account, grant id, kind):
 * an add again with the same content is `duplicate`, with other content `conflict` (the original
 * kept, the other recorded); a removal again (from any device) is `duplicate`. A removal may come
 * before its grant (the grant then stays removed when it arrives); nothing is ever updated.
 */
export async function pushGrants(db: Db, auth: Auth, events: GrantEvent[]): Promise<{ protocol: number; results: GrantPushResult[]; stored: number; duplicates: number; conflicts: number }> {
  const now = Date.now();
  return db.tx(async (q) => {
    const acc = await q.get(`SELECT last_grant_seq FROM accounts WHERE id = ?${q.forUpdate}`, [auth.accountId]);
    if (!acc) throw new LedgerError(401, 'unauthorized', 'this device has no account');
    let seq = num(acc.last_grant_seq);
    const known = new Map<string, { seq: number; hash: string }>();
    const ids = [...new Set(events.map((e) => e.id))];
    for (const part of chunks(ids, 500)) {
      const rows = await q.all(`SELECT grant_id, kind, seq, content_hash FROM grant_events WHERE account_id = ? AND grant_id IN (${part.map(() => '?').join(',')})`, [auth.accountId, ...part]);
      for (const r of rows) known.set(`${r.kind}:${r.grant_id}`, { seq: num(r.seq), hash: String(r.content_hash) });
    }
    const results: GrantPushResult[] = [];
    for (const e of events) {
      const prior = known.get(`${e.kind}:${e.id}`);
      if (prior) {
        // a removal is a removal whoever sent it and whenever: only an add's content is compared
        const same = e.kind === 'remove' || prior.hash === e.hash;
        results.push({ kind: e.kind, id: e.id, status: same ? 'duplicate' : 'conflict', seq: prior.seq });
        if (!same) await q.run('INSERT INTO grant_conflicts (account_id, grant_id, device_id, content_hash, body, received_at) VALUES (?, ?, ?, ?, ?, ?)', [auth.accountId, e.id, auth.deviceId, e.hash, e.body, now]);
        continue;
      }
      seq += 1;
      known.set(`${e.kind}:${e.id}`, { seq, hash: e.hash });
      await q.run('INSERT INTO grant_events (account_id, seq, kind, grant_id, device_id, content_hash, body, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        [auth.accountId, seq, e.kind, e.id, auth.deviceId, e.hash, e.body, now]);
      results.push({ kind: e.kind, id: e.id, status: 'stored', seq });
    }
    if (seq !== num(acc.last_grant_seq)) await q.run('UPDATE accounts SET last_grant_seq = ? WHERE id = ?', [seq, auth.accountId]);
    const count = (s: string) => results.filter((r) => r.status === s).length;
    return { protocol: PROTOCOL, results, stored: count('stored'), duplicates: count('duplicate'), conflicts: count('conflict') };
  });
}

/** Grant events of the account after `after`, in sequence order, at most `limit` of them. */
export async function pullGrants(db: Db, auth: Auth, after: number, limit: number): Promise<{ protocol: number; events: PulledGrantEvent[]; next: number; has_more: boolean }> {
  const n = Math.min(Math.max(1, limit), MAX_PULL_LIMIT);
  const rows = await db.all(
    'SELECT g.seq, g.kind, g.grant_id, g.device_id, d.name AS device_name, g.received_at, g.body FROM grant_events g JOIN devices d ON d.id = g.device_id WHERE g.account_id = ? AND g.seq > ? ORDER BY g.seq LIMIT ?',
    [auth.accountId, after, n + 1],
  );
  const events = rows.slice(0, n).map((r): PulledGrantEvent => {
    const body = JSON.parse(String(r.body)) as Record<string, unknown>;
    const e: PulledGrantEvent = { seq: num(r.seq), kind: r.kind as 'add' | 'remove', id: String(r.grant_id), device: String(r.device_id), device_name: String(r.device_name), received_at: num(r.received_at) };
    if (e.kind === 'add') e.grant = body as PulledGrantEvent['grant'];
    else e.removed_at = Number(body.removed_at);
    return e;
  });
  return { protocol: PROTOCOL, events, next: events.length ? events[events.length - 1]!.seq : after, has_more: rows.length > n };
}
