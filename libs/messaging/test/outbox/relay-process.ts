// A relay in a process of its own, for tests that kill it. Env: DATABASE_URL, KAFKA_BROKERS,
// RELAY_BATCH_SIZE, and RELAY_KILL_AFTER_BATCH=n to SIGKILL itself after the n-th batch was sent
// to Kafka but before it was marked sent.
import { connectDatabase, createDataSource, createLogger } from '@finance/platform';
import { createKafka } from '../../src/kafka';
import { OutboxRelay } from '../../src/outbox/relay';

async function main(): Promise<void> {
  const url = process.env.DATABASE_URL!;
  const logger = createLogger('relay-fixture', 'warn');
  const dataSource = createDataSource({
    url,
    applicationName: 'relay-fixture',
    poolSize: 4,
    migrations: [],
  });
  await connectDatabase(dataSource, url);
  const killAfter = Number(process.env.RELAY_KILL_AFTER_BATCH ?? 0);
  let batches = 0;
  const relay = new OutboxRelay({
    dataSource,
    kafka: createKafka({
      brokers: process.env.KAFKA_BROKERS!.split(','),
      clientId: 'relay-fixture',
      logger,
    }),
    logger,
    batchSize: Number(process.env.RELAY_BATCH_SIZE ?? 500),
    pollIntervalMs: 50,
    afterSend: () => {
      if (killAfter > 0 && ++batches === killAfter) process.kill(process.pid, 'SIGKILL');
    },
  });
  relay.start();
  process.stdout.write('relay started\n');
  process.once('SIGTERM', () => {
    void relay
      .stop()
      .then(() => dataSource.destroy())
      .then(() => process.exit(0));
  });
}

void main();
