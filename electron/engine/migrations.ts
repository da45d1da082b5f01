/**
 * Versioned, forward-only migrations. The applied version lives in PRAGMA user_version; each
 * migration runs in its own transaction. A ledger newer than this build is refused, not guessed at.
 */
/**
 * The outbox's triggers (migration 9): a final local call is listed in the outbox in the transaction
 * that makes it final. They exist only on a device that keeps an outbox (Ledger drops them on a
 * device that never joined, so its writes pay nothing for them, and puts them back when it joins).
 */
export const OUTBOX_TRIGGERS = `
  CREATE TRIGGER IF NOT EXISTS calls_outbox_insert AFTER INSERT ON calls
    WHEN NEW.device IS NULL AND NEW.status != 'pending' AND EXISTS (SELECT 1 FROM sync_state WHERE key = 'outbox')
    BEGIN INSERT INTO outbox (call_id) VALUES (NEW.id); END;
  CREATE TRIGGER IF NOT EXISTS calls_outbox_final AFTER UPDATE OF status ON calls
    WHEN OLD.status = 'pending' AND NEW.status != 'pending' AND NEW.device IS NULL AND EXISTS (SELECT 1 FROM sync_state WHERE key = 'outbox')
    BEGIN INSERT INTO outbox (call_id) VALUES (NEW.id); END;`;
export const DROP_OUTBOX_TRIGGERS = 'DROP TRIGGER IF EXISTS calls_outbox_insert; DROP TRIGGER IF EXISTS calls_outbox_final;';

export const MIGRATIONS: readonly string[] = [
  // 1: calls, rollups, caps, alerts, keys, prices, settings
  `
  CREATE TABLE calls (
    id TEXT PRIMARY KEY,
    ts INTEGER NOT NULL,
    provider TEXT NOT NULL,
    model TEXT,
    endpoint TEXT NOT NULL,
    project TEXT,
    workflow TEXT,
    run TEXT,
    node TEXT,
    key_id TEXT,
    key_fp TEXT,
    key_name TEXT,
    status TEXT NOT NULL,
    http_status INTEGER,
    stream INTEGER NOT NULL DEFAULT 0,
    duration_ms INTEGER,
    ttfb_ms INTEGER,
    usage TEXT,
    items TEXT,
    cost_nano INTEGER NOT NULL DEFAULT 0,
    reserved_nano INTEGER NOT NULL DEFAULT 0,
    quote_max_nano INTEGER,
    quote_expected_nano INTEGER,
    estimated INTEGER NOT NULL DEFAULT 0,
    unpriced INTEGER NOT NULL DEFAULT 0,
    unpriced_reason TEXT,
    price_source TEXT,
    error TEXT,
    blocked_by TEXT,
    prompt TEXT
  );
  CREATE INDEX calls_ts ON calls(ts);
  CREATE INDEX calls_run ON calls(run) WHERE run IS NOT NULL;
  CREATE INDEX calls_unpriced ON calls(provider, model) WHERE unpriced = 1;
  CREATE INDEX calls_pending ON calls(status) WHERE status = 'pending';
  CREATE TABLE rollups (
    bucket INTEGER NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    project TEXT NOT NULL,
    key_fp TEXT NOT NULL,
    workflow TEXT NOT NULL,
    calls INTEGER NOT NULL,
    cost_nano INTEGER NOT NULL,
    unpriced INTEGER NOT NULL,
    PRIMARY KEY (bucket, provider, model, project, key_fp, workflow)
  ) WITHOUT ROWID;
  CREATE TABLE caps (
    id TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    scope_value TEXT,
    period TEXT NOT NULL,
    limit_nano INTEGER NOT NULL,
    alerts TEXT NOT NULL,
    hard INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE alerts (
    id TEXT PRIMARY KEY,
    cap_id TEXT NOT NULL,
    cap_label TEXT NOT NULL,
    period_key TEXT NOT NULL,
    threshold INTEGER NOT NULL,
    kind TEXT NOT NULL,
    episode TEXT NOT NULL DEFAULT '',
    spent_nano INTEGER NOT NULL,
    limit_nano INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    UNIQUE (cap_id, period_key, threshold, kind, episode)
  );
  CREATE TABLE keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    provider TEXT NOT NULL,
    project TEXT,
    prefix TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL,
    secret BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
  );
  CREATE TABLE overrides (id TEXT PRIMARY KEY, provider TEXT NOT NULL, model TEXT NOT NULL, prices TEXT NOT NULL, note TEXT, created_at INTEGER NOT NULL, UNIQUE (provider, model));
  CREATE TABLE locks (id TEXT PRIMARY KEY, provider TEXT NOT NULL, model TEXT, catalog TEXT NOT NULL, prices TEXT NOT NULL, from_ts INTEGER, to_ts INTEGER, created_at INTEGER NOT NULL);
  CREATE TABLE tier_plans (id TEXT PRIMARY KEY, provider TEXT NOT NULL, model TEXT, unit TEXT NOT NULL, mode TEXT NOT NULL, period TEXT NOT NULL, tiers TEXT NOT NULL, created_at INTEGER NOT NULL);
  CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  `,
  // 2: all-time totals kept with each flush, so the Overview never scans every rollup
  `
  CREATE TABLE totals (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    calls INTEGER NOT NULL,
    cost_nano INTEGER NOT NULL,
    unpriced INTEGER NOT NULL
  );
  INSERT INTO totals (id, calls, cost_nano, unpriced)
    SELECT 1, COALESCE(SUM(calls), 0), COALESCE(SUM(cost_nano), 0), COALESCE(SUM(unpriced), 0) FROM rollups;
  `,
  // 3: a version number of the configuration (caps, keys, prices, settings) that every change to it
  // bumps, so the engine notices changes other processes make without reloading on each commit of
  // its own call writer (PRAGMA data_version counts those too)
  `
  CREATE TABLE config_version (id INTEGER PRIMARY KEY CHECK (id = 1), v INTEGER NOT NULL);
  INSERT INTO config_version (id, v) VALUES (1, 0);
  ${['caps', 'keys', 'overrides', 'locks', 'tier_plans', 'settings'].flatMap((t) => ['INSERT', 'UPDATE', 'DELETE'].map((op) =>
    `CREATE TRIGGER ${t}_${op.toLowerCase()}_version AFTER ${op} ON ${t} BEGIN UPDATE config_version SET v = v + 1 WHERE id = 1; END;`)).join('\n  ')}
  `,
  // 4: credits, settlement statements (issue 13). Self-contained: grants, frozen statements, an index
  // for reading one project's calls in a period, and a cache of each project-hour's statement lines
  // (keyed by that hour's rollup count and cost, so a late call invalidates it). Movements are not stored: they are derived from the
  // calls ordered by (ts, id) and the grants (shared/credits.ts), so every device agrees.
  `
  CREATE TABLE credit_grants (
    id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    amount_nano INTEGER NOT NULL CHECK (amount_nano > 0),
    effective_ts INTEGER NOT NULL,
    expires_ts INTEGER NOT NULL,
    priority INTEGER NOT NULL DEFAULT 50 CHECK (priority BETWEEN 0 AND 100),
    promo INTEGER NOT NULL DEFAULT 0,
    note TEXT,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE statements (
    project TEXT NOT NULL,
    period TEXT NOT NULL,
    kind TEXT NOT NULL,
    period_start INTEGER NOT NULL,
    period_end INTEGER NOT NULL,
    closed_at INTEGER NOT NULL,
    closed_seq INTEGER NOT NULL,
    pending_ids TEXT NOT NULL,
    own_calls INTEGER NOT NULL,
    accounted INTEGER NOT NULL,
    markup TEXT,
    fee TEXT,
    calls INTEGER NOT NULL,
    cost_nano INTEGER NOT NULL,
    total TEXT NOT NULL,
    hash TEXT NOT NULL,
    json TEXT NOT NULL,
    csv TEXT NOT NULL,
    html TEXT NOT NULL,
    PRIMARY KEY (project, period)
  );
  CREATE INDEX calls_project_ts ON calls(project, ts);
  CREATE TABLE statement_slices (
    project TEXT NOT NULL,
    slice INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    data TEXT NOT NULL,
    ids_sha256 TEXT NOT NULL,
    PRIMARY KEY (project, slice)
  ) WITHOUT ROWID;
  `,
  // 5: sync (issue 12): which device a call came from (NULL: this one), its outbox state and the
  // sync client's own state. The outbox is the call row itself: \`synced\` defaults to 0 when the
  // writer thread inserts the call, in the same transaction, so the hot path writes nothing extra;
  // a partial index lists the final local calls still to push. synced: 0 to push, 1 pushed (or
  // pulled), 2 the service holds a different version (conflict), 3 the service refused it.
  // sync_state has no config_version trigger: the pusher writes it often. Caps across devices:
  // caps.all_devices (kept on the service, spent from leases) and calls.leases (the lease ids a
  // call spent from, JSON, pushed with it so the service counts it against them).
  `
  ALTER TABLE calls ADD COLUMN device TEXT;
  ALTER TABLE calls ADD COLUMN device_id TEXT;
  ALTER TABLE calls ADD COLUMN synced INTEGER NOT NULL DEFAULT 0;
  CREATE INDEX calls_outbox ON calls(id) WHERE synced = 0 AND device IS NULL AND status != 'pending';
  CREATE INDEX calls_device_ts ON calls(device, ts) WHERE device IS NOT NULL;
  CREATE TABLE sync_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  ALTER TABLE calls ADD COLUMN leases TEXT;
  ALTER TABLE caps ADD COLUMN all_devices INTEGER NOT NULL DEFAULT 0;
  `,
  // 6: aggregates kept by the ledger writer in the same transaction as each call (issue 13), so a
  // statement and the credit balances never scan calls:
  // - statement_lines: per project × UTC day × line (provider, model, workflow, node, label, unit,
  //   per, unit price) the exact sums a statement's lines are made of: n (calls contributing),
  //   calls (counted on a call's first line), q (quantity, an exact decimal), cost_nano.
  // - spend_days: spend per UTC day and provider (credit balances, burn rate), backfilled here
  //   from the rollups.
  // - statement_ids: the SHA-256 of each project-hour's sorted call ids, by call count (a closed
  //   statement's hash), cached; replaces statement_slices (its lines now come from statement_lines).
  // - statement_backfill: project-hours whose calls were written before this migration (with the
  //   highest call rowid then); their lines are made once from the calls (billing.ts, lazily or in
  //   the background). Calls still pending now are counted when they end: statement_backfill_skip.
  // - calls_project_ts_ids replaces calls_project_ts: a project's calls by time, with their status and ids
  //   (the late calls of a closed period; the ids a closing statement hashes, read from the index alone).
  //   Partial: calls without a project (statements are per project) cost the writer no index entry.
  `
  CREATE TABLE statement_lines (
    project TEXT NOT NULL,
    day INTEGER NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    workflow TEXT NOT NULL,
    node TEXT NOT NULL,
    label TEXT NOT NULL,
    unit TEXT NOT NULL,
    per NUMERIC NOT NULL,
    unit_price TEXT NOT NULL,
    n INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    q TEXT NOT NULL,
    cost_nano INTEGER NOT NULL,
    PRIMARY KEY (project, day, provider, model, workflow, node, label, unit, per, unit_price)
  ) WITHOUT ROWID;
  CREATE TABLE spend_days (
    day INTEGER NOT NULL,
    provider TEXT NOT NULL,
    calls INTEGER NOT NULL,
    cost_nano INTEGER NOT NULL,
    unpriced INTEGER NOT NULL,
    PRIMARY KEY (day, provider)
  ) WITHOUT ROWID;
  INSERT INTO spend_days (day, provider, calls, cost_nano, unpriced)
    SELECT (bucket / 86400000) * 86400000, provider, SUM(calls), SUM(cost_nano), SUM(unpriced) FROM rollups GROUP BY 1, 2;
  DROP TABLE statement_slices;
  CREATE TABLE statement_ids (
    project TEXT NOT NULL,
    hour INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    ids_sha256 TEXT NOT NULL,
    PRIMARY KEY (project, hour)
  ) WITHOUT ROWID;
  CREATE TABLE statement_backfill (
    project TEXT NOT NULL,
    hour INTEGER NOT NULL,
    max_rowid INTEGER NOT NULL,
    PRIMARY KEY (project, hour)
  ) WITHOUT ROWID;
  INSERT INTO statement_backfill (project, hour, max_rowid)
    SELECT project, bucket, (SELECT COALESCE(MAX(rowid), 0) FROM calls) FROM rollups WHERE project != '' GROUP BY project, bucket;
  CREATE INDEX statement_backfill_hour ON statement_backfill(hour);
  DROP INDEX calls_project_ts;
  CREATE INDEX calls_project_ts_ids ON calls(project, ts, status, id) WHERE project IS NOT NULL;
  CREATE TABLE statement_backfill_skip (id TEXT PRIMARY KEY) WITHOUT ROWID;
  INSERT INTO statement_backfill_skip (id) SELECT id FROM calls WHERE status = 'pending';
  `,
  // 7: credit grants sync (issue 13): a grant's outbox flag and the device that added it (NULL: this
  // one); a removal is a tombstone row in credit_grant_removals (never a delete), synced like a grant.
  // calls.upstream_id: the provider's own id of the response (OpenRouter "gen-…"), for reconciliation;
  // indexed for OpenRouter's calls only (the per-generation join), so other calls cost the writer nothing more.
  `
  ALTER TABLE credit_grants ADD COLUMN device TEXT;
  ALTER TABLE credit_grants ADD COLUMN synced INTEGER NOT NULL DEFAULT 0;
  CREATE TABLE credit_grant_removals (
    id TEXT PRIMARY KEY,
    removed_at INTEGER NOT NULL,
    device TEXT,
    synced INTEGER NOT NULL DEFAULT 0
  );
  ALTER TABLE calls ADD COLUMN upstream_id TEXT;
  CREATE INDEX calls_upstream_id ON calls(upstream_id) WHERE upstream_id IS NOT NULL AND provider = 'openrouter';
  `,
  // 8: batch jobs priced from their results (issue 11). calls.corrects: the id of an earlier call this
  // record corrects (a batch's estimate at submit, replaced by the actual cost from its results): calls
  // are immutable once final (they sync to other devices), so a correction is a new record with a
  // signed cost, counted by rollups and totals like any call; only a correction may be negative.
  // batch_jobs: each batch Tollgate saw (its submit call, its output file) and the call that booked its
  // results, so results fetched many times are booked once.
  `
  ALTER TABLE calls ADD COLUMN corrects TEXT;
  CREATE INDEX calls_corrects ON calls(corrects) WHERE corrects IS NOT NULL;
  CREATE TABLE batch_jobs (
    provider TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    submit_call_id TEXT,
    output_file_id TEXT,
    booked_call_id TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (provider, batch_id)
  );
  CREATE INDEX batch_jobs_file ON batch_jobs(provider, output_file_id) WHERE output_file_id IS NOT NULL;
  `,
  // 9: the outbox becomes a table of its own (issue 12: pushing at 1,000,000 calls in 30 s, and a
  // device that never joined pays nothing for it). outbox lists the final local calls still to
  // push, in the order they became final; triggers add a call in the same transaction that makes it
  // final (whichever connection writes it: the writer thread, recovery, a CLI), but only on a
  // device that keeps an outbox (sync_state 'outbox', set when it first joins a ledger, kept after
  // leaving, so what it books meanwhile is pushed when it joins again). A pushed page is deleted
  // from the outbox by its seq range; calls.synced is no longer written for pushed calls, only for
  // the rare conflicts (2) and refusals (3). A call of a device that keeps an outbox and is not in
  // it has been pushed. The old partial index goes: every call paid for an entry in it.
  `
  CREATE TABLE outbox (seq INTEGER PRIMARY KEY, call_id TEXT NOT NULL);
  INSERT INTO sync_state (key, value) SELECT 'outbox', '1'
    WHERE EXISTS (SELECT 1 FROM sync_state WHERE key = 'url') OR EXISTS (SELECT 1 FROM calls WHERE device IS NULL AND synced != 0)
    ON CONFLICT (key) DO NOTHING;
  INSERT INTO outbox (call_id) SELECT id FROM calls WHERE synced = 0 AND device IS NULL AND status != 'pending'
    AND EXISTS (SELECT 1 FROM sync_state WHERE key = 'outbox') ORDER BY id;
  DROP INDEX calls_outbox;
  ${OUTBOX_TRIGGERS}
  `,
  // 10: batches across devices (issue 11). A batch's submit call and the call that booked its results
  // carry the batch's id in upstream_id (synced with them), so a device reading the results of a batch
  // submitted (or already booked) on another device finds those calls among the pulled ones. Indexed
  // for the batch endpoints only, as ORs (an IN list costs every insert into calls ~1.4 µs here) (the text must stay the same as BATCH_CALL_ENDPOINTS in batches.ts,
  // or SQLite will not use it).
  `
  CREATE INDEX calls_batch_upstream ON calls(provider, upstream_id) WHERE upstream_id IS NOT NULL AND (endpoint = 'batches' OR endpoint = 'messages.batches' OR endpoint = 'batchGenerateContent' OR endpoint = 'batches.output' OR endpoint = 'messages.batches.results' OR endpoint = 'gemini.batch' OR endpoint = 'gemini.batch.output');
  `,
];
