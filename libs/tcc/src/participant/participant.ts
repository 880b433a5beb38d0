// The participant side of TCC: each Try / Confirm / Cancel runs in one local transaction together
// with its barrier row and its reply, which makes commands idempotent, turns a Cancel without a Try
// into a recorded no-op, and refuses a Try that arrives after its Cancel.
import {
  Envelope,
  MessageCatalog,
  ServiceName,
  SYSTEM_CATALOG,
  TccCancel,
  TccCommandBatch,
  TccConfirm,
  TccReply,
  TccTry,
  MessageOf,
} from '@finance/contracts';
import { createEnvelope, enqueueOutbox, OutboxMessage, routeMessage } from '@finance/messaging';
import { context as traceContext, type Context } from '@opentelemetry/api';
import type { DataSource, EntityManager } from 'typeorm';
import { elementTrace, packReplies, unpackCommands } from '../batch';
import { BranchRejected } from '../errors';

export interface BranchContext {
  readonly manager: EntityManager;
  readonly gtid: string;
  readonly branchId: string;
  readonly resource: string;
}

export type Payload = Record<string, unknown>;

/** What a participant does for one kind of reservation. `confirm` and `cancel` get the Try's payload. */
export interface BranchHandlers {
  try(ctx: BranchContext, payload: Payload): Promise<void>;
  confirm(ctx: BranchContext, payload: Payload): Promise<void>;
  cancel(ctx: BranchContext, payload: Payload): Promise<void>;
  /**
   * Optional: the key of the row a branch with this payload locks (e.g. its account). `handleRun`
   * then applies a run's branches sorted by it, so concurrent runs lock those rows in one order and
   * cannot deadlock on them. Only for handlers that lock that one row.
   */
  lockKey?(payload: Payload): string;
  /**
   * Optional: applies a consumer run's branches on this resource at once (for example one UPDATE
   * for every account the run touches), instead of one `try` / `confirm` / `cancel` call each.
   * `handleRun` passes them in the order it would have called those one by one (sorted by
   * `lockKey` when there is one). The outcome must be what those calls in that order would have
   * left; if any one of them would be refused, throw BranchRejected: the run is then redone one
   * command at a time, which records the refusal for that branch alone.
   */
  applyMany?(manager: EntityManager, effects: ReadonlyArray<BranchEffect>): Promise<void>;
}

export type BranchPhase = 'TRY' | 'CONFIRM' | 'CANCEL';

/** One branch phase for `applyMany`: the context and payload its own handler would get. */
export interface BranchEffect {
  readonly phase: BranchPhase;
  readonly ctx: BranchContext;
  readonly payload: Payload;
}

export interface TccParticipantOptions {
  service: ServiceName;
  resources: Record<string, BranchHandlers>;
  topicPrefix?: string;
  catalog?: MessageCatalog;
}

type Command =
  MessageOf<typeof TccTry> | MessageOf<typeof TccConfirm> | MessageOf<typeof TccCancel>;
type Phase = BranchPhase;
type Reply = MessageOf<typeof TccReply>['data'];

export type ParticipantOutcome =
  | 'not-mine'
  /** A TccCommandBatch: each of its commands had one of the other outcomes. */
  | 'batch'
  | 'executed'
  | 'rejected'
  | 'duplicate'
  | 'null-compensation'
  | 'refused-after-cancel'
  | 'nothing-to-cancel';

interface BarrierRow {
  outcome: 'SUCCEEDED' | 'FAILED' | 'BLOCKED';
  reason: { code: string; message: string } | null;
  payload: Payload | null;
}

/** A command and the trace context it was handled in (see `handleRun`). */
export interface CommandEntry {
  message: Envelope;
  trace?: Context;
}

/** `handleRun` found the barrier changed by another transaction since it read it. */
export class BarrierRaceError extends Error {
  override readonly name = 'BarrierRaceError';
}

const PHASE_OF: Record<string, Phase> = {
  TccTry: 'TRY',
  TccConfirm: 'CONFIRM',
  TccCancel: 'CANCEL',
};

export class TccParticipant {
  private readonly catalog: MessageCatalog;

  constructor(private readonly options: TccParticipantOptions) {
    this.catalog = options.catalog ?? SYSTEM_CATALOG;
  }

  /** Whether this participant runs the command's branch (or the batch's commands). */
  owns(message: Envelope): boolean {
    return (
      (message.type in PHASE_OF || message.type === TccCommandBatch.type) &&
      (message.data as { participant?: string }).participant === this.options.service
    );
  }

  /**
   * Runs a command inside `manager`'s transaction (the inbox consumer's). Commands for other
   * participants are ignored. Technical errors propagate so the consumer retries the whole message.
   */
  async handle(message: Envelope, manager: EntityManager): Promise<ParticipantOutcome> {
    if (!this.owns(message)) return 'not-mine';
    if (!manager.queryRunner?.isTransactionActive)
      throw new Error('a TCC command must run in a transaction');
    if (message.type === TccCommandBatch.type) {
      // One by one, each under its own savepoint and with its own reply, as if sent alone.
      const active = traceContext.active();
      for (const command of unpackCommands(message, this.catalog)) {
        await traceContext.with(elementTrace(command, active), () => this.handle(command, manager));
      }
      return 'batch';
    }
    const command = message as Command;
    const phase = PHASE_OF[command.type];
    const handlers = this.options.resources[command.data.resource];
    if (!handlers) throw new Error(`no handlers for resource ${command.data.resource}`);
    switch (phase) {
      case 'TRY':
        return this.runTry(command as MessageOf<typeof TccTry>, handlers, manager);
      case 'CONFIRM':
        return this.runConfirm(command, handlers, manager);
      case 'CANCEL':
        return this.runCancel(command, handlers, manager);
      default: {
        const never: never = phase;
        throw new Error(`unknown phase ${String(never)}`);
      }
    }
  }

  /**
   * Runs a run of commands inside `manager`'s transaction with the barrier read and written once for
   * the whole run and one outbox insert for every reply; the business handlers still run once per
   * branch, in order. The outcomes are those `handle` gives each command in turn. A handler's
   * BranchRejected is not caught here (there is no savepoint per branch): it propagates, and the
   * caller redoes the run one command at a time with `handle`, which records and reports the refusal.
   */
  async handleRun(
    entries: ReadonlyArray<CommandEntry>,
    manager: EntityManager,
  ): Promise<ParticipantOutcome[]> {
    // A batch's commands join the run in its place; their replies go back as one batch.
    const mine: CommandEntry[] = [];
    const batched = new Set<CommandEntry>();
    for (const entry of entries) {
      if (!this.owns(entry.message)) continue;
      if (entry.message.type !== TccCommandBatch.type) {
        mine.push(entry);
        continue;
      }
      const active = entry.trace ?? traceContext.active();
      for (const command of unpackCommands(entry.message, this.catalog)) {
        const element = { message: command, trace: elementTrace(command, active) };
        mine.push(element);
        batched.add(element);
      }
    }
    if (mine.length === 0) return entries.map(() => 'not-mine');
    if (!manager.queryRunner?.isTransactionActive)
      throw new Error('a TCC command must run in a transaction');
    const keyOf = (gtid: string, branchId: string, phase: Phase) =>
      `${gtid}\u0000${branchId}\u0000${phase}`;
    const pairs = new Map<string, { gtid: string; branchId: string }>();
    for (const { message } of mine) {
      const { globalTransactionId: gtid, branchId, resource } = (message as Command).data;
      if (!this.options.resources[resource])
        throw new Error(`no handlers for resource ${resource}`);
      pairs.set(`${gtid}\u0000${branchId}`, { gtid, branchId });
    }
    const existing: Array<BarrierRow & { gtid: string; branch_id: string; phase: Phase }> =
      await manager.query(
        `SELECT b.gtid, b.branch_id, b.phase, b.outcome, b.reason, b.payload
           FROM tcc_barrier b JOIN unnest($1::text[], $2::text[]) AS k(gtid, branch_id)
             ON b.gtid = k.gtid AND b.branch_id = k.branch_id`,
        [[...pairs.values()].map((p) => p.gtid), [...pairs.values()].map((p) => p.branchId)],
      );
    const rows = new Map(
      existing.map((r) => [keyOf(r.gtid, r.branch_id, r.phase), r as BarrierRow]),
    );
    const claims: Array<{ gtid: string; branchId: string; phase: Phase; row: BarrierRow }> = [];
    const claim = (gtid: string, branchId: string, phase: Phase, row: BarrierRow) => {
      const key = keyOf(gtid, branchId, phase);
      if (rows.has(key)) return false;
      rows.set(key, row);
      claims.push({ gtid, branchId, phase, row });
      return true;
    };
    const effects: Effect[] = [];
    const replies: OutboxMessage[] = [];
    const batchReplies: OutboxMessage[] = [];
    const outcomes = new Map<CommandEntry, ParticipantOutcome>();
    for (const entry of mine) {
      const command = entry.message as Command;
      const { globalTransactionId: gtid, branchId, resource } = command.data;
      const handlers = this.options.resources[resource];
      const phase = PHASE_OF[command.type];
      const reply = (outcome: 'SUCCEEDED' | 'FAILED', reason?: { code: string; message: string }) =>
        (batched.has(entry) ? batchReplies : replies).push(
          traceContext.with(entry.trace ?? traceContext.active(), () =>
            this.replyMessage(command, phase, outcome, reason),
          ),
        );
      const ctx = context(manager, command);
      const effect = (payload: Payload) =>
        effects.push({ resource, handlers, key: lockKey(handlers, payload), phase, ctx, payload });
      let outcome: ParticipantOutcome;
      if (phase === 'TRY') {
        const { payload } = command.data as MessageOf<typeof TccTry>['data'];
        if (claim(gtid, branchId, 'TRY', { outcome: 'SUCCEEDED', reason: null, payload })) {
          effect(payload);
          reply('SUCCEEDED');
          outcome = 'executed';
        } else {
          const row = rows.get(keyOf(gtid, branchId, 'TRY'))!;
          if (row.outcome === 'BLOCKED') {
            reply('FAILED', {
              code: 'TRY_AFTER_CANCEL',
              message: 'the branch was cancelled before this Try arrived',
            });
            outcome = 'refused-after-cancel';
          } else {
            reply(row.outcome, row.reason ?? undefined);
            outcome = 'duplicate';
          }
        }
      } else if (phase === 'CONFIRM') {
        if (
          !claim(gtid, branchId, 'CONFIRM', { outcome: 'SUCCEEDED', reason: null, payload: null })
        ) {
          const row = rows.get(keyOf(gtid, branchId, 'CONFIRM'))!;
          reply(row.outcome === 'SUCCEEDED' ? 'SUCCEEDED' : 'FAILED');
          outcome = 'duplicate';
        } else {
          const tried = rows.get(keyOf(gtid, branchId, 'TRY'));
          if (tried?.outcome !== 'SUCCEEDED') {
            // The coordinator only confirms after every Try succeeded; anything else is a protocol error.
            throw new Error(`Confirm of ${gtid}/${branchId} without a successful Try`);
          }
          const payload = tried.payload ?? {};
          effect(payload);
          reply('SUCCEEDED');
          outcome = 'executed';
        }
      } else {
        // Taking the Try slot first blocks any Try still in flight from running later.
        const none = { reason: null, payload: null };
        const blockedTry = claim(gtid, branchId, 'TRY', { outcome: 'BLOCKED', ...none });
        const firstCancel = claim(gtid, branchId, 'CANCEL', { outcome: 'SUCCEEDED', ...none });
        const tried = rows.get(keyOf(gtid, branchId, 'TRY'))!;
        if (!firstCancel) outcome = 'duplicate';
        else if (blockedTry) outcome = 'null-compensation';
        // A rejected Try left nothing behind to undo.
        else if (tried.outcome !== 'SUCCEEDED') outcome = 'nothing-to-cancel';
        else {
          const payload = tried.payload ?? {};
          effect(payload);
          outcome = 'executed';
        }
        reply('SUCCEEDED');
      }
      outcomes.set(entry, outcome);
    }
    if (claims.length > 0) {
      // Sorted, so runs that touch the same barrier rows take their locks in one order.
      claims.sort((a, b) =>
        keyOf(a.gtid, a.branchId, a.phase) < keyOf(b.gtid, b.branchId, b.phase) ? -1 : 1,
      );
      const inserted: unknown[] = await manager.query(
        `INSERT INTO tcc_barrier (gtid, branch_id, phase, outcome, payload)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[])
         ON CONFLICT DO NOTHING RETURNING 1`,
        [
          claims.map((c) => c.gtid),
          claims.map((c) => c.branchId),
          claims.map((c) => c.phase),
          claims.map((c) => c.row.outcome),
          claims.map((c) => (c.row.payload === null ? null : JSON.stringify(c.row.payload))),
        ],
      );
      if (inserted.length !== claims.length) {
        throw new BarrierRaceError(
          'a barrier row was written by another transaction during the run',
        );
      }
    }
    await applyEffects(manager, effects);
    await enqueueOutbox(manager, [
      ...replies,
      ...packReplies(batchReplies, this.options.service, {
        producer: this.options.service,
        catalog: this.catalog,
        topicPrefix: this.options.topicPrefix,
      }),
    ]);
    return entries.map((e) =>
      e.message.type === TccCommandBatch.type && this.owns(e.message)
        ? 'batch'
        : (outcomes.get(e) ?? 'not-mine'),
    );
  }

  private async runTry(
    command: MessageOf<typeof TccTry>,
    handlers: BranchHandlers,
    manager: EntityManager,
  ) {
    const { globalTransactionId: gtid, branchId, payload } = command.data;
    const claimed = await claim(manager, gtid, branchId, 'TRY', 'SUCCEEDED', payload);
    if (!claimed) {
      const row = await barrier(manager, gtid, branchId, 'TRY');
      if (row.outcome === 'BLOCKED') {
        await this.reply(manager, command, 'TRY', 'FAILED', {
          code: 'TRY_AFTER_CANCEL',
          message: 'the branch was cancelled before this Try arrived',
        });
        return 'refused-after-cancel';
      }
      await this.reply(manager, command, 'TRY', row.outcome, row.reason ?? undefined);
      return 'duplicate';
    }
    const rejection = await this.runHandler(manager, () =>
      handlers.try(context(manager, command), payload),
    );
    if (rejection) {
      await manager.query(
        `UPDATE tcc_barrier SET outcome = 'FAILED', reason = $4 WHERE gtid = $1 AND branch_id = $2 AND phase = $3`,
        [gtid, branchId, 'TRY', JSON.stringify(rejection)],
      );
      await this.reply(manager, command, 'TRY', 'FAILED', rejection);
      return 'rejected';
    }
    await this.reply(manager, command, 'TRY', 'SUCCEEDED');
    return 'executed';
  }

  private async runConfirm(command: Command, handlers: BranchHandlers, manager: EntityManager) {
    const { globalTransactionId: gtid, branchId } = command.data;
    if (!(await claim(manager, gtid, branchId, 'CONFIRM', 'SUCCEEDED', null))) {
      const row = await barrier(manager, gtid, branchId, 'CONFIRM');
      await this.reply(
        manager,
        command,
        'CONFIRM',
        row.outcome === 'SUCCEEDED' ? 'SUCCEEDED' : 'FAILED',
      );
      return 'duplicate';
    }
    const tried = await barrierOrUndefined(manager, gtid, branchId, 'TRY');
    if (tried?.outcome !== 'SUCCEEDED') {
      // The coordinator only confirms after every Try succeeded; anything else is a protocol error.
      throw new Error(`Confirm of ${gtid}/${branchId} without a successful Try`);
    }
    await handlers.confirm(context(manager, command), tried.payload ?? {});
    await this.reply(manager, command, 'CONFIRM', 'SUCCEEDED');
    return 'executed';
  }

  private async runCancel(command: Command, handlers: BranchHandlers, manager: EntityManager) {
    const { globalTransactionId: gtid, branchId } = command.data;
    // Taking the Try slot first blocks any Try still in flight from running later.
    const blockedTry = await claim(manager, gtid, branchId, 'TRY', 'BLOCKED', null);
    const firstCancel = await claim(manager, gtid, branchId, 'CANCEL', 'SUCCEEDED', null);
    if (!firstCancel) {
      await this.reply(manager, command, 'CANCEL', 'SUCCEEDED');
      return 'duplicate';
    }
    if (blockedTry) {
      await this.reply(manager, command, 'CANCEL', 'SUCCEEDED');
      return 'null-compensation';
    }
    const tried = await barrier(manager, gtid, branchId, 'TRY');
    if (tried.outcome !== 'SUCCEEDED') {
      // A rejected Try left nothing behind to undo.
      await this.reply(manager, command, 'CANCEL', 'SUCCEEDED');
      return 'nothing-to-cancel';
    }
    await handlers.cancel(context(manager, command), tried.payload ?? {});
    await this.reply(manager, command, 'CANCEL', 'SUCCEEDED');
    return 'executed';
  }

  /** Runs the business handler under a savepoint: a BranchRejected undoes only its own changes. */
  private async runHandler(manager: EntityManager, work: () => Promise<void>) {
    await manager.query('SAVEPOINT tcc_branch');
    try {
      await work();
      await manager.query('RELEASE SAVEPOINT tcc_branch');
      return undefined;
    } catch (error) {
      if (!(error instanceof BranchRejected)) throw error;
      await manager.query('ROLLBACK TO SAVEPOINT tcc_branch');
      return { code: error.code, message: error.message };
    }
  }

  private async reply(
    manager: EntityManager,
    command: Command,
    phase: Phase,
    outcome: 'SUCCEEDED' | 'FAILED' | 'BLOCKED',
    reason?: { code: string; message: string },
  ): Promise<void> {
    await enqueueOutbox(manager, [this.replyMessage(command, phase, outcome, reason)]);
  }

  private replyMessage(
    command: Command,
    phase: Phase,
    outcome: 'SUCCEEDED' | 'FAILED' | 'BLOCKED',
    reason?: { code: string; message: string },
  ): OutboxMessage {
    const { globalTransactionId, branchId, participant, resource } = command.data;
    const data: Reply = {
      globalTransactionId,
      branchId,
      participant,
      resource,
      phase,
      outcome: outcome === 'SUCCEEDED' ? 'SUCCEEDED' : 'FAILED',
      ...(reason ? { reason } : {}),
    };
    const envelope = createEnvelope(TccReply, data, {
      producer: this.options.service,
      aggregateId: globalTransactionId,
      aggregateSequence: 1,
      correlationId: command.metadata.correlationId,
      causationId: command.metadata.eventId,
    });
    return routeMessage(this.catalog, envelope, this.options.topicPrefix);
  }
}

/**
 * Deletes barrier rows older than `olderThanMs` in small batches. Keep them longer than a command can
 * still be delivered (the `tcc.commands` retention plus the coordinator's longest retry), or a very
 * late Try could run after its Cancel was forgotten.
 */
export async function purgeBarrier(
  dataSource: DataSource,
  olderThanMs: number,
  batchSize = 1_000,
): Promise<number> {
  let total = 0;
  for (;;) {
    const [{ n }] = await dataSource.query(
      `WITH doomed AS (SELECT ctid FROM tcc_barrier WHERE created_at < $1 LIMIT $2),
       gone AS (DELETE FROM tcc_barrier WHERE ctid IN (SELECT ctid FROM doomed) RETURNING 1)
       SELECT count(*)::int AS n FROM gone`,
      [new Date(Date.now() - olderThanMs), batchSize],
    );
    total += n;
    if (n < batchSize) return total;
  }
}

interface Effect extends BranchEffect {
  resource: string;
  handlers: BranchHandlers;
  key: string;
}

/**
 * Applies a run's effects resource by resource (in name order), each resource's sorted by lock key:
 * concurrent runs then take their row locks in one order. The sort is stable, so the phases of one
 * branch, which share a key, keep their order.
 */
async function applyEffects(manager: EntityManager, effects: Effect[]): Promise<void> {
  const byResource = new Map<string, Effect[]>();
  for (const effect of effects) {
    const list = byResource.get(effect.resource);
    if (list) list.push(effect);
    else byResource.set(effect.resource, [effect]);
  }
  for (const resource of [...byResource.keys()].sort()) {
    const list = byResource.get(resource)!;
    list.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const { handlers } = list[0];
    if (handlers.applyMany) {
      await handlers.applyMany(
        manager,
        list.map(({ phase, ctx, payload }) => ({ phase, ctx, payload })),
      );
      continue;
    }
    for (const { phase, ctx, payload } of list) {
      if (phase === 'TRY') await handlers.try(ctx, payload);
      else if (phase === 'CONFIRM') await handlers.confirm(ctx, payload);
      else await handlers.cancel(ctx, payload);
    }
  }
}

function lockKey(handlers: BranchHandlers, payload: Payload): string {
  return handlers.lockKey?.(payload) ?? '';
}

function context(manager: EntityManager, command: Command): BranchContext {
  return {
    manager,
    gtid: command.data.globalTransactionId,
    branchId: command.data.branchId,
    resource: command.data.resource,
  };
}

/** Inserts the barrier row; false when it was already there (the caller then reads the first outcome). */
async function claim(
  manager: EntityManager,
  gtid: string,
  branchId: string,
  phase: Phase,
  outcome: BarrierRow['outcome'],
  payload: Payload | null,
): Promise<boolean> {
  const rows: unknown[] = await manager.query(
    `INSERT INTO tcc_barrier (gtid, branch_id, phase, outcome, payload) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT DO NOTHING RETURNING 1`,
    [gtid, branchId, phase, outcome, payload === null ? null : JSON.stringify(payload)],
  );
  return rows.length === 1;
}

async function barrierOrUndefined(
  manager: EntityManager,
  gtid: string,
  branchId: string,
  phase: Phase,
): Promise<BarrierRow | undefined> {
  const rows: BarrierRow[] = await manager.query(
    'SELECT outcome, reason, payload FROM tcc_barrier WHERE gtid = $1 AND branch_id = $2 AND phase = $3',
    [gtid, branchId, phase],
  );
  return rows[0];
}

async function barrier(
  manager: EntityManager,
  gtid: string,
  branchId: string,
  phase: Phase,
): Promise<BarrierRow> {
  const row = await barrierOrUndefined(manager, gtid, branchId, phase);
  if (!row) throw new Error(`barrier row ${gtid}/${branchId}/${phase} vanished`);
  return row;
}
