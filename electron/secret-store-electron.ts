/**
 * `SecretStore` over Electron's `safeStorage` (macOS Keychain, Windows DPAPI, Linux
 * libsecret/kwallet). Takes the safeStorage object as a parameter so it has no runtime
 * `electron` import and is unit-testable with a fake.
 *
 * Blob: tag byte 0x02 | safeStorage.encryptString(envelope), where the envelope is
 * `tg1:<sha256 hex of the secret>:<secret>`. The digest is there because safeStorage is not
 * authenticated on every platform (Chromium's OSCrypt uses AES-CBC without a MAC on macOS
 * and Linux): a flipped ciphertext bit can decrypt to garbage without an error, and a
 * garbage API key must never be sent upstream. So `decrypt` verifies it.
 */
import { createHash } from 'node:crypto';
import type { SafeStorage } from 'electron';
import { BLOB_TAG, SecretStoreError, assertTag } from './engine/secret-store.ts';
import type { SecretStore } from './engine/secret-store.ts';

export type SafeStorageLike = Pick<SafeStorage, 'isEncryptionAvailable' | 'encryptString' | 'decryptString'> &
  Partial<Pick<SafeStorage, 'getSelectedStorageBackend'>>;

const ENVELOPE = /^tg1:([0-9a-f]{64}):/;

const digest = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');

/**
 * Refuses (throws `E_SECRET_UNAVAILABLE`) when OS encryption is unavailable; the caller
 * decides whether to fall back to the file store (see `safeStorageIsStrong`).
 */
export function createSafeStorageSecretStore(safeStorage: SafeStorageLike): SecretStore {
  const requireAvailable = (): void => {
    if (!safeStorage.isEncryptionAvailable()) {
      throw new SecretStoreError('OS encryption (safeStorage) is not available', 'E_SECRET_UNAVAILABLE');
    }
  };
  return {
    kind: 'safeStorage',
    owns: (blob) => blob.length > 0 && blob[0] === BLOB_TAG.safeStorage,
    async encrypt(plain: string): Promise<Buffer> {
      if (typeof plain !== 'string') throw new SecretStoreError('only strings can be encrypted');
      requireAvailable();
      const sealed = safeStorage.encryptString(`tg1:${digest(plain)}:${plain}`);
      return Buffer.concat([Buffer.from([BLOB_TAG.safeStorage]), sealed]);
    },
    async decrypt(blob: Buffer): Promise<string> {
      if (!Buffer.isBuffer(blob) || blob.length < 2) throw new SecretStoreError('secret blob is truncated or not a blob');
      assertTag(blob, BLOB_TAG.safeStorage, 'safeStorage');
      requireAvailable();
      let envelope: string;
      try {
        envelope = safeStorage.decryptString(blob.subarray(1));
      } catch (cause) {
        throw new SecretStoreError('secret blob could not be decrypted by the OS keychain (tampered or from another user/machine)', 'E_SECRET', { cause });
      }
      const m = ENVELOPE.exec(envelope);
      const plain = m ? envelope.slice(m[0].length) : null;
      if (!m || plain === null || digest(plain) !== m[1]) {
        throw new SecretStoreError('secret blob failed its integrity check (tampered or corrupted)');
      }
      return plain;
    },
  };
}

/**
 * Whether safeStorage gives real protection here. On Linux without a keyring Chromium falls
 * back to `basic_text`, a hard-coded password: the file store (random key, 0600) is better.
 */
export function safeStorageIsStrong(safeStorage: SafeStorageLike, platform: NodeJS.Platform = process.platform): boolean {
  if (!safeStorage.isEncryptionAvailable()) return false;
  if (platform !== 'linux') return true;
  const backend = safeStorage.getSelectedStorageBackend?.();
  return backend !== undefined && backend !== 'basic_text' && backend !== 'unknown';
}
