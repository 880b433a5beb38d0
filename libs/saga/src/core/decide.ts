// The saga's transition logic as pure functions: given a state and an event (with the clock passed
// in), the next state and the effects to carry out. The orchestrator persists both in one transaction.
import {
  backoffDelay,
  type JsonObject,
  type SagaDefinition,
  type StepAction,
} from '../definition/define-saga';
import { SagaStateError } from '../errors';
import {
  isActive,
  type AttemptOutcome,
  type IgnoredBecause,
  type Reason,
  type SagaEffect,
  type SagaEvent,
  type SagaState,
  type StepReply,
  type Transition,
} from './state';

export interface StartInput {
  sagaId: string;
  correlationId: string;
  input: JsonObject;
  now: number;
}

/** A new saga, with the EXECUTE of its first step requested. */
export function startSaga(definition: SagaDefinition, start: StartInput): Transition {
  const initial: SagaState = {
    schema: 1,
    sagaId: start.sagaId,
    saga: definition.name,
    correlationId: start.correlationId,
    status: 'RUNNING',
    input: start.input,
    steps: definition.steps.map((step) => ({
      name: step.name,
      status: 'PENDING',
      executeAttempts: 0,
      compensateAttempts: 0,
    })),
    cursor: null,
    version: 0,
    startedAt: start.now,
    updatedAt: start.now,
  };
  const draft = new Draft(definition, initial, start.now);
  draft.executeFrom(0);
  return draft.done();
}

export function decide(definition: SagaDefinition, state: SagaState, event: SagaEvent): Transition {
  if (state.saga !== definition.name) {
    throw new Error(`saga ${state.sagaId} is a ${state.saga}, not a ${definition.name}`);
  }
  switch (event.type) {
    case 'ReplyReceived':
      return onReply(definition, state, event.now, event.reply);
    case 'TimePassed':
      return onTimePassed(definition, state, event.now);
    case 'RetryRequested':
      return onRetry(definition, state, event.now);
    case 'ResolveRequested':
      return onResolve(definition, state, event);
    default: {
      const _never: never = event;
      throw new Error(`unknown saga event ${JSON.stringify(_never)}`);
    }
  }
}

function onReply(
  definition: SagaDefinition,
  state: SagaState,
  now: number,
  reply: StepReply,
): Transition {
  const index = definition.steps.findIndex((step) => step.name === reply.step);
  if (index < 0) return ignored(state, 'unknown-step');
  const cursor = state.cursor;
  const awaited =
    isActive(state.status) &&
    cursor !== null &&
    cursor.phase === 'AWAITING_REPLY' &&
    cursor.step === index &&
    cursor.action === reply.action &&
    cursor.attempt === reply.attempt;
  if (!awaited) {
    // Only a reply to an attempt that was really sent is worth keeping on the log.
    const step = state.steps[index];
    const sent = reply.action === 'EXECUTE' ? step.executeAttempts : step.compensateAttempts;
    const late: SagaEffect[] =
      reply.attempt <= sent ? [{ type: 'ReplyIgnored', reply, at: now }] : [];
    return ignored(state, isActive(state.status) ? 'stale-reply' : 'not-active', late);
  }

  const draft = new Draft(definition, state, now);
  draft.settle(reply.outcome, reply.reason, reply.result);
  const step = draft.state.steps[index];
  if (reply.action === 'EXECUTE') {
    if (reply.outcome === 'SUCCEEDED') {
      step.status = 'SUCCEEDED';
      if (reply.result) step.result = reply.result;
      draft.executeFrom(index + 1);
    } else {
      // A business refusal: the participant rolled its effects back, so this step needs no undo.
      const reason = reply.reason ?? { code: 'STEP_FAILED', message: `${step.name} failed` };
      step.status = 'FAILED';
      step.reason = reason;
      draft.state.failure = { step: step.name, reason };
      draft.compensateFrom(index - 1);
    }
  } else if (reply.outcome === 'SUCCEEDED') {
    step.status = 'COMPENSATED';
    draft.compensateFrom(index - 1);
  } else {
    draft.compensationFailed(
      reply.reason ?? { code: 'COMPENSATION_FAILED', message: `undoing ${step.name} failed` },
    );
  }
  return draft.done();
}

function onTimePassed(definition: SagaDefinition, state: SagaState, now: number): Transition {
  if (!isActive(state.status) || !state.cursor || state.cursor.dueAt > now) {
    return ignored(state, 'nothing-due');
  }
  const draft = new Draft(definition, state, now);
  // Several things can fall due at once (a timeout, then a zero backoff); each one moves the saga on.
  for (let guard = 0; ; guard++) {
    const cursor = draft.state.cursor;
    if (!isActive(draft.state.status) || !cursor || cursor.dueAt > now) break;
    if (guard > 10_000) throw new Error(`saga ${state.sagaId}: timer loop does not progress`);
    if (cursor.phase === 'BACKING_OFF') {
      draft.request(cursor.step, cursor.action, cursor.budgetFrom);
      continue;
    }
    const step = definition.steps[cursor.step];
    const timeoutMs = cursor.action === 'EXECUTE' ? step.timeoutMs : step.compensationTimeoutMs;
    const reason: Reason = {
      code: cursor.action === 'EXECUTE' ? 'STEP_TIMED_OUT' : 'COMPENSATION_TIMED_OUT',
      message: `${step.name} ${cursor.action} attempt ${cursor.attempt} got no reply within ${timeoutMs} ms`,
    };
    draft.settle('TIMED_OUT', reason);
    if (cursor.action === 'EXECUTE') draft.executionTimedOut(reason);
    else draft.compensationFailed(reason);
  }
  return draft.done();
}

function onRetry(definition: SagaDefinition, state: SagaState, now: number): Transition {
  const draft = new Draft(definition, state, now);
  const { cursor, parked } = draft.state;
  if (draft.state.status === 'PARKED' && parked) {
    const index = definition.steps.findIndex((step) => step.name === parked.step);
    if (index < 0)
      throw new Error(`saga ${state.sagaId}: parked step ${parked.step} is not defined`);
    draft.state.status = 'COMPENSATING';
    draft.state.steps[index].status = 'COMPENSATING';
    delete draft.state.steps[index].reason;
    delete draft.state.parked;
    draft.request(index, 'COMPENSATE', 'fresh');
    return draft.done();
  }
  if (!isActive(draft.state.status) || !cursor) {
    throw new SagaStateError(
      'SAGA_FINISHED',
      `saga ${state.sagaId} is ${state.status}: there is nothing to retry`,
    );
  }
  // The attempt in flight may still answer; its reply will be stale and only logged.
  if (cursor.phase === 'AWAITING_REPLY') draft.settle('SUPERSEDED');
  draft.request(cursor.step, cursor.action, 'fresh');
  return draft.done();
}

function onResolve(
  definition: SagaDefinition,
  state: SagaState,
  event: Extract<SagaEvent, { type: 'ResolveRequested' }>,
): Transition {
  if (state.status !== 'PARKED') {
    throw new SagaStateError(
      'SAGA_NOT_PARKED',
      `saga ${state.sagaId} is ${state.status}; only a PARKED saga can be resolved`,
    );
  }
  const draft = new Draft(definition, state, event.now);
  draft.state.status = 'RESOLVED';
  draft.state.resolution = {
    actor: event.actor,
    ...(event.note !== undefined ? { note: event.note } : {}),
    at: event.now,
  };
  draft.state.finishedAt = event.now;
  return draft.done();
}

function ignored(
  state: SagaState,
  because: IgnoredBecause,
  effects: SagaEffect[] = [],
): Transition {
  return { state, effects, ignored: because };
}

// A copy of the state being changed by one transition, and the effects it collects.
class Draft {
  readonly state: SagaState;
  private readonly effects: SagaEffect[] = [];

  constructor(
    private readonly definition: SagaDefinition,
    state: SagaState,
    private readonly now: number,
  ) {
    this.state = structuredClone(state);
  }

  done(): Transition {
    this.state.version += 1;
    this.state.updatedAt = this.now;
    return { state: this.state, effects: this.effects };
  }

  /** Runs the step at `index`, or completes the saga when there is none. */
  executeFrom(index: number): void {
    if (index >= this.state.steps.length) {
      this.finish('COMPLETED');
      return;
    }
    this.state.steps[index].status = 'EXECUTING';
    this.request(index, 'EXECUTE', 'fresh');
  }

  /** Compensates the nearest step at or below `index` that may have taken effect, in reverse order. */
  compensateFrom(index: number): void {
    this.state.status = 'COMPENSATING';
    for (let i = index; i >= 0; i--) {
      const step = this.state.steps[i];
      const undoable = step.status === 'SUCCEEDED' || step.status === 'TIMED_OUT';
      if (undoable && this.definition.steps[i].compensate) {
        step.status = 'COMPENSATING';
        this.request(i, 'COMPENSATE', 'fresh');
        return;
      }
    }
    this.finish('COMPENSATED');
  }

  request(index: number, action: StepAction, budgetFrom: number | 'fresh'): void {
    const step = this.state.steps[index];
    const definition = this.definition.steps[index];
    const attempt = action === 'EXECUTE' ? ++step.executeAttempts : ++step.compensateAttempts;
    const timeoutMs =
      action === 'EXECUTE' ? definition.timeoutMs : definition.compensationTimeoutMs;
    const deadlineAt = this.now + timeoutMs;
    this.state.cursor = {
      step: index,
      action,
      attempt,
      budgetFrom: budgetFrom === 'fresh' ? attempt : budgetFrom,
      phase: 'AWAITING_REPLY',
      dueAt: deadlineAt,
    };
    this.effects.push({
      type: 'StepRequested',
      step: step.name,
      participant: definition.participant,
      action,
      attempt,
      payload: definition.payload({
        sagaId: this.state.sagaId,
        input: this.state.input,
        results: this.results(),
        action,
      }),
      requestedAt: this.now,
      deadlineAt,
    });
  }

  /** Records the outcome of the attempt in flight. */
  settle(outcome: AttemptOutcome, reason?: Reason, result?: JsonObject): void {
    const cursor = this.cursor();
    this.effects.push({
      type: 'AttemptSettled',
      step: this.state.steps[cursor.step].name,
      action: cursor.action,
      attempt: cursor.attempt,
      outcome,
      ...(reason ? { reason } : {}),
      ...(result ? { result } : {}),
      at: this.now,
    });
  }

  executionTimedOut(reason: Reason): void {
    const cursor = this.cursor();
    if (this.used(cursor) < this.definition.steps[cursor.step].maxAttempts) {
      this.backOff(cursor);
      return;
    }
    const step = this.state.steps[cursor.step];
    step.status = 'TIMED_OUT';
    step.reason = reason;
    this.state.failure = { step: step.name, reason };
    // The step itself is compensated too: it may have run without its reply reaching us.
    this.compensateFrom(cursor.step);
  }

  compensationFailed(reason: Reason): void {
    const cursor = this.cursor();
    if (this.used(cursor) < this.definition.steps[cursor.step].maxCompensationAttempts) {
      this.backOff(cursor);
      return;
    }
    const step = this.state.steps[cursor.step];
    step.status = 'COMPENSATION_FAILED';
    step.reason = reason;
    this.state.status = 'PARKED';
    this.state.cursor = null;
    this.state.parked = { step: step.name, reason, attempts: cursor.attempt, at: this.now };
    this.effects.push({ type: 'SagaParked', step: step.name, reason, attempts: cursor.attempt });
  }

  private backOff(cursor: NonNullable<SagaState['cursor']>): void {
    this.state.cursor = {
      ...cursor,
      phase: 'BACKING_OFF',
      dueAt: this.now + backoffDelay(this.definition.backoff, this.used(cursor)),
    };
  }

  private used(cursor: NonNullable<SagaState['cursor']>): number {
    return cursor.attempt - cursor.budgetFrom + 1;
  }

  private finish(status: 'COMPLETED' | 'COMPENSATED'): void {
    this.state.status = status;
    this.state.cursor = null;
    this.state.finishedAt = this.now;
  }

  private cursor(): NonNullable<SagaState['cursor']> {
    if (!this.state.cursor) throw new Error(`saga ${this.state.sagaId} has no step in flight`);
    return this.state.cursor;
  }

  private results(): Record<string, JsonObject> {
    const results: Record<string, JsonObject> = {};
    for (const step of this.state.steps) if (step.result) results[step.name] = step.result;
    return results;
  }
}
