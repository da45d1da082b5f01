/**
 * The ledger service's database: one small async interface over embedded SQLite (default) and
 * PostgreSQL (when DATABASE_URL is set). SQL is written once with `?` placeholders; the PostgreSQL
 * side numbers them ($1, $2, ...). Integers may come back as bigint (SQLite) or string (PostgreSQL
 * BIGINT): read them with `num()` / `big()`.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { PG_MIGRATIONS, SQLITE_MIGRATIONS } from './migrations.ts';

export type Row = Record<string, unknown>;

export interface Query {
  all(sql: string, params?: unknown[]): Promise<Row[]>;
  get(sql: string, params?: unknown[]): Promise<Row | undefined>;
  /** Returns the number of rows changed. */
  run(sql: string, params?: unknown[]): Promise<number>;
  /** Several statements, no parameters (migrations). */
  exec(sql: string): Promise<void>;
  /** " FOR UPDATE" on PostgreSQL (row lock); "" on SQLite, whose write transactions are exclusive. */
  readonly forUpdate: string;
}

export interface Db extends Query {
  readonly kind: 'sqlite' | 'postgres';
  /** Where the data lives, safe to print (no password). */
  readonly where: string;
  /** One transaction that serializes writers: SQLite BEGIN IMMEDIATE; PostgreSQL row locks taken with `forUpdate`. */
  tx<T>(fn: (q: Query) => Promise<T>): Promise<T>;
  /**
   * A transaction is on its way (a push whose body is still being read): group commit may wait a
   * moment for it. Call the returned function once it has called tx(), or will not.
   */
  expect(): () => void;
  close(): Promise<void>;
}

export const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
export const big = (v: unknown): bigint => (v === null || v === undefined ? 0n : BigInt(v as string | number | bigint));

class SqliteDb implements Db {
  readonly kind = 'sqlite' as const;
  readonly forUpdate = '';
  private readonly db: Database.Database;

  constructor(readonly where: string) {
    this.db = new Database(where);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 10000');
    this.db.pragma('foreign_keys = ON');
    this.db.defaultSafeIntegers(true);
  }

  /** Prepared statements by SQL text (the service runs a small, fixed set of statements). */
  private readonly stmts = new Map<string, Database.Statement>();
  private prepare(sql: string): Database.Statement {
    let st = this.stmts.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      if (this.stmts.size >= 500) this.stmts.clear();
      this.stmts.set(sql, st);
    }
    return st;
  }

  async all(sql: string, params: unknown[] = []): Promise<Row[]> {
    return this.prepare(sql).all(...params) as Row[];
  }
  async get(sql: string, params: unknown[] = []): Promise<Row | undefined> {
    return this.prepare(sql).get(...params) as Row | undefined;
  }
  async run(sql: string, params: unknown[] = []): Promise<number> {
    return this.prepare(sql).run(...params).changes;
  }
  async exec(sql: string): Promise<void> {
    this.db.exec(sql);
  }

  /**
   * One connection: transactions queue behind each other in this process, BEGIN IMMEDIATE orders
   * them across processes. Group commit: the transactions queued by the time the connection is free
   * run inside one BEGIN IMMEDIATE … COMMIT, each in its own SAVEPOINT, so each is still all in or
   * all out on its own (a failing one is rolled back to its savepoint and fails alone), while the
   * group shares one COMMIT (one fsync) and none of them is answered before that COMMIT.
   */
  tx<T>(fn: (q: Query) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ fn: fn as (q: Query) => Promise<unknown>, resolve: resolve as (v: unknown) => void, reject });
      if (!this.draining) {
        this.draining = new Promise<void>((done) => setImmediate(() => void this.drain().finally(() => { this.draining = null; done(); })));
      }
    });
  }

  private queue: { fn: (q: Query) => Promise<unknown>; resolve: (v: unknown) => void; reject: (e: unknown) => void }[] = [];
  private expected = 0;

  expect(): () => void {
    this.expected++;
    let done = false;
    return () => {
      if (!done) this.expected--;
      done = true;
    };
  }
  private draining: Promise<void> | null = null;

  private async drain(): Promise<void> {
    while (this.queue.length) {
      // transactions on their way (bodies being read) join this group if they come within a few ms:
      // one fsync for all of them instead of one each
      for (const until = performance.now() + SqliteDb.GROUP_WAIT_MS; this.expected > 0 && this.queue.length < SqliteDb.MAX_GROUP && performance.now() < until;) {
        await new Promise((r) => setImmediate(r));
      }
      const group = this.queue.splice(0, SqliteDb.MAX_GROUP);
      const done: { ok: boolean; value: unknown; g: (typeof group)[number] }[] = [];
      let open = false;
      for (const g of group) {
        try {
          if (!open) {
            this.db.exec('BEGIN IMMEDIATE');
            open = true;
          }
        } catch (e) {
          done.push({ ok: false, value: e, g });
          continue;
        }
        this.db.exec('SAVEPOINT tx');
        try {
          const value = await g.fn(this);
          this.db.exec('RELEASE tx');
          done.push({ ok: true, value, g });
        } catch (e) {
          if (this.db.inTransaction) {
            this.db.exec('ROLLBACK TO tx');
            this.db.exec('RELEASE tx');
          } else {
            // SQLite rolled the whole transaction back (e.g. disk full): the group's earlier work is gone too
            open = false;
            for (const d of done) if (d.ok) Object.assign(d, { ok: false, value: e });
          }
          done.push({ ok: false, value: e, g });
        }
      }
      if (open) {
        try {
          this.db.exec('COMMIT');
        } catch (e) {
          if (this.db.inTransaction) this.db.exec('ROLLBACK');
          for (const d of done) if (d.ok) Object.assign(d, { ok: false, value: e });
        }
      }
      for (const d of done) (d.ok ? d.g.resolve : d.g.reject)(d.value);
      // let requests that arrived meanwhile join the next group
      if (this.queue.length) await new Promise((r) => setImmediate(r));
    }
  }

  static readonly MAX_GROUP = 16;
  static readonly GROUP_WAIT_MS = 5;

  async close(): Promise<void> {
    while (this.draining) await this.draining;
    this.db.close();
  }
}

const numbered = (sql: string): string => {
  let i = 0;
  return sql.replace(/\?/g, () => `$${++i}`);
};

class PgQuery implements Query {
  readonly forUpdate = ' FOR UPDATE';
  constructor(protected readonly c: pg.Pool | pg.PoolClient) {}
  async all(sql: string, params: unknown[] = []): Promise<Row[]> {
    return (await this.c.query(numbered(sql), params)).rows as Row[];
  }
  async get(sql: string, params: unknown[] = []): Promise<Row | undefined> {
    return (await this.all(sql, params))[0];
  }
  async run(sql: string, params: unknown[] = []): Promise<number> {
    return (await this.c.query(numbered(sql), params)).rowCount ?? 0;
  }
  async exec(sql: string): Promise<void> {
    await this.c.query(sql);
  }
}

class PgDb extends PgQuery implements Db {
  readonly kind = 'postgres' as const;
  /** Each transaction commits on its own connection of the pool: nothing to group. */
  expect(): () => void {
    return () => {};
  }
  constructor(private readonly pool: pg.Pool, readonly where: string) {
    super(pool);
  }
  async tx<T>(fn: (q: Query) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const out = await fn(new PgQuery(client));
      await client.query('COMMIT');
      return out;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      client.release();
    }
  }
  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** A DATABASE_URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgresql://(unparsable URL)';
  }
}

export interface OpenOptions {
  dataDir: string;
  databaseUrl?: string | undefined;
}

/** Open the database and bring its schema up to date (forward only; a newer schema is refused). */
export async function openDb(opts: OpenOptions): Promise<Db> {
  let db: Db;
  if (opts.databaseUrl) {
    const pool = new pg.Pool({ connectionString: opts.databaseUrl, max: 10 });
    pool.on('error', () => {}); // an idle client lost its connection: the next query reconnects
    db = new PgDb(pool, redactUrl(opts.databaseUrl));
  } else {
    fs.mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
    db = new SqliteDb(path.join(opts.dataDir, 'ledger.db'));
  }
  try {
    await migrate(db);
  } catch (e) {
    await db.close().catch(() => {});
    throw e;
  }
  return db;
}

async function migrate(db: Db): Promise<void> {
  const list = db.kind === 'postgres' ? PG_MIGRATIONS : SQLITE_MIGRATIONS;
  await db.tx(async (q) => {
    // two service processes starting at once on one PostgreSQL: the second waits, then finds nothing to do
    if (db.kind === 'postgres') await q.run('SELECT pg_advisory_xact_lock(7412001)');
    await q.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
    const current = num((await q.get('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations'))?.v);
    if (current > list.length) {
      throw new Error(`the database's schema is version ${current}, newer than this tollgate-ledger knows (${list.length}); upgrade tollgate-ledger`);
    }
    for (let v = current + 1; v <= list.length; v++) {
      await q.exec(list[v - 1]!);
      await q.run('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)', [v, Date.now()]);
    }
  });
}
