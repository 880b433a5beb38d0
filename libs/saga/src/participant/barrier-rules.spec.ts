// The participant's barrier rules, command by command, against every state its barrier can be in.
import {
  ALREADY_COMPENSATED,
  barrierDecision,
  COMPENSATED_WHILE_PENDING,
  type BarrierRecord,
  type BarrierRecords,
} from './barrier-rules';

const succeeded: BarrierRecord = { outcome: 'SUCCEEDED', result: { orderId: 'o-1' } };
const failed: BarrierRecord = { outcome: 'FAILED', reason: { code: 'REFUSED', message: 'no' } };
const pending = (attempt: number): BarrierRecords => ({
  execute: { outcome: 'PENDING', attempt },
});

describe('barrier rules', () => {
  describe('EXECUTE', () => {
    it('runs the step when the barrier holds nothing', () => {
      expect(barrierDecision('EXECUTE', {}, 1)).toEqual({ kind: 'run' });
    });

    it.each([
      ['a success', succeeded],
      ['a failure', failed],
    ])('replays %s it answered before, whatever the attempt', (_, record) => {
      expect(barrierDecision('EXECUTE', { execute: record }, 3)).toEqual({
        kind: 'replay',
        record,
      });
    });

    it('refuses an EXECUTE that arrives after its COMPENSATE', () => {
      expect(barrierDecision('EXECUTE', { compensate: { outcome: 'SUCCEEDED' } }, 1)).toEqual({
        kind: 'refuse',
      });
    });

    it('holds a pending step: nothing runs, nothing is answered', () => {
      expect(barrierDecision('EXECUTE', pending(2), 2)).toEqual({
        kind: 'hold',
        newerAttempt: false,
      });
      expect(barrierDecision('EXECUTE', pending(2), 1)).toEqual({
        kind: 'hold',
        newerAttempt: false,
      });
    });

    it('marks a later attempt of a pending step as newer, so its answer goes to that attempt', () => {
      expect(barrierDecision('EXECUTE', pending(2), 3)).toEqual({
        kind: 'hold',
        newerAttempt: true,
      });
    });

    it('replays the answer a step compensated while pending was closed with', () => {
      const closed: BarrierRecord = { outcome: 'FAILED', reason: COMPENSATED_WHILE_PENDING };
      expect(
        barrierDecision('EXECUTE', { execute: closed, compensate: { outcome: 'SUCCEEDED' } }, 4),
      ).toEqual({ kind: 'replay', record: closed });
    });
  });

  describe('COMPENSATE', () => {
    it('runs the compensation of a step that succeeded', () => {
      expect(barrierDecision('COMPENSATE', { execute: succeeded }, 1)).toEqual({ kind: 'run' });
    });

    it('skips a step that never took effect or was refused', () => {
      expect(barrierDecision('COMPENSATE', {}, 1)).toEqual({ kind: 'skip' });
      expect(barrierDecision('COMPENSATE', { execute: failed }, 1)).toEqual({ kind: 'skip' });
    });

    it('replays a compensation answered before', () => {
      const compensate: BarrierRecord = { outcome: 'SUCCEEDED' };
      expect(barrierDecision('COMPENSATE', { execute: succeeded, compensate }, 2)).toEqual({
        kind: 'replay',
        record: compensate,
      });
      expect(barrierDecision('COMPENSATE', { compensate }, 2)).toEqual({
        kind: 'replay',
        record: compensate,
      });
    });

    it('compensates a pending step, whose effect may be in place', () => {
      expect(barrierDecision('COMPENSATE', pending(1), 1)).toEqual({
        kind: 'compensate-pending',
      });
      expect(barrierDecision('COMPENSATE', pending(3), 2)).toEqual({
        kind: 'compensate-pending',
      });
    });
  });

  it('keeps the refusal reason stable: operators search by it', () => {
    expect(ALREADY_COMPENSATED.code).toBe('SAGA_STEP_ALREADY_COMPENSATED');
    expect(COMPENSATED_WHILE_PENDING.code).toBe('SAGA_STEP_COMPENSATED_WHILE_PENDING');
  });
});
