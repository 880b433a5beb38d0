// Optimistic concurrency made explicit: what a writer believes about a stream before appending.

export const EXPECTED = {
  /** The stream must not exist yet (no event was ever appended to it). */
  NO_STREAM: 'no_stream',
  /** The stream must already hold at least one event. */
  STREAM_EXISTS: 'stream_exists',
  /** No check: append after whatever is there. */
  ANY: 'any',
} as const;

/** A named expectation, or the exact version (the number of events) the stream must be at. */
export type ExpectedVersion = (typeof EXPECTED)[keyof typeof EXPECTED] | number;

/** Stream versions count events from 1; version 0 means the stream does not exist. */
export const NO_STREAM_VERSION = 0;

/** 0 and NO_STREAM mean the same, so the store handles one form. */
export function normaliseExpectedVersion(expected: ExpectedVersion): ExpectedVersion {
  if (typeof expected === 'number') {
    if (!Number.isSafeInteger(expected) || expected < 0) {
      throw new RangeError(`expected version must be a whole number >= 0, got ${expected}`);
    }
    return expected === NO_STREAM_VERSION ? EXPECTED.NO_STREAM : expected;
  }
  return expected;
}

/** Whether a stream at `actual` (0 = missing) satisfies the expectation. */
export function matchesExpectedVersion(expected: ExpectedVersion, actual: number): boolean {
  switch (expected) {
    case EXPECTED.ANY:
      return true;
    case EXPECTED.NO_STREAM:
      return actual === NO_STREAM_VERSION;
    case EXPECTED.STREAM_EXISTS:
      return actual > NO_STREAM_VERSION;
    default:
      return actual === expected;
  }
}
