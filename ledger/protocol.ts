/**
 * The sync protocol's types and rules (documented in ledger/README.md). Pure: no I/O.
 */
import crypto from 'node:crypto';
import { z } from 'zod';
import type { CallRecord } from '../shared/api.ts';
import { MoneyError, usdToNanoExact } from '../shared/money.ts';
import { NOT_PLAIN, sortedPlain } from '../shared/canonical.ts';

/**
 * The current protocol version. The service accepts this one and the one before it (when there is one).
 * 1: calls (push, pull), devices, totals, caps and leases.
 * 2: 1 + credit grants (`/v1/grants`: grants and their removal, as tombstones) and the calls'
 *    `upstreamId` (the provider's response id, e.g. OpenRouter's "gen-…"; kept as sent under 1 too).
 */
export const PROTOCOL = 2;
/** The first protocol version with credit grants. */
export const GRANTS_PROTOCOL = 2;
/** A service speaking `current` accepts it and the version before it, so old and new clients share a ledger. */
export const acceptedProtocols = (current: number): number[] => (current > 1 ? [current - 1, current] : [current]);
export const ACCEPTED_PROTOCOLS: readonly number[] = acceptedProtocols(PROTOCOL);

export const MAX_BATCH_CALLS = 1000;
/** Largest request body, after gzip is undone. */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;
export const MAX_PULL_LIMIT = 1000;
export const DEFAULT_PULL_LIMIT = 500;
/** Costs are stored as signed 64-bit nano-USD. */
const MAX_NANO = 2n ** 63n;
export const ENROL_CODE_TTL_MS = 15 * 60 * 1000;

/** Every error the service returns: `{"error": {"code", "message", ...details}}` with an HTTP status. */
export class LedgerError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly details: Record<string, unknown> = {}) {
    super(message);
  }
  toJSON(): { error: Record<string, unknown> } {
    return { error: { code: this.code, message: this.message, ...this.details } };
  }
}

export function checkProtocol(v: unknown): number {
  if (v === undefined) throw new LedgerError(400, 'unsupported_protocol', `missing "protocol"; this service speaks ${ACCEPTED_PROTOCOLS.join(' or ')}`, { supported: ACCEPTED_PROTOCOLS });
  if (typeof v !== 'number' || !ACCEPTED_PROTOCOLS.includes(v)) {
    throw new LedgerError(400, 'unsupported_protocol', `protocol ${JSON.stringify(v)} is not supported; this service speaks ${ACCEPTED_PROTOCOLS.join(' or ')}`, { supported: ACCEPTED_PROTOCOLS });
  }
  return v;
}

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DECIMAL = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/;
const nullableText = z.string().max(1000).nullable().optional();

/**
 * A finished call as pushed: the engine's CallRecord (shared/api.ts). Only the fields the service
 * reads are checked; every other field, known or not, is kept as sent.
 * `corrects`: the id of an earlier call of the account that this record corrects.
 * `leases`: the ids of the leases this call was spent from (caps across devices).
 */
export const pushedCallSchema = z.looseObject({
  id: z.string().regex(UUID_V7, 'must be a UUIDv7'),
  ts: z.number().int().nonnegative(),
  status: z.string().min(1).refine((s) => s !== 'pending', 'pending calls are pushed only once final'),
  cost: z.string().regex(DECIMAL, 'must be a decimal string'),
  provider: z.string().min(1).max(200),
  model: nullableText,
  project: nullableText,
  workflow: nullableText,
  keyFingerprint: nullableText,
  corrects: z.string().regex(UUID_V7, 'must be a UUIDv7').nullable().optional(),
  leases: z.array(z.string().regex(UUID, 'must be a lease id')).max(32).optional(),
});

export type PushedCall = z.infer<typeof pushedCallSchema> & Partial<CallRecord>;

export interface ValidCall {
  call: PushedCall;
  /** Canonical JSON of the call: what is stored and compared. */
  body: string;
  hash: string;
  costNano: bigint;
}

/** JSON with object keys sorted at every depth, so the same content always has the same bytes. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) {
    let s = '[';
    for (let i = 0; i < v.length; i++) s += (i ? ',' : '') + (v[i] === undefined ? 'null' : canonicalJson(v[i]));
    return s + ']';
  }
  const obj = v as Record<string, unknown>;
  let s = '{';
  for (const k of Object.keys(obj).sort()) {
    if (obj[k] === undefined) continue;
    s += (s.length > 1 ? ',' : '') + JSON.stringify(k) + ':' + canonicalJson(obj[k]);
  }
  return s + '}';
}

/**
 * The same bytes as canonicalJson, cheaply: when every object of `v` already has its keys in sorted
 * order (the engine sends them so), the native JSON.stringify writes exactly the canonical form;
 * any other value goes through canonicalJson.
 */
export function canonicalJsonFast(v: unknown): string {
  if (isCanonicalOrder(v)) return JSON.stringify(v);
  // plain JSON data with some keys out of order (an engine stores usage as its provider reported
  // it): the out-of-order objects re-keyed, then the native JSON.stringify; anything else (undefined,
  // non-finite numbers, class instances) through canonicalJson
  const sorted = sortedPlain(v);
  return sorted === NOT_PLAIN ? canonicalJson(v) : JSON.stringify(sorted);
}

/** True when JSON.stringify(v) equals canonicalJson(v): plain JSON data, every object's keys in ascending order, no undefined. */
function isCanonicalOrder(v: unknown): boolean {
  if (v === null) return true;
  switch (typeof v) {
    case 'string': case 'boolean': return true;
    case 'number': return Number.isFinite(v);
    case 'object': break;
    default: return false;
  }
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (!isCanonicalOrder(v[i])) return false;
    return true;
  }
  if (Object.getPrototypeOf(v) !== Object.prototype || typeof (v as { toJSON?: unknown }).toJSON === 'function') return false;
  let prev: string | null = null;
  for (const k in v) {
    if (!Object.hasOwn(v, k)) return false;
    if (prev !== null && !(prev < k)) return false;
    prev = k;
    if (!isCanonicalOrder((v as Record<string, unknown>)[k])) return false;
  }
  return true;
}

const hashOnce = (crypto as { hash?: (alg: string, data: string, enc: 'hex') => string }).hash;
export const sha256 = hashOnce
  ? (s: string): string => hashOnce('sha256', s, 'hex')
  : (s: string): string => crypto.createHash('sha256').update(s).digest('hex');

const isTextOrNull = (v: unknown, max: number): boolean => v === undefined || v === null || (typeof v === 'string' && v.length <= max);

/**
 * A fast check of the fixed shape, strictly narrower than pushedCallSchema: a call it accepts is one
 * the schema accepts, unchanged (the schema's output has the same content). Anything else, and
 * every error message, goes through the schema.
 */
function plainValidCall(raw: unknown): raw is PushedCall {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw) || Object.getPrototypeOf(raw) !== Object.prototype || Object.hasOwn(raw, '__proto__')) return false;
  const c = raw as Record<string, unknown>;
  const { id, ts, status, cost, provider, corrects, leases } = c;
  if (typeof id !== 'string' || !UUID_V7.test(id)) return false;
  if (typeof ts !== 'number' || !Number.isSafeInteger(ts) || ts < 0) return false;
  if (typeof status !== 'string' || status.length === 0 || status === 'pending') return false;
  if (typeof cost !== 'string' || !DECIMAL.test(cost)) return false;
  if (typeof provider !== 'string' || provider.length === 0 || provider.length > 200) return false;
  if (!isTextOrNull(c.model, 1000) || !isTextOrNull(c.project, 1000) || !isTextOrNull(c.workflow, 1000) || !isTextOrNull(c.keyFingerprint, 1000)) return false;
  if (corrects !== undefined && corrects !== null && (typeof corrects !== 'string' || !UUID_V7.test(corrects))) return false;
  if (leases !== undefined) {
    if (!Array.isArray(leases) || leases.length > 32) return false;
    for (const l of leases) if (typeof l !== 'string' || !UUID.test(l)) return false;
  }
  return true;
}

/** Validate one pushed call; throws a LedgerError naming the call's index and what is wrong. */
export function validateCall(raw: unknown, index: number): ValidCall {
  let call: PushedCall;
  if (plainValidCall(raw)) call = raw;
  else {
    const r = pushedCallSchema.safeParse(raw);
    if (!r.success) {
      const issues = r.error.issues.map((i) => `${i.path.join('.') || '(call)'}: ${i.message}`);
      throw new LedgerError(400, 'invalid_call', `calls[${index}] is not a valid finished call: ${issues.join('; ')}`, { index });
    }
    call = r.data as PushedCall;
  }
  let costNano: bigint;
  try {
    costNano = usdToNanoExact(call.cost);
  } catch (e) {
    if (!(e instanceof MoneyError)) throw e;
    throw new LedgerError(400, 'invalid_call', `calls[${index}].cost: ${e.message}`, { index });
  }
  if (costNano >= MAX_NANO || costNano <= -MAX_NANO) throw new LedgerError(400, 'invalid_call', `calls[${index}].cost is out of range`, { index });
  if (costNano < 0n && !call.corrects) throw new LedgerError(400, 'invalid_call', `calls[${index}].cost is negative; only a correction (with "corrects") may be`, { index });
  if (call.corrects === call.id) throw new LedgerError(400, 'invalid_call', `calls[${index}] cannot correct itself`, { index });
  const body = canonicalJsonFast(call);
  return { call, body, hash: sha256(body), costNano };
}

/** Validate a push request body (already parsed JSON). Nothing is written unless all of it is valid. */
export function validatePush(body: unknown): { protocol: number; calls: ValidCall[] } {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new LedgerError(400, 'malformed', 'the body must be a JSON object');
  const b = body as Record<string, unknown>;
  const protocol = checkProtocol(b.protocol);
  if (!Array.isArray(b.calls)) throw new LedgerError(400, 'malformed', '"calls" must be an array of finished calls');
  if (b.calls.length > MAX_BATCH_CALLS) {
    throw new LedgerError(413, 'batch_too_large', `a batch holds at most ${MAX_BATCH_CALLS} calls, this one has ${b.calls.length}`, { max_calls: MAX_BATCH_CALLS });
  }
  return { protocol, calls: b.calls.map(validateCall) };
}

export type PushStatus = 'stored' | 'duplicate' | 'conflict';

export interface PushResult {
  id: string;
  status: PushStatus;
  /** The server's sequence number of the stored record (the original's for a duplicate or conflict). */
  seq: number;
}

export interface PushResponse {
  protocol: number;
  results: PushResult[];
  stored: number;
  duplicates: number;
  conflicts: number;
}

export interface PulledCall {
  seq: number;
  device: string;
  received_at: number;
  call: PushedCall;
}

export interface PullResponse {
  protocol: number;
  calls: PulledCall[];
  /** Pass as `after` for the next page. */
  next: number;
  has_more: boolean;
}

// ---- credit grants (protocol 2) ----

export const MAX_BATCH_GRANTS = 1000;
const GRANT_ID = /^[A-Za-z0-9_-]{1,64}$/;
const POSITIVE_DECIMAL = /^(0|[1-9][0-9]*)(\.[0-9]+)?$/;
const ms = z.number().int().nonnegative().max(8.64e15);

/**
 * A credit grant as pushed (the engine's grant, shared/credits.ts): money as a decimal string, times
 * as integer UTC ms. Checked fields below; every other field is kept as sent.
 */
export const pushedGrantSchema = z.looseObject({
  id: z.string().regex(GRANT_ID, 'must be a grant id (letters, digits, _ or -, at most 64)'),
  provider: z.string().min(1).max(200),
  amount: z.string().regex(POSITIVE_DECIMAL, 'must be a positive decimal string'),
  effective: ms,
  expires: ms,
  priority: z.number().int().min(0).max(100),
  promo: z.boolean(),
  note: z.string().max(1000).nullable().optional(),
  created_at: ms,
});
export type PushedGrant = z.infer<typeof pushedGrantSchema>;

/** One entry of a grants push, in order: a grant added, or the tombstone of a grant removed. */
export type GrantEvent =
  | { kind: 'add'; id: string; grant: PushedGrant; body: string; hash: string }
  | { kind: 'remove'; id: string; removed_at: number; body: string; hash: string };

function grantError(index: number, what: string): LedgerError {
  return new LedgerError(400, 'invalid_grant', `events[${index}] ${what}`, { index });
}

export function validateGrantEvent(raw: unknown, index: number): GrantEvent {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw grantError(index, 'must be an object {"kind": "add", "grant": …} or {"kind": "remove", "id": …}');
  const e = raw as Record<string, unknown>;
  if (e.kind === 'add') {
    const r = pushedGrantSchema.safeParse(e.grant);
    if (!r.success) throw grantError(index, `is not a valid grant: ${r.error.issues.map((i) => `grant.${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const g = r.data;
    let nano: bigint;
    try {
      nano = usdToNanoExact(g.amount);
    } catch (err) {
      if (!(err instanceof MoneyError)) throw err;
      throw grantError(index, `grant.amount: ${err.message}`);
    }
    if (nano <= 0n || nano >= MAX_NANO) throw grantError(index, 'grant.amount must be more than 0 and in range');
    if (g.expires <= g.effective) throw grantError(index, 'grant.expires must be after grant.effective');
    const body = canonicalJson(g);
    return { kind: 'add', id: g.id, grant: g, body, hash: sha256(body) };
  }
  if (e.kind === 'remove') {
    if (typeof e.id !== 'string' || !GRANT_ID.test(e.id)) throw grantError(index, 'id must be a grant id');
    const at = e.removed_at;
    if (typeof at !== 'number' || !Number.isSafeInteger(at) || at < 0) throw grantError(index, 'removed_at must be integer UTC ms');
    const body = canonicalJson({ id: e.id, removed_at: at });
    return { kind: 'remove', id: e.id, removed_at: at, body, hash: sha256(body) };
  }
  throw grantError(index, `kind must be "add" or "remove", not ${JSON.stringify(e.kind)?.slice(0, 40)}`);
}

/** A grants push: `{"protocol": 2, "events": […]}`; protocol 1 has no grants. */
export function validateGrantPush(body: unknown): { protocol: number; events: GrantEvent[] } {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new LedgerError(400, 'malformed', 'the body must be a JSON object');
  const b = body as Record<string, unknown>;
  const protocol = checkGrantsProtocol(b.protocol);
  if (!Array.isArray(b.events)) throw new LedgerError(400, 'malformed', '"events" must be an array of grant events');
  if (b.events.length > MAX_BATCH_GRANTS) {
    throw new LedgerError(413, 'batch_too_large', `a grants batch holds at most ${MAX_BATCH_GRANTS} events, this one has ${b.events.length}`, { max_events: MAX_BATCH_GRANTS });
  }
  return { protocol, events: b.events.map(validateGrantEvent) };
}

/** An accepted protocol that has grants (2 or later). */
export function checkGrantsProtocol(v: unknown): number {
  const p = checkProtocol(v);
  if (p < GRANTS_PROTOCOL) throw new LedgerError(400, 'unsupported_protocol', `credit grants need protocol ${GRANTS_PROTOCOL} or later; this request says ${p}`, { supported: ACCEPTED_PROTOCOLS.filter((x) => x >= GRANTS_PROTOCOL) });
  return p;
}

export interface GrantPushResult {
  kind: 'add' | 'remove';
  id: string;
  status: PushStatus;
  /** The sequence number of the stored event (the original's for a duplicate or conflict). */
  seq: number;
}

export interface PulledGrantEvent {
  seq: number;
  kind: 'add' | 'remove';
  id: string;
  device: string;
  device_name: string;
  received_at: number;
  /** add: the grant as pushed */
  grant?: PushedGrant;
  /** remove: when the device removed it (the device's clock; informational) */
  removed_at?: number;
}

export interface DeviceInfo {
  id: string;
  name: string;
  account: string;
  created_at: number;
  last_seen_at: number | null;
  revoked_at: number | null;
}
