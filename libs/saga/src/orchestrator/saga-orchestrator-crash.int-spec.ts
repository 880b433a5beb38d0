// The orchestrator process SIGKILLed mid-saga (a reply applied, its offset not committed, the next
// command maybe unpublished) and started again: the saga finishes, each step ran exactly once.
import { ensureTopics } from '@finance/local-stack';
import { createKafka, MessagingTables1763769600000 } from '@finance/messaging';
import { createLogger, openDatabase } from '@finance/platform';
import {
  createTestDatabase,
  launchNodeScript,
  testStack,
  type ScriptProcess,
} from '@finance/testing';
import type { DataSource } from 'typeorm';
import { SagaTables1764028800000 } from '../migrations/saga-tables';
import { SagaDeferredAnswers1765238400000 } from '../migrations/saga-deferred-answers';
import { participantSide, sagaTopicSpecs, type Side } from '../../test/pipeline';
import {
  effectsOf,
  postTrade,
  postTradeParticipant,
  SagaTestEffects1764028800001,
} from '../../test/post-trade';
import { waitFor } from '../../test/support';
import { SagaOrchestrator } from './saga-orchestrator';

const FIXTURE = 'libs/saga/test/orchestrator-process.ts';

describe('orchestrator killed mid-saga', () => {
  const processes: ScriptProcess[] = [];
  let orchestratorDb: DataSource | undefined;
  let participantDb: DataSource | undefined;
  let participant: Side | undefined;

  afterAll(async () => {
    for (const p of processes) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await participant?.stop();
    await orchestratorDb?.destroy();
    await participantDb?.destroy();
  });

  it('resumes after a restart and completes with one effect per step', async () => {
    const stack = testStack();
    // Topics of its own: files running in parallel must not race to create the same ones.
    const prefix = `${stack.topicPrefix}saga-crash.`;
    await ensureTopics(stack.kafkaBrokers, sagaTopicSpecs(prefix));
    const logger = createLogger('saga-crash-test', 'error');
    const orchestratorUrl = (await createTestDatabase('saga_crash_orchestrator')).url;
    orchestratorDb = await openDatabase({
      url: orchestratorUrl,
      applicationName: 'saga-crash-test',
      poolSize: 4,
      migrations: [
        MessagingTables1763769600000,
        SagaTables1764028800000,
        SagaDeferredAnswers1765238400000,
      ],
    });
    participantDb = await openDatabase({
      url: (await createTestDatabase('saga_crash_participant')).url,
      applicationName: 'saga-crash-participant',
      poolSize: 6,
      migrations: [
        MessagingTables1763769600000,
        SagaTables1764028800000,
        SagaDeferredAnswers1765238400000,
        SagaTestEffects1764028800001,
      ],
    });
    participant = participantSide({
      dataSource: participantDb,
      kafka: createKafka({ brokers: stack.kafkaBrokers, clientId: 'saga-crash', logger }),
      logger,
      prefix,
      group: `saga-crash-participant-${stack.runId}`,
      participant: postTradeParticipant(new Set(), prefix),
    });
    await participant.start();
    // Only writes to the orchestrator's database; the processes below do everything else.
    const starter = new SagaOrchestrator({
      dataSource: orchestratorDb,
      service: 'trading',
      definitions: [postTrade],
      logger,
      topicPrefix: prefix,
    });

    const env = {
      DATABASE_URL: orchestratorUrl,
      KAFKA_BROKERS: stack.kafkaBrokers.join(','),
      TOPIC_PREFIX: prefix,
      GROUP: `saga-crash-orchestrator-${stack.runId}`,
    };
    const first = launchNodeScript(FIXTURE, { env: { ...env, KILL_AFTER_REPLIES: '2' } });
    processes.push(first);
    // Started once the process runs, so its start-up does not eat the first step's timeout.
    await waitFor(
      'the orchestrator process',
      async () => first.output(),
      (out) => out.includes('"ready":true'),
    );
    const { sagaId } = await starter.start(
      'post-trade',
      { orderId: 'o-9' },
      { correlationId: 'trade-9' },
    );
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });

    const midway = await starter.get(sagaId);
    expect(midway).toMatchObject({ status: 'RUNNING', currentStep: 'process-settlement' });
    expect(midway!.steps.map((s) => s.status)).toEqual([
      'SUCCEEDED',
      'SUCCEEDED',
      'EXECUTING',
      'PENDING',
    ]);

    const second = launchNodeScript(FIXTURE, { env });
    processes.push(second);
    const done = await waitFor(
      'the saga to complete after the restart',
      () => starter.get(sagaId),
      (s) => s?.status === 'COMPLETED',
      90_000,
    );
    expect(await second.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    const stats = JSON.parse(second.output().trim().split('\n').pop() ?? '{}') as {
      applied: number;
      duplicates: number;
    };

    expect(await effectsOf(participantDb, sagaId)).toEqual([
      { step: 'create-order', action: 'EXECUTE' },
      { step: 'validate-risk', action: 'EXECUTE' },
      { step: 'process-settlement', action: 'EXECUTE' },
      { step: 'compliance-check', action: 'EXECUTE' },
    ]);
    expect(done!.steps.every((s) => s.status === 'SUCCEEDED')).toBe(true);
    // The reply applied just before the kill came again and was recognised.
    expect(stats.duplicates).toBeGreaterThanOrEqual(1);
    expect(stats.applied).toBeGreaterThanOrEqual(2);
  });
});
