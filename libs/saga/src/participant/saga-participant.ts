// The participant side of a saga: runs this service's step handlers inside the consumer's
// transaction, behind a barrier that makes every command idempotent, and answers through the outbox
// in that same transaction.
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

export interface CompensationContext extends StepContext {
  /** What the step's EXECUTE returned. */
  readonly executed: JsonObject | undefined;
}

export interface StepHandlers {
  /** Throw StepFailedError to refuse (its writes are rolled back); any other error is retried. */
  execute(ctx: StepContext): Promise<JsonObject | void>;
  /** Runs only if EXECUTE took effect. Throw StepFailedError if it cannot undo it now. */
  compensate?(ctx: CompensationContext): Promise<void>;
}

export type ParticipantOutcome =
  | 'executed'
  | 'failed'
  | 'compensated'
  | 'compensation-failed'
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
  outcome: 'SUCCEEDED' | 'FAILED';
  reason: Reason | null;
  result: JsonObject | null;
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
    // EXECUTE and COMPENSATE of one step must not interleave, or both could see an empty barrier.
    await manager.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [
      BARRIER_LOCK_CLASS,
      `${command.sagaId}/${command.step}`,
    ]);
    const records = await this.readBarrier(manager, command.sagaId, command.step);
    const decision = barrierDecision(command.action, records);
    let outcome: ParticipantOutcome;
    let answer: BarrierRecord;
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
      case 'run':
        [outcome, answer] = await this.run(message, manager, registration.handlers, records);
        break;
      default: {
        const _never: never = decision;
        throw new Error(`unknown barrier decision ${JSON.stringify(_never)}`);
      }
    }
    await this.reply(manager, message, answer);
    this.options.logger?.debug(
      { sagaId: command.sagaId, step: command.step, action: command.action, outcome },
      'saga step command handled',
    );
    return outcome;
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
  ): Promise<[ParticipantOutcome, BarrierRecord]> {
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
    await manager.query(`SAVEPOINT ${SAVEPOINT}`);
    let answer: BarrierRecord;
    try {
      if (command.action === 'EXECUTE') {
        const result = await handlers.execute(ctx);
        answer = { outcome: 'SUCCEEDED', ...(result ? { result: plainObject(result) } : {}) };
      } else {
        await handlers.compensate!({ ...ctx, executed: records.execute?.result });
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
    await this.record(manager, command, answer);
    return [command.action === 'EXECUTE' ? 'executed' : 'compensated', answer];
  }

  private async readBarrier(
    manager: EntityManager,
    sagaId: string,
    step: string,
  ): Promise<BarrierRecords> {
    const rows = (await manager.query(
      `SELECT action, outcome, reason, result FROM saga_barrier WHERE saga_id = $1 AND step = $2`,
      [sagaId, step],
    )) as BarrierRow[];
    const records: BarrierRecords = {};
    for (const row of rows) {
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
        answer.reason ? JSON.stringify(answer.reason) : null,
        answer.result ? JSON.stringify(answer.result) : null,
      ],
    );
  }

  private async reply(
    manager: EntityManager,
    message: SagaCommandMessage,
    answer: BarrierRecord,
  ): Promise<void> {
    const { sagaId, saga, step, participant, attempt, action } = message.data;
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
        aggregateSequence: message.metadata.aggregateSequence,
        correlationId: message.metadata.correlationId,
        causationId: message.metadata.eventId,
      },
    );
    await enqueueOutbox(manager, [routeMessage(this.catalog, envelope, this.options.topicPrefix)]);
  }
}

function registrationKey(saga: string, step: string): string {
  return `${saga}/${step}`;
}

// A result goes into JSON columns and messages: only a plain object survives that unchanged.
function plainObject(value: unknown): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError('a step handler must return a plain object or nothing');
  }
  return JSON.parse(JSON.stringify(value)) as JsonObject;
}
