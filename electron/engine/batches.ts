/**
 * Batch jobs Tollgate saw (ledger table `batch_jobs`, migration 8): the call that submitted each
 * batch, its output file (OpenAI), and the call that booked its results, so that results fetched
 * many times are booked once. Keyed by provider and the batch's id (OpenAI, Anthropic) or name
 * (Gemini `batches/…`); an OpenAI output file never seen with its batch is keyed `file:<file id>`.
 * Written on the engine's own connection (rare, small writes), synchronously: a claim and its check
 * run without yielding, so two retrievals of the same results racing each other book once.
 *
 * This table is the device's own. Across devices, the calls say it (migration 10): a batch's submit
 * call and the call that booked its results carry the batch's id in `upstream_id`, and sync with it,
 * so a device finds the estimate to take back, or the booking already made, among the pulled calls.
 */
import type Database from 'better-sqlite3';

export interface BatchJob {
  provider: string;
  batchId: string;
  submitCallId: string | null;
  outputFileId: string | null;
  bookedCallId: string | null;
}

/** The batch endpoints whose calls carry a batch id in upstream_id: the very text of the partial index calls_batch_upstream (migration 10). */
// ORs, not IN (…): as a partial index's condition, SQLite evaluates an IN list of constants by
// building a small table for it on every insert into calls (~1.4 µs a call, measured), ORs cost ~0.2 µs
export const BATCH_CALL_ENDPOINTS = "(endpoint = 'batches' OR endpoint = 'messages.batches' OR endpoint = 'batchGenerateContent' OR endpoint = 'batches.output' OR endpoint = 'messages.batches.results' OR endpoint = 'gemini.batch' OR endpoint = 'gemini.batch.output')";
const SUBMIT_ENDPOINTS = "endpoint IN ('batches', 'messages.batches', 'batchGenerateContent')";

type Row = { provider: string; batch_id: string; submit_call_id: string | null; output_file_id: string | null; booked_call_id: string | null };
const fromRow = (r: Row | undefined): BatchJob | null => (r ? { provider: r.provider, batchId: r.batch_id, submitCallId: r.submit_call_id, outputFileId: r.output_file_id, bookedCallId: r.booked_call_id } : null);

export class BatchJobs {
  private st: {
    remember: Database.Statement;
    get: Database.Statement;
    byFile: Database.Statement;
    claim: Database.Statement;
    submitCall: Database.Statement;
    bookings: Database.Statement;
    correctionOf: Database.Statement;
    byBooked: Database.Statement;
    booked: Database.Statement;
    rebook: Database.Statement;
    corrections: Database.Statement;
  } | null = null;

  constructor(private readonly db: Database.Database) {}

  private get s() {
    return (this.st ??= {
      remember: this.db.prepare(`INSERT INTO batch_jobs (provider, batch_id, submit_call_id, output_file_id, booked_call_id, created_at) VALUES (?, ?, ?, ?, NULL, ?)
        ON CONFLICT (provider, batch_id) DO UPDATE SET submit_call_id = COALESCE(batch_jobs.submit_call_id, excluded.submit_call_id), output_file_id = COALESCE(excluded.output_file_id, batch_jobs.output_file_id)`),
      get: this.db.prepare('SELECT * FROM batch_jobs WHERE provider = ? AND batch_id = ?'),
      byFile: this.db.prepare('SELECT * FROM batch_jobs WHERE provider = ? AND output_file_id = ? ORDER BY submit_call_id IS NULL LIMIT 1'),
      claim: this.db.prepare('UPDATE batch_jobs SET booked_call_id = ? WHERE provider = ? AND batch_id = ? AND booked_call_id IS NULL'),
      submitCall: this.db.prepare(`SELECT id FROM calls WHERE provider = ? AND upstream_id = ? AND ${BATCH_CALL_ENDPOINTS} AND ${SUBMIT_ENDPOINTS} AND corrects IS NULL ORDER BY ts, id LIMIT 1`).pluck(),
      // priced bookings first (an unpriced one says only that the results were read), then the earliest
      bookings: this.db.prepare(`SELECT id, device IS NULL AS own, cost_nano FROM calls WHERE provider = ? AND upstream_id IN (?, ?) AND ${BATCH_CALL_ENDPOINTS} AND NOT ${SUBMIT_ENDPOINTS} ORDER BY unpriced, ts, id`).safeIntegers(true),
      correctionOf: this.db.prepare('SELECT id FROM calls WHERE corrects = ? ORDER BY ts, id LIMIT 1').pluck(),
      byBooked: this.db.prepare('SELECT * FROM batch_jobs WHERE booked_call_id = ? LIMIT 1'),
      booked: this.db.prepare('SELECT * FROM batch_jobs WHERE booked_call_id IS NOT NULL AND created_at >= ?'),
      rebook: this.db.prepare('UPDATE batch_jobs SET booked_call_id = ? WHERE provider = ? AND batch_id = ?'),
      corrections: this.db.prepare('SELECT id, device IS NULL AS own FROM calls WHERE corrects = ? ORDER BY ts, id'),
    });
  }

  /** A batch seen at submit (with its submit call) or at a poll (with its output file): kept, never overwritten by less. */
  remember(provider: string, batchId: string, submitCallId: string | null, outputFileId: string | null, now: number): void {
    this.s.remember.run(provider, batchId.slice(0, 500), submitCallId, outputFileId?.slice(0, 500) ?? null, now);
  }

  get(provider: string, batchId: string): BatchJob | null {
    return fromRow(this.s.get.get(provider, batchId.slice(0, 500)) as Row | undefined);
  }

  byOutputFile(provider: string, fileId: string): BatchJob | null {
    return fromRow(this.s.byFile.get(provider, fileId.slice(0, 500)) as Row | undefined);
  }

  /** The batch whose results `callId` booked (on this device). */
  byBookedCall(callId: string): BatchJob | null {
    return fromRow(this.s.byBooked.get(callId) as Row | undefined);
  }

  /** The call (of any device, once synced) that submitted the batch: it carries the batch's id in upstream_id. */
  submitCallOf(provider: string, batchId: string): string | null {
    return (this.s.submitCall.get(provider, batchId.slice(0, 500)) as string | undefined) ?? null;
  }

  /**
   * The calls (of every device, once synced) that booked the batch's results: the one that stands
   * first (priced before unpriced, then by ts and id; every device orders them alike). With its
   * output file, the bookings of a device that knew only the file (`file:<id>`) are counted too.
   */
  bookingsOf(provider: string, batchId: string, outputFileId: string | null = null): { id: string; own: boolean; costNano: bigint }[] {
    const id = batchId.slice(0, 500);
    const byFile = outputFileId ? `file:${outputFileId}`.slice(0, 500) : id;
    return (this.s.bookings.all(provider, id, byFile) as { id: string; own: bigint; cost_nano: bigint }[]).map((r) => ({ id: r.id, own: r.own === 1n, costNano: r.cost_nano }));
  }

  /** The first correction recorded (on any device, once synced) of a call. */
  correctionOf(callId: string): string | null {
    return (this.s.correctionOf.get(callId) as string | undefined) ?? null;
  }

  /** Batches seen since `since` whose results are booked. */
  booked(since: number): BatchJob[] {
    return (this.s.booked.all(since) as Row[]).map((r) => fromRow(r)!);
  }

  /** The batch's results stand booked on `callId` (a pulled booking earlier than this device's). */
  rebook(provider: string, batchId: string, callId: string): void {
    this.s.rebook.run(callId, provider, batchId.slice(0, 500));
  }

  /** The corrections of a call (of every device, once synced), earliest first; `own`: made on this device. */
  correctionsOf(callId: string): { id: string; own: boolean }[] {
    return (this.s.corrections.all(callId) as { id: string; own: number }[]).map((r) => ({ id: r.id, own: r.own === 1 }));
  }

  /**
   * Claim the booking of a batch's results for `callId`: true the first time only. A batch never
   * seen before is remembered here first (results of a batch submitted elsewhere are booked once too).
   */
  claim(provider: string, batchId: string, callId: string, now: number, outputFileId: string | null = null): boolean {
    return this.db.transaction(() => {
      this.remember(provider, batchId, null, outputFileId, now);
      return this.s.claim.run(callId, provider, batchId.slice(0, 500)).changes === 1;
    }).immediate();
  }
}
