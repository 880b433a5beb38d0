// The TCC coordinator: a global transaction and its branches live in PostgreSQL; every state change
// and the commands it causes commit together (the outbox), so a crash never loses a decision and a
// restart resumes from the tables. Replies drive it forward; `tick` re-sends what is unanswered and
// cancels what passed its deadline.
import {
  Envelope,
  MessageCatalog,
  MessageOf,
  OperatorActionRecorded,
  ServiceName,
  SYSTEM_CATALOG,
  TccCancel,
  TccConfirm,
  TccReply,
  TccReplyBatch,
  TccTry,
  uuidv7,
} from '@finance/contracts';
import {
  createEnvelope,
  currentTraceContext,
  enqueueOutbox,
  extractTraceContext,
  OutboxMessage,
  routeMessage,
} from '@finance/messaging';
import { afterCommit } from '@finance/platform';
import { Context, context, propagation } from '@opentelemetry/api';
import { Client } from 'pg';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry, register as defaultRegistry } from 'prom-client';
import type { DataSource, EntityManager } from 'typeorm';
import type { PostgresConnectionOptions } from 'typeorm/driver/postgres/PostgresConnectionOptions';
import { elementTrace, packCommands, unpackReplies } from '../batch';

export type TransactionState = 'TRYING' | 'CONFIRMING' | 'CANCELLING' | 'CONFIRMED' | 'CANCELLED';

export interface BranchSpec {
  branchId: string;
  participant: ServiceName;
  resource: string;
  payload: Record<string, unknown>;
}

export interface BeginOptions {
  kind: string;
  branches: BranchSpec[];
  /** Time allowed for every Try to answer; past it the transaction is cancelled. */
  timeoutMs: number;
  correlationId: string;
  gtid?: string;
  causationId?: string;
  /** Begin inside the caller's transaction (e.g. with the order that needs it). */
  manager?: EntityManager;
}

export interface Failure {
  branchId: string;
  participant: string;
  code: string;
  message: string;
}

export type Outcome =
  | { state: 'CONFIRMED'; gtid: string }
  | { state: 'CANCELLED'; gtid: string; failure: Failure | null }
  | { state: 'PENDING'; gtid: string; current: TransactionState };

/** The coordinator's decision, given to `onDecided` in the transaction that records it. */
export interface Decision {
  gtid: string;
  kind: string;
  correlationId: string;
  state: 'CONFIRMING' | 'CANCELLING';
  failure: Failure | null;
}

export interface TccCoordinatorOptions {
  dataSource: DataSource;
  service: ServiceName;
  logger: Logger;
  topicPrefix?: string;
  catalog?: MessageCatalog;
  /** First delay before a command without an answer is sent again; doubles per attempt. */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** How often `start()` runs `tick`. */
  tickIntervalMs?: number;
  /** Time source; tests move it forward instead of waiting. */
  clock?: () => number;
  registry?: Registry;
  /**
   * Runs in the transaction that records a decision, before the second phase goes out: the owner of
   * the business object learns the outcome exactly once, durably (e.g. an order accepted or rejected).
   * Once CONFIRMING is decided every branch will confirm, so acting on it does not wait for the acks.
   */
  onDecided?: (decision: Decision, manager: EntityManager) => Promise<void>;
  /**
   * Send the commands that leave together (a group of begins, a run of replies' second phases) as
   * one TccCommandBatch per participant instead of one record per branch: far fewer records under
   * load. Participants take both forms. Off by default: each Kafka record then belongs to one
   * transaction's trace, where a batch's send and receive spans are shared by many.
   */
  batchCommands?: boolean;
}

interface TransactionRow {
  gtid: string;
  kind: string;
  state: TransactionState;
  correlation_id: string;
  deadline: Date;
  failure: Failure | null;
}

interface BranchRow {
  gtid: string;
  branch_id: string;
  participant: ServiceName;
  resource: string;
  payload: Record<string, unknown>;
  try_status: 'PENDING' | 'SUCCEEDED' | 'FAILED';
  settled: boolean;
  attempts: number;
  deadline?: Date;
}

type Reply = MessageOf<typeof TccReply>;

interface PendingBegin {
  gtid: string;
  options: BeginOptions;
  created: Date;
  deadline: Date;
  trace: Context;
}

interface QueuedBegin extends PendingBegin {
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** A reply and the trace context it was handled in (see `onReplies`). */
export interface ReplyEntry {
  message: Envelope;
  trace?: Context;
}

const FINISHED_CHANNEL = 'tcc_finished';
const TICK_BATCH = 200;
// begin() calls waiting for a commit are recorded together, this many at most per transaction.
const BEGIN_GROUP_SIZE = 500;
const BEGIN_GROUPS_IN_FLIGHT = 2;

export class TccCoordinator {
  private readonly catalog: MessageCatalog;
  private readonly clock: () => number;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly waiters = new Map<string, Set<(state: TransactionState) => void>>();
  private listener: Client | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private readonly beginQueue: QueuedBegin[] = [];
  private beginsInFlight = 0;
  private flushScheduled = false;
  private readonly outcomeQueue: Array<{
    gtid: string;
    resolve: (outcome: Outcome) => void;
    reject: (error: unknown) => void;
  }> = [];
  private readingOutcomes = false;
  private readonly metrics: ReturnType<typeof coordinatorMetrics>;

  constructor(private readonly options: TccCoordinatorOptions) {
    this.catalog = options.catalog ?? SYSTEM_CATALOG;
    this.clock = options.clock ?? Date.now;
    // Under load an answer can take seconds; re-sending sooner only adds to the queue it waits in.
    this.retryInitialMs = options.retryInitialMs ?? 3_000;
    this.retryMaxMs = options.retryMaxMs ?? 60_000;
    this.metrics = coordinatorMetrics(options.registry ?? defaultRegistry, options.dataSource);
  }

  /** Listens for finished transactions and runs `tick` periodically (which also resumes after a restart). */
  async start(): Promise<void> {
    const url = (this.options.dataSource.options as PostgresConnectionOptions).url;
    const listener = new Client({ connectionString: url, application_name: 'tcc-coordinator' });
    await listener.connect();
    listener.on('notification', (n) => {
      const [state, gtid] = (n.payload ?? '').split(/:(.*)/s);
      if (gtid) this.wake(gtid, state as TransactionState);
    });
    listener.on('error', (error) =>
      this.options.logger.warn({ err: error }, 'tcc listener connection lost'),
    );
    await listener.query(`LISTEN ${FINISHED_CHANNEL}`);
    this.listener = listener;
    const every = this.options.tickIntervalMs ?? 250;
    const loop = () => {
      this.ticking = this.tick().then(
        () => undefined,
        (error: unknown) => this.options.logger.error({ err: error }, 'tcc tick failed'),
      );
      void this.ticking.finally(() => {
        if (this.listener) this.timer = setTimeout(loop, every);
      });
    };
    loop();
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    const listener = this.listener;
    this.listener = undefined;
    await this.ticking;
    await listener?.end().catch(() => undefined);
  }

  /**
   * Records the transaction, its branches and their Try commands in one commit; returns the id.
   * Without a `manager`, calls made in the same turn of the event loop, or while earlier commits are
   * in flight, are recorded together in one transaction (a few statements for the whole group); if
   * that fails, each is recorded alone, so one bad call fails only itself.
   */
  async begin(options: BeginOptions): Promise<string> {
    if (options.branches.length === 0)
      throw new Error('a global transaction needs at least one branch');
    const now = this.clock();
    const pending: PendingBegin = {
      gtid: options.gtid ?? uuidv7(),
      options,
      created: new Date(now),
      deadline: new Date(now + options.timeoutMs),
      // The trace it began in: commands sent later by tick (re-sends, the deadline's cancel) join it.
      trace: context.active(),
    };
    beganKinds(this.options.registry ?? defaultRegistry).add(options.kind);
    if (options.manager) {
      await this.record(options.manager, [pending]);
      afterCommit(options.manager, () => this.metrics.started.inc({ kind: options.kind }));
      return pending.gtid;
    }
    await new Promise<void>((resolve, reject) => {
      this.beginQueue.push({ ...pending, resolve, reject });
      // After the current turn of the event loop, so the calls one burst of work makes (say, the
      // callers woken by one batch of outcomes) go out as one group rather than the first alone.
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => {
          this.flushScheduled = false;
          this.flushBegins();
        });
      }
    });
    this.metrics.started.inc({ kind: options.kind });
    return pending.gtid;
  }

  private flushBegins(): void {
    while (this.beginsInFlight < BEGIN_GROUPS_IN_FLIGHT && this.beginQueue.length > 0) {
      const group = this.beginQueue.splice(0, BEGIN_GROUP_SIZE);
      this.beginsInFlight++;
      void this.recordGroup(group).finally(() => {
        this.beginsInFlight--;
        this.flushBegins();
      });
    }
  }

  private async recordGroup(group: QueuedBegin[]): Promise<void> {
    try {
      await this.options.dataSource.transaction((manager) => this.record(manager, group));
      for (const begin of group) begin.resolve();
      return;
    } catch (error) {
      if (group.length === 1) {
        group[0].reject(error);
        return;
      }
    }
    for (const begin of group) {
      await this.options.dataSource
        .transaction((manager) => this.record(manager, [begin]))
        .then(begin.resolve, begin.reject);
    }
  }

  // Transactions, branches and BEGIN log entries in one statement, the Try commands in a second.
  private async record(manager: EntityManager, begins: PendingBegin[]): Promise<void> {
    const branches = begins.flatMap((b) =>
      b.options.branches.map((branch) => ({ begin: b, branch })),
    );
    await manager.query(
      `WITH t AS (
         INSERT INTO tcc_transactions (gtid, kind, state, correlation_id, deadline, created_at, updated_at)
         SELECT gtid, kind, 'TRYING', correlation_id, deadline, created_at, created_at
           FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[])
                AS u(gtid, kind, correlation_id, deadline, created_at)),
       b AS (
         INSERT INTO tcc_branches (gtid, branch_id, participant, resource, payload, next_attempt_at)
         SELECT * FROM unnest($6::text[], $7::text[], $8::text[], $9::text[], $10::jsonb[], $11::timestamptz[]))
       INSERT INTO tcc_log (gtid, branch_id, kind, detail)
       SELECT gtid, NULL, 'BEGIN', detail FROM unnest($1::text[], $12::jsonb[]) AS l(gtid, detail)`,
      [
        begins.map((b) => b.gtid),
        begins.map((b) => b.options.kind),
        begins.map((b) => b.options.correlationId),
        begins.map((b) => b.deadline),
        begins.map((b) => b.created),
        branches.map((x) => x.begin.gtid),
        branches.map((x) => x.branch.branchId),
        branches.map((x) => x.branch.participant),
        branches.map((x) => x.branch.resource),
        branches.map((x) => JSON.stringify(x.branch.payload)),
        branches.map((x) => new Date(x.begin.created.getTime() + this.retryInitialMs)),
        begins.map((b) =>
          JSON.stringify({
            kind: b.options.kind,
            branches: b.options.branches.length,
            ...context.with(b.trace, currentTraceContext),
          }),
        ),
      ],
    );
    await this.enqueueCommands(
      manager,
      begins.flatMap((b) =>
        context.with(b.trace, () =>
          this.commands(
            'TRY',
            { gtid: b.gtid, correlation_id: b.options.correlationId, deadline: b.deadline },
            b.options.branches.map((branch) => ({ ...branch, branch_id: branch.branchId })),
            b.options.causationId,
          ),
        ),
      ),
    );
  }

  /** Applies a participant's reply inside the consumer's transaction (two statements when nothing changes phase). */
  async onReply(message: Envelope, manager: EntityManager): Promise<void> {
    if (message.type === TccReplyBatch.type) {
      const active = context.active();
      for (const reply of unpackReplies(message, this.catalog))
        await context.with(elementTrace(reply, active), () => this.onReply(reply, manager));
      return;
    }
    if (message.type !== TccReply.type) return;
    const reply = (message as Reply).data;
    const [row]: Array<
      TransactionRow & {
        branch_id: string | null;
        participant: string;
        try_status: string;
        settled: boolean;
      }
    > = await manager.query(
      `SELECT t.*, b.branch_id, b.participant, b.try_status, b.settled
           FROM tcc_transactions t LEFT JOIN tcc_branches b ON b.gtid = t.gtid AND b.branch_id = $2
          WHERE t.gtid = $1 FOR UPDATE OF t`,
      [reply.globalTransactionId, reply.branchId],
    );
    if (!row?.branch_id) {
      this.options.logger.warn(
        { gtid: reply.globalTransactionId, branchId: reply.branchId },
        'reply for an unknown branch',
      );
      return;
    }
    const tx: TransactionRow = row;
    const logged = JSON.stringify({
      phase: reply.phase,
      outcome: reply.outcome,
      reason: reply.reason,
      eventId: message.metadata.eventId,
    });
    const applies = replyApplies(reply, tx.state, row);
    if (!applies) {
      // Late, repeated or failed second-phase answers change nothing (tick re-sends what is still due).
      await log(manager, tx.gtid, row.branch_id, 'REPLY', JSON.parse(logged));
      return;
    }

    if (reply.phase === 'TRY') {
      // The count sees the table before this statement's update, so the branch itself is excluded.
      const [{ others }] = await manager.query(
        `WITH upd AS (UPDATE tcc_branches SET try_status = $3 WHERE gtid = $1 AND branch_id = $2),
              lg AS (INSERT INTO tcc_log (gtid, branch_id, kind, detail) VALUES ($1, $2, 'REPLY', $4))
         SELECT count(*)::int AS others FROM tcc_branches
          WHERE gtid = $1 AND branch_id <> $2 AND try_status <> 'SUCCEEDED'`,
        [tx.gtid, row.branch_id, reply.outcome, logged],
      );
      if (reply.outcome === 'FAILED') {
        const failure = refusal(row.branch_id, row.participant, reply);
        await this.transition(manager, tx, 'CANCELLING', failure, message.metadata.eventId);
      } else if (others === 0) {
        await this.transition(manager, tx, 'CONFIRMING', null, message.metadata.eventId);
      }
      return;
    }

    const [{ open }] = await manager.query(
      `WITH upd AS (UPDATE tcc_branches SET settled = true WHERE gtid = $1 AND branch_id = $2),
            lg AS (INSERT INTO tcc_log (gtid, branch_id, kind, detail) VALUES ($1, $2, 'REPLY', $3))
       SELECT count(*)::int AS open FROM tcc_branches WHERE gtid = $1 AND branch_id <> $2 AND NOT settled`,
      [tx.gtid, row.branch_id, logged],
    );
    if (open === 0)
      await this.finish(manager, tx, reply.phase === 'CONFIRM' ? 'CONFIRMED' : 'CANCELLED');
  }

  /**
   * Applies a run of replies inside the consumer's transaction with a fixed number of statements:
   * one locks every transaction concerned (in gtid order), one reads them and their branches, one writes every
   * branch, transaction and log change, one enqueues every Confirm or Cancel that follows. Replies
   * are applied in order, each seeing what the ones before it changed, so the result is the same as
   * `onReply` for each in turn.
   */
  async onReplies(entries: ReadonlyArray<ReplyEntry>, manager: EntityManager): Promise<void> {
    // A batch's replies join the run in its place, in order.
    const replies = entries.flatMap((e): ReplyEntry[] => {
      if (e.message.type === TccReply.type) return [e];
      if (e.message.type !== TccReplyBatch.type) return [];
      const active = e.trace ?? context.active();
      return unpackReplies(e.message, this.catalog).map((message) => ({
        message,
        trace: elementTrace(message, active),
      }));
    });
    if (replies.length === 0) return;
    const gtids = [
      ...new Set(replies.map((e) => (e.message as Reply).data.globalTransactionId)),
    ].sort();
    // Lock first and read in a second statement: a statement reads as of its start, so branches read
    // by the statement that waited for these locks would miss what the holder committed (a run on
    // another partition settling a sibling branch), and the last reply would not finish the
    // transaction.
    await manager.query(
      'SELECT 1 FROM tcc_transactions WHERE gtid = ANY($1) ORDER BY gtid FOR UPDATE',
      [gtids],
    );
    const rows: Array<TransactionRow & { created_at: Date; branches: BranchRow[] }> =
      await manager.query(
        `WITH t AS (SELECT * FROM tcc_transactions WHERE gtid = ANY($1))
         SELECT t.gtid, t.kind, t.state, t.correlation_id, t.deadline, t.failure, t.created_at,
                coalesce(json_agg(json_build_object(
                  'gtid', b.gtid, 'branch_id', b.branch_id, 'participant', b.participant,
                  'resource', b.resource, 'payload', b.payload, 'try_status', b.try_status,
                  'settled', b.settled, 'attempts', b.attempts)) FILTER (WHERE b.gtid IS NOT NULL),
                  '[]') AS branches
           FROM t LEFT JOIN tcc_branches b ON b.gtid = t.gtid
          GROUP BY t.gtid, t.kind, t.state, t.correlation_id, t.deadline, t.failure, t.created_at`,
        [gtids],
      );
    const now = new Date(this.clock());
    const retryAt = new Date(this.clock() + this.retryInitialMs);
    const txs = new Map(
      rows.map((row) => [
        row.gtid,
        {
          row,
          branches: new Map(row.branches.map((b) => [b.branch_id, { ...b, reset: false }])),
          changed: false,
          finished: false,
        },
      ]),
    );
    const touched = new Map<string, BranchRow & { reset: boolean }>();
    const logs: Array<{ gtid: string; branchId: string | null; kind: string; detail: object }> = [];
    const commands: OutboxMessage[] = [];
    const decisions: Decision[] = [];
    const finished: Array<{ kind: string; state: 'CONFIRMED' | 'CANCELLED'; createdAt: Date }> = [];

    const decide = (
      tx: NonNullable<ReturnType<typeof txs.get>>,
      state: 'CONFIRMING' | 'CANCELLING',
      failure: Failure | null,
      causationId: string,
      trace: Context,
    ) => {
      tx.row.state = state;
      tx.row.failure = failure;
      tx.changed = true;
      // Every branch gets the second phase, whatever its Try did (a lost Try reply still reserved).
      const branches = [...tx.branches.values()];
      for (const b of branches) {
        b.settled = false;
        b.attempts = 1;
        b.reset = true;
        touched.set(`${b.gtid}\u0000${b.branch_id}`, b);
      }
      commands.push(
        ...context.with(trace, () =>
          this.commands(
            state === 'CONFIRMING' ? 'CONFIRM' : 'CANCEL',
            tx.row,
            branches,
            causationId,
          ),
        ),
      );
      logs.push({ gtid: tx.row.gtid, branchId: null, kind: 'STATE', detail: { state, failure } });
      decisions.push({
        gtid: tx.row.gtid,
        kind: tx.row.kind,
        correlationId: tx.row.correlation_id,
        state,
        failure,
      });
    };

    for (const { message, trace } of replies) {
      const reply = (message as Reply).data;
      const tx = txs.get(reply.globalTransactionId);
      const branch = tx?.branches.get(reply.branchId);
      if (!tx || !branch) {
        this.options.logger.warn(
          { gtid: reply.globalTransactionId, branchId: reply.branchId },
          'reply for an unknown branch',
        );
        continue;
      }
      logs.push({
        gtid: tx.row.gtid,
        branchId: branch.branch_id,
        kind: 'REPLY',
        detail: {
          phase: reply.phase,
          outcome: reply.outcome,
          reason: reply.reason,
          eventId: message.metadata.eventId,
        },
      });
      const applies = replyApplies(reply, tx.row.state, branch);
      if (!applies) continue;
      const others = [...tx.branches.values()].filter((b) => b !== branch);
      const ctx = trace ?? context.active();
      touched.set(`${branch.gtid}\u0000${branch.branch_id}`, branch);
      if (reply.phase === 'TRY') {
        branch.try_status = reply.outcome;
        if (reply.outcome === 'FAILED') {
          const failure = refusal(branch.branch_id, branch.participant, reply);
          decide(tx, 'CANCELLING', failure, message.metadata.eventId, ctx);
        } else if (others.every((b) => b.try_status === 'SUCCEEDED')) {
          decide(tx, 'CONFIRMING', null, message.metadata.eventId, ctx);
        }
        continue;
      }
      branch.settled = true;
      if (others.every((b) => b.settled)) {
        const state = reply.phase === 'CONFIRM' ? 'CONFIRMED' : 'CANCELLED';
        tx.row.state = state;
        tx.changed = true;
        tx.finished = true;
        logs.push({ gtid: tx.row.gtid, branchId: null, kind: 'STATE', detail: { state } });
        finished.push({ kind: tx.row.kind, state, createdAt: tx.row.created_at });
      }
    }

    const branchChanges = [...touched.values()];
    const txChanges = [...txs.values()].filter((tx) => tx.changed);
    const notices = txChanges.filter((tx) => tx.finished);
    await manager.query(
      `WITH br AS (
         UPDATE tcc_branches b
            SET try_status = u.try_status, settled = u.settled,
                attempts = CASE WHEN u.reset THEN 1 ELSE b.attempts END,
                next_attempt_at = CASE WHEN u.reset THEN $15 ELSE b.next_attempt_at END
           FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::bool[])
                AS u(gtid, branch_id, try_status, settled, reset)
          WHERE b.gtid = u.gtid AND b.branch_id = u.branch_id),
       tx AS (
         UPDATE tcc_transactions t
            SET state = u.state, failure = u.failure, updated_at = $16,
                finished_at = CASE WHEN u.finished THEN $16 ELSE t.finished_at END
           FROM unnest($6::text[], $7::text[], $8::jsonb[], $9::bool[]) AS u(gtid, state, failure, finished)
          WHERE t.gtid = u.gtid),
       lg AS (
         INSERT INTO tcc_log (gtid, branch_id, kind, detail)
         SELECT gtid, branch_id, kind, detail
           FROM unnest($10::text[], $11::text[], $12::text[], $13::jsonb[]) WITH ORDINALITY
                AS l(gtid, branch_id, kind, detail, n)
          ORDER BY n)
       SELECT pg_notify('${FINISHED_CHANNEL}', n) FROM unnest($14::text[]) AS n`,
      [
        branchChanges.map((b) => b.gtid),
        branchChanges.map((b) => b.branch_id),
        branchChanges.map((b) => b.try_status),
        branchChanges.map((b) => b.settled),
        branchChanges.map((b) => b.reset),
        txChanges.map((tx) => tx.row.gtid),
        txChanges.map((tx) => tx.row.state),
        txChanges.map((tx) => (tx.row.failure ? JSON.stringify(tx.row.failure) : null)),
        txChanges.map((tx) => tx.finished),
        logs.map((l) => l.gtid),
        logs.map((l) => l.branchId),
        logs.map((l) => l.kind),
        logs.map((l) => JSON.stringify(l.detail)),
        notices.map((tx) => `${tx.row.state}:${tx.row.gtid}`),
        retryAt,
        now,
      ],
    );
    await this.enqueueCommands(manager, commands);
    for (const decision of decisions) await this.options.onDecided?.(decision, manager);
    if (finished.length > 0) {
      afterCommit(manager, () => {
        for (const f of finished) {
          this.metrics.finished.inc({ kind: f.kind, state: f.state });
          this.metrics.duration.observe(
            { kind: f.kind, state: f.state },
            (now.getTime() - new Date(f.createdAt).getTime()) / 1000,
          );
        }
      });
    }
  }

  /**
   * One pass of the driver: cancels transactions whose Try phase passed its deadline and sends again
   * every command whose answer is overdue (with exponential backoff). Safe to run on several nodes.
   */
  async tick(): Promise<{ expired: number; resent: number }> {
    const now = new Date(this.clock());
    const expired = await this.options.dataSource.transaction(async (manager) => {
      const rows: TransactionRow[] = await manager.query(
        `SELECT * FROM tcc_transactions WHERE state = 'TRYING' AND deadline <= $1
          ORDER BY deadline LIMIT $2 FOR UPDATE SKIP LOCKED`,
        [now, TICK_BATCH],
      );
      const origins = await traceOrigins(
        manager,
        rows.map((tx) => tx.gtid),
      );
      for (const tx of rows) {
        await context.with(origins.get(tx.gtid) ?? context.active(), () =>
          this.transition(manager, tx, 'CANCELLING', {
            branchId: '',
            participant: '',
            code: 'TIMEOUT',
            message: 'not every branch answered its Try before the deadline',
          }),
        );
      }
      return rows.length;
    });
    const resent = await this.options.dataSource.transaction(async (manager) => {
      const due: Array<BranchRow & { state: TransactionState; correlation_id: string }> =
        await manager.query(
          `SELECT b.*, t.state, t.correlation_id, t.deadline
           FROM tcc_branches b JOIN tcc_transactions t USING (gtid)
          WHERE NOT b.settled AND b.next_attempt_at <= $1 AND t.finished_at IS NULL
            AND (t.state <> 'TRYING' OR b.try_status = 'PENDING')
          ORDER BY b.next_attempt_at LIMIT $2
          FOR UPDATE OF t SKIP LOCKED`,
          [now, TICK_BATCH],
        );
      const origins = await traceOrigins(
        manager,
        due.map((branch) => branch.gtid),
      );
      if (due.length === 0) return 0;
      // Every due branch at once: one update, one outbox insert (packed per participant when
      // batching) and one log insert, so re-sends under load do not cost a record each.
      const phases = due.map((branch) =>
        branch.state === 'TRYING' ? 'TRY' : branch.state === 'CONFIRMING' ? 'CONFIRM' : 'CANCEL',
      );
      await manager.query(
        `UPDATE tcc_branches b SET attempts = b.attempts + 1, next_attempt_at = u.next_attempt_at
           FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(gtid, branch_id, next_attempt_at)
          WHERE b.gtid = u.gtid AND b.branch_id = u.branch_id`,
        [
          due.map((b) => b.gtid),
          due.map((b) => b.branch_id),
          due.map((b) => new Date(this.clock() + this.backoff(b.attempts + 1))),
        ],
      );
      const commands = due.flatMap((branch, i) =>
        context.with(origins.get(branch.gtid) ?? context.active(), () =>
          this.commands(
            phases[i],
            {
              gtid: branch.gtid,
              correlation_id: branch.correlation_id,
              deadline: branch.deadline!,
            },
            [branch],
          ),
        ),
      );
      await this.enqueueCommands(manager, commands);
      await manager.query(
        `INSERT INTO tcc_log (gtid, branch_id, kind, detail)
         SELECT gtid, branch_id, 'RESENT', detail
           FROM unnest($1::text[], $2::text[], $3::jsonb[]) WITH ORDINALITY AS l(gtid, branch_id, detail, n)
          ORDER BY n`,
        [
          due.map((b) => b.gtid),
          due.map((b) => b.branch_id),
          due.map((b, i) => JSON.stringify({ phase: phases[i], attempt: b.attempts + 1 })),
        ],
      );
      return due.length;
    });
    if (resent > 0) this.metrics.resent.inc(resent);
    return { expired, resent };
  }

  /** The outcome once the transaction finishes, or PENDING when `timeoutMs` passes first. */
  async awaitOutcome(gtid: string, timeoutMs: number): Promise<Outcome> {
    let notified: TransactionState | undefined;
    let wake: () => void = () => undefined;
    const listener = (state: TransactionState) => {
      notified = state;
      wake();
    };
    let set = this.waiters.get(gtid);
    if (!set) this.waiters.set(gtid, (set = new Set()));
    set.add(listener);
    try {
      const deadline = Date.now() + timeoutMs;
      let outcome = await this.groupedOutcome(gtid);
      for (;;) {
        if (outcome.state !== 'PENDING') return outcome;
        const left = deadline - Date.now();
        if (left <= 0) return outcome;
        // NOTIFY on commit says how it ended; the timer covers a lost notification.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(left, 5_000));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
          if (notified) wake();
        });
        // A confirmed transaction needs nothing more; a cancelled one is read for its failure.
        outcome =
          notified === 'CONFIRMED' ? { state: 'CONFIRMED', gtid } : await this.groupedOutcome(gtid);
      }
    } finally {
      set.delete(listener);
      if (set.size === 0) this.waiters.delete(gtid);
    }
  }

  // outcome() for many waiters at once: reads asked for while one is in flight share the next query.
  private groupedOutcome(gtid: string): Promise<Outcome> {
    return new Promise((resolve, reject) => {
      this.outcomeQueue.push({ gtid, resolve, reject });
      if (!this.readingOutcomes) void this.readOutcomes();
    });
  }

  private async readOutcomes(): Promise<void> {
    this.readingOutcomes = true;
    try {
      while (this.outcomeQueue.length > 0) {
        const asked = this.outcomeQueue.splice(0, 1_000);
        try {
          const rows: TransactionRow[] = await this.options.dataSource.query(
            'SELECT gtid, state, failure FROM tcc_transactions WHERE gtid = ANY($1)',
            [[...new Set(asked.map((a) => a.gtid))]],
          );
          const byGtid = new Map(rows.map((row) => [row.gtid, row]));
          for (const { gtid, resolve, reject } of asked) {
            const tx = byGtid.get(gtid);
            if (!tx) reject(new Error(`unknown global transaction ${gtid}`));
            else resolve(outcomeOf(tx));
          }
        } catch (error) {
          for (const { reject } of asked) reject(error);
        }
      }
    } finally {
      this.readingOutcomes = false;
    }
  }

  async outcome(gtid: string): Promise<Outcome> {
    const [tx]: TransactionRow[] = await this.options.dataSource.query(
      'SELECT gtid, state, failure FROM tcc_transactions WHERE gtid = $1',
      [gtid],
    );
    if (!tx) throw new Error(`unknown global transaction ${gtid}`);
    return outcomeOf(tx);
  }

  /**
   * Deletes transactions finished more than `olderThanMs` ago, with their branches and log, one small
   * batch per statement so the hot path never waits long. Returns how many were deleted.
   */
  async purgeFinished(olderThanMs: number, batchSize = 500): Promise<number> {
    let total = 0;
    for (;;) {
      const [{ n }] = await this.options.dataSource.query(
        `WITH doomed AS (
           SELECT gtid FROM tcc_transactions WHERE finished_at < $1
            ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED),
         logs AS (DELETE FROM tcc_log WHERE gtid IN (SELECT gtid FROM doomed)),
         gone AS (DELETE FROM tcc_transactions WHERE gtid IN (SELECT gtid FROM doomed) RETURNING 1)
         SELECT count(*)::int AS n FROM gone`,
        [new Date(this.clock() - olderThanMs), batchSize],
      );
      total += n;
      if (n < batchSize) return total;
    }
  }

  /** Operator: open (or all) transactions by state and age, oldest first. */
  async list(
    filter: { state?: TransactionState; olderThanMs?: number; limit?: number; gtid?: string } = {},
  ) {
    const rows: Array<
      TransactionRow & { created_at: Date; updated_at: Date; finished_at: Date | null }
    > = await this.options.dataSource.query(
      `SELECT gtid, kind, state, correlation_id, deadline, failure, created_at, updated_at, finished_at
           FROM tcc_transactions
          WHERE CASE WHEN $4::text IS NOT NULL THEN gtid = $4
                     ELSE ($1::text IS NULL AND finished_at IS NULL OR state = $1) AND created_at <= $2 END
          ORDER BY created_at LIMIT $3`,
      [
        filter.state ?? null,
        new Date(this.clock() - (filter.olderThanMs ?? 0)),
        filter.limit ?? 100,
        filter.gtid ?? null,
      ],
    );
    const branches: Array<BranchRow & { next_attempt_at: Date; last_error: string | null }> =
      rows.length
        ? await this.options.dataSource.query(
            'SELECT * FROM tcc_branches WHERE gtid = ANY($1) ORDER BY gtid, branch_id',
            [rows.map((r) => r.gtid)],
          )
        : [];
    return rows.map((r) => ({
      gtid: r.gtid,
      kind: r.kind,
      state: r.state,
      correlationId: r.correlation_id,
      ageSeconds: Math.max(0, Math.round((this.clock() - new Date(r.created_at).getTime()) / 1000)),
      deadline: new Date(r.deadline).toISOString(),
      failure: r.failure,
      finishedAt: r.finished_at ? new Date(r.finished_at).toISOString() : null,
      branches: branches
        .filter((b) => b.gtid === r.gtid)
        .map((b) => ({
          branchId: b.branch_id,
          participant: b.participant,
          resource: b.resource,
          tryStatus: b.try_status,
          settled: b.settled,
          attempts: b.attempts,
          nextAttemptAt: new Date(b.next_attempt_at).toISOString(),
        })),
    }));
  }

  /** Operator: one transaction with its branches and every message and state change, in order. */
  async inspect(gtid: string) {
    const [summary] = await this.list({ gtid });
    if (!summary) throw new UnknownTransactionError(gtid);
    const log: Array<{ branch_id: string | null; kind: string; detail: object; at: Date }> =
      await this.options.dataSource.query(
        'SELECT branch_id, kind, detail, at FROM tcc_log WHERE gtid = $1 ORDER BY id',
        [gtid],
      );
    return {
      ...summary,
      history: log.map((l) => ({
        at: new Date(l.at).toISOString(),
        branchId: l.branch_id,
        kind: l.kind,
        detail: l.detail,
      })),
    };
  }

  /** Operator: send every unanswered command of the transaction now, whatever its backoff. */
  async retryNow(gtid: string, actor: string, note?: string): Promise<Outcome> {
    await this.options.dataSource.transaction(async (manager) => {
      const tx = await this.lock(manager, gtid);
      if (!tx) throw new UnknownTransactionError(gtid);
      await manager.query(
        'UPDATE tcc_branches SET next_attempt_at = $2 WHERE gtid = $1 AND NOT settled',
        [gtid, new Date(this.clock())],
      );
      await this.operatorAction(manager, tx, actor, 'retry', note);
    });
    await this.tick();
    return this.outcome(gtid);
  }

  /** Operator: give up on a transaction stuck in Try and cancel every branch. */
  async forceCancel(gtid: string, actor: string, note?: string): Promise<Outcome> {
    await this.options.dataSource.transaction(async (manager) => {
      const tx = await this.lock(manager, gtid);
      if (!tx) throw new UnknownTransactionError(gtid);
      if (tx.state !== 'TRYING')
        throw new InvalidOperatorActionError(gtid, tx.state, 'force-cancel');
      await this.transition(manager, tx, 'CANCELLING', {
        branchId: '',
        participant: '',
        code: 'CANCELLED_BY_OPERATOR',
        message: note ?? 'cancelled by an operator',
      });
      await this.operatorAction(manager, tx, actor, 'force-cancel', note);
    });
    return this.outcome(gtid);
  }

  private async operatorAction(
    manager: EntityManager,
    tx: TransactionRow,
    actor: string,
    action: string,
    note?: string,
  ) {
    const envelope = createEnvelope(
      OperatorActionRecorded,
      { actor, action, target: { kind: 'tcc', id: tx.gtid }, ...(note ? { note } : {}) },
      {
        producer: this.options.service,
        aggregateId: tx.gtid,
        aggregateSequence: 1,
        correlationId: tx.correlation_id,
      },
    );
    await enqueueOutbox(manager, [routeMessage(this.catalog, envelope, this.options.topicPrefix)]);
    await log(manager, tx.gtid, null, 'OPERATOR', { actor, action, note });
  }

  private async transition(
    manager: EntityManager,
    tx: TransactionRow,
    state: 'CONFIRMING' | 'CANCELLING',
    failure: Failure | null,
    causationId?: string,
  ): Promise<void> {
    const now = new Date(this.clock());
    await manager.query(
      'UPDATE tcc_transactions SET state = $2, failure = $3, updated_at = $4 WHERE gtid = $1',
      [tx.gtid, state, failure ? JSON.stringify(failure) : null, now],
    );
    // Every branch gets the second phase, whatever its Try did (a lost Try reply still reserved).
    // (TypeORM answers an UPDATE with [rows, count]; a CTE makes it a plain row set.)
    const branches: BranchRow[] = await manager.query(
      `WITH reset AS (
         UPDATE tcc_branches SET attempts = 1, next_attempt_at = $2, settled = false WHERE gtid = $1 RETURNING *)
       SELECT * FROM reset`,
      [tx.gtid, new Date(this.clock() + this.retryInitialMs)],
    );
    await this.send(
      manager,
      state === 'CONFIRMING' ? 'CONFIRM' : 'CANCEL',
      tx,
      branches,
      causationId,
    );
    await log(manager, tx.gtid, null, 'STATE', { state, failure });
    await this.options.onDecided?.(
      { gtid: tx.gtid, kind: tx.kind, correlationId: tx.correlation_id, state, failure },
      manager,
    );
  }

  private async finish(
    manager: EntityManager,
    tx: TransactionRow,
    state: 'CONFIRMED' | 'CANCELLED',
  ) {
    const now = new Date(this.clock());
    const [{ created_at }] = await manager.query(
      `WITH done AS (
         UPDATE tcc_transactions SET state = $2, updated_at = $3, finished_at = $3 WHERE gtid = $1
         RETURNING created_at)
       SELECT created_at FROM done`,
      [tx.gtid, state, now],
    );
    await log(manager, tx.gtid, null, 'STATE', { state });
    await manager.query('SELECT pg_notify($1, $2)', [FINISHED_CHANNEL, `${state}:${tx.gtid}`]);
    afterCommit(manager, () => {
      this.metrics.finished.inc({ kind: tx.kind, state });
      this.metrics.duration.observe(
        { kind: tx.kind, state },
        (now.getTime() - new Date(created_at).getTime()) / 1000,
      );
    });
  }

  private async send(
    manager: EntityManager,
    phase: 'TRY' | 'CONFIRM' | 'CANCEL',
    tx: Pick<TransactionRow, 'gtid' | 'correlation_id' | 'deadline'>,
    branches: Array<Pick<BranchRow, 'branch_id' | 'participant' | 'resource' | 'payload'>>,
    causationId?: string,
  ): Promise<void> {
    await this.enqueueCommands(manager, this.commands(phase, tx, branches, causationId));
  }

  private async enqueueCommands(manager: EntityManager, commands: OutboxMessage[]): Promise<void> {
    await enqueueOutbox(
      manager,
      this.options.batchCommands
        ? packCommands(commands, {
            producer: this.options.service,
            catalog: this.catalog,
            topicPrefix: this.options.topicPrefix,
          })
        : commands,
    );
  }

  private commands(
    phase: 'TRY' | 'CONFIRM' | 'CANCEL',
    tx: Pick<TransactionRow, 'gtid' | 'correlation_id' | 'deadline'>,
    branches: Array<Pick<BranchRow, 'branch_id' | 'participant' | 'resource' | 'payload'>>,
    causationId?: string,
  ): OutboxMessage[] {
    return branches.map((b) => {
      const common = {
        globalTransactionId: tx.gtid,
        branchId: b.branch_id,
        participant: b.participant,
        resource: b.resource,
      };
      const ctx = {
        producer: this.options.service,
        aggregateId: tx.gtid,
        aggregateSequence: 1,
        correlationId: tx.correlation_id,
        causationId: causationId ?? null,
      };
      const envelope =
        phase === 'TRY'
          ? createEnvelope(
              TccTry,
              { ...common, deadline: new Date(tx.deadline).toISOString(), payload: b.payload },
              ctx,
            )
          : phase === 'CONFIRM'
            ? createEnvelope(TccConfirm, common, ctx)
            : createEnvelope(TccCancel, common, ctx);
      return routeMessage(this.catalog, envelope, this.options.topicPrefix);
    });
  }

  private async lock(manager: EntityManager, gtid: string): Promise<TransactionRow | undefined> {
    const [tx]: TransactionRow[] = await manager.query(
      'SELECT * FROM tcc_transactions WHERE gtid = $1 FOR UPDATE',
      [gtid],
    );
    return tx;
  }

  private backoff(attempt: number): number {
    const base = Math.min(this.retryMaxMs, this.retryInitialMs * 2 ** Math.min(attempt - 1, 16));
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  private wake(gtid: string, state: TransactionState): void {
    for (const wake of this.waiters.get(gtid) ?? []) wake(state);
  }
}

export class UnknownTransactionError extends Error {
  override readonly name = 'UnknownTransactionError';
  constructor(readonly gtid: string) {
    super(`unknown global transaction ${gtid}`);
  }
}

export class InvalidOperatorActionError extends Error {
  override readonly name = 'InvalidOperatorActionError';
  constructor(
    readonly gtid: string,
    readonly state: string,
    readonly action: string,
  ) {
    super(`cannot ${action} ${gtid}: it is ${state}`);
  }
}

function outcomeOf(tx: Pick<TransactionRow, 'gtid' | 'state' | 'failure'>): Outcome {
  const { gtid } = tx;
  if (tx.state === 'CONFIRMED') return { state: 'CONFIRMED', gtid };
  if (tx.state === 'CANCELLED') return { state: 'CANCELLED', gtid, failure: tx.failure };
  return { state: 'PENDING', gtid, current: tx.state };
}

// The trace each transaction began in (from its BEGIN entry), for work done outside any request.
async function traceOrigins(
  manager: EntityManager,
  gtids: string[],
): Promise<Map<string, Context>> {
  const origins = new Map<string, Context>();
  // Without a propagator (tracing off) there is nothing to continue.
  if (gtids.length === 0 || propagation.fields().length === 0) return origins;
  const rows: Array<{ gtid: string; traceparent: string | null; tracestate: string | null }> =
    await manager.query(
      `SELECT gtid, detail->>'traceparent' AS traceparent, detail->>'tracestate' AS tracestate
         FROM tcc_log WHERE gtid = ANY($1) AND kind = 'BEGIN'`,
      [[...new Set(gtids)]],
    );
  for (const row of rows) {
    if (!row.traceparent) continue;
    origins.set(
      row.gtid,
      extractTraceContext(
        {},
        { traceparent: row.traceparent, tracestate: row.tracestate ?? undefined },
      ),
    );
  }
  return origins;
}

async function log(
  manager: EntityManager,
  gtid: string,
  branchId: string | null,
  kind: string,
  detail: object,
) {
  await manager.query(
    'INSERT INTO tcc_log (gtid, branch_id, kind, detail) VALUES ($1, $2, $3, $4)',
    [gtid, branchId, kind, JSON.stringify(detail)],
  );
}

// Open transactions by age, as the operators' list buckets them; the oldest shows a stuck one.
const AGE_BUCKETS = [
  { label: 'under_5s', upTo: 5 },
  { label: '5s_to_1m', upTo: 60 },
  { label: '1m_to_5m', upTo: 300 },
  { label: 'over_5m', upTo: Infinity },
] as const;
const OPEN_STATES = ['TRYING', 'CONFIRMING', 'CANCELLING'] as const;

interface OpenRow {
  kind: string;
  state: string;
  n: number;
  oldest: number;
  under_5s: number;
  '5s_to_1m': number;
  '1m_to_5m': number;
  over_5m: number;
}

// Kinds of transaction this process began, so an idle coordinator still reports zeros for them.
const kindsByRegistry = new WeakMap<Registry, Set<string>>();
function beganKinds(registry: Registry): Set<string> {
  let kinds = kindsByRegistry.get(registry);
  if (!kinds) kindsByRegistry.set(registry, (kinds = new Set()));
  return kinds;
}

function coordinatorMetrics(registry: Registry, dataSource: DataSource) {
  const existing = registry.getSingleMetric('tcc_transactions_started_total');
  if (existing) {
    return {
      started: existing as Counter<'kind'>,
      finished: registry.getSingleMetric('tcc_transactions_finished_total') as Counter<
        'kind' | 'state'
      >,
      resent: registry.getSingleMetric('tcc_commands_resent_total') as Counter,
      duration: registry.getSingleMetric('tcc_transaction_duration_seconds') as Histogram<
        'kind' | 'state'
      >,
    };
  }
  // One cheap read per scrape for all three (the open ones are few and have their own index).
  let reading: Promise<OpenRow[]> | undefined;
  const openRows = () =>
    (reading ??= (
      dataSource.query(
        `SELECT kind, state, count(*)::int AS n, max(age)::float8 AS oldest,
                ${AGE_BUCKETS.map(
                  (b, i) =>
                    `count(*) FILTER (WHERE age >= ${i === 0 ? 0 : AGE_BUCKETS[i - 1].upTo}${
                      Number.isFinite(b.upTo) ? ` AND age < ${b.upTo}` : ''
                    })::int AS "${b.label}"`,
                ).join(', ')}
           FROM (SELECT kind, state, extract(epoch FROM clock_timestamp() - created_at) AS age
                   FROM tcc_transactions WHERE finished_at IS NULL) open
          GROUP BY kind, state`,
      ) as Promise<OpenRow[]>
    ).finally(() => setImmediate(() => (reading = undefined))));
  const kinds = beganKinds(registry);
  const started = new Counter({
    name: 'tcc_transactions_started_total',
    help: 'Global transactions begun',
    labelNames: ['kind'],
    registers: [registry],
  });
  new Gauge({
    name: 'tcc_transactions_open',
    help: 'Global transactions not finished yet, by state',
    labelNames: ['kind', 'state'],
    registers: [registry],
    async collect() {
      const rows = await openRows();
      this.reset();
      for (const kind of kinds) for (const state of OPEN_STATES) this.set({ kind, state }, 0);
      for (const row of rows) this.set({ kind: row.kind, state: row.state }, row.n);
    },
  });
  new Gauge({
    name: 'tcc_transactions_open_by_age',
    help: 'Global transactions not finished yet, by how long ago they began',
    labelNames: ['kind', 'age'],
    registers: [registry],
    async collect() {
      const rows = await openRows();
      this.reset();
      const all = new Set([...kinds, ...rows.map((row) => row.kind)]);
      for (const kind of all) {
        for (const bucket of AGE_BUCKETS) {
          const n = rows
            .filter((row) => row.kind === kind)
            .reduce((sum, row) => sum + row[bucket.label], 0);
          this.set({ kind, age: bucket.label }, n);
        }
      }
    },
  });
  new Gauge({
    name: 'tcc_transaction_oldest_open_seconds',
    help: 'Age of the oldest global transaction not finished yet, by state (0 when none is open)',
    labelNames: ['kind', 'state'],
    registers: [registry],
    async collect() {
      const rows = await openRows();
      this.reset();
      for (const kind of kinds) for (const state of OPEN_STATES) this.set({ kind, state }, 0);
      for (const row of rows) this.set({ kind: row.kind, state: row.state }, row.oldest);
    },
  });
  return {
    started,
    finished: new Counter({
      name: 'tcc_transactions_finished_total',
      help: 'Global transactions finished, by final state',
      labelNames: ['kind', 'state'],
      registers: [registry],
    }),
    resent: new Counter({
      name: 'tcc_commands_resent_total',
      help: 'TCC commands sent again because their answer was overdue',
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'tcc_transaction_duration_seconds',
      help: 'Time from begin to CONFIRMED or CANCELLED',
      labelNames: ['kind', 'state'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
  };
}

/**
 * Whether a reply changes anything: a Try answer while the transaction still tries and the branch
 * waits for it, or a successful Confirm/Cancel of a branch not settled yet in the matching phase.
 * Every other reply (late, duplicate, of another phase) is only logged. Both reply paths use it.
 */
/** The failure a transaction is cancelled with when a branch refuses its Try. */
function refusal(
  branchId: string,
  participant: string,
  reply: { reason?: { code: string; message: string } },
): Failure {
  return {
    branchId,
    participant,
    code: reply.reason?.code ?? 'FAILED',
    message: reply.reason?.message ?? 'the branch refused its Try',
  };
}

function replyApplies(
  reply: { phase: string; outcome: string },
  state: string,
  branch: { try_status: string; settled: boolean },
): boolean {
  if (reply.phase === 'TRY') return state === 'TRYING' && branch.try_status === 'PENDING';
  const settlingPhase =
    reply.phase === 'CONFIRM' ? 'CONFIRMING' : reply.phase === 'CANCEL' ? 'CANCELLING' : undefined;
  return state === settlingPhase && !branch.settled && reply.outcome === 'SUCCEEDED';
}
