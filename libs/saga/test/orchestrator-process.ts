// The orchestrator in a process of its own (relay, reply consumer, ticking), for the test that
// SIGKILLs it mid-saga. Env: DATABASE_URL, KAFKA_BROKERS, TOPIC_PREFIX, GROUP, and
// KILL_AFTER_REPLIES=n to SIGKILL itself right after the n-th reply that moved a saga committed,
// before its Kafka offset is committed. On SIGTERM it stops cleanly and prints what it saw.
import { connectDatabase, createDataSource, createLogger } from '@finance/platform';
import { createKafka } from '@finance/messaging';
import { SagaOrchestrator } from '../src/orchestrator/saga-orchestrator';
import type { SagaReplyMessage } from '../src/participant/saga-participant';
import { orchestratorSide } from './pipeline';
import { postTrade } from './post-trade';

function env(name: string): string {
  const value = process.env[name];
  if (value === undefined) throw new Error(`orchestrator-process: ${name} is required`);
  return value;
}

async function main(): Promise<void> {
  const url = env('DATABASE_URL');
  const logger = createLogger('saga-orchestrator-process', process.env.LOG_LEVEL ?? 'error');
  const dataSource = createDataSource({
    url,
    applicationName: 'saga-orchestrator-process',
    poolSize: 6,
    migrations: [],
  });
  await connectDatabase(dataSource, url);
  const prefix = env('TOPIC_PREFIX');
  const orchestrator = new SagaOrchestrator({
    dataSource,
    service: 'trading',
    definitions: [postTrade],
    logger,
    topicPrefix: prefix,
  });
  const killAfter = Number(process.env.KILL_AFTER_REPLIES ?? 0);
  const stats = { applied: 0, duplicates: 0 };
  // Replies that moved a saga (not stale ones), known once their transaction commits.
  const moved = new Set<string>();
  const side = orchestratorSide({
    dataSource,
    kafka: createKafka({
      brokers: env('KAFKA_BROKERS').split(','),
      clientId: 'saga-orchestrator-process',
      logger,
    }),
    logger,
    prefix,
    group: env('GROUP'),
    orchestrator,
    tickMs: 100,
    handle: async (message, ctx) => {
      if (message.type !== 'SagaStepCompleted') return;
      const result = await orchestrator.onReply(message as SagaReplyMessage, ctx.manager);
      if (result === 'applied') moved.add(message.metadata.eventId);
    },
    onHandled: (info) => {
      if (info.outcome === 'duplicate') stats.duplicates += 1;
      if (info.outcome !== 'handled' || !info.eventId || !moved.has(info.eventId)) return;
      stats.applied += 1;
      // onHandled runs after the transaction committed and before the offset commit.
      if (stats.applied === killAfter) process.kill(process.pid, 'SIGKILL');
    },
  });
  await side.start();
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
  process.once('SIGTERM', () => {
    void side
      .stop()
      .then(() => dataSource.destroy())
      .then(() => {
        process.stdout.write(`${JSON.stringify(stats)}\n`);
        process.exit(0);
      });
  });
}

main().catch((error: unknown) => {
  process.stderr.write(
    `orchestrator-process: ${error instanceof Error ? error.stack : String(error)}\n`,
  );
  process.exit(1);
});
