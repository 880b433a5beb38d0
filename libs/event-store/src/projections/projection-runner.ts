// Keeps a read model up to date from the global log. Each batch commits together with the new
// checkpoint, so a crash neither loses an event nor applies one twice.
import type { Envelope } from '@finance/contracts';
import type { EntityManager } from 'typeorm';
import { BEGINNING, compareCheckpoints, GlobalCheckpoint } from '../store/checkpoint';
import type { EventStore, RecordedEvent } from '../store/event-store';

export interface Projection<E extends Envelope = Envelope> {
  /** Names its checkpoint row; two runners of one name never apply a batch at the same time. */
  readonly name: string;
  /** Applies events in log order; runs in the transaction that also stores the checkpoint. */
  handle(manager: EntityManager, events: readonly RecordedEvent<E>[]): Promise<void>;
  /** Removes what was built after `from` (everything, for a rebuild from the beginning). */
  reset(manager: EntityManager, from: GlobalCheckpoint): Promise<void>;
}

export interface ProjectionRunnerOptions {
  /** Events per transaction (default 500). */
  batchSize?: number;
  /** How long to wait when there is nothing new (default 100 ms). */
  pollIntervalMs?: number;
  /** How long to wait after a failed batch before trying it again (default 1 s). */
  retryDelayMs?: number;
  /** Called with each failure of the background loop, which then retries. */
  onError?: (error: unknown) => void;
}

interface StepResult {
  applied: number;
  /** The stored checkpoint after the step; undefined when another process held the projection. */
  checkpoint: GlobalCheckpoint | undefined;
}

// First key of the projection advisory locks; the second is the hash of the projection's name.
const LOCK_CLASS = 721_043_102;

export class ProjectionRunner<E extends Envelope = Envelope> {
  private readonly batchSize: number;
  private readonly pollIntervalMs: number;
  private readonly retryDelayMs: number;
  private readonly onError: (error: unknown) => void;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private wake: (() => void) | undefined;
  // Steps of this runner (background, catchUp, rebuild) run one at a time, in call order.
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: EventStore<E>,
    private readonly projection: Projection<E>,
    options: ProjectionRunnerOptions = {},
  ) {
    this.batchSize = options.batchSize ?? 500;
    this.pollIntervalMs = options.pollIntervalMs ?? 100;
    this.retryDelayMs = options.retryDelayMs ?? 1_000;
    this.onError =
      options.onError ??
      ((error) => process.emitWarning(`projection ${projection.name} failed: ${String(error)}`));
  }

  get running(): boolean {
    return this.loop !== undefined;
  }

  /** Follows the log in the background until stop(). */
  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.loop = this.follow();
  }

  /** Ends the background loop after the batch in progress has committed. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.loop;
    this.loop = undefined;
  }

  /**
   * Resolves once everything committed before the call is applied; rejects with the projection's
   * error if a batch fails (the batch is rolled back and retried by the next call).
   */
  async catchUp(): Promise<GlobalCheckpoint> {
    const target = await this.store.headCheckpoint();
    for (;;) {
      const { applied, checkpoint } = await this.exclusive(() => this.step());
      if (checkpoint && compareCheckpoints(checkpoint, target) >= 0) return checkpoint;
      // Nothing readable yet: an older transaction is still running, or another process holds
      // the projection. Either way the target becomes readable once that finishes.
      if (applied === 0) await delay(this.pollIntervalMs);
    }
  }

  /**
   * Resets the read model and its checkpoint to `from`, then catches up again batch by batch, so
   * the process keeps serving other work meanwhile (readers see the model refill).
   */
  async rebuild(from: GlobalCheckpoint = BEGINNING): Promise<GlobalCheckpoint> {
    await this.exclusive(() =>
      this.store.transaction(async (manager) => {
        // Waits for a batch another process may be applying, so none lands after the reset.
        await manager.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [
          LOCK_CLASS,
          this.projection.name,
        ]);
        await this.projection.reset(manager, from);
        await this.saveCheckpoint(manager, from);
      }),
    );
    return this.catchUp();
  }

  /** The checkpoint stored for this projection. */
  async checkpoint(): Promise<GlobalCheckpoint> {
    return this.readCheckpoint(this.store.dataSource.manager);
  }

  private async follow(): Promise<void> {
    while (!this.stopping) {
      let wait = this.pollIntervalMs;
      try {
        const { applied } = await this.exclusive(() => this.step());
        if (applied === this.batchSize) wait = 0; // a full batch: more is probably waiting
      } catch (error) {
        this.onError(error);
        wait = this.retryDelayMs;
      }
      if (wait > 0 && !this.stopping) await this.sleep(wait);
    }
  }

  /** Applies at most one batch after the stored checkpoint, in one transaction with the new one. */
  private step(): Promise<StepResult> {
    return this.store.transaction(async (manager) => {
      // Another replica running the same projection: let it work, try again later.
      const [{ locked }] = await manager.query<Array<{ locked: boolean }>>(
        'SELECT pg_try_advisory_xact_lock($1, hashtext($2)) AS locked',
        [LOCK_CLASS, this.projection.name],
      );
      if (!locked) return { applied: 0, checkpoint: undefined };
      // Read before writing anything: until it writes, this transaction has no id of its own and
      // does not hold back what readAll may return.
      const current = await this.readCheckpoint(manager);
      const { events, checkpoint } = await this.store.readAll({
        after: current,
        maxCount: this.batchSize,
        manager,
      });
      if (events.length === 0) return { applied: 0, checkpoint: current };
      await this.projection.handle(manager, events);
      await this.saveCheckpoint(manager, checkpoint);
      return { applied: events.length, checkpoint };
    });
  }

  private async readCheckpoint(manager: EntityManager): Promise<GlobalCheckpoint> {
    const rows = await manager.query<Array<{ transaction_id: string; global_position: string }>>(
      `SELECT transaction_id::text AS transaction_id, global_position::text AS global_position
       FROM projection_checkpoints WHERE name = $1`,
      [this.projection.name],
    );
    return rows.length === 0
      ? BEGINNING
      : { transactionId: rows[0].transaction_id, position: rows[0].global_position };
  }

  private async saveCheckpoint(manager: EntityManager, at: GlobalCheckpoint): Promise<void> {
    await manager.query(
      `INSERT INTO projection_checkpoints (name, transaction_id, global_position)
       VALUES ($1, $2::xid8, $3::bigint)
       ON CONFLICT (name) DO UPDATE SET transaction_id = EXCLUDED.transaction_id,
         global_position = EXCLUDED.global_position, updated_at = clock_timestamp()`,
      [this.projection.name, at.transactionId, at.position],
    );
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const result = this.queue.then(work);
    this.queue = result.catch(() => undefined);
    return result;
  }

  // A pause stop() can cut short.
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
