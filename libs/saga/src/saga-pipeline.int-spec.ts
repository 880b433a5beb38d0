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
import { SagaDeferredAnswers1765238400000 } from './migrations/saga-deferred-answers';
import { SagaOrchestrator, type SagaDetails } from './orchestrator/saga-orchestrator';
import type {
  DeferredCompletion,
  SagaCommandMessage,
  SagaParticipant,
} from './participant/saga-participant';
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
  postTradeSettledLater,
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
  let participant: SagaParticipant;
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
    const migrations = [
      MessagingTables1763769600000,
      SagaTables1764028800000,
      SagaDeferredAnswers1765238400000,
    ];
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
      definitions: [postTrade, postTradeSettledLater],
      logger,
      topicPrefix: prefix,
    });
    participant = postTradeParticipant(repairs, prefix);
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
        participant,
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
    return settled(await start('post-trade', scenario), until);
  }

  async function start(saga: string, scenario: Scenario): Promise<string> {
    const { sagaId } = await orchestrator.start(
      saga,
      { ...scenario, orderId: 'o-1' },
      {
        correlationId: `trade-${Math.random().toString(36).slice(2)}`,
      },
    );
    return sagaId;
  }

  /** The participant's row for a step's EXECUTE, once it exists. */
  const executeRow = (sagaId: string, step: string) =>
    waitFor(
      `the participant to record ${step} of ${sagaId}`,
      async () =>
        (
          (await participantDb.query(
            `SELECT outcome, attempt, reason FROM saga_barrier
              WHERE saga_id = $1 AND step = $2 AND action = 'EXECUTE'`,
            [sagaId, step],
          )) as Array<{ outcome: string; attempt: number | null; reason: { code: string } | null }>
        )[0],
      (row) => row !== undefined,
    );

  /** Replies the participant has sent (or will send) for a step. */
  const repliesOf = async (sagaId: string, step: string, action: string) =>
    (
      (await participantDb.query(
        `SELECT payload->'data' AS data FROM outbox
          WHERE message_key = $1 AND payload->'data'->>'step' = $2
            AND payload->'data'->>'action' = $3
          ORDER BY position`,
        [sagaId, step, action],
      )) as Array<{ data: { attempt: number; outcome: string } }>
    ).map((r) => r.data);

  const completeDeferred = (completion: DeferredCompletion) =>
    participantDb.transaction((manager) => participant.completeDeferred(manager, completion));

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

  describe('a settlement whose outcome is known only later', () => {
    const SETTLEMENT = 'process-settlement';
    const DEFER: Scenario = { defer: SETTLEMENT };

    it('waits without an answer, then completes on the one reply completeDeferred sends', async () => {
      const sagaId = await start(postTradeSettledLater.name, DEFER);
      expect(await executeRow(sagaId, SETTLEMENT)).toMatchObject({
        outcome: 'PENDING',
        attempt: 1,
      });
      expect(await repliesOf(sagaId, SETTLEMENT, 'EXECUTE')).toEqual([]);
      expect(await orchestrator.get(sagaId)).toMatchObject({
        status: 'RUNNING',
        currentStep: SETTLEMENT,
      });

      const result = { settledOn: '2025-12-11', cycle: 'T+1' };
      expect(
        await completeDeferred({ sagaId, step: SETTLEMENT, outcome: 'SUCCEEDED', result }),
      ).toBe(true);
      const saga = await settled(sagaId);
      expect(saga.status).toBe('COMPLETED');
      expect(saga.steps.find((s) => s.name === SETTLEMENT)?.result).toEqual(result);
      expect(
        saga.attempts.filter((a) => a.step === SETTLEMENT).map((a) => [a.attempt, a.outcome]),
      ).toEqual([[1, 'SUCCEEDED']]);
      expect(await repliesOf(sagaId, SETTLEMENT, 'EXECUTE')).toMatchObject([
        { attempt: 1, outcome: 'SUCCEEDED', result },
      ]);
      expect(await effectsOf(participantDb, sagaId)).toEqual([
        { step: 'create-order', action: 'EXECUTE' },
        { step: 'validate-risk', action: 'EXECUTE' },
        { step: SETTLEMENT, action: 'EXECUTE' },
        { step: 'compliance-check', action: 'EXECUTE' },
      ]);
    });

    it('answered FAILED: the earlier steps are compensated in reverse order and the saga ends COMPENSATED', async () => {
      const sagaId = await start(postTradeSettledLater.name, DEFER);
      await executeRow(sagaId, SETTLEMENT);
      const reason = { code: 'SETTLEMENT_FAILED', message: 'counterparty did not deliver' };
      expect(await completeDeferred({ sagaId, step: SETTLEMENT, outcome: 'FAILED', reason })).toBe(
        true,
      );
      const saga = await settled(sagaId);
      expect(saga).toMatchObject({ status: 'COMPENSATED', failure: { step: SETTLEMENT, reason } });
      expect(saga.steps.map((s) => s.status)).toEqual([
        'COMPENSATED',
        'COMPENSATED',
        'FAILED',
        'PENDING',
      ]);
      // The failed step itself is not compensated: its answer came with its effect undone.
      expect(saga.attempts.filter((a) => a.action === 'COMPENSATE').map((a) => a.step)).toEqual([
        'validate-risk',
        'create-order',
      ]);
      expect(await effectsOf(participantDb, sagaId)).toEqual([
        { step: 'create-order', action: 'EXECUTE' },
        { step: 'validate-risk', action: 'EXECUTE' },
        { step: SETTLEMENT, action: 'EXECUTE' },
        { step: 'validate-risk', action: 'COMPENSATE' },
        { step: 'create-order', action: 'COMPENSATE' },
      ]);
    });

    it('pending past all its attempts: compensated while pending, and the answer known afterwards is a no-op', async () => {
      // post-trade gives settlement 3 attempts of 1.5 s: the retries reach the pending step.
      const saga = await settled(await start(postTrade.name, DEFER));
      expect(saga).toMatchObject({
        status: 'COMPENSATED',
        failure: { step: SETTLEMENT, reason: { code: 'STEP_TIMED_OUT' } },
      });
      expect(
        saga.attempts
          .filter((a) => a.step === SETTLEMENT)
          .map((a) => [a.action, a.attempt, a.outcome]),
      ).toEqual([
        ['EXECUTE', 1, 'TIMED_OUT'],
        ['EXECUTE', 2, 'TIMED_OUT'],
        ['EXECUTE', 3, 'TIMED_OUT'],
        ['COMPENSATE', 1, 'SUCCEEDED'],
      ]);
      // Executed once whatever the retries, undone once, knowing it was pending.
      expect(await effectsOf(participantDb, saga.sagaId)).toEqual([
        { step: 'create-order', action: 'EXECUTE' },
        { step: 'validate-risk', action: 'EXECUTE' },
        { step: SETTLEMENT, action: 'EXECUTE' },
        { step: SETTLEMENT, action: 'COMPENSATE_PENDING' },
        { step: 'validate-risk', action: 'COMPENSATE' },
        { step: 'create-order', action: 'COMPENSATE' },
      ]);
      // Each retry moved the answer to its attempt, until the compensation closed the step.
      expect(await executeRow(saga.sagaId, SETTLEMENT)).toEqual({
        outcome: 'FAILED',
        attempt: 3,
        reason: expect.objectContaining({ code: 'SAGA_STEP_COMPENSATED_WHILE_PENDING' }),
      });
      expect(
        await completeDeferred({ sagaId: saga.sagaId, step: SETTLEMENT, outcome: 'SUCCEEDED' }),
      ).toBe(false);
      expect(await repliesOf(saga.sagaId, SETTLEMENT, 'EXECUTE')).toEqual([]);
      expect((await orchestrator.get(saga.sagaId))?.version).toBe(saga.version);
    });
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
