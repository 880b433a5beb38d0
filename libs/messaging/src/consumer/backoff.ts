// How long a consumer waits before trying a failed message again: exponential, capped, jittered.

export interface RetryPolicy {
  /** Tries of one message in all, the first included, before it is dead-lettered. */
  readonly attempts: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, initialDelayMs: 200, maxDelayMs: 10_000 };

export function retryPolicy(overrides: Partial<RetryPolicy> = {}): RetryPolicy {
  const policy = { ...DEFAULT_RETRY, ...overrides };
  if (!Number.isInteger(policy.attempts) || policy.attempts < 1) {
    throw new RangeError(`retry.attempts must be a positive integer, got ${policy.attempts}`);
  }
  if (!(policy.initialDelayMs >= 0) || !(policy.maxDelayMs >= policy.initialDelayMs)) {
    throw new RangeError('retry delays must satisfy 0 <= initialDelayMs <= maxDelayMs');
  }
  return policy;
}

/**
 * Delay before try `failures + 1`, after `failures` failed tries (>= 1). The ceiling doubles from
 * initialDelayMs up to maxDelayMs; the delay is drawn from its upper half so replicas that failed
 * together do not retry in lock-step, yet the schedule still grows.
 */
export function backoffDelay(
  failures: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  const exponent = Math.min(Math.max(failures, 1) - 1, 30); // 2^30 already exceeds any sane cap
  const ceiling = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** exponent);
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}
