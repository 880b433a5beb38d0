// The saga's transition rules, given past events, when an event, then the new state and effects.
import { defineSaga, type SagaDefinition } from '../definition/define-saga';
import { InvalidSagaDefinitionError, SagaStateError } from '../errors';
import { decide, startSaga } from './decide';
import type { SagaEffect, SagaEvent, SagaState, StepReply, Transition } from './state';

const postTrade = defineSaga({
  name: 'post-trade',
  backoff: { initialMs: 100, maxMs: 250 },
  steps: [
    {
      name: 'create-order',
      participant: 'trading',
      timeoutMs: 1_000,
      maxAttempts: 3,
      payload: ({ input }) => ({ orderId: input.orderId }),
    },
    {
      name: 'validate-risk',
      participant: 'risk',
      timeoutMs: 1_000,
      maxAttempts: 3,
      payload: ({ input, results }) => ({ orderId: input.orderId, order: results['create-order'] }),
    },
    {
      name: 'process-settlement',
      participant: 'settlement',
      timeoutMs: 1_000,
      maxAttempts: 2,
      maxCompensationAttempts: 3,
    },
    {
      name: 'compliance-check',
      participant: 'compliance',
      timeoutMs: 1_000,
      maxAttempts: 1,
      compensate: false,
    },
  ],
});

const T0 = 1_000_000;

function given(definition: SagaDefinition, events: SagaEvent[] = []): SagaState {
  let state = startSaga(definition, {
    sagaId: 's-1',
    correlationId: 'trade-1',
    input: { orderId: 'o-1' },
    now: T0,
  }).state;
  for (const event of events) state = decide(definition, state, event).state;
  return state;
}

function reply(
  step: string,
  outcome: StepReply['outcome'] = 'SUCCEEDED',
  extra: Partial<StepReply> = {},
): StepReply {
  return { step, action: 'EXECUTE', attempt: 1, outcome, ...extra };
}

const at = (now: number, r: StepReply): SagaEvent => ({ type: 'ReplyReceived', now, reply: r });
const tick = (now: number): SagaEvent => ({ type: 'TimePassed', now });

function requests(transition: Transition) {
  return transition.effects
    .filter((e): e is Extract<SagaEffect, { type: 'StepRequested' }> => e.type === 'StepRequested')
    .map((e) => `${e.action} ${e.step} #${e.attempt}`);
}

describe('saga transitions', () => {
  it('starts by requesting the first step', () => {
    const started = startSaga(postTrade, {
      sagaId: 's-1',
      correlationId: 'trade-1',
      input: { orderId: 'o-1' },
      now: T0,
    });
    expect(started.state).toMatchObject({ status: 'RUNNING', version: 1 });
    expect(started.state.cursor).toEqual({
      step: 0,
      action: 'EXECUTE',
      attempt: 1,
      budgetFrom: 1,
      phase: 'AWAITING_REPLY',
      dueAt: T0 + 1_000,
    });
    expect(started.effects).toEqual([
      {
        type: 'StepRequested',
        step: 'create-order',
        participant: 'trading',
        action: 'EXECUTE',
        attempt: 1,
        payload: { orderId: 'o-1' },
        requestedAt: T0,
        deadlineAt: T0 + 1_000,
      },
    ]);
  });

  it('happy path: each success requests the next step, the last one completes the saga', () => {
    let state = given(postTrade);
    const seen: string[] = [];
    for (const step of [
      'create-order',
      'validate-risk',
      'process-settlement',
      'compliance-check',
    ]) {
      const next = decide(
        postTrade,
        state,
        at(T0 + 10, reply(step, 'SUCCEEDED', { result: { [step]: true } })),
      );
      expect(next.ignored).toBeUndefined();
      seen.push(...requests(next));
      state = next.state;
    }
    expect(seen).toEqual([
      'EXECUTE validate-risk #1',
      'EXECUTE process-settlement #1',
      'EXECUTE compliance-check #1',
    ]);
    expect(state.status).toBe('COMPLETED');
    expect(state.cursor).toBeNull();
    expect(state.finishedAt).toBe(T0 + 10);
    expect(state.steps.map((s) => s.status)).toEqual([
      'SUCCEEDED',
      'SUCCEEDED',
      'SUCCEEDED',
      'SUCCEEDED',
    ]);
  });

  it('passes earlier results into later payloads', () => {
    const state = given(postTrade);
    const next = decide(
      postTrade,
      state,
      at(T0, reply('create-order', 'SUCCEEDED', { result: { id: 7 } })),
    );
    const request = next.effects.find((e) => e.type === 'StepRequested');
    expect(request).toMatchObject({ payload: { orderId: 'o-1', order: { id: 7 } } });
  });

  it('retry then succeed: a timed-out attempt backs off, the next one goes out and its reply counts', () => {
    const state = given(postTrade, [at(T0, reply('create-order'))]);
    const timedOut = decide(postTrade, state, tick(T0 + 1_000));
    expect(timedOut.effects).toEqual([
      expect.objectContaining({
        type: 'AttemptSettled',
        step: 'validate-risk',
        attempt: 1,
        outcome: 'TIMED_OUT',
      }),
    ]);
    expect(timedOut.state.cursor).toMatchObject({ phase: 'BACKING_OFF', dueAt: T0 + 1_100 });

    expect(decide(postTrade, timedOut.state, tick(T0 + 1_099)).ignored).toBe('nothing-due');
    const retried = decide(postTrade, timedOut.state, tick(T0 + 1_100));
    expect(requests(retried)).toEqual(['EXECUTE validate-risk #2']);

    const succeeded = decide(
      postTrade,
      retried.state,
      at(T0 + 1_200, reply('validate-risk', 'SUCCEEDED', { attempt: 2 })),
    );
    expect(succeeded.state.steps[1]).toMatchObject({ status: 'SUCCEEDED', executeAttempts: 2 });
    expect(requests(succeeded)).toEqual(['EXECUTE process-settlement #1']);
  });

  it('timeouts exhausted: the silent step and every earlier one are compensated in reverse order', () => {
    let state = given(postTrade, [at(T0, reply('create-order')), at(T0, reply('validate-risk'))]);
    // process-settlement allows 2 attempts.
    state = decide(postTrade, state, tick(T0 + 1_000)).state;
    state = decide(postTrade, state, tick(T0 + 1_100)).state;
    const exhausted = decide(postTrade, state, tick(T0 + 2_100));
    expect(exhausted.state.status).toBe('COMPENSATING');
    expect(exhausted.state.failure).toEqual({
      step: 'process-settlement',
      reason: expect.objectContaining({ code: 'STEP_TIMED_OUT' }),
    });
    // It may have run without its reply reaching us, so it is undone first.
    expect(requests(exhausted)).toEqual(['COMPENSATE process-settlement #1']);

    const compensate = (s: SagaState, step: string) =>
      decide(
        postTrade,
        s,
        at(T0 + 3_000, { step, action: 'COMPENSATE', attempt: 1, outcome: 'SUCCEEDED' }),
      );
    const second = compensate(exhausted.state, 'process-settlement');
    expect(requests(second)).toEqual(['COMPENSATE validate-risk #1']);
    const third = compensate(second.state, 'validate-risk');
    expect(requests(third)).toEqual(['COMPENSATE create-order #1']);
    const done = compensate(third.state, 'create-order');
    expect(requests(done)).toEqual([]);
    expect(done.state.status).toBe('COMPENSATED');
    expect(done.state.steps.map((s) => s.status)).toEqual([
      'COMPENSATED',
      'COMPENSATED',
      'COMPENSATED',
      'PENDING',
    ]);
  });

  it('a failed step goes straight to compensation, without undoing the failed step itself', () => {
    const state = given(postTrade, [at(T0, reply('create-order')), at(T0, reply('validate-risk'))]);
    const failed = decide(
      postTrade,
      state,
      at(
        T0 + 5,
        reply('process-settlement', 'FAILED', { reason: { code: 'NO_QUOTA', message: 'x' } }),
      ),
    );
    expect(failed.state.status).toBe('COMPENSATING');
    expect(failed.state.steps[2]).toMatchObject({ status: 'FAILED', reason: { code: 'NO_QUOTA' } });
    expect(failed.state.failure).toEqual({
      step: 'process-settlement',
      reason: { code: 'NO_QUOTA', message: 'x' },
    });
    expect(requests(failed)).toEqual(['COMPENSATE validate-risk #1']);
  });

  it('a failure of the first step ends the saga COMPENSATED with nothing to undo', () => {
    const failed = decide(postTrade, given(postTrade), at(T0, reply('create-order', 'FAILED')));
    expect(failed.state.status).toBe('COMPENSATED');
    expect(requests(failed)).toEqual([]);
  });

  it('skips steps declared without compensation', () => {
    const definition = defineSaga({
      name: 'three',
      steps: [
        { name: 'a', participant: 'trading', timeoutMs: 10, maxAttempts: 1 },
        { name: 'b', participant: 'risk', timeoutMs: 10, maxAttempts: 1, compensate: false },
        { name: 'c', participant: 'settlement', timeoutMs: 10, maxAttempts: 1 },
      ],
    });
    const state = given(definition, [at(T0, reply('a')), at(T0, reply('b'))]);
    const failed = decide(definition, state, at(T0, reply('c', 'FAILED')));
    expect(requests(failed)).toEqual(['COMPENSATE a #1']);
  });

  it('a compensation that keeps failing is retried with growing backoff, then the saga is PARKED', () => {
    let state = given(postTrade, [
      at(T0, reply('create-order')),
      at(T0, reply('validate-risk')),
      at(T0, reply('process-settlement')),
      at(T0, reply('compliance-check', 'FAILED')),
    ]);
    expect(state.cursor).toMatchObject({ step: 2, action: 'COMPENSATE', attempt: 1 });
    const broken = { code: 'LEDGER_CLOSED', message: 'cannot void' };
    const fail = (s: SagaState, attempt: number, now: number) =>
      decide(
        postTrade,
        s,
        at(now, {
          step: 'process-settlement',
          action: 'COMPENSATE',
          attempt,
          outcome: 'FAILED',
          reason: broken,
        }),
      );

    let t = fail(state, 1, T0 + 10);
    expect(t.state.cursor).toMatchObject({ phase: 'BACKING_OFF', dueAt: T0 + 110 });
    state = decide(postTrade, t.state, tick(T0 + 110)).state;
    t = fail(state, 2, T0 + 120);
    expect(t.state.cursor).toMatchObject({ phase: 'BACKING_OFF', dueAt: T0 + 320 });
    state = decide(postTrade, t.state, tick(T0 + 320)).state;
    t = fail(state, 3, T0 + 330);

    expect(t.state.status).toBe('PARKED');
    expect(t.state.cursor).toBeNull();
    expect(t.state.parked).toEqual({
      step: 'process-settlement',
      reason: broken,
      attempts: 3,
      at: T0 + 330,
    });
    expect(t.effects).toContainEqual({
      type: 'SagaParked',
      step: 'process-settlement',
      reason: broken,
      attempts: 3,
    });
    // Nothing further happens on its own.
    expect(decide(postTrade, t.state, tick(T0 + 1e9)).ignored).toBe('nothing-due');
  });

  it('a compensation that never answers parks the saga too', () => {
    let state = given(postTrade, [
      at(T0, reply('create-order')),
      at(T0, reply('validate-risk', 'FAILED')),
    ]);
    expect(state.cursor).toMatchObject({ step: 0, action: 'COMPENSATE' });
    for (let now = T0; state.status === 'COMPENSATING'; now += 500) {
      state = decide(postTrade, state, tick(now)).state;
    }
    expect(state.status).toBe('PARKED');
    expect(state.parked).toMatchObject({
      step: 'create-order',
      attempts: 3,
      reason: { code: 'COMPENSATION_TIMED_OUT' },
    });
  });

  describe('ignored replies', () => {
    it('ignores a reply to an older attempt but keeps it for the log', () => {
      let state = given(postTrade);
      state = decide(postTrade, state, tick(T0 + 1_000)).state;
      state = decide(postTrade, state, tick(T0 + 1_100)).state; // attempt 2 in flight
      const late = decide(postTrade, state, at(T0 + 1_150, reply('create-order', 'SUCCEEDED')));
      expect(late.ignored).toBe('stale-reply');
      expect(late.state).toBe(state);
      expect(late.effects).toEqual([
        { type: 'ReplyIgnored', reply: reply('create-order', 'SUCCEEDED'), at: T0 + 1_150 },
      ]);
    });

    it('ignores a reply while the step waits for its retry', () => {
      const state = decide(postTrade, given(postTrade), tick(T0 + 1_000)).state;
      expect(decide(postTrade, state, at(T0 + 1_010, reply('create-order'))).ignored).toBe(
        'stale-reply',
      );
    });

    it('ignores a duplicate of a reply already applied', () => {
      const first = decide(postTrade, given(postTrade), at(T0, reply('create-order')));
      const again = decide(postTrade, first.state, at(T0 + 1, reply('create-order')));
      expect(again.ignored).toBe('stale-reply');
      expect(again.state).toBe(first.state);
    });

    it('ignores replies once the saga is finished', () => {
      const done = given(postTrade, [at(T0, reply('create-order', 'FAILED'))]);
      expect(done.status).toBe('COMPENSATED');
      expect(decide(postTrade, done, at(T0, reply('create-order'))).ignored).toBe('not-active');
    });

    it('ignores an unknown step, and a reply to an attempt never sent without logging it', () => {
      const state = given(postTrade);
      expect(decide(postTrade, state, at(T0, reply('nope'))).ignored).toBe('unknown-step');
      const bogus = decide(
        postTrade,
        state,
        at(T0, reply('create-order', 'SUCCEEDED', { attempt: 9 })),
      );
      expect(bogus).toEqual({ state, effects: [], ignored: 'stale-reply' });
    });

    it('ignores a COMPENSATE reply while the step is executing', () => {
      const state = given(postTrade);
      const wrong = decide(
        postTrade,
        state,
        at(T0, { ...reply('create-order'), action: 'COMPENSATE' }),
      );
      expect(wrong.ignored).toBe('stale-reply');
    });
  });

  describe('operator events', () => {
    it('retry now gives up on the attempt in flight and sends a new one with a fresh budget', () => {
      const state = given(postTrade);
      const retried = decide(postTrade, state, { type: 'RetryRequested', now: T0 + 5 });
      expect(retried.effects[0]).toMatchObject({
        type: 'AttemptSettled',
        attempt: 1,
        outcome: 'SUPERSEDED',
      });
      expect(requests(retried)).toEqual(['EXECUTE create-order #2']);
      expect(retried.state.cursor).toMatchObject({ attempt: 2, budgetFrom: 2, dueAt: T0 + 1_005 });
    });

    it('retry now resumes the compensation of a parked saga', () => {
      let state = given(postTrade, [
        at(T0, reply('create-order')),
        at(T0, reply('validate-risk', 'FAILED')),
      ]);
      for (let now = T0; state.status === 'COMPENSATING'; now += 500) {
        state = decide(postTrade, state, tick(now)).state;
      }
      const resumed = decide(postTrade, state, { type: 'RetryRequested', now: T0 + 9_000 });
      expect(resumed.state.status).toBe('COMPENSATING');
      expect(resumed.state.parked).toBeUndefined();
      expect(requests(resumed)).toEqual(['COMPENSATE create-order #4']);
      const done = decide(
        postTrade,
        resumed.state,
        at(T0 + 9_001, {
          step: 'create-order',
          action: 'COMPENSATE',
          attempt: 4,
          outcome: 'SUCCEEDED',
        }),
      );
      expect(done.state.status).toBe('COMPENSATED');
    });

    it('resolve closes a parked saga and refuses any other', () => {
      let state = given(postTrade, [
        at(T0, reply('create-order')),
        at(T0, reply('validate-risk', 'FAILED')),
      ]);
      expect(() =>
        decide(postTrade, state, { type: 'ResolveRequested', now: T0, actor: 'ops' }),
      ).toThrow(SagaStateError);
      for (let now = T0; state.status === 'COMPENSATING'; now += 500) {
        state = decide(postTrade, state, tick(now)).state;
      }
      const resolved = decide(postTrade, state, {
        type: 'ResolveRequested',
        now: T0 + 9_000,
        actor: 'ops',
        note: 'voided by hand',
      });
      expect(resolved.state).toMatchObject({
        status: 'RESOLVED',
        resolution: { actor: 'ops', note: 'voided by hand', at: T0 + 9_000 },
        finishedAt: T0 + 9_000,
      });
      expect(() =>
        decide(postTrade, resolved.state, { type: 'RetryRequested', now: T0 + 9_001 }),
      ).toThrow(expect.objectContaining({ code: 'SAGA_FINISHED' }));
    });
  });
});

describe('defineSaga', () => {
  const step = { name: 'a', participant: 'trading' as const, timeoutMs: 10, maxAttempts: 1 };

  it('fills in defaults', () => {
    const definition = defineSaga({ name: 'one', steps: [step] });
    expect(definition.steps[0]).toMatchObject({
      compensate: true,
      compensationTimeoutMs: 10,
      maxCompensationAttempts: 1,
    });
    expect(
      definition.steps[0].payload({ sagaId: 's', input: { x: 1 }, results: {}, action: 'EXECUTE' }),
    ).toEqual({ x: 1 });
  });

  it.each([
    ['no steps', { name: 'x', steps: [] }],
    ['a duplicate step', { name: 'x', steps: [step, step] }],
    ['a zero timeout', { name: 'x', steps: [{ ...step, timeoutMs: 0 }] }],
    ['a fractional attempt count', { name: 'x', steps: [{ ...step, maxAttempts: 1.5 }] }],
    ['an unknown participant', { name: 'x', steps: [{ ...step, participant: 'bank' as 'risk' }] }],
    ['a bad name', { name: 'Post Trade', steps: [step] }],
  ])('rejects %s', (_, input) => {
    expect(() => defineSaga(input)).toThrow(InvalidSagaDefinitionError);
  });
});
