/**
 * Forward-only schema migrations, one list per backend. Never edit or reorder an entry that has
 * shipped: append a new one. Version N is `list[N - 1]`; `schema_migrations` records what ran.
 *
 * Times are integer UTC milliseconds of the SERVER's clock (expiries only; call order is `seq`).
 * Money is integer nano-USD (`cost_nano`) next to the call's own decimal string in `body`.
 *
 * Both backends run the same statements; only the 64-bit integer type, the auto-increment key and
 * reading a JSON field differ (the dialect below).
 */
interface Dialect {
  int: string;
  serial: string;
  json: (field: string) => string;
}

function migrations(d: Dialect): string[] {
  return [
  `CREATE TABLE accounts (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL UNIQUE,
     last_seq ${d.int} NOT NULL DEFAULT 0,
     created_at ${d.int} NOT NULL
   );
   CREATE TABLE enrol_codes (
     code_hash TEXT PRIMARY KEY,
     account_id TEXT NOT NULL REFERENCES accounts(id),
     expires_at ${d.int} NOT NULL,
     used_at ${d.int},
     created_at ${d.int} NOT NULL
   );
   CREATE TABLE devices (
     id TEXT PRIMARY KEY,
     account_id TEXT NOT NULL REFERENCES accounts(id),
     name TEXT NOT NULL,
     token_hash TEXT NOT NULL UNIQUE,
     created_at ${d.int} NOT NULL,
     last_seen_at ${d.int},
     revoked_at ${d.int}
   );
   CREATE INDEX devices_account ON devices(account_id);
   CREATE TABLE calls (
     account_id TEXT NOT NULL REFERENCES accounts(id),
     id TEXT NOT NULL,
     seq ${d.int} NOT NULL,
     device_id TEXT NOT NULL REFERENCES devices(id),
     content_hash TEXT NOT NULL,
     body TEXT NOT NULL,
     ts ${d.int} NOT NULL,
     cost_nano ${d.int} NOT NULL,
     corrects TEXT,
     received_at ${d.int} NOT NULL,
     PRIMARY KEY (account_id, id),
     UNIQUE (account_id, seq)
   );
   CREATE TABLE conflicts (
     account_id TEXT NOT NULL REFERENCES accounts(id),
     call_id TEXT NOT NULL,
     device_id TEXT NOT NULL,
     content_hash TEXT NOT NULL,
     body TEXT NOT NULL,
     received_at ${d.int} NOT NULL
   );
   CREATE INDEX conflicts_account ON conflicts(account_id, call_id);`,
  // 2: caps kept on the service, leases against them, and the call columns a cap's scope reads
  `ALTER TABLE calls ADD COLUMN provider TEXT;
   ALTER TABLE calls ADD COLUMN model TEXT;
   ALTER TABLE calls ADD COLUMN project TEXT;
   ALTER TABLE calls ADD COLUMN workflow TEXT;
   ALTER TABLE calls ADD COLUMN key_fp TEXT;
   UPDATE calls SET provider = ${d.json('provider')}, model = ${d.json('model')},
     project = ${d.json('project')}, workflow = ${d.json('workflow')}, key_fp = ${d.json('keyFingerprint')};
   CREATE INDEX calls_received ON calls(account_id, received_at);
   CREATE TABLE caps (
     id TEXT PRIMARY KEY,
     account_id TEXT NOT NULL REFERENCES accounts(id),
     scope TEXT NOT NULL,
     scope_value TEXT,
     period TEXT NOT NULL,
     tz TEXT NOT NULL,
     limit_nano ${d.int} NOT NULL,
     created_at ${d.int} NOT NULL,
     deleted_at ${d.int}
   );
   CREATE INDEX caps_account ON caps(account_id);
   CREATE TABLE leases (
     id TEXT PRIMARY KEY,
     account_id TEXT NOT NULL REFERENCES accounts(id),
     cap_id TEXT NOT NULL REFERENCES caps(id),
     device_id TEXT NOT NULL REFERENCES devices(id),
     period_start ${d.int} NOT NULL,
     amount_nano ${d.int} NOT NULL,
     pushed_nano ${d.int} NOT NULL DEFAULT 0,
     used_nano ${d.int},
     granted_at ${d.int} NOT NULL,
     expires_at ${d.int} NOT NULL,
     returned_at ${d.int}
   );
   CREATE INDEX leases_cap ON leases(cap_id, period_start);`,
  // 3: alert thresholds on service caps, fired once per cap, period and threshold for all devices
  `ALTER TABLE caps ADD COLUMN alerts TEXT NOT NULL DEFAULT '[]';
   CREATE TABLE cap_alerts (
     id ${d.serial},
     account_id TEXT NOT NULL REFERENCES accounts(id),
     cap_id TEXT NOT NULL REFERENCES caps(id),
     period_start ${d.int} NOT NULL,
     threshold ${d.int} NOT NULL,
     spent_nano ${d.int} NOT NULL,
     limit_nano ${d.int} NOT NULL,
     fired_at ${d.int} NOT NULL,
     UNIQUE (cap_id, period_start, threshold)
   );
   CREATE INDEX cap_alerts_account ON cap_alerts(account_id, id);`,
  // 4: credit grants (protocol 2). An append-only event log per account: a grant added ("add", its
  // body) or removed ("remove", a tombstone); never updated or deleted. At most one of each kind per
  // grant id (idempotent by id); its own gap-free sequence (last_grant_seq), so the calls' is untouched.
  `ALTER TABLE accounts ADD COLUMN last_grant_seq ${d.int} NOT NULL DEFAULT 0;
   CREATE TABLE grant_events (
     account_id TEXT NOT NULL REFERENCES accounts(id),
     seq ${d.int} NOT NULL,
     kind TEXT NOT NULL CHECK (kind IN ('add', 'remove')),
     grant_id TEXT NOT NULL,
     device_id TEXT NOT NULL REFERENCES devices(id),
     content_hash TEXT NOT NULL,
     body TEXT NOT NULL,
     received_at ${d.int} NOT NULL,
     PRIMARY KEY (account_id, seq),
     UNIQUE (account_id, grant_id, kind)
   );
   CREATE TABLE grant_conflicts (
     account_id TEXT NOT NULL REFERENCES accounts(id),
     grant_id TEXT NOT NULL,
     device_id TEXT NOT NULL,
     content_hash TEXT NOT NULL,
     body TEXT NOT NULL,
     received_at ${d.int} NOT NULL
   );
   CREATE INDEX grant_conflicts_account ON grant_conflicts(account_id, grant_id);`,
  ];
}

export const SQLITE_MIGRATIONS: string[] = migrations({ int: 'INTEGER', serial: 'INTEGER PRIMARY KEY AUTOINCREMENT', json: (f) => `json_extract(body, '$.${f}')` });
export const PG_MIGRATIONS: string[] = migrations({ int: 'BIGINT', serial: 'BIGSERIAL PRIMARY KEY', json: (f) => `body::jsonb->>'${f}'` });
