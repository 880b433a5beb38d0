// What a participant does with a step command, given what its barrier already holds for that step:
// the rules that make EXECUTE and COMPENSATE idempotent and keep a late EXECUTE from undoing a
// compensation. Pure, so the property test drives the same rules as the real participant.
import type { JsonObject, StepAction } from '../definition/define-saga';
import type { Reason } from '../core/state';

/** The first answer the participant gave to (saga, step, action). */
export interface BarrierRecord {
  outcome: 'SUCCEEDED' | 'FAILED';
  reason?: Reason;
  result?: JsonObject;
}

export interface BarrierRecords {
  execute?: BarrierRecord;
  compensate?: BarrierRecord;
}

export type BarrierDecision =
  /** Answered before: send the same answer again, run nothing. */
  | { kind: 'replay'; record: BarrierRecord }
  /** EXECUTE after its COMPENSATE: refuse it for good, run nothing. */
  | { kind: 'refuse' }
  /** COMPENSATE of a step that never took effect: record it as done, run nothing. */
  | { kind: 'skip' }
  | { kind: 'run' };

export const ALREADY_COMPENSATED: Reason = {
  code: 'SAGA_STEP_ALREADY_COMPENSATED',
  message: 'the step was compensated before this EXECUTE arrived',
};

export function barrierDecision(action: StepAction, records: BarrierRecords): BarrierDecision {
  if (action === 'EXECUTE') {
    if (records.execute) return { kind: 'replay', record: records.execute };
    if (records.compensate) return { kind: 'refuse' };
    return { kind: 'run' };
  }
  if (records.compensate) return { kind: 'replay', record: records.compensate };
  if (records.execute?.outcome !== 'SUCCEEDED') return { kind: 'skip' };
  return { kind: 'run' };
}
