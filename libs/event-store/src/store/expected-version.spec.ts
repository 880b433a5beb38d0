// Which stream versions satisfy which expectation, and the checkpoint order of the global log.
import { compareCheckpoints } from './checkpoint';
import { EXPECTED, matchesExpectedVersion, normaliseExpectedVersion } from './expected-version';

describe('expected version', () => {
  it('matches named expectations and exact versions', () => {
    expect(matchesExpectedVersion(EXPECTED.NO_STREAM, 0)).toBe(true);
    expect(matchesExpectedVersion(EXPECTED.NO_STREAM, 1)).toBe(false);
    expect(matchesExpectedVersion(EXPECTED.STREAM_EXISTS, 0)).toBe(false);
    expect(matchesExpectedVersion(EXPECTED.STREAM_EXISTS, 3)).toBe(true);
    expect(matchesExpectedVersion(EXPECTED.ANY, 0)).toBe(true);
    expect(matchesExpectedVersion(3, 3)).toBe(true);
    expect(matchesExpectedVersion(3, 4)).toBe(false);
  });

  it('treats version 0 as no stream and rejects impossible versions', () => {
    expect(normaliseExpectedVersion(0)).toBe(EXPECTED.NO_STREAM);
    expect(normaliseExpectedVersion(7)).toBe(7);
    expect(() => normaliseExpectedVersion(-1)).toThrow(RangeError);
    expect(() => normaliseExpectedVersion(1.5)).toThrow(RangeError);
  });
});

describe('global checkpoints', () => {
  it('order by transaction id first, then position, without losing 64-bit precision', () => {
    const at = (transactionId: string, position: string) => ({ transactionId, position });
    expect(compareCheckpoints(at('10', '5'), at('9', '500'))).toBe(1);
    expect(compareCheckpoints(at('9', '5'), at('9', '6'))).toBe(-1);
    expect(compareCheckpoints(at('9007199254740993', '1'), at('9007199254740992', '1'))).toBe(1);
    expect(compareCheckpoints(at('3', '3'), at('3', '3'))).toBe(0);
  });
});
