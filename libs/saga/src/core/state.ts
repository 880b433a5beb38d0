// The saga instance as data (JSON, times in epoch ms), the events that move it and the effects a
// transition asks the orchestrator to carry out. No I/O here.
import type { ServiceName } from '@finance/contracts';
import type { JsonObject, StepAction } from '../definition/define-saga';

export const SAGA_STATUSES = [
  'RUNNING',
  'COMPENSATING',
  'COMPLETED',
  'COMPENSATED',
  'PARKED',
  'RESOLVED',
] as const;
export type SagaStatus = (typeof SAGA_STATUSES)[number];

/** Statuses with a command in flight or waiting for its retry. */
export const ACTIVE_STATUSES: readonly SagaStatus[] = ['RUNNING', 'COMPENSATING'];
/** Statuses nothing moves out of; only these are purged. PARKED waits for an operator. */
export const FINISHED_STATUSES: readonly SagaStatus[] = ['COMPLETED', 'COMPENSATED', 'RESOLVED'];

export type StepStatus =
  | 'PENDING'
  | 'EXECUTING'
  | 'SUCCEEDED'
  /** The participant refused it (a business failure): its effects were rolled back. */
  | 'FAILED'
  /** No answer within its attempts: it may or may not have taken effect, so it is compensated. */
  | 'TIMED_OUT'
  | 'COMPENSATING'
  | 'COMPENSATED'
  | 'COMPENSATION_FAILED';

export interface Reason {
  code: string;
  message: string;
}

export interface StepState {
  name: string;
  status: StepStatus;
  /** Highest attempt number sent for each action (0: never sent). */
  executeAttempts: number;
  compensateAttempts: number;
  result?: JsonObject;
  reason?: Reason;
}

/** The one command the saga is waiting on, or waiting to send again. */
export interface Cursor {
  step: number;
  action: StepAction;
  attempt: number;
  /** First attempt of the current retry budget (an operator retry starts a new budget). */
  budgetFrom: number;
  phase: 'AWAITING_REPLY' | 'BACKING_OFF';
  /** Reply deadline, or when the next attempt goes out. */
  dueAt: number;
}

export interface SagaState {
  schema: 1;
  sagaId: string;
  saga: string;
  correlationId: string;
  status: SagaStatus;
  input: JsonObject;
  steps: StepState[];
  cursor: Cursor | null;
  /** Why the saga compensates. */
  failure?: { step: string; reason: Reason };
  /** Why it is (or was, before an operator resolved it) parked. */
  parked?: { step: string; reason: Reason; attempts: number; at: number };
  resolution?: { actor: string; note?: string; at: number };
  /** Increases with every applied transition. */
  version: number;
  startedAt: number;
  updatedAt: number;
  finishedAt?: number;
}

export interface StepReply {
  step: string;
  action: StepAction;
  attempt: number;
  outcome: 'SUCCEEDED' | 'FAILED';
  reason?: Reason;
  result?: JsonObject;
}

export type SagaEvent =
  | { type: 'ReplyReceived'; now: number; reply: StepReply }
  /** The clock moved: deadlines and retry times up to `now` fire. */
  | { type: 'TimePassed'; now: number }
  /** An operator asks for the pending command to go out again now, with a fresh budget. */
  | { type: 'RetryRequested'; now: number }
  /** An operator settled a parked saga by hand. */
  | { type: 'ResolveRequested'; now: number; actor: string; note?: string };

export type AttemptOutcome = 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'SUPERSEDED';

export type SagaEffect =
  | {
      type: 'StepRequested';
      step: string;
      participant: ServiceName;
      action: StepAction;
      attempt: number;
      payload: JsonObject;
      requestedAt: number;
      deadlineAt: number;
    }
  | {
      type: 'AttemptSettled';
      step: string;
      action: StepAction;
      attempt: number;
      outcome: AttemptOutcome;
      reason?: Reason;
      result?: JsonObject;
      at: number;
    }
  /** A reply that no longer matters, kept on its attempt so an operator sees it came. */
  | { type: 'ReplyIgnored'; reply: StepReply; at: number }
  | { type: 'SagaParked'; step: string; reason: Reason; attempts: number };

export type IgnoredBecause =
  /** The saga is not RUNNING or COMPENSATING. */
  | 'not-active'
  | 'unknown-step'
  /** Not the attempt in flight: an older attempt, a duplicate, or the other action. */
  | 'stale-reply'
  | 'nothing-due';

export interface Transition {
  state: SagaState;
  effects: SagaEffect[];
  /** Set when the event changed nothing (state is the input state). */
  ignored?: IgnoredBecause;
}

export function isActive(status: SagaStatus): boolean {
  return ACTIVE_STATUSES.includes(status);
}

export function isFinished(status: SagaStatus): boolean {
  return FINISHED_STATUSES.includes(status);
}
