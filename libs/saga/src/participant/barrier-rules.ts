// What a participant does with a step command, given what its barrier already holds for that step:
// the rules that make EXECUTE and COMPENSATE idempotent, keep a late EXECUTE from undoing a
// compensation, and hold a deferred EXECUTE until its answer is known. Pure, so the property test
// drives the same rules as the real participant.
import type { JsonObject, StepAction } from '../definition/define-saga';
import type { Reason } from '../core/state';

/** The first answer the participant gave to (saga, step, action). */
export interface BarrierRecord {
  outcome: 'SUCCEEDED' | 'FAILED';
  reason?: Reason;
  result?: JsonObject;
}

/** An EXECUTE that took effect but whose answer comes later (see `StepContext.defer`). */
export interface PendingRecord {
  outcome: 'PENDING';
  /** The newest attempt the participant has seen: the one its answer will be sent for. */
  attempt: number;
}

export interface BarrierRecords {
  execute?: BarrierRecord | PendingRecord;
  compensate?: BarrierRecord;
}

export type BarrierDecision =
  /** Answered before: send the same answer again, run nothing. */
  | { kind: 'replay'; record: BarrierRecord }
  /** EXECUTE after its COMPENSATE: refuse it for good, run nothing. */
  | { kind: 'refuse' }
  /** COMPENSATE of a step that never took effect: record it as done, run nothing. */
  | { kind: 'skip' }
  /**
   * EXECUTE of a step whose answer is deferred: run nothing, send nothing. `newerAttempt`: the
   * command is a later attempt than the one stored, so the answer is to be sent for it instead.
   */
  | { kind: 'hold'; newerAttempt: boolean }
  /**
   * COMPENSATE of a step whose EXECUTE is still pending: its effect may be in place, so the
   * compensation runs; once it succeeds the pending EXECUTE is closed and will never be answered.
   */
  | { kind: 'compensate-pending' }
  | { kind: 'run' };

export const ALREADY_COMPENSATED: Reason = {
  code: 'SAGA_STEP_ALREADY_COMPENSATED',
  message: 'the step was compensated before this EXECUTE arrived',
};

/** What a pending EXECUTE is closed with when its step is compensated before it was answered. */
export const COMPENSATED_WHILE_PENDING: Reason = {
  code: 'SAGA_STEP_COMPENSATED_WHILE_PENDING',
  message: 'the step was compensated while its answer was still pending',
};

/** `attempt` is the command's attempt number. */
export function barrierDecision(
  action: StepAction,
  records: BarrierRecords,
  attempt: number,
): BarrierDecision {
  const { execute, compensate } = records;
  if (action === 'EXECUTE') {
    if (execute?.outcome === 'PENDING') {
      return { kind: 'hold', newerAttempt: attempt > execute.attempt };
    }
    if (execute) return { kind: 'replay', record: execute };
    if (compensate) return { kind: 'refuse' };
    return { kind: 'run' };
  }
  if (compensate) return { kind: 'replay', record: compensate };
  if (execute?.outcome === 'PENDING') return { kind: 'compensate-pending' };
  if (execute?.outcome !== 'SUCCEEDED') return { kind: 'skip' };
  return { kind: 'run' };
}
