/**
 * Batch jobs Tollgate saw (ledger table `batch_jobs`, migration 8): the call that submitted each
 * batch, its output file (OpenAI), and the call that booked its results, so that results fetched
 * many times are booked once. Keyed by provider and the batch's id (OpenAI, Anthropic) or name
 * (Gemini `batches/…`); an OpenAI output file never seen with its batch is keyed `file:<file id>`.
 * Written on the engine's own connection (rare, small writes), synchronously: a claim and its check
 * run without yielding, so two retrievals of the same results racing each other book once.
 */
import type Database from 'better-sqlite3';

export interface BatchJob {
  provider: string;
  batchId: string;
  submitCallId: string | null;
  outputFileId: string | null;
  bookedCallId: string | null;
}

type Row = { provider: string; batch_id: string; submit_call_id: string | null; output_file_id: string | null; booked_call_id: string | null };
const fromRow = (r: Row | undefined): BatchJob | null => (r ? { provider: r.provider, batchId: r.batch_id, submitCallId: r.submit_call_id, outputFileId: r.output_file_id, bookedCallId: r.booked_call_id } : null);

export class BatchJobs {
  private st: {
    remember: Database.Statement;
    get: Database.Statement;
    byFile: Database.Statement;
    claim: Database.Statement;
  } | null = null;

  constructor(private readonly db: Database.Database) {}

  private get s() {
    return (this.st ??= {
      remember: this.db.prepare(`INSERT INTO batch_jobs (provider, batch_id, submit_call_id, output_file_id, booked_call_id, created_at) VALUES (?, ?, ?, ?, NULL, ?)
        ON CONFLICT (provider, batch_id) DO UPDATE SET submit_call_id = COALESCE(batch_jobs.submit_call_id, excluded.submit_call_id), output_file_id = COALESCE(excluded.output_file_id, batch_jobs.output_file_id)`),
      get: this.db.prepare('SELECT * FROM batch_jobs WHERE provider = ? AND batch_id = ?'),
      byFile: this.db.prepare('SELECT * FROM batch_jobs WHERE provider = ? AND output_file_id = ? ORDER BY submit_call_id IS NULL LIMIT 1'),
      claim: this.db.prepare('UPDATE batch_jobs SET booked_call_id = ? WHERE provider = ? AND batch_id = ? AND booked_call_id IS NULL'),
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
