// The retry schedule: doubling ceilings up to the cap, jitter within the upper half.
import { backoffDelay, DEFAULT_RETRY, retryPolicy } from './backoff';

describe('backoffDelay', () => {
  const policy = retryPolicy({ attempts: 10, initialDelayMs: 100, maxDelayMs: 1_000 });

  it('doubles the ceiling after each failure until the cap', () => {
    const highest = [1, 2, 3, 4, 5, 6].map((failures) => backoffDelay(failures, policy, () => 1));
    expect(highest).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  });

  it('draws from the upper half of the ceiling', () => {
    const lowest = [1, 2, 3, 4, 5].map((failures) => backoffDelay(failures, policy, () => 0));
    expect(lowest).toEqual([50, 100, 200, 400, 500]);
    for (let i = 0; i < 200; i++) {
      const delay = backoffDelay(3, policy);
      expect(delay).toBeGreaterThanOrEqual(200);
      expect(delay).toBeLessThanOrEqual(400);
    }
  });

  it('stays finite for very many failures', () => {
    expect(backoffDelay(10_000, policy, () => 1)).toBe(1_000);
  });
});

describe('retryPolicy', () => {
  it('fills in defaults and rejects nonsense', () => {
    expect(retryPolicy()).toEqual(DEFAULT_RETRY);
    expect(retryPolicy({ attempts: 3 })).toEqual({ ...DEFAULT_RETRY, attempts: 3 });
    expect(() => retryPolicy({ attempts: 0 })).toThrow(RangeError);
    expect(() => retryPolicy({ initialDelayMs: 500, maxDelayMs: 100 })).toThrow(RangeError);
  });
});
