import { formatMicros, MICROS_TIMESTAMP, utcNowMicros, UUID_PATTERN, uuidv7 } from './ids';

describe('uuidv7', () => {
  it('is an RFC 9562 version 7 id whose first 48 bits are the Unix milliseconds', () => {
    const id = uuidv7(1_763_769_600_123);
    expect(id).toMatch(UUID_PATTERN);
    expect(id[14]).toBe('7');
    expect(parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(1_763_769_600_123);
  });

  it('keeps ids from one process strictly increasing, even within one millisecond', () => {
    const ids = Array.from({ length: 10_000 }, () => uuidv7(1_800_000_000_000));
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
  });
});

describe('microsecond timestamps', () => {
  it('formats UTC with exactly six fractional digits', () => {
    expect(formatMicros(1_763_769_600_000_001n)).toBe('2025-11-22T00:00:00.000001Z');
    expect(formatMicros(1_763_769_600_123_456n)).toBe('2025-11-22T00:00:00.123456Z');
    expect(utcNowMicros()).toMatch(MICROS_TIMESTAMP);
  });

  it('never goes backwards between calls', () => {
    const times = Array.from({ length: 1_000 }, () => utcNowMicros());
    expect([...times].sort()).toEqual(times);
  });
});
