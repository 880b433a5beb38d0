// Deferred step answers on a real PostgreSQL: an EXECUTE that defers is recorded PENDING and sends
// nothing, repeats of it run nothing and move the answer to the newest attempt, completeDeferred
// answers once for that attempt, and a compensation while pending undoes the step and closes it.
import { SagaStepRequested } from '@finance/contracts';
import { createEnvelope, MessagingTables1763769600000 } from '@finance/messaging';
import { openDatabase } from '@finance/platform';
import { createTestDatabase } from '@finance/testing';
import type { DataSource } from 'typeorm';
import { SagaDeferredAnswers1765238400000 } from '../migrations/saga-deferred-answers';
import { SagaTables1764028800000 } from '../migrations/saga-tables';
import {
  effectsOf,
  postTradeParticipant,
  SagaTestEffects1764028800001,
  type Scenario,
} from '../../test/post-trade';
import { purgeBarrier } from './barrier-purge';
import { type DeferredCompletion, type SagaCommandMessage } from './saga-participant';

const STEP = 'process-settlement';
const DEFER: Scenario = { defer: STEP };
let seq = 0;

function command(
  sagaId: string,
  action: 'EXECUTE' | 'COMPENSATE',
  attempt: number,
  payload: Scenario = DEFER,
): SagaCommandMessage {
  return createEnvelope(
    SagaStepRequested,
    {
      sagaId,
      saga: 'post-trade',
      step: STEP,
      participant: 'settlement',
      attempt,
      action,
      payload: { ...payload },
    },
    {
      producer: 'trading',
      aggregateId: sagaId,
      aggregateSequence: ++seq,
      correlationId: `corr-${sagaId}`,
    },
  );
}

interface Reply {
  data: {
    step: string;
    action: string;
    attempt: number;
    outcome: string;
    reason?: { code: string; message: string };
    result?: Record<string, unknown>;
  };
  metadata: {
    producer: string;
    causationId: string;
    correlationId: string;
    aggregateSequence: number;
  };
}

interface BarrierRow {
  action: string;
  outcome: string;
  reason: { code: string } | null;
  result: Record<string, unknown> | null;
  saga: string;
  participant: string | null;
  attempt: number | null;
  aggregate_sequence: number | null;
  correlation_id: string | null;
  command_id: string | null;
}

describe('saga participant: deferred answers', () => {
  let db: DataSource;
  const repairs = new Set<string>();
  const participant = postTradeParticipant(repairs);
  let sagaNo = 0;
  const newSaga = () => `deferred-${++sagaNo}`;

  beforeAll(async () => {
    const { url } = await createTestDatabase('saga_deferred');
    db = await openDatabase({
      url,
      applicationName: 'saga-deferred-test',
      poolSize: 6,
      migrations: [
        MessagingTables1763769600000,
        SagaTables1764028800000,
        SagaDeferredAnswers1765238400000,
        SagaTestEffects1764028800001,
      ],
    });
  });

  afterAll(async () => {
    await db?.destroy();
  });

  const handle = (message: SagaCommandMessage) =>
    db.transaction((manager) => participant.handle(message, manager));

  const complete = (completion: DeferredCompletion) =>
    db.transaction((manager) => participant.completeDeferred(manager, completion));

  async function replies(sagaId: string): Promise<Reply[]> {
    const rows = (await db.query(
      `SELECT payload FROM outbox WHERE message_key = $1 ORDER BY position`,
      [sagaId],
    )) as Array<{ payload: Reply }>;
    return rows.map((r) => ({ data: r.payload.data, metadata: r.payload.metadata }));
  }

  async function barrier(sagaId: string): Promise<BarrierRow[]> {
    return (await db.query(
      `SELECT action, outcome, reason, result, saga, participant, attempt, aggregate_sequence,
              correlation_id, command_id::text
         FROM saga_barrier WHERE saga_id = $1 ORDER BY action DESC`,
      [sagaId],
    )) as BarrierRow[];
  }

  /** A saga whose step has run and deferred its answer. */
  async function deferred(): Promise<{ sagaId: string; first: SagaCommandMessage }> {
    const sagaId = newSaga();
    const first = command(sagaId, 'EXECUTE', 1);
    expect(await handle(first)).toBe('deferred');
    return { sagaId, first };
  }

  it('records a deferring EXECUTE as PENDING with its command, keeps its writes and sends nothing', async () => {
    const { sagaId, first } = await deferred();
    expect(await effectsOf(db, sagaId)).toEqual([{ step: STEP, action: 'EXECUTE' }]);
    expect(await replies(sagaId)).toEqual([]);
    expect(await barrier(sagaId)).toEqual([
      {
        action: 'EXECUTE',
        outcome: 'PENDING',
        reason: null,
        result: null,
        saga: 'post-trade',
        participant: 'settlement',
        attempt: 1,
        aggregate_sequence: first.metadata.aggregateSequence,
        correlation_id: `corr-${sagaId}`,
        command_id: first.metadata.eventId,
      },
    ]);
  });

  it('runs nothing and sends nothing for a repeated EXECUTE; a newer attempt takes over the answer', async () => {
    const { sagaId, first } = await deferred();
    // Redelivered as it was, and re-sent by the orchestrator as the same attempt.
    expect(await handle(first)).toBe('pending');
    expect(await handle(command(sagaId, 'EXECUTE', 1))).toBe('pending');
    expect((await barrier(sagaId))[0].command_id).toBe(first.metadata.eventId);

    // The orchestrator's retry after its attempt timed out.
    const retry = command(sagaId, 'EXECUTE', 2);
    expect(await handle(retry)).toBe('pending');
    // An older attempt arriving late does not take the answer back.
    expect(await handle(command(sagaId, 'EXECUTE', 1))).toBe('pending');

    expect(await effectsOf(db, sagaId)).toEqual([{ step: STEP, action: 'EXECUTE' }]);
    expect(await replies(sagaId)).toEqual([]);
    expect(await barrier(sagaId)).toMatchObject([
      {
        outcome: 'PENDING',
        attempt: 2,
        aggregate_sequence: retry.metadata.aggregateSequence,
        command_id: retry.metadata.eventId,
      },
    ]);
  });

  it('completeDeferred(SUCCEEDED) answers once, for the newest attempt, as the step’s reply', async () => {
    const { sagaId } = await deferred();
    const retry = command(sagaId, 'EXECUTE', 2);
    await handle(retry);

    const result = { settledOn: '2025-12-11', cycle: 'T+1' };
    expect(await complete({ sagaId, step: STEP, outcome: 'SUCCEEDED', result })).toBe(true);
    const [reply, ...others] = await replies(sagaId);
    expect(others).toEqual([]);
    expect(reply.data).toEqual({
      sagaId,
      saga: 'post-trade',
      step: STEP,
      participant: 'settlement',
      attempt: 2,
      action: 'EXECUTE',
      outcome: 'SUCCEEDED',
      result,
    });
    expect(reply.metadata).toMatchObject({
      producer: 'settlement',
      causationId: retry.metadata.eventId,
      correlationId: `corr-${sagaId}`,
      aggregateSequence: retry.metadata.aggregateSequence,
    });

    // Answered now: a second answer is a no-op, and a later EXECUTE replays this one.
    expect(await complete({ sagaId, step: STEP, outcome: 'SUCCEEDED', result: { again: 1 } })).toBe(
      false,
    );
    expect(await handle(command(sagaId, 'EXECUTE', 3))).toBe('replayed');
    const answers = await replies(sagaId);
    expect(answers.map((a) => [a.data.attempt, a.data.outcome, a.data.result])).toEqual([
      [2, 'SUCCEEDED', result],
      [3, 'SUCCEEDED', result],
    ]);
    expect(await effectsOf(db, sagaId)).toEqual([{ step: STEP, action: 'EXECUTE' }]);
    // A step answered SUCCEEDED is compensated like any other.
    expect(await handle(command(sagaId, 'COMPENSATE', 1))).toBe('compensated');
    expect((await effectsOf(db, sagaId)).map((e) => e.action)).toEqual(['EXECUTE', 'COMPENSATE']);
  });

  it('completeDeferred(FAILED) answers FAILED with its reason; the step then needs no compensation', async () => {
    const { sagaId } = await deferred();
    const reason = { code: 'SETTLEMENT_FAILED', message: 'counterparty did not deliver' };
    expect(await complete({ sagaId, step: STEP, outcome: 'FAILED', reason })).toBe(true);
    expect(
      (await replies(sagaId)).map((a) => [a.data.attempt, a.data.outcome, a.data.reason]),
    ).toEqual([[1, 'FAILED', reason]]);
    expect(await handle(command(sagaId, 'COMPENSATE', 1))).toBe('skipped');
    expect(await effectsOf(db, sagaId)).toEqual([{ step: STEP, action: 'EXECUTE' }]);
  });

  it('rolls the answer back with the caller’s transaction', async () => {
    const { sagaId } = await deferred();
    await expect(
      db.transaction(async (manager) => {
        await participant.completeDeferred(manager, { sagaId, step: STEP, outcome: 'SUCCEEDED' });
        throw new Error('the settlement write failed');
      }),
    ).rejects.toThrow('settlement write failed');
    expect(await replies(sagaId)).toEqual([]);
    expect((await barrier(sagaId))[0].outcome).toBe('PENDING');
    expect(await complete({ sagaId, step: STEP, outcome: 'SUCCEEDED' })).toBe(true);
    expect(await replies(sagaId)).toHaveLength(1);
  });

  it('runs a COMPENSATE of a pending step once, tells the handler so, and closes the step', async () => {
    const { sagaId } = await deferred();
    expect(await handle(command(sagaId, 'COMPENSATE', 1))).toBe('compensated');
    expect(await handle(command(sagaId, 'COMPENSATE', 2))).toBe('replayed');
    expect(await effectsOf(db, sagaId)).toEqual([
      { step: STEP, action: 'EXECUTE' },
      { step: STEP, action: 'COMPENSATE_PENDING' },
    ]);
    expect(await barrier(sagaId)).toMatchObject([
      {
        action: 'EXECUTE',
        outcome: 'FAILED',
        reason: { code: 'SAGA_STEP_COMPENSATED_WHILE_PENDING' },
      },
      { action: 'COMPENSATE', outcome: 'SUCCEEDED' },
    ]);

    // The outcome that becomes known afterwards is not given, and nothing is sent for it.
    expect(await complete({ sagaId, step: STEP, outcome: 'SUCCEEDED' })).toBe(false);
    // A late EXECUTE runs nothing: it replays the closed answer.
    expect(await handle(command(sagaId, 'EXECUTE', 3))).toBe('replayed');
    expect(
      (await replies(sagaId)).map((a) => [
        a.data.action,
        a.data.attempt,
        a.data.outcome,
        a.data.reason?.code,
      ]),
    ).toEqual([
      ['COMPENSATE', 1, 'SUCCEEDED', undefined],
      ['COMPENSATE', 2, 'SUCCEEDED', undefined],
      ['EXECUTE', 3, 'FAILED', 'SAGA_STEP_COMPENSATED_WHILE_PENDING'],
    ]);
    expect(await effectsOf(db, sagaId)).toHaveLength(2);
  });

  it('keeps a step pending while its compensation fails, so either the answer or a retried undo wins', async () => {
    const sagaId = newSaga();
    const broken: Scenario = { ...DEFER, brokenCompensation: STEP };
    await handle(command(sagaId, 'EXECUTE', 1, broken));
    expect(await handle(command(sagaId, 'COMPENSATE', 1, broken))).toBe('compensation-failed');
    expect((await barrier(sagaId)).map((r) => [r.action, r.outcome])).toEqual([
      ['EXECUTE', 'PENDING'],
    ]);
    repairs.add(sagaId);
    expect(await handle(command(sagaId, 'COMPENSATE', 2, broken))).toBe('compensated');
    expect(await complete({ sagaId, step: STEP, outcome: 'SUCCEEDED' })).toBe(false);
    // The failed undo was rolled back; the one that succeeded is the only one left.
    expect(await effectsOf(db, sagaId)).toEqual([
      { step: STEP, action: 'EXECUTE' },
      { step: STEP, action: 'COMPENSATE_PENDING' },
    ]);
  });

  it('completeDeferred of a step that is not pending is a no-op returning false', async () => {
    // Unknown here.
    const unknown = newSaga();
    expect(await complete({ sagaId: unknown, step: STEP, outcome: 'SUCCEEDED' })).toBe(false);
    expect(await replies(unknown)).toEqual([]);
    expect(await barrier(unknown)).toEqual([]);

    // Answered at once (not deferred).
    const answered = newSaga();
    expect(await handle(command(answered, 'EXECUTE', 1, {}))).toBe('executed');
    const reason = { code: 'LATE', message: 'too late' };
    expect(await complete({ sagaId: answered, step: STEP, outcome: 'FAILED', reason })).toBe(false);
    expect(await replies(answered)).toHaveLength(1);
    expect((await barrier(answered))[0]).toMatchObject({ outcome: 'SUCCEEDED' });

    // Compensated before its EXECUTE ever arrived.
    const skipped = newSaga();
    expect(await handle(command(skipped, 'COMPENSATE', 1))).toBe('skipped');
    expect(await complete({ sagaId: skipped, step: STEP, outcome: 'SUCCEEDED' })).toBe(false);
    expect(await replies(skipped)).toHaveLength(1);
  });

  it('must run inside a transaction', async () => {
    await expect(
      participant.completeDeferred(db.manager, {
        sagaId: newSaga(),
        step: STEP,
        outcome: 'SUCCEEDED',
      }),
    ).rejects.toThrow('inside a transaction');
  });

  it('never purges a pending step, and ages a deferred answer from when it was given', async () => {
    const pending = (await deferred()).sagaId;
    const answeredNow = (await deferred()).sagaId;
    await complete({ sagaId: answeredNow, step: STEP, outcome: 'SUCCEEDED' });
    const answeredLongAgo = (await deferred()).sagaId;
    await complete({ sagaId: answeredLongAgo, step: STEP, outcome: 'SUCCEEDED' });
    await db.query(
      `UPDATE saga_barrier SET answered_at = answered_at - interval '2 days' WHERE saga_id = $1`,
      [answeredLongAgo],
    );
    await db.query(`UPDATE saga_barrier SET created_at = created_at - interval '3 days'`);
    const [{ stillPending }] = (await db.query(
      `SELECT count(*)::int AS "stillPending" FROM saga_barrier WHERE outcome = 'PENDING'`,
    )) as Array<{ stillPending: number }>;
    expect(stillPending).toBeGreaterThan(1);

    expect(await purgeBarrier(db, { olderThanMs: 24 * 3_600_000, batchSize: 2 })).toBeGreaterThan(
      0,
    );
    const left = (await db.query(
      `SELECT saga_id, outcome, answered_at IS NOT NULL AS deferred FROM saga_barrier`,
    )) as Array<{ saga_id: string; outcome: string; deferred: boolean }>;
    // Left: the pending steps, and the answers given (or closed) less than a day ago.
    expect(left.filter((r) => r.outcome === 'PENDING')).toHaveLength(stillPending);
    expect(left.filter((r) => r.outcome !== 'PENDING' && !r.deferred)).toEqual([]);
    const sagas = left.map((r) => r.saga_id);
    expect(sagas).toContain(pending);
    expect(sagas).toContain(answeredNow);
    expect(sagas).not.toContain(answeredLongAgo);
  });
});
