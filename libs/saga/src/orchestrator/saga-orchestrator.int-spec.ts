// The orchestrator against a real PostgreSQL, with its clock in the test's hands: what start, replies,
// timers and operator actions write (saga row, attempt log, outbox) and how they serialize.
import { SagaStepCompleted, type ServiceName } from '@finance/contracts';
import { createEnvelope, MessagingTables1763769600000 } from '@finance/messaging';
import { createLogger, openDatabase } from '@finance/platform';
import { createTestDatabase } from '@finance/testing';
import type { DataSource } from 'typeorm';
import { SagaTables1764028800000 } from '../migrations/saga-tables';
import { SagaDeferredAnswers1765238400000 } from '../migrations/saga-deferred-answers';
import { SagaIdConflictError, SagaNotFoundError, SagaStateError } from '../errors';
import type { SagaReplyMessage } from '../participant/saga-participant';
import { postTrade } from '../../test/post-trade';
import { defineSaga } from '../definition/define-saga';
import { SagaOrchestrator } from './saga-orchestrator';

const other = defineSaga({
  name: 'other',
  steps: [{ name: 'only', participant: 'risk', timeoutMs: 1_000, maxAttempts: 1 }],
});

interface OutboxRow {
  topic: string;
  type: string;
  data: Record<string, unknown>;
}

describe('saga orchestrator (database)', () => {
  let db: DataSource;
  let now = Date.UTC(2026, 0, 5, 9, 0, 0);
  let orchestrator: SagaOrchestrator;

  beforeAll(async () => {
    const { url } = await createTestDatabase('saga_store');
    db = await openDatabase({
      url,
      applicationName: 'saga-orchestrator-test',
      poolSize: 8,
      migrations: [
        MessagingTables1763769600000,
        SagaTables1764028800000,
        SagaDeferredAnswers1765238400000,
      ],
    });
    orchestrator = new SagaOrchestrator({
      dataSource: db,
      service: 'trading',
      definitions: [postTrade, other],
      logger: createLogger('saga-test', 'silent'),
      topicPrefix: 'px.',
      clock: () => now,
    });
  });

  afterAll(async () => {
    await db?.destroy();
  });

  async function outbox(sagaId: string): Promise<OutboxRow[]> {
    const rows = (await db.query(
      `SELECT topic, payload FROM outbox
        WHERE payload->'data'->>'sagaId' = $1 OR payload->'data'->'target'->>'id' = $1
        ORDER BY position`,
      [sagaId],
    )) as Array<{ topic: string; payload: { type: string; data: Record<string, unknown> } }>;
    return rows.map((r) => ({ topic: r.topic, type: r.payload.type, data: r.payload.data }));
  }

  function replyTo(
    sagaId: string,
    step: string,
    extra: Partial<SagaReplyMessage['data']> = {},
  ): SagaReplyMessage {
    const participant = (postTrade.steps.find((s) => s.name === step)?.participant ??
      'risk') as ServiceName;
    return createEnvelope(
      SagaStepCompleted,
      {
        sagaId,
        saga: 'post-trade',
        step,
        participant,
        attempt: 1,
        action: 'EXECUTE',
        outcome: 'SUCCEEDED',
        ...extra,
      },
      { producer: participant, aggregateId: sagaId, aggregateSequence: 1, correlationId: 'c' },
    );
  }

  const deliver = (message: SagaReplyMessage) =>
    db.transaction((manager) => orchestrator.onReply(message, manager));

  it('starts a saga with its first command in one transaction, and only once per id', async () => {
    const started = await orchestrator.start(
      'post-trade',
      { orderId: 'o-1' },
      { sagaId: 'start-1', correlationId: 'order-o-1' },
    );
    expect(started).toEqual({ sagaId: 'start-1', created: true });
    expect(await outbox('start-1')).toEqual([
      {
        topic: 'px.saga.commands',
        type: 'SagaStepRequested',
        data: expect.objectContaining({
          step: 'create-order',
          action: 'EXECUTE',
          attempt: 1,
          participant: 'trading',
          payload: { orderId: 'o-1' },
        }),
      },
    ]);
    const again = await orchestrator.start(
      'post-trade',
      {},
      { sagaId: 'start-1', correlationId: 'x' },
    );
    expect(again).toEqual({ sagaId: 'start-1', created: false });
    expect(await outbox('start-1')).toHaveLength(1);
    await expect(
      orchestrator.start('other', {}, { sagaId: 'start-1', correlationId: 'x' }),
    ).rejects.toThrow(SagaIdConflictError);

    const details = await orchestrator.get('start-1');
    expect(details).toMatchObject({
      status: 'RUNNING',
      currentStep: 'create-order',
      correlationId: 'order-o-1',
      attempts: [{ step: 'create-order', action: 'EXECUTE', attempt: 1, outcome: null }],
    });
  });

  it("starts inside the caller's transaction: no saga and no command if the caller rolls back", async () => {
    await expect(
      db.transaction(async (manager) => {
        await orchestrator.start(
          'post-trade',
          {},
          { sagaId: 'start-2', correlationId: 'c', manager },
        );
        throw new Error('caller failed');
      }),
    ).rejects.toThrow('caller failed');
    expect(await orchestrator.get('start-2')).toBeUndefined();
    expect(await outbox('start-2')).toEqual([]);
  });

  it('applies one of two identical replies racing each other and ignores the other', async () => {
    await orchestrator.start('post-trade', {}, { sagaId: 'race-1', correlationId: 'c' });
    const results = await Promise.all([
      deliver(replyTo('race-1', 'create-order')),
      deliver(replyTo('race-1', 'create-order')),
    ]);
    expect(results.sort()).toEqual(['applied', 'stale-reply']);
    const commands = (await outbox('race-1')).map((m) => `${m.data.step} #${m.data.attempt}`);
    expect(commands).toEqual(['create-order #1', 'validate-risk #1']);
    expect(await deliver(replyTo('nobody', 'create-order'))).toBe('unknown-saga');
  });

  it('retries a silent step on its timer, logs every attempt and a late reply, then compensates', async () => {
    const t0 = now;
    await orchestrator.start('post-trade', {}, { sagaId: 'silent-1', correlationId: 'c' });
    await deliver(replyTo('silent-1', 'create-order'));
    // validate-risk: 3 attempts of 1.5 s with 100 ms then 200 ms backoff (other sagas of this
    // file fall due too, so only "something moved" is asserted).
    for (const at of [1_500, 1_600, 3_100, 3_300, 4_800]) {
      now = t0 + at;
      expect(await orchestrator.tick()).toBeGreaterThanOrEqual(1);
    }
    expect(await orchestrator.tick()).toBe(0);
    expect(await deliver(replyTo('silent-1', 'validate-risk', { attempt: 1 }))).toBe('stale-reply');

    const saga = await orchestrator.get('silent-1');
    expect(saga).toMatchObject({
      status: 'COMPENSATING',
      currentStep: 'validate-risk',
      reason: { code: 'STEP_TIMED_OUT' },
    });
    expect(
      saga!.attempts.map((a) => [a.step, a.action, a.attempt, a.outcome, a.lateReply?.outcome]),
    ).toEqual([
      ['create-order', 'EXECUTE', 1, 'SUCCEEDED', undefined],
      ['validate-risk', 'EXECUTE', 1, 'TIMED_OUT', 'SUCCEEDED'],
      ['validate-risk', 'EXECUTE', 2, 'TIMED_OUT', undefined],
      ['validate-risk', 'EXECUTE', 3, 'TIMED_OUT', undefined],
      ['validate-risk', 'COMPENSATE', 1, null, undefined],
    ]);
    const compensate = { action: 'COMPENSATE' as const };
    expect(await deliver(replyTo('silent-1', 'validate-risk', compensate))).toBe('applied');
    expect(await deliver(replyTo('silent-1', 'create-order', compensate))).toBe('applied');
    expect((await orchestrator.get('silent-1'))?.status).toBe('COMPENSATED');
  });

  it('parks a saga whose compensation keeps failing, with an alert, and lets an operator resolve it', async () => {
    const t0 = now;
    await orchestrator.start('post-trade', {}, { sagaId: 'park-1', correlationId: 'c' });
    await deliver(replyTo('park-1', 'create-order'));
    await deliver(
      replyTo('park-1', 'validate-risk', {
        outcome: 'FAILED',
        reason: { code: 'LIMIT', message: 'no' },
      }),
    );
    const broken = { code: 'UNDO_BROKEN', message: 'cannot undo' };
    for (let attempt = 1; attempt <= 3; attempt++) {
      await deliver(
        replyTo('park-1', 'create-order', {
          action: 'COMPENSATE',
          attempt,
          outcome: 'FAILED',
          reason: broken,
        }),
      );
      now = t0 + attempt * 1_000;
      await orchestrator.tick();
    }
    const parked = await orchestrator.get('park-1');
    expect(parked).toMatchObject({
      status: 'PARKED',
      currentStep: 'create-order',
      reason: broken,
      parked: { step: 'create-order', reason: broken, attempts: 3 },
      dueAt: null,
    });
    const alerts = (await outbox('park-1')).filter((m) => m.type === 'SagaParked');
    expect(alerts).toEqual([
      {
        topic: 'px.operations.events',
        type: 'SagaParked',
        data: {
          sagaId: 'park-1',
          saga: 'post-trade',
          step: 'create-order',
          reason: broken,
          attempts: 3,
        },
      },
    ]);
    expect((await orchestrator.list({ state: 'PARKED' })).map((s) => s.sagaId)).toContain('park-1');

    await expect(orchestrator.resolveParked('silent-1', { actor: 'ops' })).rejects.toThrow(
      SagaStateError,
    );
    await expect(orchestrator.retryNow('missing', { actor: 'ops' })).rejects.toThrow(
      SagaNotFoundError,
    );
    const resolved = await orchestrator.resolveParked('park-1', {
      actor: 'ops@desk',
      note: 'voided by hand',
    });
    expect(resolved).toMatchObject({ status: 'RESOLVED', finishedAt: expect.any(String) });
    const actions = (await outbox('park-1')).filter((m) => m.type === 'OperatorActionRecorded');
    expect(actions).toEqual([
      {
        topic: 'px.operations.events',
        type: 'OperatorActionRecorded',
        data: {
          actor: 'ops@desk',
          action: 'saga.resolve',
          target: { kind: 'saga', id: 'park-1' },
          note: 'voided by hand',
          result: 'PARKED -> RESOLVED',
        },
      },
    ]);
  });

  it('retry now sends the pending command again at once and records the action', async () => {
    await orchestrator.start('post-trade', {}, { sagaId: 'retry-1', correlationId: 'c' });
    const summary = await orchestrator.retryNow('retry-1', { actor: 'ops' });
    expect(summary).toMatchObject({ status: 'RUNNING', currentStep: 'create-order' });
    const messages = await outbox('retry-1');
    expect(messages.map((m) => m.type)).toEqual([
      'SagaStepRequested',
      'SagaStepRequested',
      'OperatorActionRecorded',
    ]);
    expect(messages[1].data).toMatchObject({ step: 'create-order', attempt: 2 });
    const attempts = (await orchestrator.get('retry-1'))!.attempts.map((a) => a.outcome);
    expect(attempts).toEqual(['SUPERSEDED', null]);
  });

  it('lists by status and age', async () => {
    const running = await orchestrator.list({ state: ['RUNNING', 'COMPENSATING'] });
    expect(running.every((s) => s.status === 'RUNNING' || s.status === 'COMPENSATING')).toBe(true);
    expect(running.map((s) => s.sagaId)).toEqual(expect.arrayContaining(['start-1', 'retry-1']));
    // Nothing is a year old.
    expect(await orchestrator.list({ olderThanMs: 365 * 24 * 3_600_000 })).toEqual([]);
  });

  it('purges finished sagas and their attempts in batches, never open ones', async () => {
    for (let i = 0; i < 5; i++) {
      const { sagaId } = await orchestrator.start('other', {}, { correlationId: 'c' });
      await deliver({
        ...replyTo(sagaId, 'only'),
        data: { ...replyTo(sagaId, 'only').data, saga: 'other', participant: 'risk' },
      });
    }
    const finished = await orchestrator.list({ state: ['COMPLETED', 'COMPENSATED', 'RESOLVED'] });
    expect(finished.length).toBeGreaterThanOrEqual(7);
    const open = await orchestrator.list({ state: ['RUNNING', 'COMPENSATING', 'PARKED'] });

    expect(await orchestrator.purgeFinished(60_000, 2)).toEqual({ sagas: 0, barrierRows: 0 });
    now += 120_000;
    expect(await orchestrator.purgeFinished(60_000, 2)).toEqual({
      sagas: finished.length,
      barrierRows: 0,
    });
    const left = await orchestrator.list();
    expect(left.map((s) => s.sagaId).sort()).toEqual(open.map((s) => s.sagaId).sort());
    const [{ n }] = (await db.query(
      `SELECT count(*)::int AS n FROM saga_attempts a
        WHERE NOT EXISTS (SELECT 1 FROM saga_instances s WHERE s.saga_id = a.saga_id)`,
    )) as Array<{ n: number }>;
    expect(n).toBe(0);
  });
});
