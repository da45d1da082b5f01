/**
 * Forward-only schema migrations, one list per backend. Never edit or reorder an entry that has
 * shipped: append a new one. Version N is `list[N - 1]`; `schema_migrations` records what ran.
 *
 * Times are integer UTC milliseconds of the SERVER's clock (expiries only; call order is `seq`).
 * Money is integer nano-USD (`cost_nano`) next to the call's own decimal string in `body`.
 */
export const SQLITE_MIGRATIONS: string[] = [
  `CREATE TABLE accounts (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL UNIQUE,
     last_seq INTEGER NOT NULL DEFAULT 0,
     created_at INTEGER NOT NULL
   );
   CREATE TABLE enrol_codes (
     code_hash TEXT PRIMARY KEY,
     account_id TEXT NOT NULL REFERENCES accounts(id),
     expires_at INTEGER NOT NULL,
     used_at INTEGER,
     created_at INTEGER NOT NULL
   );
   CREATE TABLE devices (
     id TEXT PRIMARY KEY,
     account_id TEXT NOT NULL REFERENCES accounts(id),
     name TEXT NOT NULL,
     token_hash TEXT NOT NULL UNIQUE,
     created_at INTEGER NOT NULL,
     last_seen_at INTEGER,
     revoked_at INTEGER
   );
   CREATE INDEX devices_account ON devices(account_id);
   CREATE TABLE calls (
     account_id TEXT NOT NULL REFERENCES accounts(id),
     id TEXT NOT NULL,
     seq INTEGER NOT NULL,
     device_id TEXT NOT NULL REFERENCES devices(id),
     content_hash TEXT NOT NULL,
     body TEXT NOT NULL,
     ts INTEGER NOT NULL,
     cost_nano INTEGER NOT NULL,
     corrects TEXT,
     received_at INTEGER NOT NULL,
     PRIMARY KEY (account_id, id),
     UNIQUE (account_id, seq)
   );
   CREATE TABLE conflicts (
     account_id TEXT NOT NULL REFERENCES accounts(id),
     call_id TEXT NOT NULL,
     device_id TEXT NOT NULL,
     content_hash TEXT NOT NULL,
     body TEXT NOT NULL,
     received_at INTEGER NOT NULL
   );
   CREATE INDEX conflicts_account ON conflicts(account_id, call_id);`,
  // 2: caps kept on the service, leases against them, and the call columns a cap's scope reads
  `ALTER TABLE calls ADD COLUMN provider TEXT;
   ALTER TABLE calls ADD COLUMN model TEXT;
   ALTER TABLE calls ADD COLUMN project TEXT;
   ALTER TABLE calls ADD COLUMN workflow TEXT;
   ALTER TABLE calls ADD COLUMN key_fp TEXT;
   UPDATE calls SET provider = json_extract(body, '$.provider'), model = json_extract(body, '$.model'),
     project = json_extract(body, '$.project'), workflow = json_extract(body, '$.workflow'), key_fp = json_extract(body, '$.keyFingerprint');
   CREATE INDEX calls_received ON calls(account_id, received_at);
   CREATE TABLE caps (
     id TEXT PRIMARY KEY,
     account_id TEXT NOT NULL REFERENCES accounts(id),
     scope TEXT NOT NULL,
     scope_value TEXT,
     period TEXT NOT NULL,
     tz TEXT NOT NULL,
     limit_nano INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     deleted_at INTEGER
   );
   CREATE INDEX caps_account ON caps(account_id);
   CREATE TABLE leases (
     id TEXT PRIMARY KEY,
     account_id TEXT NOT NULL REFERENCES accounts(id),
     cap_id TEXT NOT NULL REFERENCES caps(id),
     device_id TEXT NOT NULL REFERENCES devices(id),
     period_start INTEGER NOT NULL,
     amount_nano INTEGER NOT NULL,
     pushed_nano INTEGER NOT NULL DEFAULT 0,
     used_nano INTEGER,
     granted_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     returned_at INTEGER
   );
   CREATE INDEX leases_cap ON leases(cap_id, period_start);`,
  // 3: alert thresholds on service caps, fired once per cap, period and threshold for all devices
  `ALTER TABLE caps ADD COLUMN alerts TEXT NOT NULL DEFAULT '[]';
   CREATE TABLE cap_alerts (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     account_id TEXT NOT NULL REFERENCES accounts(id),
     cap_id TEXT NOT NULL REFERENCES caps(id),
     period_start INTEGER NOT NULL,
     threshold INTEGER NOT NULL,
     spent_nano INTEGER NOT NULL,
     limit_nano INTEGER NOT NULL,
     fired_at INTEGER NOT NULL,
     UNIQUE (cap_id, period_start, threshold)
   );
   CREATE INDEX cap_alerts_account ON cap_alerts(account_id, id);`,
];

export const PG_MIGRATIONS: string[] = [
  `CREATE TABLE accounts (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL UNIQUE,
     last_seq BIGINT NOT NULL DEFAULT 0,
     created_at BIGINT NOT NULL
   );
   CREATE TABLE enrol_codes (
     code_hash TEXT PRIMARY KEY,
     account_id TEXT NOT NULL REFERENCES accounts(id),
     expires_at BIGINT NOT NULL,
     used_at BIGINT,
     created_at BIGINT NOT NULL
   );
   CREATE TABLE devices (
     id TEXT PRIMARY KEY,
     account_id TEXT NOT NULL REFERENCES accounts(id),
     name TEXT NOT NULL,
     token_hash TEXT NOT NULL UNIQUE,
     created_at BIGINT NOT NULL,
     last_seen_at BIGINT,
     revoked_at BIGINT
   );
   CREATE INDEX devices_account ON devices(account_id);
   CREATE TABLE calls (
     account_id TEXT NOT NULL REFERENCES accounts(id),
     id TEXT NOT NULL,
     seq BIGINT NOT NULL,
     device_id TEXT NOT NULL REFERENCES devices(id),
     content_hash TEXT NOT NULL,
     body TEXT NOT NULL,
     ts BIGINT NOT NULL,
     cost_nano BIGINT NOT NULL,
     corrects TEXT,
     received_at BIGINT NOT NULL,
     PRIMARY KEY (account_id, id),
     UNIQUE (account_id, seq)
   );
   CREATE TABLE conflicts (
     account_id TEXT NOT NULL REFERENCES accounts(id),
     call_id TEXT NOT NULL,
     device_id TEXT NOT NULL,
     content_hash TEXT NOT NULL,
     body TEXT NOT NULL,
     received_at BIGINT NOT NULL
   );
   CREATE INDEX conflicts_account ON conflicts(account_id, call_id);`,
  // 2: caps kept on the service, leases against them, and the call columns a cap's scope reads
  `ALTER TABLE calls ADD COLUMN provider TEXT;
   ALTER TABLE calls ADD COLUMN model TEXT;
   ALTER TABLE calls ADD COLUMN project TEXT;
   ALTER TABLE calls ADD COLUMN workflow TEXT;
   ALTER TABLE calls ADD COLUMN key_fp TEXT;
   UPDATE calls SET provider = body::jsonb->>'provider', model = body::jsonb->>'model',
     project = body::jsonb->>'project', workflow = body::jsonb->>'workflow', key_fp = body::jsonb->>'keyFingerprint';
   CREATE INDEX calls_received ON calls(account_id, received_at);
   CREATE TABLE caps (
     id TEXT PRIMARY KEY,
     account_id TEXT NOT NULL REFERENCES accounts(id),
     scope TEXT NOT NULL,
     scope_value TEXT,
     period TEXT NOT NULL,
     tz TEXT NOT NULL,
     limit_nano BIGINT NOT NULL,
     created_at BIGINT NOT NULL,
     deleted_at BIGINT
   );
   CREATE INDEX caps_account ON caps(account_id);
   CREATE TABLE leases (
     id TEXT PRIMARY KEY,
     account_id TEXT NOT NULL REFERENCES accounts(id),
     cap_id TEXT NOT NULL REFERENCES caps(id),
     device_id TEXT NOT NULL REFERENCES devices(id),
     period_start BIGINT NOT NULL,
     amount_nano BIGINT NOT NULL,
     pushed_nano BIGINT NOT NULL DEFAULT 0,
     used_nano BIGINT,
     granted_at BIGINT NOT NULL,
     expires_at BIGINT NOT NULL,
     returned_at BIGINT
   );
   CREATE INDEX leases_cap ON leases(cap_id, period_start);`,
  // 3: alert thresholds on service caps, fired once per cap, period and threshold for all devices
  `ALTER TABLE caps ADD COLUMN alerts TEXT NOT NULL DEFAULT '[]';
   CREATE TABLE cap_alerts (
     id BIGSERIAL PRIMARY KEY,
     account_id TEXT NOT NULL REFERENCES accounts(id),
     cap_id TEXT NOT NULL REFERENCES caps(id),
     period_start BIGINT NOT NULL,
     threshold BIGINT NOT NULL,
     spent_nano BIGINT NOT NULL,
     limit_nano BIGINT NOT NULL,
     fired_at BIGINT NOT NULL,
     UNIQUE (cap_id, period_start, threshold)
   );
   CREATE INDEX cap_alerts_account ON cap_alerts(account_id, id);`,
];
