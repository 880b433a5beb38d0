// Property: whatever the network does to commands and replies (reorder, duplicate, drop), and
// whenever a deferred step gets its answer, a saga driven by the pure logic against participants
// following the barrier rules ends COMPLETED, COMPENSATED or PARKED, and compensates only steps that
// ran, in reverse order, at most once each.
import fc from 'fast-check';
import { defineSaga, type SagaDefinition } from '../definition/define-saga';
import { barrierDecision, type BarrierRecords } from '../participant/barrier-rules';
import { decide, startSaga } from './decide';
import type { SagaEffect, SagaState, StepReply, Transition } from './state';

interface StepScenario {
  maxAttempts: number;
  maxCompensationAttempts: number;
  compensate: boolean;
  /**
   * What the participant answers to the step's EXECUTE; `defer-*`: it takes effect, answers later
   * and, if that answer is FAILED, undoes its effect when it gives it.
   */
  executes: Executes;
  /** How many COMPENSATE runs fail (business failure) before one succeeds. */
  compensationFailures: number;
}

type Executes = 'ok' | 'fail' | 'defer-ok' | 'defer-fail';

type Op =
  /** The outcome of a deferred step becomes known. */
  | { op: 'complete'; pick: number }
  | { op: 'deliver'; pick: number }
  | { op: 'duplicate'; pick: number }
  | { op: 'drop'; pick: number }
  | { op: 'tick'; advance: number };

type Message =
  | { kind: 'command'; step: number; action: 'EXECUTE' | 'COMPENSATE'; attempt: number }
  | { kind: 'reply'; reply: StepReply };

const stepArb: fc.Arbitrary<StepScenario> = fc.record({
  maxAttempts: fc.integer({ min: 1, max: 3 }),
  maxCompensationAttempts: fc.integer({ min: 1, max: 3 }),
  compensate: fc.boolean(),
  executes: fc.constantFrom<Executes>('ok', 'ok', 'ok', 'fail', 'defer-ok', 'defer-fail'),
  compensationFailures: fc.integer({ min: 0, max: 4 }),
});

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('deliver' as const), pick: fc.nat(20) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('duplicate' as const), pick: fc.nat(20) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('drop' as const), pick: fc.nat(20) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('tick' as const), advance: fc.nat(40) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('complete' as const), pick: fc.nat(20) }) },
);

const TIMEOUT_MS = 10;

interface Run {
  definition: SagaDefinition;
  state: SagaState;
  /** Every effect the orchestrator asked for, in order. */
  effects: SagaEffect[];
  /** What the participants really did, in order. */
  applied: Array<{ step: number; action: 'EXECUTE' | 'COMPENSATE' }>;
}

function simulate(steps: StepScenario[], ops: Op[]): Run {
  const definition = defineSaga({
    name: 'prop',
    backoff: { initialMs: 5, maxMs: 20 },
    steps: steps.map((s, i) => ({
      name: `s${i}`,
      participant: 'trading' as const,
      timeoutMs: TIMEOUT_MS,
      maxAttempts: s.maxAttempts,
      maxCompensationAttempts: s.maxCompensationAttempts,
      compensate: s.compensate,
    })),
  });
  const barrier: BarrierRecords[] = steps.map(() => ({}));
  const failuresLeft = steps.map((s) => s.compensationFailures);
  const network: Message[] = [];
  const run: Run = {
    definition,
    state: undefined as unknown as SagaState,
    effects: [],
    applied: [],
  };
  let now = 0;

  const take = (transition: Transition) => {
    run.state = transition.state;
    for (const effect of transition.effects) {
      run.effects.push(effect);
      if (effect.type === 'StepRequested') {
        const step = definition.steps.findIndex((s) => s.name === effect.step);
        network.push({ kind: 'command', step, action: effect.action, attempt: effect.attempt });
      }
    }
  };

  const answer = (
    step: number,
    action: 'EXECUTE' | 'COMPENSATE',
    attempt: number,
    outcome: StepReply['outcome'],
  ) => network.push({ kind: 'reply', reply: { step: `s${step}`, action, attempt, outcome } });

  // The participant: the library's barrier rules around a handler that records its effects.
  const participant = (command: Extract<Message, { kind: 'command' }>) => {
    const records = barrier[command.step];
    const decision = barrierDecision(command.action, records, command.attempt);
    const executes = steps[command.step].executes;
    let outcome: StepReply['outcome'];
    switch (decision.kind) {
      case 'replay':
        outcome = decision.record.outcome;
        break;
      case 'refuse':
        outcome = 'FAILED';
        records.execute = { outcome };
        break;
      case 'skip':
        outcome = 'SUCCEEDED';
        records.compensate = { outcome };
        break;
      case 'hold':
        // Nothing runs and nothing is sent; the answer will go out for the newest attempt.
        if (decision.newerAttempt)
          records.execute = { outcome: 'PENDING', attempt: command.attempt };
        return;
      case 'run':
      case 'compensate-pending':
        if (command.action === 'EXECUTE') {
          if (executes === 'defer-ok' || executes === 'defer-fail') {
            run.applied.push({ step: command.step, action: 'EXECUTE' });
            records.execute = { outcome: 'PENDING', attempt: command.attempt };
            return;
          }
          outcome = executes === 'ok' ? 'SUCCEEDED' : 'FAILED';
          if (outcome === 'SUCCEEDED') run.applied.push({ step: command.step, action: 'EXECUTE' });
          records.execute = { outcome };
        } else if (failuresLeft[command.step] > 0) {
          failuresLeft[command.step] -= 1;
          outcome = 'FAILED'; // not recorded: a retry runs the compensation again
        } else {
          outcome = 'SUCCEEDED';
          run.applied.push({ step: command.step, action: 'COMPENSATE' });
          records.compensate = { outcome };
          // Undone while pending: its deferred answer can no longer be given.
          if (decision.kind === 'compensate-pending') records.execute = { outcome: 'FAILED' };
        }
        break;
    }
    answer(command.step, command.action, command.attempt, outcome);
  };

  // The deferred outcome of a step becomes known: answered only if the step is still pending.
  const pendingSteps = () =>
    barrier.flatMap((r, step) => (r.execute?.outcome === 'PENDING' ? [step] : []));
  const complete = (step: number) => {
    const pending = barrier[step].execute;
    if (pending?.outcome !== 'PENDING') return;
    const outcome = steps[step].executes === 'defer-ok' ? 'SUCCEEDED' : 'FAILED';
    // A FAILED answer comes with the effect undone in the same transaction. A step declared without
    // compensation has nothing to undo; the saga may have given up on it and finished long before.
    if (outcome === 'FAILED' && steps[step].compensate) {
      run.applied.push({ step, action: 'COMPENSATE' });
    }
    barrier[step].execute = { outcome };
    answer(step, 'EXECUTE', pending.attempt, outcome);
  };

  const deliver = (message: Message) => {
    if (message.kind === 'command') participant(message);
    else take(decide(definition, run.state, { type: 'ReplyReceived', now, reply: message.reply }));
  };

  take(startSaga(definition, { sagaId: 'p', correlationId: 'p', input: {}, now }));
  for (const op of ops) {
    if (op.op === 'tick') {
      now += op.advance;
      take(decide(definition, run.state, { type: 'TimePassed', now }));
      continue;
    }
    if (op.op === 'complete') {
      const pending = pendingSteps();
      if (pending.length > 0) complete(pending[op.pick % pending.length]);
      continue;
    }
    if (network.length === 0) continue;
    const index = op.pick % network.length;
    const message = network[index];
    if (op.op !== 'duplicate') network.splice(index, 1);
    if (op.op !== 'drop') deliver(message);
  }
  // Then a calm network: everything in flight arrives in order, pending outcomes become known, and
  // time goes on.
  for (let guard = 0; guard < 10_000; guard++) {
    const message = network.shift();
    const pending = pendingSteps();
    if (message) {
      deliver(message);
    } else if (pending.length > 0) {
      complete(pending[0]);
    } else if (run.state.status === 'RUNNING' || run.state.status === 'COMPENSATING') {
      now += TIMEOUT_MS;
      take(decide(definition, run.state, { type: 'TimePassed', now }));
    } else {
      break;
    }
  }
  return run;
}

function check(steps: StepScenario[], run: Run): void {
  const { state, effects, applied } = run;
  expect(['COMPLETED', 'COMPENSATED', 'PARKED']).toContain(state.status);

  const requested = effects.filter(
    (e): e is Extract<SagaEffect, { type: 'StepRequested' }> => e.type === 'StepRequested',
  );
  const index = (name: string) => Number(name.slice(1));
  // Orchestrator side: compensations in runs of one step each, strictly downwards, only for
  // compensable steps whose EXECUTE was sent before.
  const compensated: number[] = [];
  requested.forEach((request, position) => {
    if (request.action !== 'COMPENSATE') return;
    const step = index(request.step);
    if (compensated[compensated.length - 1] !== step) compensated.push(step);
    expect(steps[step].compensate).toBe(true);
    const executedBefore = requested
      .slice(0, position)
      .some((r) => r.action === 'EXECUTE' && r.step === request.step);
    expect(executedBefore).toBe(true);
  });
  for (let i = 1; i < compensated.length; i++) {
    expect(compensated[i]).toBeLessThan(compensated[i - 1]);
  }
  const acceptedUndo = effects.filter(
    (e) => e.type === 'AttemptSettled' && e.action === 'COMPENSATE' && e.outcome === 'SUCCEEDED',
  );
  expect(new Set(acceptedUndo.map((e) => (e as { step: string }).step)).size).toBe(
    acceptedUndo.length,
  );

  // Participant side: each effect at most once, an undo only after its execution, undos downwards.
  const executions = applied.filter((a) => a.action === 'EXECUTE').map((a) => a.step);
  const undos = applied.filter((a) => a.action === 'COMPENSATE').map((a) => a.step);
  expect(new Set(executions).size).toBe(executions.length);
  expect(new Set(undos).size).toBe(undos.length);
  for (let i = 1; i < undos.length; i++) expect(undos[i]).toBeLessThan(undos[i - 1]);
  for (const step of undos) {
    const executedAt = applied.findIndex((a) => a.step === step && a.action === 'EXECUTE');
    const undoneAt = applied.findIndex((a) => a.step === step && a.action === 'COMPENSATE');
    expect(executedAt).toBeGreaterThanOrEqual(0);
    expect(executedAt).toBeLessThan(undoneAt);
  }

  // The outcome agrees with what the participants did.
  const net = (step: number) =>
    applied
      .filter((a) => a.step === step)
      .reduce((n, a) => n + (a.action === 'EXECUTE' ? 1 : -1), 0);
  if (state.status === 'COMPLETED') {
    expect(state.steps.every((s) => s.status === 'SUCCEEDED')).toBe(true);
    expect(undos).toEqual([]);
    steps.forEach((_, i) => expect(net(i)).toBe(1));
  }
  if (state.status === 'COMPENSATED') {
    steps.forEach((s, i) => {
      if (s.compensate) expect(net(i)).toBe(0);
    });
  }
  if (state.status === 'PARKED') {
    const parked = index(state.parked!.step);
    steps.forEach((s, i) => {
      if (i > parked && s.compensate) expect(net(i)).toBe(0);
    });
  }
}

describe('saga under a hostile network (property)', () => {
  it('ends in a final state with at most one, reverse-ordered compensation per executed step', () => {
    fc.assert(
      fc.property(
        fc.array(stepArb, { minLength: 1, maxLength: 5 }),
        fc.array(opArb, { maxLength: 150 }),
        (steps, ops) => {
          check(steps, simulate(steps, ops));
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it('completes every time when nothing fails and nothing is lost', () => {
    fc.assert(
      fc.property(
        fc.array(
          stepArb.map((s) => ({
            ...s,
            executes: s.executes.startsWith('defer') ? ('defer-ok' as const) : ('ok' as const),
          })),
          { minLength: 1, maxLength: 5 },
        ),
        fc.array(
          opArb.filter((o) => o.op !== 'drop' && o.op !== 'tick'),
          { maxLength: 100 },
        ),
        (steps, ops) => {
          const run = simulate(steps, ops);
          expect(run.state.status).toBe('COMPLETED');
          check(steps, run);
        },
      ),
      { numRuns: 300 },
    );
  });
});
