// The participant side of a saga: runs this service's step handlers inside the consumer's
// transaction, behind a barrier that makes every command idempotent, and answers through the outbox
// in that same transaction. A step whose outcome is known only later (a trade settled at a later
// cycle) defers its answer and gives it with completeDeferred() in the transaction that learns it.
import {
  MessageCatalog,
  SagaStepCompleted,
  SagaStepRequested,
  SYSTEM_CATALOG,
  type Envelope,
  type MessageOf,
  type ServiceName,
} from '@finance/contracts';
import { createEnvelope, enqueueOutbox, routeMessage, type InboxHandler } from '@finance/messaging';
import type { Logger } from 'pino';
import type { DataSource, EntityManager } from 'typeorm';
import type { Reason } from '../core/state';
import type { JsonObject, SagaDefinition } from '../definition/define-saga';
import { purgeBarrier, type PurgeOptions } from './barrier-purge';
import {
  ALREADY_COMPENSATED,
  barrierDecision,
  COMPENSATED_WHILE_PENDING,
  type BarrierRecord,
  type BarrierRecords,
} from './barrier-rules';
import { StepFailedError } from './errors';

export type SagaCommandMessage = MessageOf<typeof SagaStepRequested>;
export type SagaReplyMessage = MessageOf<typeof SagaStepCompleted>;

export interface StepContext {
  /** The consumer's transaction: the handler's writes commit with the barrier row and the reply. */
  readonly manager: EntityManager;
  readonly sagaId: string;
  readonly saga: string;
  readonly step: string;
  readonly attempt: number;
  readonly payload: JsonObject;
  readonly correlationId: string;
  /** Event id of the command: the causation id of events the handler emits. */
  readonly commandId: string;
}

declare const deferredAnswer: unique symbol;

/** What `ctx.defer()` returns; `execute` returns it as it is. */
export interface DeferredAnswer {
  readonly [deferredAnswer]: true;
}

// The one value that means "deferred": compared by identity, so no result can pass for it.
const DEFERRED = Object.freeze({}) as DeferredAnswer;

export interface ExecutionContext extends StepContext {
  /**
   * `return ctx.defer()`: the step has taken effect but its answer comes later. The handler's writes
   * commit with the step recorded as PENDING, and no reply is sent until `completeDeferred`.
   */
  defer(): DeferredAnswer;
}

export interface CompensationContext extends StepContext {
  /** What the step's EXECUTE returned; undefined if its answer was still pending. */
  readonly executed: JsonObject | undefined;
  /**
   * true: the EXECUTE was deferred and never answered. Its effect is in place as `execute` left it,
   * and whatever the deferred answer would have added is not.
   */
  readonly pending: boolean;
}

export interface StepHandlers {
  /**
   * Throw StepFailedError to refuse (its writes are rolled back); any other error is retried.
   * Return `ctx.defer()` when the outcome is known only later.
   */
  execute(ctx: ExecutionContext): Promise<JsonObject | void | DeferredAnswer>;
  /**
   * Runs only if EXECUTE took effect (or is pending). Throw StepFailedError if it cannot undo it now.
   */
  compensate?(ctx: CompensationContext): Promise<void>;
}

/** The answer to a deferred step, given when its outcome is known. */
export type DeferredCompletion = {
  readonly sagaId: string;
  readonly step: string;
} & (
  | { readonly outcome: 'SUCCEEDED'; readonly result?: JsonObject }
  /** The caller undoes the step's effect in the same transaction: a FAILED step is not compensated. */
  | { readonly outcome: 'FAILED'; readonly reason: Reason }
);

export type ParticipantOutcome =
  | 'executed'
  | 'failed'
  | 'compensated'
  | 'compensation-failed'
  /** EXECUTE ran and deferred its answer: nothing sent. */
  | 'deferred'
  /** EXECUTE of a step whose answer is still deferred: nothing run, nothing sent. */
  | 'pending'
  /** Answered before: the first answer was sent again. */
  | 'replayed'
  /** EXECUTE after its COMPENSATE. */
  | 'refused'
  /** COMPENSATE of a step that never took effect. */
  | 'skipped'
  /** Another service's step (or a saga this service does not take part in). */
  | 'not-mine';

export interface SagaParticipantOptions {
  /** KAFKA_TOPIC_PREFIX of the deployment. */
  readonly topicPrefix?: string;
  readonly catalog?: MessageCatalog;
  readonly logger?: Logger;
}

interface Registration {
  readonly participant: ServiceName;
  readonly handlers: StepHandlers;
}

interface BarrierRow {
  action: 'EXECUTE' | 'COMPENSATE';
  outcome: 'SUCCEEDED' | 'FAILED' | 'PENDING';
  reason: Reason | null;
  result: JsonObject | null;
  attempt: number | null;
}

/** The command an answer replies to: from the message, or as stored with a pending step. */
interface CommandRef {
  readonly sagaId: string;
  readonly saga: string;
  readonly step: string;
  readonly participant: ServiceName;
  readonly action: 'EXECUTE' | 'COMPENSATE';
  readonly attempt: number;
  readonly aggregateSequence: number;
  readonly correlationId: string;
  readonly commandId: string;
}

interface PendingRow {
  saga: string;
  participant: ServiceName;
  attempt: number;
  aggregate_sequence: number;
  correlation_id: string;
  command_id: string;
}

// Two-key advisory locks live in their own key space, apart from the relay's and migrations' locks.
const BARRIER_LOCK_CLASS = 0x5a6a;
const SAVEPOINT = 'saga_participant_step';
const NO_COMPENSATION: Reason = {
  code: 'SAGA_STEP_NOT_COMPENSABLE',
  message: 'this participant has no compensation for the step',
};

export class SagaParticipant {
  private readonly registrations = new Map<string, Registration>();
  private readonly catalog: MessageCatalog;

  constructor(private readonly options: SagaParticipantOptions = {}) {
    this.catalog = options.catalog ?? SYSTEM_CATALOG;
  }

  /** Handles `step` of `definition`, whose participant must be this service. */
  register<S extends string>(definition: SagaDefinition<S>, step: S, handlers: StepHandlers): this {
    const declared = definition.steps.find((s) => s.name === step);
    if (!declared) throw new Error(`saga ${definition.name} has no step ${step}`);
    const key = registrationKey(definition.name, step);
    if (this.registrations.has(key)) throw new Error(`${key} is registered twice`);
    this.registrations.set(key, { participant: declared.participant, handlers });
    return this;
  }

  /** For an InboxConsumer on `saga.commands`; other message types are left alone. */
  inboxHandler(): InboxHandler {
    return async (message: Envelope, ctx) => {
      if (message.type !== SagaStepRequested.type) return;
      await this.handle(message as SagaCommandMessage, ctx.manager);
    };
  }

  /** Must run inside the consumer's transaction (the one that records the inbox row). */
  async handle(message: SagaCommandMessage, manager: EntityManager): Promise<ParticipantOutcome> {
    const command = message.data;
    const registration = this.registrations.get(registrationKey(command.saga, command.step));
    if (!registration || registration.participant !== command.participant) return 'not-mine';
    if (!manager.queryRunner?.isTransactionActive) {
      throw new Error('SagaParticipant.handle must run inside the consumer transaction');
    }
    await lockStep(manager, command.sagaId, command.step);
    const records = await this.readBarrier(manager, command.sagaId, command.step);
    const decision = barrierDecision(command.action, records, command.attempt);
    let outcome: ParticipantOutcome;
    let answer: BarrierRecord | undefined;
    switch (decision.kind) {
      case 'replay':
        outcome = 'replayed';
        answer = decision.record;
        break;
      case 'refuse':
        outcome = 'refused';
        answer = { outcome: 'FAILED', reason: ALREADY_COMPENSATED };
        await this.record(manager, command, answer);
        break;
      case 'skip':
        outcome = 'skipped';
        answer = { outcome: 'SUCCEEDED', result: { compensated: false } };
        await this.record(manager, command, answer);
        break;
      case 'hold':
        // The answer goes out when it is known, for the attempt the orchestrator waits for then.
        outcome = 'pending';
        if (decision.newerAttempt) await this.storeNewerAttempt(manager, message);
        break;
      case 'compensate-pending':
      case 'run': {
        const pending = decision.kind === 'compensate-pending';
        [outcome, answer] = await this.run(
          message,
          manager,
          registration.handlers,
          records,
          pending,
        );
        break;
      }
      default: {
        const _never: never = decision;
        throw new Error(`unknown barrier decision ${JSON.stringify(_never)}`);
      }
    }
    if (answer) await this.reply(manager, commandOf(message), answer);
    this.options.logger?.debug(
      { sagaId: command.sagaId, step: command.step, action: command.action, outcome },
      'saga step command handled',
    );
    return outcome;
  }

  /**
   * Gives the answer of a step whose EXECUTE deferred it, inside the caller's transaction: the
   * PENDING barrier row takes the final outcome and the reply for the newest attempt seen goes into
   * the outbox, both committing with the caller's writes. Returns false, and does nothing, if the
   * step is not pending (answered already, compensated while pending, or unknown here): the caller
   * must then not apply the outcome. Call it before touching rows the step's compensation also
   * locks, since it waits for a command of the same step being handled.
   */
  async completeDeferred(manager: EntityManager, completion: DeferredCompletion): Promise<boolean> {
    if (!manager.queryRunner?.isTransactionActive) {
      throw new Error('SagaParticipant.completeDeferred must run inside a transaction');
    }
    const { sagaId, step } = completion;
    const answer: BarrierRecord =
      completion.outcome === 'SUCCEEDED'
        ? {
            outcome: 'SUCCEEDED',
            ...(completion.result ? { result: plainObject(completion.result) } : {}),
          }
        : {
            outcome: 'FAILED',
            reason: { code: completion.reason.code, message: completion.reason.message },
          };
    await lockStep(manager, sagaId, step);
    const [rows] = (await manager.query(
      `UPDATE saga_barrier
          SET outcome = $3, reason = $4::jsonb, result = $5::jsonb, answered_at = clock_timestamp()
        WHERE saga_id = $1 AND step = $2 AND action = 'EXECUTE' AND outcome = 'PENDING'
        RETURNING saga, participant, attempt, aggregate_sequence, correlation_id, command_id`,
      [sagaId, step, answer.outcome, json(answer.reason), json(answer.result)],
    )) as [PendingRow[], number];
    const pending = rows[0];
    if (!pending) {
      this.options.logger?.debug({ sagaId, step }, 'deferred saga step not pending: not answered');
      return false;
    }
    await this.reply(
      manager,
      {
        sagaId,
        saga: pending.saga,
        step,
        participant: pending.participant,
        action: 'EXECUTE',
        attempt: pending.attempt,
        aggregateSequence: pending.aggregate_sequence,
        correlationId: pending.correlation_id,
        commandId: pending.command_id,
      },
      answer,
    );
    this.options.logger?.debug(
      { sagaId, step, attempt: pending.attempt, outcome: answer.outcome },
      'deferred saga step answered',
    );
    return true;
  }

  /** Deletes barrier rows older than `olderThanMs` in batches; see purgeBarrier for the caveat. */
  purgeBarrier(dataSource: DataSource, options: PurgeOptions): Promise<number> {
    return purgeBarrier(dataSource, options);
  }

  private async run(
    message: SagaCommandMessage,
    manager: EntityManager,
    handlers: StepHandlers,
    records: BarrierRecords,
    /** A COMPENSATE of a step whose EXECUTE is still pending. */
    pending: boolean,
  ): Promise<[ParticipantOutcome, BarrierRecord | undefined]> {
    const command = message.data;
    const ctx: StepContext = {
      manager,
      sagaId: command.sagaId,
      saga: command.saga,
      step: command.step,
      attempt: command.attempt,
      payload: command.payload,
      correlationId: message.metadata.correlationId,
      commandId: message.metadata.eventId,
    };
    if (command.action === 'COMPENSATE' && !handlers.compensate) {
      // Not recorded: a deploy that adds the compensation lets an operator retry succeed.
      return ['compensation-failed', { outcome: 'FAILED', reason: NO_COMPENSATION }];
    }
    const execute = records.execute;
    await manager.query(`SAVEPOINT ${SAVEPOINT}`);
    let answer: BarrierRecord | undefined;
    try {
      if (command.action === 'EXECUTE') {
        const result = await handlers.execute({ ...ctx, defer: () => DEFERRED });
        if (result !== DEFERRED) {
          answer = { outcome: 'SUCCEEDED', ...(result ? { result: plainObject(result) } : {}) };
        }
      } else {
        await handlers.compensate!({
          ...ctx,
          executed: execute?.outcome === 'PENDING' ? undefined : execute?.result,
          pending,
        });
        answer = { outcome: 'SUCCEEDED' };
      }
      await manager.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
    } catch (error) {
      if (!(error instanceof StepFailedError)) throw error; // technical: the consumer retries
      await manager.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`);
      await manager.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
      const failed: BarrierRecord = {
        outcome: 'FAILED',
        reason: { code: error.code, message: error.message },
      };
      if (command.action === 'COMPENSATE') {
        // A failed undo is not final: the orchestrator retries it and each retry runs again.
        return ['compensation-failed', failed];
      }
      await this.record(manager, command, failed);
      return ['failed', failed];
    }
    if (!answer) {
      await this.recordPending(manager, message);
      return ['deferred', undefined];
    }
    await this.record(manager, command, answer);
    // A pending EXECUTE that was just undone can no longer be answered.
    if (pending) await this.closePending(manager, command.sagaId, command.step);
    return [command.action === 'EXECUTE' ? 'executed' : 'compensated', answer];
  }

  private async readBarrier(
    manager: EntityManager,
    sagaId: string,
    step: string,
  ): Promise<BarrierRecords> {
    const rows = (await manager.query(
      `SELECT action, outcome, reason, result, attempt
         FROM saga_barrier WHERE saga_id = $1 AND step = $2`,
      [sagaId, step],
    )) as BarrierRow[];
    const records: BarrierRecords = {};
    for (const row of rows) {
      if (row.outcome === 'PENDING') {
        records.execute = { outcome: 'PENDING', attempt: row.attempt ?? 0 };
        continue;
      }
      const record: BarrierRecord = {
        outcome: row.outcome,
        ...(row.reason ? { reason: row.reason } : {}),
        ...(row.result ? { result: row.result } : {}),
      };
      if (row.action === 'EXECUTE') records.execute = record;
      else records.compensate = record;
    }
    return records;
  }

  private async record(
    manager: EntityManager,
    command: SagaCommandMessage['data'],
    answer: BarrierRecord,
  ): Promise<void> {
    await manager.query(
      `INSERT INTO saga_barrier (saga_id, step, action, saga, outcome, reason, result)
       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb)`,
      [
        command.sagaId,
        command.step,
        command.action,
        command.saga,
        answer.outcome,
        json(answer.reason),
        json(answer.result),
      ],
    );
  }

  // The step took effect, its answer comes later: keep what that answer needs to go out.
  private async recordPending(manager: EntityManager, message: SagaCommandMessage): Promise<void> {
    const command = message.data;
    await manager.query(
      `INSERT INTO saga_barrier (saga_id, step, action, saga, outcome, participant, attempt,
                                 aggregate_sequence, correlation_id, command_id)
       VALUES ($1, $2, 'EXECUTE', $3, 'PENDING', $4, $5, $6, $7, $8)`,
      [
        command.sagaId,
        command.step,
        command.saga,
        command.participant,
        command.attempt,
        message.metadata.aggregateSequence,
        message.metadata.correlationId,
        message.metadata.eventId,
      ],
    );
  }

  // A retry of a pending step: its answer is to go out for this attempt, which the orchestrator
  // now waits for (the reply to an older one would be ignored as stale).
  private async storeNewerAttempt(
    manager: EntityManager,
    message: SagaCommandMessage,
  ): Promise<void> {
    const command = message.data;
    await manager.query(
      `UPDATE saga_barrier
          SET attempt = $3, aggregate_sequence = $4, correlation_id = $5, command_id = $6
        WHERE saga_id = $1 AND step = $2 AND action = 'EXECUTE' AND outcome = 'PENDING'
          AND attempt < $3`,
      [
        command.sagaId,
        command.step,
        command.attempt,
        message.metadata.aggregateSequence,
        message.metadata.correlationId,
        message.metadata.eventId,
      ],
    );
  }

  private async closePending(manager: EntityManager, sagaId: string, step: string): Promise<void> {
    await manager.query(
      `UPDATE saga_barrier
          SET outcome = 'FAILED', reason = $3::jsonb, answered_at = clock_timestamp()
        WHERE saga_id = $1 AND step = $2 AND action = 'EXECUTE' AND outcome = 'PENDING'`,
      [sagaId, step, JSON.stringify(COMPENSATED_WHILE_PENDING)],
    );
  }

  private async reply(
    manager: EntityManager,
    command: CommandRef,
    answer: BarrierRecord,
  ): Promise<void> {
    const { sagaId, saga, step, participant, attempt, action } = command;
    const envelope = createEnvelope(
      SagaStepCompleted,
      {
        sagaId,
        saga,
        step,
        participant,
        attempt,
        action,
        outcome: answer.outcome,
        ...(answer.reason ? { reason: answer.reason } : {}),
        ...(answer.result ? { result: answer.result } : {}),
      },
      {
        producer: participant,
        aggregateId: sagaId,
        aggregateSequence: command.aggregateSequence,
        correlationId: command.correlationId,
        causationId: command.commandId,
      },
    );
    await enqueueOutbox(manager, [routeMessage(this.catalog, envelope, this.options.topicPrefix)]);
  }
}

function registrationKey(saga: string, step: string): string {
  return `${saga}/${step}`;
}

// Commands of one step (and the deferred answer) must not interleave, or two of them could see the
// same barrier and both act on it.
async function lockStep(manager: EntityManager, sagaId: string, step: string): Promise<void> {
  await manager.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [
    BARRIER_LOCK_CLASS,
    `${sagaId}/${step}`,
  ]);
}

function commandOf(message: SagaCommandMessage): CommandRef {
  const { sagaId, saga, step, participant, action, attempt } = message.data;
  return {
    sagaId,
    saga,
    step,
    participant,
    action,
    attempt,
    aggregateSequence: message.metadata.aggregateSequence,
    correlationId: message.metadata.correlationId,
    commandId: message.metadata.eventId,
  };
}

function json(value: unknown): string | null {
  return value === undefined || value === null ? null : JSON.stringify(value);
}

// A result goes into JSON columns and messages: only a plain object survives that unchanged.
function plainObject(value: unknown): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError('a step handler must return a plain object or nothing');
  }
  return JSON.parse(JSON.stringify(value)) as JsonObject;
}
