// How a saga is declared: ordered steps, each with its participant, timeout, retry budget, whether it
// can be compensated, and the payload its commands carry.
import { SERVICE_NAMES, type ServiceName } from '@finance/contracts';
import { InvalidSagaDefinitionError } from '../errors';

export type StepAction = 'EXECUTE' | 'COMPENSATE';
export type JsonObject = Record<string, unknown>;

/** What a step's payload is built from; payloads must not depend on the attempt (retries repeat them). */
export interface PayloadContext {
  readonly sagaId: string;
  readonly input: JsonObject;
  /** Results of the steps that succeeded so far, by step name. */
  readonly results: Readonly<Record<string, JsonObject>>;
  readonly action: StepAction;
}

export interface StepDefinitionInput<S extends string = string> {
  name: S;
  participant: ServiceName;
  /** How long one attempt waits for its reply before it counts as lost. */
  timeoutMs: number;
  /** Tries of the step's EXECUTE in all (the first included) before the saga compensates. */
  maxAttempts: number;
  /** false: the step has nothing to undo (a read-only check); default true. */
  compensate?: boolean;
  /** Default: timeoutMs. */
  compensationTimeoutMs?: number;
  /** Tries of the step's COMPENSATE before the saga is parked; default maxAttempts. */
  maxCompensationAttempts?: number;
  /** Must be pure: it runs inside the orchestrator's transition logic. */
  payload?: (ctx: PayloadContext) => JsonObject;
}

export interface BackoffPolicy {
  /** Wait after the first failed attempt; it doubles with each further failure. */
  readonly initialMs: number;
  readonly maxMs: number;
}

export interface StepDefinition<S extends string = string> {
  readonly name: S;
  readonly participant: ServiceName;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly compensate: boolean;
  readonly compensationTimeoutMs: number;
  readonly maxCompensationAttempts: number;
  readonly payload: (ctx: PayloadContext) => JsonObject;
}

export interface SagaDefinition<S extends string = string> {
  readonly name: string;
  readonly steps: readonly StepDefinition<S>[];
  readonly backoff: BackoffPolicy;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 1_000, maxMs: 60_000 };

const NAME = /^[a-z0-9][a-z0-9._-]{0,99}$/;

export function defineSaga<const S extends string>(input: {
  name: string;
  steps: readonly StepDefinitionInput<S>[];
  backoff?: Partial<BackoffPolicy>;
}): SagaDefinition<S> {
  const fail = (why: string): never => {
    throw new InvalidSagaDefinitionError(`saga ${input.name}: ${why}`);
  };
  if (!NAME.test(input.name)) fail('name must be lower-case letters, digits, . _ -');
  if (input.steps.length === 0) fail('needs at least one step');
  const backoff = { ...DEFAULT_BACKOFF, ...input.backoff };
  if (!(backoff.initialMs >= 0) || !(backoff.maxMs >= backoff.initialMs)) {
    fail('backoff must satisfy 0 <= initialMs <= maxMs');
  }
  const seen = new Set<string>();
  const steps = input.steps.map((step): StepDefinition<S> => {
    if (!NAME.test(step.name)) fail(`step name ${JSON.stringify(step.name)} is not valid`);
    if (seen.has(step.name)) fail(`step ${step.name} is declared twice`);
    seen.add(step.name);
    if (!SERVICE_NAMES.includes(step.participant)) {
      fail(`step ${step.name}: unknown participant ${step.participant}`);
    }
    const resolved: StepDefinition<S> = {
      name: step.name,
      participant: step.participant,
      timeoutMs: step.timeoutMs,
      maxAttempts: step.maxAttempts,
      compensate: step.compensate ?? true,
      compensationTimeoutMs: step.compensationTimeoutMs ?? step.timeoutMs,
      maxCompensationAttempts: step.maxCompensationAttempts ?? step.maxAttempts,
      payload: step.payload ?? ((ctx) => ctx.input),
    };
    for (const field of [
      'timeoutMs',
      'maxAttempts',
      'compensationTimeoutMs',
      'maxCompensationAttempts',
    ] as const) {
      const value = resolved[field];
      if (!Number.isSafeInteger(value) || value < 1) {
        fail(`step ${step.name}: ${field} must be a whole number >= 1, got ${value}`);
      }
    }
    return resolved;
  });
  return { name: input.name, steps, backoff };
}

/** Wait before the next attempt after `failures` (>= 1) failed ones of the same budget. */
export function backoffDelay(policy: BackoffPolicy, failures: number): number {
  const exponent = Math.min(Math.max(failures, 1) - 1, 30); // 2^30 already exceeds any sane cap
  return Math.min(policy.maxMs, policy.initialMs * 2 ** exponent);
}
