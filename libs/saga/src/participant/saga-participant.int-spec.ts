// The participant's barrier on a real PostgreSQL: repeated commands replay the first answer,
// compensation before execution is a recorded no-op, a late EXECUTE is refused, business failures
// roll back, technical ones propagate, and EXECUTE/COMPENSATE racing on one step stay consistent.
import { SagaStepRequested } from '@finance/contracts';
import { createEnvelope, MessagingTables1763769600000 } from '@finance/messaging';
import { openDatabase } from '@finance/platform';
import { createTestDatabase } from '@finance/testing';
import type { DataSource } from 'typeorm';
import { SagaTables1764028800000 } from '../migrations/saga-tables';
import { SagaDeferredAnswers1765238400000 } from '../migrations/saga-deferred-answers';
import {
  effectsOf,
  postTrade,
  postTradeParticipant,
  SagaTestEffects1764028800001,
  type Scenario,
} from '../../test/post-trade';
import { purgeBarrier } from './barrier-purge';
import { SagaParticipant, type SagaCommandMessage } from './saga-participant';

let seq = 0;

function command(
  sagaId: string,
  step: string,
  action: 'EXECUTE' | 'COMPENSATE',
  attempt = 1,
  payload: Scenario = {},
): SagaCommandMessage {
  const participant = postTrade.steps.find((s) => s.name === step)?.participant ?? 'trading';
  return createEnvelope(
    SagaStepRequested,
    { sagaId, saga: 'post-trade', step, participant, attempt, action, payload: { ...payload } },
    {
      producer: 'trading',
      aggregateId: sagaId,
      aggregateSequence: ++seq,
      correlationId: `corr-${sagaId}`,
    },
  );
}

interface ReplyRow {
  data: {
    step: string;
    action: string;
    attempt: number;
    outcome: string;
    reason?: { code: string };
    result?: Record<string, unknown>;
  };
  causationId: string;
}

describe('saga participant barrier', () => {
  let db: DataSource;
  const repairs = new Set<string>();
  let participant: SagaParticipant;
  let sagaNo = 0;
  const newSaga = () => `saga-${++sagaNo}`;

  beforeAll(async () => {
    const { url } = await createTestDatabase('saga_barrier');
    db = await openDatabase({
      url,
      applicationName: 'saga-participant-test',
      poolSize: 6,
      migrations: [
        MessagingTables1763769600000,
        SagaTables1764028800000,
        SagaDeferredAnswers1765238400000,
        SagaTestEffects1764028800001,
      ],
    });
    participant = postTradeParticipant(repairs);
  });

  afterAll(async () => {
    await db?.destroy();
  });

  const handle = (message: SagaCommandMessage) =>
    db.transaction((manager) => participant.handle(message, manager));

  async function replies(sagaId: string): Promise<ReplyRow[]> {
    const rows = (await db.query(
      `SELECT payload FROM outbox WHERE message_key = $1 ORDER BY position`,
      [sagaId],
    )) as Array<{ payload: { data: ReplyRow['data']; metadata: { causationId: string } } }>;
    return rows.map((r) => ({ data: r.payload.data, causationId: r.payload.metadata.causationId }));
  }

  it('runs an EXECUTE once; a repeat replays the first answer with its own attempt number', async () => {
    const sagaId = newSaga();
    const first = command(sagaId, 'create-order', 'EXECUTE', 1);
    const again = command(sagaId, 'create-order', 'EXECUTE', 2);
    expect(await handle(first)).toBe('executed');
    expect(await handle(again)).toBe('replayed');
    expect(await effectsOf(db, sagaId)).toEqual([{ step: 'create-order', action: 'EXECUTE' }]);
    const answers = await replies(sagaId);
    expect(answers.map((a) => [a.data.attempt, a.data.outcome, a.data.result])).toEqual([
      [1, 'SUCCEEDED', { step: 'create-order', by: 'test' }],
      [2, 'SUCCEEDED', { step: 'create-order', by: 'test' }],
    ]);
    expect(answers.map((a) => a.causationId)).toEqual([
      first.metadata.eventId,
      again.metadata.eventId,
    ]);
  });

  it('rolls a refused EXECUTE back, answers FAILED with its code, and keeps that answer', async () => {
    const sagaId = newSaga();
    const refuse = { fail: 'validate-risk' };
    expect(await handle(command(sagaId, 'validate-risk', 'EXECUTE', 1, refuse))).toBe('failed');
    expect(await handle(command(sagaId, 'validate-risk', 'EXECUTE', 2, refuse))).toBe('replayed');
    // The handler wrote its effect before refusing: the savepoint took it back.
    expect(await effectsOf(db, sagaId)).toEqual([]);
    expect((await replies(sagaId)).map((a) => [a.data.outcome, a.data.reason?.code])).toEqual([
      ['FAILED', 'TEST_REFUSED'],
      ['FAILED', 'TEST_REFUSED'],
    ]);
    // Nothing took effect, so its compensation is a no-op.
    expect(await handle(command(sagaId, 'validate-risk', 'COMPENSATE'))).toBe('skipped');
    expect(await effectsOf(db, sagaId)).toEqual([]);
  });

  it('records a COMPENSATE that arrives first as a no-op and refuses the EXECUTE after it', async () => {
    const sagaId = newSaga();
    expect(await handle(command(sagaId, 'process-settlement', 'COMPENSATE'))).toBe('skipped');
    expect(await handle(command(sagaId, 'process-settlement', 'EXECUTE'))).toBe('refused');
    expect(await handle(command(sagaId, 'process-settlement', 'EXECUTE', 2))).toBe('replayed');
    expect(await effectsOf(db, sagaId)).toEqual([]);
    expect(
      (await replies(sagaId)).map((a) => [a.data.action, a.data.outcome, a.data.reason?.code]),
    ).toEqual([
      ['COMPENSATE', 'SUCCEEDED', undefined],
      ['EXECUTE', 'FAILED', 'SAGA_STEP_ALREADY_COMPENSATED'],
      ['EXECUTE', 'FAILED', 'SAGA_STEP_ALREADY_COMPENSATED'],
    ]);
  });

  it('compensates an executed step once; a repeat replays', async () => {
    const sagaId = newSaga();
    await handle(command(sagaId, 'create-order', 'EXECUTE'));
    expect(await handle(command(sagaId, 'create-order', 'COMPENSATE'))).toBe('compensated');
    expect(await handle(command(sagaId, 'create-order', 'COMPENSATE', 2))).toBe('replayed');
    expect(await handle(command(sagaId, 'create-order', 'EXECUTE', 3))).toBe('replayed');
    expect(await effectsOf(db, sagaId)).toEqual([
      { step: 'create-order', action: 'EXECUTE' },
      { step: 'create-order', action: 'COMPENSATE' },
    ]);
  });

  it('does not record a failed compensation, so a retry after a repair runs it', async () => {
    const sagaId = newSaga();
    const broken = { brokenCompensation: 'create-order' };
    await handle(command(sagaId, 'create-order', 'EXECUTE', 1, broken));
    expect(await handle(command(sagaId, 'create-order', 'COMPENSATE', 1, broken))).toBe(
      'compensation-failed',
    );
    expect(await handle(command(sagaId, 'create-order', 'COMPENSATE', 2, broken))).toBe(
      'compensation-failed',
    );
    repairs.add(sagaId);
    expect(await handle(command(sagaId, 'create-order', 'COMPENSATE', 3, broken))).toBe(
      'compensated',
    );
    expect(await effectsOf(db, sagaId)).toEqual([
      { step: 'create-order', action: 'EXECUTE' },
      { step: 'create-order', action: 'COMPENSATE' },
    ]);
    expect((await replies(sagaId)).map((a) => `${a.data.action} ${a.data.outcome}`)).toEqual([
      'EXECUTE SUCCEEDED',
      'COMPENSATE FAILED',
      'COMPENSATE FAILED',
      'COMPENSATE SUCCEEDED',
    ]);
  });

  it('lets a technical error propagate and leaves nothing behind', async () => {
    const sagaId = newSaga();
    const flaky = new SagaParticipant().register(postTrade, 'create-order', {
      async execute(ctx) {
        await ctx.manager.query(
          `INSERT INTO effects (saga_id, step, action, attempt) VALUES ($1, 'create-order', 'EXECUTE', 1)`,
          [ctx.sagaId],
        );
        throw new Error('connection to the pricing service reset');
      },
    });
    await expect(
      db.transaction((manager) =>
        flaky.handle(command(sagaId, 'create-order', 'EXECUTE'), manager),
      ),
    ).rejects.toThrow('pricing service');
    expect(await effectsOf(db, sagaId)).toEqual([]);
    expect(await replies(sagaId)).toEqual([]);
    const [{ n }] = (await db.query(
      'SELECT count(*)::int AS n FROM saga_barrier WHERE saga_id = $1',
      [sagaId],
    )) as Array<{ n: number }>;
    expect(n).toBe(0);
  });

  it('answers FAILED for a compensation it has no handler for, without recording it', async () => {
    const sagaId = newSaga();
    const partial = new SagaParticipant().register(postTrade, 'create-order', {
      execute: async () => ({}),
    });
    await db.transaction((m) => partial.handle(command(sagaId, 'create-order', 'EXECUTE'), m));
    expect(
      await db.transaction((m) => partial.handle(command(sagaId, 'create-order', 'COMPENSATE'), m)),
    ).toBe('compensation-failed');
    const [last] = (await replies(sagaId)).slice(-1);
    expect(last.data).toMatchObject({
      outcome: 'FAILED',
      reason: { code: 'SAGA_STEP_NOT_COMPENSABLE' },
    });
  });

  it('leaves steps it has no handler for to other services', async () => {
    const sagaId = newSaga();
    const riskOnly = new SagaParticipant().register(postTrade, 'validate-risk', {
      execute: async () => ({}),
    });
    expect(
      await db.transaction((m) => riskOnly.handle(command(sagaId, 'create-order', 'EXECUTE'), m)),
    ).toBe('not-mine');
    expect(await replies(sagaId)).toEqual([]);
  });

  it('keeps a racing EXECUTE and COMPENSATE of one step consistent', async () => {
    const slow = new SagaParticipant().register(postTrade, 'create-order', {
      async execute(ctx) {
        await ctx.manager.query(
          `INSERT INTO effects (saga_id, step, action, attempt) VALUES ($1, 'create-order', 'EXECUTE', 1)`,
          [ctx.sagaId],
        );
        await ctx.manager.query('SELECT pg_sleep(0.05)');
        return {};
      },
      async compensate(ctx) {
        await ctx.manager.query(
          `INSERT INTO effects (saga_id, step, action, attempt) VALUES ($1, 'create-order', 'COMPENSATE', 1)`,
          [ctx.sagaId],
        );
      },
    });
    for (let round = 0; round < 10; round++) {
      const sagaId = newSaga();
      const outcomes = await Promise.all([
        db.transaction((m) => slow.handle(command(sagaId, 'create-order', 'EXECUTE'), m)),
        db.transaction((m) => slow.handle(command(sagaId, 'create-order', 'COMPENSATE'), m)),
      ]);
      // Either order is fine; what matters is that nothing stays executed.
      expect([
        ['executed', 'compensated'],
        ['refused', 'skipped'],
      ]).toContainEqual(outcomes);
      const effects = await effectsOf(db, sagaId);
      expect(effects.filter((e) => e.action === 'EXECUTE').length).toBe(
        effects.filter((e) => e.action === 'COMPENSATE').length,
      );
    }
  });

  it('purges old barrier rows in batches but keeps those of sagas still open here', async () => {
    const [{ before }] = (await db.query(
      'SELECT count(*)::int AS before FROM saga_barrier',
    )) as Array<{
      before: number;
    }>;
    expect(before).toBeGreaterThan(5);
    const open = newSaga();
    await handle(command(open, 'create-order', 'EXECUTE'));
    await db.query(
      `INSERT INTO saga_instances (saga_id, saga, status, correlation_id, state, version)
       VALUES ($1, 'post-trade', 'PARKED', 'c', '{}'::jsonb, 1)`,
      [open],
    );
    await db.query(`UPDATE saga_barrier SET created_at = created_at - interval '2 days'`);
    const young = newSaga();
    await handle(command(young, 'create-order', 'EXECUTE'));

    const purged = await purgeBarrier(db, { olderThanMs: 24 * 3_600_000, batchSize: 2 });
    expect(purged).toBe(before);
    const left = (await db.query('SELECT saga_id FROM saga_barrier ORDER BY saga_id')) as Array<{
      saga_id: string;
    }>;
    expect(left.map((r) => r.saga_id).sort()).toEqual([open, young].sort());
  });
});
