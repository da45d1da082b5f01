/**
 * Encryption at rest for the real provider keys the engine holds.
 *
 * No `electron` import here: the engine also runs headless (`tollgate serve`), where the file
 * store below is used. The desktop app wraps Electron's `safeStorage` (OS keychain) in
 * electron/secret-store-electron.ts and passes it in through `EngineOptions.secretStore`.
 *
 * Every blob starts with a one-byte tag naming the store that wrote it, so a blob handed to
 * the wrong store fails with a clear message instead of garbage, and
 * `createLayeredSecretStore` can read blobs written by an earlier store.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { promises as fs, constants as fsConstants } from 'node:fs';
import path from 'node:path';

export interface SecretStore {
  readonly kind: string;
  encrypt(plain: string): Promise<Buffer>;
  decrypt(blob: Buffer): Promise<string>;
  /** True when `blob` was written by this store (by its leading tag byte). */
  owns?(blob: Buffer): boolean;
}

export class SecretStoreError extends Error {
  readonly code: 'E_SECRET' | 'E_SECRET_UNAVAILABLE';
  constructor(message: string, code: 'E_SECRET' | 'E_SECRET_UNAVAILABLE' = 'E_SECRET', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SecretStoreError';
    this.code = code;
  }
}

/** Leading byte of a blob: which store (and format version) wrote it. */
export const BLOB_TAG = { file: 0x01, safeStorage: 0x02 } as const;

export const SECRET_KEY_FILE = 'secret.key';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + IV_BYTES + TAG_BYTES;

/**
 * AES-256-GCM under a random 32-byte master key kept in `${dataDir}/secret.key` (mode 0600).
 * Blob: tag byte 0x01 | 12-byte IV | 16-byte GCM tag | ciphertext. The tag byte is also
 * authenticated (AAD), so any changed byte makes `decrypt` throw.
 *
 * The key file protects against casual disclosure (backups, sync folders, another user on
 * the machine), not against malware running as the same user: that is what the OS keychain
 * store in the desktop app is for.
 */
export function createFileSecretStore(dataDir: string): SecretStore {
  const keyPath = path.join(dataDir, SECRET_KEY_FILE);
  let keyPromise: Promise<Buffer> | null = null;
  const key = (): Promise<Buffer> => {
    keyPromise ??= loadOrCreateKey(dataDir, keyPath).catch((err: unknown) => {
      keyPromise = null; // let a later call retry (e.g. after the directory was fixed)
      throw err;
    });
    return keyPromise;
  };
  const header = Buffer.from([BLOB_TAG.file]);

  return {
    kind: 'file',
    owns: (blob) => blob.length > 0 && blob[0] === BLOB_TAG.file,
    async encrypt(plain: string): Promise<Buffer> {
      if (typeof plain !== 'string') throw new SecretStoreError('only strings can be encrypted');
      const k = await key();
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', k, iv);
      cipher.setAAD(header);
      const ciphertext = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
      return Buffer.concat([header, iv, cipher.getAuthTag(), ciphertext]);
    },
    async decrypt(blob: Buffer): Promise<string> {
      if (!Buffer.isBuffer(blob) || blob.length < HEADER_BYTES) {
        throw new SecretStoreError('secret blob is truncated or not a blob');
      }
      assertTag(blob, BLOB_TAG.file, 'file');
      const k = await key();
      const iv = blob.subarray(1, 1 + IV_BYTES);
      const tag = blob.subarray(1 + IV_BYTES, HEADER_BYTES);
      const decipher = createDecipheriv('aes-256-gcm', k, iv);
      decipher.setAAD(header);
      decipher.setAuthTag(tag);
      try {
        return Buffer.concat([decipher.update(blob.subarray(HEADER_BYTES)), decipher.final()]).toString('utf8');
      } catch (cause) {
        throw new SecretStoreError(
          `secret blob failed authentication (tampered, corrupted, or encrypted under another ${SECRET_KEY_FILE})`,
          'E_SECRET',
          { cause },
        );
      }
    },
  };
}

/**
 * Encrypt with `primary`; decrypt with whichever store's tag the blob carries. Lets the
 * desktop app (OS keychain) still read keys that headless `tollgate serve` stored with the
 * file store in the same data directory.
 */
export function createLayeredSecretStore(primary: SecretStore, readers: readonly SecretStore[]): SecretStore {
  const all = [primary, ...readers];
  return {
    kind: primary.kind,
    owns: (blob) => all.some((s) => s.owns?.(blob) ?? false),
    encrypt: (plain) => primary.encrypt(plain),
    decrypt: (blob) => {
      const owner = all.find((s) => s.owns?.(blob) ?? false) ?? primary;
      return owner.decrypt(blob);
    },
  };
}

export function assertTag(blob: Buffer, expected: number, kind: string): void {
  const actual = blob[0];
  if (actual === expected) return;
  const writer = Object.entries(BLOB_TAG).find(([, v]) => v === actual)?.[0];
  throw new SecretStoreError(
    writer
      ? `secret blob was written by the ${writer} store and cannot be read by the ${kind} store`
      : `secret blob has an unknown format (tag ${String(actual)})`,
  );
}

async function loadOrCreateKey(dataDir: string, keyPath: string): Promise<Buffer> {
  await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const existing = await readKeyFile(keyPath);
  if (existing) return existing;

  // Create atomically with its full content: write a private temp file, then hard-link it
  // into place. link() fails with EEXIST if another process won the race, and a reader never
  // sees a half-written key (which `open(…, 'wx')` + write would allow).
  const fresh = randomBytes(KEY_BYTES);
  const tmp = `${keyPath}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  await fs.writeFile(tmp, fresh, { mode: 0o600, flag: 'wx' });
  try {
    await fs.chmod(tmp, 0o600); // a umask cannot widen it, but be explicit
    try {
      await fs.link(tmp, keyPath);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') {
        const winner = await readKeyFile(keyPath);
        if (winner) return winner;
        throw new SecretStoreError(`${keyPath} appeared but could not be read`);
      }
      // Filesystems without hard links: fall back to an exclusive copy.
      await fs.copyFile(tmp, keyPath, fsConstants.COPYFILE_EXCL);
      await fs.chmod(keyPath, 0o600);
    }
  } finally {
    await fs.rm(tmp, { force: true });
  }
  return fresh;
}

/** Reads the master key; tightens its mode to 0600 if it is looser. `null` when absent. */
async function readKeyFile(keyPath: string): Promise<Buffer | null> {
  let stat;
  try {
    stat = await fs.lstat(keyPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  if (!stat.isFile()) {
    throw new SecretStoreError(`${keyPath} is not a regular file (symlinks are refused); move it away and restart`);
  }
  if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
    await fs.chmod(keyPath, 0o600);
  }
  const key = await fs.readFile(keyPath);
  if (key.length !== KEY_BYTES) {
    // Never replace it silently: every stored provider key is encrypted under it.
    throw new SecretStoreError(
      `${keyPath} is ${key.length} bytes, expected ${KEY_BYTES}: it is corrupted. Restore it from a backup, ` +
        `or delete it and re-add your provider keys.`,
    );
  }
  return key;
}
