// The post-trade saga end to end through the real pipeline: orchestrator database → outbox → relay →
// Kafka → inbox consumer → participant database, and back. Effects are rows the participant
// handlers write, so every assertion counts what really happened.
import { SagaStepRequested } from '@finance/contracts';
import { ensureTopics } from '@finance/local-stack';
import {
  createEnvelope,
  createKafka,
  kafkaHeaders,
  MessagingTables1763769600000,
  type HandledInfo,
} from '@finance/messaging';
import { createLogger, openDatabase } from '@finance/platform';
import { createTestDatabase, testStack } from '@finance/testing';
import type { Kafka } from 'kafkajs';
import type { DataSource } from 'typeorm';
import { SagaTables1764028800000 } from './migrations/saga-tables';
import { SagaOrchestrator, type SagaDetails } from './orchestrator/saga-orchestrator';
import type { SagaCommandMessage } from './participant/saga-participant';
import {
  orchestratorSide,
  participantSide,
  sagaTopics,
  sagaTopicSpecs,
  type Side,
} from '../test/pipeline';
import {
  effectsOf,
  postTrade,
  postTradeParticipant,
  SagaTestEffects1764028800001,
  type Scenario,
} from '../test/post-trade';
import { produceRaw, quietKafka, readUntil, waitFor } from '../test/support';

const FINAL = ['COMPLETED', 'COMPENSATED', 'PARKED', 'RESOLVED'];

describe('post-trade saga through outbox, Kafka and inbox', () => {
  const logger = createLogger('saga-pipeline-test', 'error');
  const repairs = new Set<string>();
  const handled = new Map<string, HandledInfo[]>();
  let orchestratorDb: DataSource;
  let participantDb: DataSource;
  let orchestrator: SagaOrchestrator;
  let topics: ReturnType<typeof sagaTopics>;
  let reader: Kafka;
  const sides: Side[] = [];

  const track = (info: HandledInfo) => {
    if (!info.eventId) return;
    handled.set(info.eventId, [...(handled.get(info.eventId) ?? []), info]);
  };

  beforeAll(async () => {
    const stack = testStack();
    // Topics of its own: files running in parallel must not race to create the same ones.
    const prefix = `${stack.topicPrefix}saga-pipeline.`;
    topics = sagaTopics(prefix);
    await ensureTopics(stack.kafkaBrokers, sagaTopicSpecs(prefix));
    const migrations = [MessagingTables1763769600000, SagaTables1764028800000];
    orchestratorDb = await openDatabase({
      url: (await createTestDatabase('saga_pipeline_orchestrator')).url,
      applicationName: 'saga-orchestrator',
      poolSize: 8,
      migrations,
    });
    participantDb = await openDatabase({
      url: (await createTestDatabase('saga_pipeline_participant')).url,
      applicationName: 'saga-participant',
      poolSize: 8,
      migrations: [...migrations, SagaTestEffects1764028800001],
    });
    const kafka = createKafka({ brokers: stack.kafkaBrokers, clientId: 'saga-pipeline', logger });
    reader = quietKafka(stack.kafkaBrokers);
    orchestrator = new SagaOrchestrator({
      dataSource: orchestratorDb,
      service: 'trading',
      definitions: [postTrade],
      logger,
      topicPrefix: prefix,
    });
    const common = { kafka, logger, prefix, onHandled: track };
    sides.push(
      orchestratorSide({
        ...common,
        dataSource: orchestratorDb,
        group: `saga-orchestrator-${stack.runId}`,
        orchestrator,
        tickMs: 100,
      }),
      participantSide({
        ...common,
        dataSource: participantDb,
        group: `saga-participant-${stack.runId}`,
        participant: postTradeParticipant(repairs, prefix),
        // The scenario's silent step never hears its EXECUTE (its COMPENSATE gets through).
        drop: (command) =>
          command.data.action === 'EXECUTE' &&
          (command.data.payload as Scenario).silent === command.data.step,
      }),
    );
    await Promise.all(sides.map((s) => s.start()));
  });

  afterAll(async () => {
    await Promise.all(sides.map((s) => s.stop()));
    await orchestratorDb?.destroy();
    await participantDb?.destroy();
  });

  async function run(scenario: Scenario, until = FINAL): Promise<SagaDetails> {
    const { sagaId } = await orchestrator.start(
      'post-trade',
      { ...scenario, orderId: 'o-1' },
      {
        correlationId: `trade-${Math.random().toString(36).slice(2)}`,
      },
    );
    return settled(sagaId, until);
  }

  async function settled(sagaId: string, until = FINAL): Promise<SagaDetails> {
    const saga = await waitFor(
      `saga ${sagaId} to reach ${until.join('/')}`,
      () => orchestrator.get(sagaId),
      (s) => s !== undefined && until.includes(s.status),
    );
    return saga!;
  }

  const operationsOf = (sagaId: string, type: string, count = 1) =>
    readUntil(
      reader,
      topics.operations,
      (r) =>
        r.envelope.type === type &&
        (r.envelope.data.sagaId === sagaId ||
          (r.envelope.data.target as { id?: string } | undefined)?.id === sagaId),
      (records) => records.length >= count,
    );

  it('completes: every step executes exactly once, in order, and nothing is compensated', async () => {
    const saga = await run({});
    expect(saga.status).toBe('COMPLETED');
    expect(await effectsOf(participantDb, saga.sagaId)).toEqual([
      { step: 'create-order', action: 'EXECUTE' },
      { step: 'validate-risk', action: 'EXECUTE' },
      { step: 'process-settlement', action: 'EXECUTE' },
      { step: 'compliance-check', action: 'EXECUTE' },
    ]);
    expect(saga.steps.map((s) => [s.name, s.status, s.result])).toEqual([
      ['create-order', 'SUCCEEDED', { step: 'create-order', by: 'test' }],
      ['validate-risk', 'SUCCEEDED', { step: 'validate-risk', by: 'test' }],
      ['process-settlement', 'SUCCEEDED', { step: 'process-settlement', by: 'test' }],
      ['compliance-check', 'SUCCEEDED', { step: 'compliance-check', by: 'test' }],
    ]);
    expect(saga.attempts.filter((a) => a.outcome === 'SUCCEEDED')).toHaveLength(4);
  });

  it('a business failure at step 3 compensates steps 2 and 1, in that order, once each', async () => {
    const saga = await run({ fail: 'process-settlement' });
    expect(saga).toMatchObject({
      status: 'COMPENSATED',
      failure: { step: 'process-settlement', reason: { code: 'TEST_REFUSED' } },
    });
    // Step 3 wrote its effect before refusing; the savepoint rolled it back.
    expect(await effectsOf(participantDb, saga.sagaId)).toEqual([
      { step: 'create-order', action: 'EXECUTE' },
      { step: 'validate-risk', action: 'EXECUTE' },
      { step: 'validate-risk', action: 'COMPENSATE' },
      { step: 'create-order', action: 'COMPENSATE' },
    ]);
    expect(saga.steps.map((s) => s.status)).toEqual([
      'COMPENSATED',
      'COMPENSATED',
      'FAILED',
      'PENDING',
    ]);
  });

  it('a participant that never answers step 2 gets its retries, then the saga compensates', async () => {
    const saga = await run({ silent: 'validate-risk' });
    expect(saga).toMatchObject({
      status: 'COMPENSATED',
      failure: { step: 'validate-risk', reason: { code: 'STEP_TIMED_OUT' } },
    });
    const executes = saga.attempts.filter(
      (a) => a.step === 'validate-risk' && a.action === 'EXECUTE',
    );
    expect(executes.map((a) => [a.attempt, a.outcome])).toEqual([
      [1, 'TIMED_OUT'],
      [2, 'TIMED_OUT'],
      [3, 'TIMED_OUT'],
    ]);
    // Step 2 is compensated too (it might have run unseen); the participant finds nothing to undo.
    const undo = saga.attempts
      .filter((a) => a.action === 'COMPENSATE')
      .map((a) => [a.step, a.result]);
    expect(undo).toEqual([
      ['validate-risk', { compensated: false }],
      ['create-order', null],
    ]);
    expect(await effectsOf(participantDb, saga.sagaId)).toEqual([
      { step: 'create-order', action: 'EXECUTE' },
      { step: 'create-order', action: 'COMPENSATE' },
    ]);
  });

  it('a compensation that keeps failing parks the saga and alerts on operations.events; retry after a repair finishes it', async () => {
    const saga = await run({ fail: 'compliance-check', brokenCompensation: 'process-settlement' });
    expect(saga).toMatchObject({
      status: 'PARKED',
      currentStep: 'process-settlement',
      parked: { step: 'process-settlement', reason: { code: 'TEST_UNDO_BROKEN' }, attempts: 3 },
    });
    const [alert] = await operationsOf(saga.sagaId, 'SagaParked');
    expect(alert.envelope.data).toEqual({
      sagaId: saga.sagaId,
      saga: 'post-trade',
      step: 'process-settlement',
      reason: { code: 'TEST_UNDO_BROKEN', message: 'process-settlement cannot be undone yet' },
      attempts: 3,
    });
    expect(alert.key).toBe(saga.sagaId);
    // Every failed undo was rolled back: none left an effect.
    expect(await effectsOf(participantDb, saga.sagaId)).toEqual([
      { step: 'create-order', action: 'EXECUTE' },
      { step: 'validate-risk', action: 'EXECUTE' },
      { step: 'process-settlement', action: 'EXECUTE' },
    ]);

    repairs.add(saga.sagaId);
    await orchestrator.retryNow(saga.sagaId, { actor: 'ops@desk', note: 'ledger reopened' });
    const done = await settled(saga.sagaId, ['COMPENSATED']);
    expect(done.status).toBe('COMPENSATED');
    expect(await effectsOf(participantDb, saga.sagaId)).toEqual([
      { step: 'create-order', action: 'EXECUTE' },
      { step: 'validate-risk', action: 'EXECUTE' },
      { step: 'process-settlement', action: 'EXECUTE' },
      { step: 'process-settlement', action: 'COMPENSATE' },
      { step: 'validate-risk', action: 'COMPENSATE' },
      { step: 'create-order', action: 'COMPENSATE' },
    ]);
    const [retried] = await operationsOf(saga.sagaId, 'OperatorActionRecorded');
    expect(retried.envelope.data).toMatchObject({
      actor: 'ops@desk',
      action: 'saga.retry',
      note: 'ledger reopened',
      result: 'PARKED -> COMPENSATING',
    });
  });

  it('resolving a parked saga records the operator action on operations.events', async () => {
    const saga = await run({ fail: 'validate-risk', brokenCompensation: 'create-order' });
    expect(saga.status).toBe('PARKED');
    const resolved = await orchestrator.resolveParked(saga.sagaId, {
      actor: 'ops@desk',
      note: 'order voided by hand',
    });
    expect(resolved.status).toBe('RESOLVED');
    const [recorded] = await operationsOf(saga.sagaId, 'OperatorActionRecorded');
    expect(recorded.envelope.data).toEqual({
      actor: 'ops@desk',
      action: 'saga.resolve',
      target: { kind: 'saga', id: saga.sagaId },
      note: 'order voided by hand',
      result: 'PARKED -> RESOLVED',
    });
    expect(recorded.envelope.metadata).toMatchObject({
      producer: 'trading',
      aggregateId: saga.sagaId,
    });
    expect((await orchestrator.get(saga.sagaId))?.resolution).toMatchObject({ actor: 'ops@desk' });
  });

  it('redelivered and re-sent commands and replies have no second effect', async () => {
    const saga = await run({ fail: 'compliance-check' });
    expect(saga.status).toBe('COMPENSATED');
    const effectsBefore = await effectsOf(participantDb, saga.sagaId);
    expect(effectsBefore).toHaveLength(6);
    const barrierRows = async () =>
      (
        (await participantDb.query(
          'SELECT count(*)::int AS n FROM saga_barrier WHERE saga_id = $1',
          [saga.sagaId],
        )) as Array<{ n: number }>
      )[0].n;
    const barrierBefore = await barrierRows();

    // 1. Kafka redelivers the very same records (same event ids): the inboxes drop them.
    const sent = saga.attempts.length;
    const answered = saga.attempts.filter((a) => a.replyId !== null).length;
    const mine = (r: { key: string | null }) => r.key === saga.sagaId;
    const commands = await readUntil(reader, topics.commands, mine, (rs) => rs.length >= sent);
    const replies = await readUntil(reader, topics.replies, mine, (rs) => rs.length >= answered);
    await produceRaw(reader, topics.commands, commands);
    await produceRaw(reader, topics.replies, replies);
    const redelivered = [...commands, ...replies].map((r) => r.envelope.metadata.eventId as string);
    await waitFor(
      'the redelivered records to be seen as duplicates',
      async () =>
        redelivered.filter((id) => handled.get(id)?.some((h) => h.outcome === 'duplicate')),
      (seen) => seen.length === redelivered.length,
    );

    // 2. The orchestrator's commands sent again as new messages (new event ids): the barrier
    // answers each with its first reply, and the orchestrator ignores those replies.
    const resent = commands.map((record) =>
      createEnvelope(SagaStepRequested, record.envelope.data as SagaCommandMessage['data'], {
        producer: 'trading',
        aggregateId: saga.sagaId,
        aggregateSequence: 1,
        correlationId: saga.correlationId,
      }),
    );
    await produceRaw(
      reader,
      topics.commands,
      resent.map((e) => ({ key: saga.sagaId, value: JSON.stringify(e), headers: kafkaHeaders(e) })),
    );
    const resentIds = resent.map((e) => e.metadata.eventId);
    const answers = await waitFor(
      'the participant to answer every re-sent command',
      async () =>
        (await participantDb.query(
          `SELECT payload->'metadata'->>'eventId' AS id FROM outbox
            WHERE payload->'metadata'->>'causationId' = ANY ($1)`,
          [resentIds],
        )) as Array<{ id: string }>,
      (rows) => rows.length === resent.length,
    );
    await waitFor(
      'the orchestrator to consume those answers',
      async () => answers.filter((a) => handled.get(a.id)?.some((h) => h.outcome === 'handled')),
      (seen) => seen.length === answers.length,
    );

    expect(await effectsOf(participantDb, saga.sagaId)).toEqual(effectsBefore);
    expect(await barrierRows()).toBe(barrierBefore);
    const after = await orchestrator.get(saga.sagaId);
    expect(after).toMatchObject({ status: 'COMPENSATED', version: saga.version });
    expect(after!.attempts).toHaveLength(saga.attempts.length);
  });
});
