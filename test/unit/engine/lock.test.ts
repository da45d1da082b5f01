/** The data dir lock: exclusive, in this process too; free again once released. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DataDirLock } from '../../../electron/engine/lock.ts';

test('one holder at a time; isHeld probes without keeping the lock; the lock file is 0600', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-lock-'));
  assert.equal(DataDirLock.isHeld(dir), false);
  const a = DataDirLock.tryAcquire(dir);
  assert.ok(a);
  assert.equal(DataDirLock.tryAcquire(dir), null, 'a second holder is refused, even in the same process');
  assert.equal(DataDirLock.isHeld(dir), true);
  if (process.platform !== 'win32') assert.equal(fs.statSync(path.join(dir, 'engine.lock')).mode & 0o777, 0o600);
  a.release();
  assert.equal(DataDirLock.isHeld(dir), false);
  const b = DataDirLock.tryAcquire(dir);
  assert.ok(b, 'free again once released');
  b.release();
});
