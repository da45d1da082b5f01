/**
 * One contract suite, run over both SecretStore implementations: the file store, and the
 * safeStorage store with a fake safeStorage that really encrypts (AES-256-CBC under a test
 * key, unauthenticated like Chromium's OSCrypt on macOS/Linux, so the store's own integrity
 * check is what catches tampering).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BLOB_TAG, SECRET_KEY_FILE, createFileSecretStore, createLayeredSecretStore } from '../../electron/engine/secret-store.ts';
import type { SecretStore } from '../../electron/engine/secret-store.ts';
import { createSafeStorageSecretStore, safeStorageIsStrong } from '../../electron/secret-store-electron.ts';
import type { SafeStorageLike } from '../../electron/secret-store-electron.ts';

const SECRET = 'sk-proj-TOLLGATE-test-0123456789abcdefXYZ';
const isWindows = process.platform === 'win32';

function fakeSafeStorage(opts: { available?: boolean; backend?: ReturnType<NonNullable<SafeStorageLike['getSelectedStorageBackend']>> } = {}) {
  const key = randomBytes(32);
  const state = { available: opts.available ?? true };
  const fake: SafeStorageLike & { state: typeof state } = {
    state,
    isEncryptionAvailable: () => state.available,
    encryptString(plain: string): Buffer {
      if (!state.available) throw new Error('Encryption is not available.');
      const iv = randomBytes(16);
      const c = createCipheriv('aes-256-cbc', key, iv);
      return Buffer.concat([Buffer.from('v10'), iv, c.update(plain, 'utf8'), c.final()]);
    },
    decryptString(blob: Buffer): string {
      if (!state.available) throw new Error('Decryption is not available.');
      if (blob.subarray(0, 3).toString() !== 'v10') throw new Error('unknown version');
      const d = createDecipheriv('aes-256-cbc', key, blob.subarray(3, 19));
      return Buffer.concat([d.update(blob.subarray(19)), d.final()]).toString('utf8');
    },
    getSelectedStorageBackend: () => opts.backend ?? 'gnome_libsecret',
  };
  return fake;
}

interface Impl {
  name: string;
  make(): { store: SecretStore; dataDir: string; reopen: () => SecretStore; keyFile?: string };
}

const tmpDirs: string[] = [];
const tmp = (): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tollgate-secret-'));
  tmpDirs.push(d);
  return d;
};
after(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

const impls: Impl[] = [
  {
    name: 'file store',
    make() {
      const dataDir = path.join(tmp(), 'data'); // does not exist yet: the store creates it
      return { store: createFileSecretStore(dataDir), dataDir, reopen: () => createFileSecretStore(dataDir), keyFile: path.join(dataDir, SECRET_KEY_FILE) };
    },
  },
  {
    name: 'safeStorage store',
    make() {
      const safe = fakeSafeStorage();
      return { store: createSafeStorageSecretStore(safe), dataDir: tmp(), reopen: () => createSafeStorageSecretStore(safe) };
    },
  },
];

for (const impl of impls) {
  describe(`SecretStore contract: ${impl.name}`, () => {
    test('round trip, including unicode, empty and long secrets', async () => {
      const { store } = impl.make();
      for (const plain of [SECRET, '', 'clé-🔑-鍵', 'x'.repeat(10_000)]) {
        assert.equal(await store.decrypt(await store.encrypt(plain)), plain);
      }
    });

    test('a reopened store (restart) decrypts earlier blobs', async () => {
      const { store, reopen } = impl.make();
      const blob = await store.encrypt(SECRET);
      assert.equal(await reopen().decrypt(blob), SECRET);
    });

    test('the blob never contains the plaintext, in any common encoding', async () => {
      const { store } = impl.make();
      const blob = await store.encrypt(SECRET);
      assert.equal(blob.includes(Buffer.from(SECRET, 'utf8')), false, 'plaintext (utf8) leaked into the blob');
      assert.equal(blob.includes(Buffer.from(SECRET, 'utf16le')), false, 'plaintext (utf16le) leaked into the blob');
      for (const enc of ['base64', 'base64url', 'hex'] as const) {
        const encoded = Buffer.from(SECRET).toString(enc);
        assert.equal(blob.toString('latin1').includes(encoded), false, `plaintext as ${enc} text leaked`);
      }
      assert.equal(blob.includes(Buffer.from(SECRET.slice(8, 24))), false, 'a fragment of the plaintext leaked');
    });

    test('encrypting twice gives different blobs (random IV)', async () => {
      const { store } = impl.make();
      const a = await store.encrypt(SECRET);
      const b = await store.encrypt(SECRET);
      assert.notDeepEqual(a, b);
    });

    test('tampering with any byte is detected', async () => {
      const { store } = impl.make();
      const blob = await store.encrypt(SECRET);
      const positions = new Set([0, 1, 2, 5, 13, 17, 29, Math.floor(blob.length / 2), blob.length - 17, blob.length - 1]);
      for (const i of positions) {
        if (i < 0 || i >= blob.length) continue;
        for (const flip of [0x01, 0x80]) {
          const bad = Buffer.from(blob);
          bad[i] = (bad[i] ?? 0) ^ flip;
          await assert.rejects(store.decrypt(bad), `flipping bit ${flip} of byte ${i} must be detected`);
        }
      }
      await assert.rejects(store.decrypt(blob.subarray(0, blob.length - 1)), 'truncation must be detected');
      await assert.rejects(store.decrypt(Buffer.concat([blob, Buffer.from([0])])), 'extension must be detected');
      await assert.rejects(store.decrypt(Buffer.alloc(0)));
      await assert.rejects(store.decrypt('not a buffer' as unknown as Buffer));
    });

    test('another instance with another key cannot decrypt', async () => {
      const a = impl.make();
      const b = impl.make();
      await assert.rejects(b.store.decrypt(await a.store.encrypt(SECRET)));
    });

    test('key file, if any, is created with mode 0600', { skip: isWindows ? 'POSIX modes do not apply on Windows' : false }, async () => {
      const { store, keyFile } = impl.make();
      await store.encrypt(SECRET);
      if (!keyFile) return; // the OS keychain holds the key
      assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
      assert.equal(fs.statSync(keyFile).size, 32);
    });
  });
}

describe('file store specifics', () => {
  test('a key file with looser permissions is tightened to 0600 on use', { skip: isWindows ? 'POSIX modes' : false }, async () => {
    const dataDir = tmp();
    const blob = await createFileSecretStore(dataDir).encrypt(SECRET);
    const keyFile = path.join(dataDir, SECRET_KEY_FILE);
    fs.chmodSync(keyFile, 0o644);
    assert.equal(await createFileSecretStore(dataDir).decrypt(blob), SECRET);
    assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
  });

  test('a corrupted key file is reported, never silently replaced', async () => {
    const dataDir = tmp();
    const keyFile = path.join(dataDir, SECRET_KEY_FILE);
    fs.writeFileSync(keyFile, Buffer.alloc(7), { mode: 0o600 });
    await assert.rejects(createFileSecretStore(dataDir).encrypt(SECRET), /corrupted/);
    assert.equal(fs.statSync(keyFile).size, 7);
  });

  test('a symlinked key file is refused', { skip: isWindows ? 'symlinks need privileges' : false }, async () => {
    const dataDir = tmp();
    const elsewhere = path.join(tmp(), 'k');
    fs.writeFileSync(elsewhere, randomBytes(32));
    fs.symlinkSync(elsewhere, path.join(dataDir, SECRET_KEY_FILE));
    await assert.rejects(createFileSecretStore(dataDir).encrypt(SECRET), /not a regular file/);
  });

  test('concurrent first use by two stores agrees on one key', async () => {
    const dataDir = tmp();
    const stores = Array.from({ length: 8 }, () => createFileSecretStore(dataDir));
    const blobs = await Promise.all(stores.map((s) => s.encrypt(SECRET)));
    for (const s of stores) for (const b of blobs) assert.equal(await s.decrypt(b), SECRET);
    assert.deepEqual(fs.readdirSync(dataDir), [SECRET_KEY_FILE]); // no temp files left behind
  });

  test('blob layout: tag 0x01 | 12-byte IV | 16-byte tag | ciphertext', async () => {
    const blob = await createFileSecretStore(tmp()).encrypt('abc');
    assert.equal(blob[0], BLOB_TAG.file);
    assert.equal(blob.length, 1 + 12 + 16 + 3);
  });
});

describe('safeStorage store specifics', () => {
  test('refuses when OS encryption is unavailable', async () => {
    const safe = fakeSafeStorage({ available: false });
    const store = createSafeStorageSecretStore(safe);
    await assert.rejects(store.encrypt(SECRET), (err: { code?: string }) => err.code === 'E_SECRET_UNAVAILABLE');
    safe.state.available = true;
    const blob = await store.encrypt(SECRET);
    safe.state.available = false;
    await assert.rejects(store.decrypt(blob), (err: { code?: string }) => err.code === 'E_SECRET_UNAVAILABLE');
  });

  test('safeStorageIsStrong: Linux basic_text is not good enough', () => {
    assert.equal(safeStorageIsStrong(fakeSafeStorage({ backend: 'basic_text' }), 'linux'), false);
    assert.equal(safeStorageIsStrong(fakeSafeStorage({ backend: 'gnome_libsecret' }), 'linux'), true);
    assert.equal(safeStorageIsStrong(fakeSafeStorage({ available: false }), 'darwin'), false);
    assert.equal(safeStorageIsStrong(fakeSafeStorage(), 'darwin'), true);
  });

  test('blobs name their store: a file blob given to the safeStorage store says so', async () => {
    const fileBlob = await createFileSecretStore(tmp()).encrypt(SECRET);
    await assert.rejects(createSafeStorageSecretStore(fakeSafeStorage()).decrypt(fileBlob), /written by the file store/);
  });

  test('layered store: writes with the keychain, still reads file-store blobs', async () => {
    const dataDir = tmp();
    const file = createFileSecretStore(dataDir);
    const legacy = await file.encrypt('old-key');
    const layered = createLayeredSecretStore(createSafeStorageSecretStore(fakeSafeStorage()), [file]);
    assert.equal(layered.kind, 'safeStorage');
    const fresh = await layered.encrypt('new-key');
    assert.equal(fresh[0], BLOB_TAG.safeStorage);
    assert.equal(await layered.decrypt(fresh), 'new-key');
    assert.equal(await layered.decrypt(legacy), 'old-key');
  });
});

before(() => {
  assert.notEqual(BLOB_TAG.file, BLOB_TAG.safeStorage);
});
