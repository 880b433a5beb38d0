// Crash-test fixture process: inbox consumer writing `effects`, SIGKILLs itself after KILL_AFTER.
import { connectDatabase, createDataSource, createLogger } from '@finance/platform';
import { InboxConsumer } from '../../src/consumer';
import { createKafka } from '../../src/kafka';
import { testMessages } from './support';

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`crash-consumer: ${name} is required`);
  return value;
}

async function main(): Promise<void> {
  const topic = env('TOPIC');
  const killAfter = Number(process.env.KILL_AFTER ?? 0);
  const logger = createLogger('crash-consumer', process.env.LOG_LEVEL ?? 'warn');
  const dataSource = createDataSource({
    url: env('DATABASE_URL'),
    applicationName: 'crash-consumer',
    poolSize: 5,
    migrations: [],
  });
  await connectDatabase(dataSource, env('DATABASE_URL'));
  // Only the catalog's decoding matters here; the topic definition inside is irrelevant.
  const { catalog } = testMessages({
    name: topic,
    partitions: 1,
    retentionMs: 1,
    key: 'aggregateId',
    description: 'crash fixture',
  });
  const stats = { handled: 0, duplicates: 0 };
  const consumer = new InboxConsumer({
    name: env('GROUP'),
    kafka: createKafka({ brokers: env('KAFKA_BROKERS').split(','), clientId: 'crash', logger }),
    dataSource,
    logger,
    topics: [topic],
    catalog,
    maxTransactionSize: Number(process.env.MAX_TRANSACTION_SIZE ?? 200),
    // The killed member must leave the group quickly so the restarted one gets its partitions.
    consumerConfig: { sessionTimeout: 6_000, heartbeatInterval: 500 },
    handle: async (message, ctx) => {
      await ctx.manager.query('INSERT INTO effects (event_id, note) VALUES ($1, $2)', [
        message.metadata.eventId,
        `pid ${process.pid}`,
      ]);
    },
    onHandled: (info) => {
      if (info.outcome === 'duplicate') stats.duplicates += 1;
      if (info.outcome !== 'handled') return;
      stats.handled += 1;
      // onHandled runs after the transaction committed and before the offset commit.
      if (stats.handled === killAfter) process.kill(process.pid, 'SIGKILL');
    },
  });
  await consumer.start();
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
  // A clean stop reports what this run saw, for the test to check.
  process.once('SIGTERM', () => {
    void consumer
      .stop()
      .then(() => dataSource.destroy())
      .then(() => {
        process.stdout.write(`${JSON.stringify(stats)}\n`);
        process.exit(0);
      });
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`crash-consumer: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
