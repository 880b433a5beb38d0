// Housekeeping of the barrier: old rows go in small batches, each its own short transaction.
import type { DataSource } from 'typeorm';

export interface PurgeOptions {
  /**
   * Age past which a row may go. It must exceed the command topic's retention plus the longest a
   * saga can stay open (parked sagas included): a row deleted too early lets a late EXECUTE run again
   * or turns a real compensation into a no-op.
   */
  readonly olderThanMs: number;
  /** Rows per transaction (default 500). */
  readonly batchSize?: number;
  /** Clock for tests. */
  readonly now?: number;
}

export async function purgeBarrier(dataSource: DataSource, options: PurgeOptions): Promise<number> {
  const batchSize = options.batchSize ?? 500;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
    throw new RangeError('batchSize must be a whole number >= 1');
  }
  const before = new Date((options.now ?? Date.now()) - options.olderThanMs).toISOString();
  let total = 0;
  for (;;) {
    // Rows of a saga still open in this database stay whatever their age, and so does a step whose
    // answer is still pending (its EXECUTE would run again). A deferred answer ages from when it
    // was given.
    const [{ n }] = (await dataSource.query(
      `WITH doomed AS (
         SELECT b.saga_id, b.step, b.action
           FROM saga_barrier b
          WHERE b.created_at < $1
            AND b.outcome <> 'PENDING'
            AND (b.answered_at IS NULL OR b.answered_at < $1)
            AND NOT EXISTS (SELECT 1 FROM saga_instances s
                             WHERE s.saga_id = b.saga_id AND s.finished_at IS NULL)
          ORDER BY b.created_at
          LIMIT $2
            FOR UPDATE OF b SKIP LOCKED),
       deleted AS (
         DELETE FROM saga_barrier b USING doomed d
          WHERE b.saga_id = d.saga_id AND b.step = d.step AND b.action = d.action
         RETURNING 1)
       SELECT count(*)::int AS n FROM deleted`,
      [before, batchSize],
    )) as Array<{ n: number }>;
    total += n;
    if (n < batchSize) return total;
  }
}
