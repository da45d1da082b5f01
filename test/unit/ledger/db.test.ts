/** The ledger's SQLite database: forward-only migrations, transactions that roll back whole. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { num, openDb, redactUrl } from '../../../ledger/db.ts';
import { SQLITE_MIGRATIONS } from '../../../ledger/migrations.ts';

const dir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-ledger-unit-'));

test('migrations run once, forward only; a newer schema is refused', async () => {
  const d = dir();
  const db = await openDb({ dataDir: d });
  assert.equal(num((await db.get('SELECT MAX(version) AS v FROM schema_migrations'))?.v), SQLITE_MIGRATIONS.length);
  await db.close();
  const again = await openDb({ dataDir: d }); // nothing to do, no error
  assert.equal(num((await again.get('SELECT COUNT(*) AS n FROM schema_migrations'))?.n), SQLITE_MIGRATIONS.length);
  await again.close();
  const raw = new Database(path.join(d, 'ledger.db'));
  raw.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)').run(SQLITE_MIGRATIONS.length + 1);
  raw.close();
  await assert.rejects(openDb({ dataDir: d }), /newer than this tollgate-ledger knows/);
});

test('a transaction that fails leaves nothing behind; transactions queue instead of interleaving', async () => {
  const db = await openDb({ dataDir: dir() });
  await assert.rejects(db.tx(async (q) => {
    await q.run("INSERT INTO accounts (id, name, last_seq, created_at) VALUES ('a', 'a', 0, 0)");
    throw new Error('boom');
  }), /boom/);
  assert.equal(num((await db.get('SELECT COUNT(*) AS n FROM accounts'))?.n), 0);
  await Promise.all(['x', 'y', 'z'].map((name) => db.tx(async (q) => {
    const n = num((await q.get('SELECT COUNT(*) AS n FROM accounts'))?.n);
    await new Promise((r) => setTimeout(r, 5));
    await q.run('INSERT INTO accounts (id, name, last_seq, created_at) VALUES (?, ?, ?, 0)', [name, name, n]);
  })));
  const seqs = (await db.all('SELECT last_seq FROM accounts ORDER BY last_seq')).map((r) => num(r.last_seq));
  assert.deepEqual(seqs, [0, 1, 2]);
  await db.close();
});

test('a DATABASE_URL is printed without its password', () => {
  assert.equal(redactUrl('postgresql://tg:s3cret@db.internal:5432/ledger'), 'postgresql://tg:***@db.internal:5432/ledger');
  assert.doesNotMatch(redactUrl('not a url s3cret'), /s3cret/);
});
