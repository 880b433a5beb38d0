// The durable orchestrator: runs the pure transitions against the saga row (locked), the attempt log
// and the outbox, all in one transaction, so a state change and the messages it causes commit
// together. tick() fires deadlines and retries, and resumes everything after a restart.
import {
  MessageCatalog,
  OperatorActionRecorded,
  SagaParked,
  SagaStepCompleted,
  SagaStepRequested,
  SYSTEM_CATALOG,
  uuidv7,
  type Envelope,
  type ServiceName,
} from '@finance/contracts';
import {
  createEnvelope,
  enqueueOutbox,
  routeMessage,
  type InboxHandler,
  type MessageContext,
  type OutboxMessage,
} from '@finance/messaging';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { DataSource, EntityManager } from 'typeorm';
import { decide, startSaga } from '../core/decide';
import {
  type Cursor,
  type IgnoredBecause,
  type SagaEvent,
  type SagaState,
  type SagaStatus,
  type StepState,
  type Transition,
} from '../core/state';
import type { JsonObject, SagaDefinition } from '../definition/define-saga';
import { SagaIdConflictError, SagaNotFoundError, UnknownSagaError } from '../errors';
import { purgeBarrier } from '../participant/barrier-purge';
import type { SagaReplyMessage } from '../participant/saga-participant';
import {
  deleteFinished,
  dueSagaIds,
  insertAttempt,
  insertInstance,
  listInstances,
  lockInstance,
  readInstance,
  recordLateReply,
  settleAttempt,
  updateInstance,
  type AttemptRecord,
  type SagaSummary,
} from './saga-store';

export interface SagaOrchestratorOptions {
  readonly dataSource: DataSource;
  /** The service running the orchestrator: producer of its commands, alerts and operator events. */
  readonly service: ServiceName;
  readonly definitions: readonly SagaDefinition[];
  readonly logger: Logger;
  /** KAFKA_TOPIC_PREFIX of the deployment. */
  readonly topicPrefix?: string;
  readonly catalog?: MessageCatalog;
  /** Epoch milliseconds; tests may pass their own. */
  readonly clock?: () => number;
  /** Sagas read per round of tick() (default 100). */
  readonly tickBatchSize?: number;
}

export interface StartOptions {
  /** Lets a caller retry start() safely: a second start with the same id creates nothing. */
  readonly sagaId?: string;
  readonly correlationId: string;
  /** The caller's open transaction, so the saga starts if and only if the caller's change commits. */
  readonly manager?: EntityManager;
}

export interface StartedSaga {
  sagaId: string;
  /** false: a saga with this id existed already and was left alone. */
  created: boolean;
}

export type ReplyHandling = 'applied' | IgnoredBecause | 'unknown-saga';

export interface ListQuery {
  /** One status or several (default: all). */
  readonly state?: SagaStatus | readonly SagaStatus[];
  /** Only sagas unchanged for at least this long: the stuck ones. */
  readonly olderThanMs?: number;
  readonly saga?: string;
  /** Default 100, at most 1000. */
  readonly limit?: number;
}

export interface SagaDetails extends SagaSummary {
  input: JsonObject;
  /** participant and compensable are null if this orchestrator no longer has the definition. */
  steps: Array<StepState & { participant: ServiceName | null; compensable: boolean | null }>;
  cursor: Cursor | null;
  failure: SagaState['failure'] | null;
  parked: SagaState['parked'] | null;
  resolution: SagaState['resolution'] | null;
  attempts: AttemptRecord[];
}

export interface OperatorInput {
  /** Who did it (user id or principal), for the audit trail. */
  readonly actor: string;
  readonly note?: string;
}

export interface PurgeResult {
  sagas: number;
  barrierRows: number;
}

const DEFAULT_TICK_BATCH = 100;

export class SagaOrchestrator {
  private readonly definitions = new Map<string, SagaDefinition>();
  private readonly catalog: MessageCatalog;
  private readonly clock: () => number;
  private readonly log: Logger;
  private readonly tickBatchSize: number;
  private ticker?: { stop: AbortController; loop: Promise<void> };

  constructor(private readonly options: SagaOrchestratorOptions) {
    for (const definition of options.definitions) {
      if (this.definitions.has(definition.name)) {
        throw new Error(`saga ${definition.name} is defined twice`);
      }
      this.definitions.set(definition.name, definition);
    }
    this.catalog = options.catalog ?? SYSTEM_CATALOG;
    this.clock = options.clock ?? Date.now;
    this.log = options.logger.child({ component: 'saga-orchestrator' });
    this.tickBatchSize = options.tickBatchSize ?? DEFAULT_TICK_BATCH;
  }

  /** Persists the new saga and its first command in one transaction (the caller's, if given). */
  async start(name: string, input: JsonObject, options: StartOptions): Promise<StartedSaga> {
    const definition = this.definition(name);
    const sagaId = options.sagaId ?? uuidv7();
    const transition = startSaga(definition, {
      sagaId,
      correlationId: options.correlationId,
      input: JSON.parse(JSON.stringify(input)) as JsonObject,
      now: this.clock(),
    });
    return this.inTransaction(options.manager, async (manager) => {
      const insert = await insertInstance(manager, transition.state);
      if (!insert.inserted) {
        if (insert.existingSaga !== name)
          throw new SagaIdConflictError(sagaId, insert.existingSaga);
        return { sagaId, created: false };
      }
      await this.carryOut(manager, transition, { causationId: null, replyId: null });
      return { sagaId, created: true };
    });
  }

  /** For the consumer of `saga.replies`; runs in its transaction (the one recording the inbox row). */
  async onReply(message: SagaReplyMessage, manager: EntityManager): Promise<ReplyHandling> {
    const reply = message.data;
    const state = await lockInstance(manager, reply.sagaId);
    if (!state) return 'unknown-saga'; // another orchestrator's saga, or purged
    if (state.saga !== reply.saga) return 'unknown-saga';
    const transition = decide(this.definition(state.saga), state, {
      type: 'ReplyReceived',
      now: this.clock(),
      reply: {
        step: reply.step,
        action: reply.action,
        attempt: reply.attempt,
        outcome: reply.outcome,
        ...(reply.reason ? { reason: reply.reason } : {}),
        ...(reply.result ? { result: reply.result } : {}),
      },
    });
    await this.persist(manager, state, transition, {
      causationId: message.metadata.eventId,
      replyId: message.metadata.eventId,
    });
    if (transition.ignored) {
      this.log.debug(
        { sagaId: reply.sagaId, step: reply.step, attempt: reply.attempt, why: transition.ignored },
        'saga reply ignored',
      );
    }
    return transition.ignored ?? 'applied';
  }

  /** For an InboxConsumer on `saga.replies`; other message types are left alone. */
  inboxHandler(): InboxHandler {
    return async (message: Envelope, ctx) => {
      if (message.type !== SagaStepCompleted.type) return;
      await this.onReply(message as SagaReplyMessage, ctx.manager);
    };
  }

  /**
   * Fires every deadline and retry due by `now`, one saga per transaction; returns how many sagas
   * moved. Call it periodically and once at start-up: that is what resumes sagas after a restart.
   */
  async tick(now: number = this.clock()): Promise<number> {
    let advanced = 0;
    for (;;) {
      const ids = await dueSagaIds(this.options.dataSource.manager, now, this.tickBatchSize);
      let moved = 0;
      for (const sagaId of ids) {
        try {
          if (await this.fireTimer(sagaId, now)) moved++;
        } catch (error) {
          // One broken saga must not hold up the others; it is due again on the next tick.
          this.log.error({ err: error, sagaId }, 'saga timer transition failed');
        }
      }
      advanced += moved;
      if (ids.length < this.tickBatchSize || moved === 0) return advanced;
    }
  }

  /** Runs tick() now and then every `intervalMs` until stopTicking(). */
  startTicking(intervalMs = 1_000): void {
    if (this.ticker) return;
    const stop = new AbortController();
    const loop = (async () => {
      while (!stop.signal.aborted) {
        try {
          await this.tick();
        } catch (error) {
          this.log.error({ err: error }, 'saga tick failed');
        }
        await sleep(intervalMs, undefined, { signal: stop.signal }).catch(() => undefined);
      }
    })();
    this.ticker = { stop, loop };
  }

  /** Stops the ticking loop after the tick in flight. */
  async stopTicking(): Promise<void> {
    const ticker = this.ticker;
    if (!ticker) return;
    ticker.stop.abort();
    await ticker.loop;
    this.ticker = undefined;
  }

  async list(query: ListQuery = {}): Promise<SagaSummary[]> {
    const statuses =
      query.state === undefined
        ? undefined
        : typeof query.state === 'string'
          ? [query.state]
          : query.state;
    return listInstances(this.options.dataSource.manager, {
      ...(statuses ? { statuses } : {}),
      ...(query.saga ? { saga: query.saga } : {}),
      ...(query.olderThanMs !== undefined
        ? { updatedBefore: this.clock() - query.olderThanMs }
        : {}),
      limit: Math.min(Math.max(query.limit ?? 100, 1), 1_000),
    });
  }

  /** The saga with its steps and every attempt, or undefined. */
  async get(sagaId: string): Promise<SagaDetails | undefined> {
    const found = await readInstance(this.options.dataSource.manager, sagaId);
    if (!found) return undefined;
    const { summary, state, attempts } = found;
    const definition = this.definitions.get(state.saga);
    return {
      ...summary,
      input: state.input,
      steps: state.steps.map((step, index) => ({
        ...step,
        participant: definition?.steps[index]?.participant ?? null,
        compensable: definition?.steps[index]?.compensate ?? null,
      })),
      cursor: state.cursor,
      failure: state.failure ?? null,
      parked: state.parked ?? null,
      resolution: state.resolution ?? null,
      attempts,
    };
  }

  /**
   * Sends the pending command again now with a fresh attempt budget: skips a backoff, gives up on
   * an attempt in flight, or resumes the compensation of a PARKED saga.
   */
  retryNow(sagaId: string, operator: OperatorInput): Promise<SagaSummary> {
    return this.operatorAction(sagaId, 'saga.retry', operator, (now) => ({
      type: 'RetryRequested',
      now,
    }));
  }

  /** Closes a PARKED saga as RESOLVED after an operator settled it by hand. */
  resolveParked(sagaId: string, operator: OperatorInput): Promise<SagaSummary> {
    return this.operatorAction(sagaId, 'saga.resolve', operator, (now) => ({
      type: 'ResolveRequested',
      now,
      actor: operator.actor,
      ...(operator.note !== undefined ? { note: operator.note } : {}),
    }));
  }

  /**
   * Deletes sagas finished more than `olderThanMs` ago (with their attempts), then barrier rows of
   * this database as old as that, `batchSize` rows per short transaction.
   */
  async purgeFinished(olderThanMs: number, batchSize = 500): Promise<PurgeResult> {
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
      throw new RangeError('batchSize must be a whole number >= 1');
    }
    const now = this.clock();
    let sagas = 0;
    for (;;) {
      const n = await this.options.dataSource.transaction((manager) =>
        deleteFinished(manager, now - olderThanMs, batchSize),
      );
      sagas += n;
      if (n < batchSize) break;
    }
    const barrierRows = await purgeBarrier(this.options.dataSource, {
      olderThanMs,
      batchSize,
      now,
    });
    return { sagas, barrierRows };
  }

  private async operatorAction(
    sagaId: string,
    action: 'saga.retry' | 'saga.resolve',
    operator: OperatorInput,
    event: (now: number) => SagaEvent,
  ): Promise<SagaSummary> {
    await this.options.dataSource.transaction(async (manager) => {
      const state = await lockInstance(manager, sagaId);
      if (!state) throw new SagaNotFoundError(sagaId);
      const transition = decide(this.definition(state.saga), state, event(this.clock()));
      await this.persist(manager, state, transition, { causationId: null, replyId: null });
      const envelope = createEnvelope(
        OperatorActionRecorded,
        {
          actor: operator.actor,
          action,
          target: { kind: 'saga', id: sagaId },
          ...(operator.note !== undefined ? { note: operator.note } : {}),
          result: `${state.status} -> ${transition.state.status}`,
        },
        this.messageContext(transition.state, null),
      );
      await enqueueOutbox(manager, [this.route(envelope)]);
    });
    this.log.info({ sagaId, action, actor: operator.actor }, 'operator action on saga');
    const after = await readInstance(this.options.dataSource.manager, sagaId);
    if (!after) throw new SagaNotFoundError(sagaId); // purged in the meantime
    return after.summary;
  }

  private async fireTimer(sagaId: string, now: number): Promise<boolean> {
    return this.options.dataSource.transaction(async (manager) => {
      const state = await lockInstance(manager, sagaId, now);
      if (!state) return false; // not due any more, or another instance holds it
      const transition = decide(this.definition(state.saga), state, { type: 'TimePassed', now });
      await this.persist(manager, state, transition, { causationId: null, replyId: null });
      return !transition.ignored;
    });
  }

  // Writes the new state (unless the event was ignored) and carries out the effects.
  private async persist(
    manager: EntityManager,
    before: SagaState,
    transition: Transition,
    cause: { causationId: string | null; replyId: string | null },
  ): Promise<void> {
    if (!transition.ignored) await updateInstance(manager, before.version, transition.state);
    await this.carryOut(manager, transition, cause);
  }

  private async carryOut(
    manager: EntityManager,
    transition: Transition,
    cause: { causationId: string | null; replyId: string | null },
  ): Promise<void> {
    const { state } = transition;
    const messages: OutboxMessage[] = [];
    for (const effect of transition.effects) {
      switch (effect.type) {
        case 'StepRequested': {
          const envelope = createEnvelope(
            SagaStepRequested,
            {
              sagaId: state.sagaId,
              saga: state.saga,
              step: effect.step,
              participant: effect.participant,
              attempt: effect.attempt,
              action: effect.action,
              payload: effect.payload,
            },
            this.messageContext(state, cause.causationId),
          );
          await insertAttempt(manager, state.sagaId, effect, envelope.metadata.eventId);
          messages.push(this.route(envelope));
          break;
        }
        case 'AttemptSettled': {
          const fromReply = effect.outcome === 'SUCCEEDED' || effect.outcome === 'FAILED';
          await settleAttempt(manager, state.sagaId, effect, fromReply ? cause.replyId : null);
          break;
        }
        case 'ReplyIgnored':
          await recordLateReply(manager, state.sagaId, effect, cause.replyId);
          break;
        case 'SagaParked': {
          const envelope = createEnvelope(
            SagaParked,
            {
              sagaId: state.sagaId,
              saga: state.saga,
              step: effect.step,
              reason: effect.reason,
              attempts: effect.attempts,
            },
            this.messageContext(state, cause.causationId),
          );
          messages.push(this.route(envelope));
          this.log.warn(
            { sagaId: state.sagaId, step: effect.step, reason: effect.reason },
            'saga parked: its compensation keeps failing',
          );
          break;
        }
        default: {
          const _never: never = effect;
          throw new Error(`unknown saga effect ${JSON.stringify(_never)}`);
        }
      }
    }
    await enqueueOutbox(manager, messages);
  }

  private messageContext(state: SagaState, causationId: string | null): MessageContext {
    return {
      producer: this.options.service,
      aggregateId: state.sagaId,
      aggregateSequence: Math.max(state.version, 1),
      correlationId: state.correlationId,
      causationId,
    };
  }

  private route(envelope: Envelope): OutboxMessage {
    return routeMessage(this.catalog, envelope, this.options.topicPrefix);
  }

  private definition(name: string): SagaDefinition {
    const definition = this.definitions.get(name);
    if (!definition) throw new UnknownSagaError(name);
    return definition;
  }

  private async inTransaction<T>(
    manager: EntityManager | undefined,
    work: (manager: EntityManager) => Promise<T>,
  ): Promise<T> {
    if (!manager) return this.options.dataSource.transaction(work);
    if (!manager.queryRunner?.isTransactionActive) {
      throw new Error('SagaOrchestrator.start: the manager given must be inside a transaction');
    }
    return work(manager);
  }
}
