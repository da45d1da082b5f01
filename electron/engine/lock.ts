/**
 * One engine per data dir, enforced by the OS: the engine holds an exclusive SQLite lock on
 * `engine.lock` (a `BEGIN EXCLUSIVE` transaction left open on a connection of its own) for as long
 * as it runs. SQLite takes that lock with fcntl on POSIX and LockFileEx on Windows, so the OS drops
 * it when the process ends in any way, kill -9 included: there is no stale lock to clean up. Within
 * one process a second connection is refused too (SQLite tracks its locks per file), so two
 * engines in one process cannot share a data dir either.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

export const LOCK_FILE = 'engine.lock';

export class DataDirLock {
  private constructor(private db: Database.Database | null, readonly file: string) {}

  /** Take the lock now, or return null when another engine (or a CLI recovering calls) holds it. */
  static tryAcquire(dataDir: string): DataDirLock | null {
    const file = path.join(dataDir, LOCK_FILE);
    let db: Database.Database;
    try {
      // created 0600 before SQLite opens it (SQLite would use 0644 & ~umask)
      if (!fs.existsSync(file)) fs.closeSync(fs.openSync(file, 'a', 0o600));
      db = new Database(file, { timeout: 0 });
    } catch {
      return null; // cannot even open the lock file: treat as held, never as free
    }
    try {
      db.exec('BEGIN EXCLUSIVE');
      return new DataDirLock(db, file);
    } catch {
      db.close();
      return null;
    }
  }

  /** Whether some process (this one included) holds the lock of `dataDir`. Probes without keeping it. */
  static isHeld(dataDir: string): boolean {
    if (!fs.existsSync(path.join(dataDir, LOCK_FILE))) return false;
    const l = DataDirLock.tryAcquire(dataDir);
    if (!l) return true;
    l.release();
    return false;
  }

  get held(): boolean {
    return this.db !== null;
  }

  release(): void {
    const db = this.db;
    this.db = null;
    if (!db) return;
    try {
      db.exec('ROLLBACK');
    } catch { /* closing drops it anyway */ }
    db.close();
  }
}
