/**
 * A newer genai-prices data file, loaded offline with `tollgate prices update --from FILE`.
 *
 * The file is validated (shared/genai-data.ts), then copied into the data dir
 * (`genai-prices-data.json`, written to a temp file and renamed) and described in the settings
 * table (`priceData`: its sha256, counts, the source file's name and date, when it was loaded).
 * The settings write bumps the config version, so a running engine reloads and prices with it on
 * its next config check; an offline CLI reads it when it opens the data dir. `--reset` deletes both
 * and the bundled data is used again. A file that fails validation changes nothing.
 *
 * The shared Catalog stays I/O-free: this module reads the file and passes the providers in.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Provider } from '@pydantic/genai-prices';
import { GenaiDataError, parseGenaiData, summarizeGenaiData } from '../../shared/genai-data.ts';
import { BUNDLED_GENAI, GENAI_PRICES_VERSION, SUPPLEMENT_VERSION, type GenaiData } from '../../shared/catalog.ts';
import type { PriceDataInfo } from '../../shared/api.ts';
import type { Ledger } from './ledger.ts';

export const PRICE_DATA_FILE = 'genai-prices-data.json';
const SETTING = 'priceData';
/** A genai-prices data file is ~1 MB today; refuse anything absurd before parsing it. */
export const MAX_PRICE_DATA_BYTES = 64 * 1024 * 1024;

export class PriceDataError extends Error {
  readonly code = 'E_VALIDATION';
}

interface Stored {
  sha256: string;
  file: string;
  fileDate: string | null;
  loadedAt: string;
  providers: number;
  models: number;
  newestPriceDate: string | null;
}

/** Parse and validate the text of a data file; throws PriceDataError saying what is wrong. */
export function validatePriceData(text: string, name: string): { providers: Provider[]; sha256: string } {
  if (Buffer.byteLength(text) > MAX_PRICE_DATA_BYTES) throw new PriceDataError(`${name}: larger than ${MAX_PRICE_DATA_BYTES / 1024 / 1024} MB; not a genai-prices data file`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new PriceDataError(`${name}: not JSON: ${(e as Error).message}`);
  }
  try {
    const providers = parseGenaiData(json);
    return { providers, sha256: crypto.createHash('sha256').update(text).digest('hex') };
  } catch (e) {
    if (e instanceof GenaiDataError) throw new PriceDataError(`${name}: not genai-prices data: ${e.message}`);
    throw e;
  }
}

function stored(ledger: Ledger): Stored | null {
  const raw = ledger.setting(SETTING);
  if (!raw) return null;
  try {
    return JSON.parse(raw) as Stored;
  } catch {
    return null;
  }
}

/** Validate, copy into the data dir and record; nothing changes when validation fails. */
export function installPriceData(dataDir: string, ledger: Ledger, file: string, text: string, now: number, fileDate: number | null): PriceDataInfo {
  const name = path.basename(file);
  const { providers, sha256 } = validatePriceData(text, name);
  const dest = path.join(dataDir, PRICE_DATA_FILE);
  const tmp = `${dest}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text, { mode: 0o600 });
  fs.renameSync(tmp, dest);
  const s = summarizeGenaiData(providers);
  const rec: Stored = {
    sha256, file: name, fileDate: fileDate === null ? null : new Date(fileDate).toISOString(), loadedAt: new Date(now).toISOString(),
    providers: s.providers, models: s.models, newestPriceDate: s.newestPriceDate,
  };
  ledger.setSetting(SETTING, JSON.stringify(rec));
  return infoFor(rec, null);
}

/** Back to the bundled data. */
export function resetPriceData(dataDir: string, ledger: Ledger): void {
  ledger.deleteSetting(SETTING);
  fs.rmSync(path.join(dataDir, PRICE_DATA_FILE), { force: true });
}

export function labelFor(sha256: string): string {
  return `genai-prices-data#sha256:${sha256.slice(0, 12)}`;
}

function infoFor(rec: Stored | null, problem: string | null): PriceDataInfo {
  const supplement = `tollgate-genai-supplement@${SUPPLEMENT_VERSION}`;
  if (!rec) return { kind: 'bundled', label: BUNDLED_GENAI.label, version: GENAI_PRICES_VERSION, sha256: null, file: null, fileDate: null, loadedAt: null, providers: null, models: null, newestPriceDate: null, supplement, problem };
  return { kind: 'file', label: labelFor(rec.sha256), version: null, sha256: rec.sha256, file: rec.file, fileDate: rec.fileDate, loadedAt: rec.loadedAt, providers: rec.providers, models: rec.models, newestPriceDate: rec.newestPriceDate, supplement, problem };
}

/**
 * What the engine prices with, given the settings: the stored file when it is there and matches
 * its record, else the bundled data with the problem said (never a crash, never $0 prices).
 * `current` is what is loaded now: the same sha256 is not read again.
 */
export function loadPriceData(dataDir: string, ledger: Ledger, current: { data: GenaiData; info: PriceDataInfo } | null): { data: GenaiData; info: PriceDataInfo } {
  const rec = stored(ledger);
  if (!rec) return current && current.info.kind === 'bundled' && !current.info.problem ? current : { data: BUNDLED_GENAI, info: infoFor(null, null) };
  if (current && current.info.sha256 === rec.sha256) return current;
  const file = path.join(dataDir, PRICE_DATA_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    return { data: BUNDLED_GENAI, info: infoFor(null, `the loaded price data file (${rec.file}) is missing from the data dir (${(e as Error).message}); using the bundled data — run \`npx tollgate prices update --from FILE\` again`) };
  }
  try {
    const { providers, sha256 } = validatePriceData(text, PRICE_DATA_FILE);
    if (sha256 !== rec.sha256) throw new PriceDataError(`${PRICE_DATA_FILE} changed on disk (sha256 ${sha256.slice(0, 12)}, recorded ${rec.sha256.slice(0, 12)})`);
    return { data: { providers, label: labelFor(sha256) }, info: infoFor(rec, null) };
  } catch (e) {
    return { data: BUNDLED_GENAI, info: infoFor(null, `the loaded price data cannot be used: ${(e as Error).message}; using the bundled data — run \`npx tollgate prices update --from FILE\` again`) };
  }
}
