// Event store → outbox → relay → Kafka → inbox consumer, measured stage by stage and end to end.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defineMessage, MessageCatalog, TopicDefinition, topicName } from '@finance/contracts';
import { EventStore, EventStoreTables1763856000000, EXPECTED } from '@finance/event-store';
import { ensureTopics } from '@finance/local-stack';
import {
  createEnvelope,
  createKafka,
  InboxConsumer,
  MessagingTables1763769600000,
  OutboxRelay,
} from '@finance/messaging';
import { createLogger, openDatabase } from '@finance/platform';
import { localDir } from '@finance/testing';
import { Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import { z } from 'zod';
import { formatSummary, machine, summarize, Summary } from './stats';
import { provisionBench, waitFor } from './support';

const topic: TopicDefinition = {
  name: 'bench.events',
  partitions: 10,
  retentionMs: 3_600_000,
  key: 'aggregateId',
  description: 'benchmark events',
};
const Measured = defineMessage({
  type: 'Measured',
  aggregateType: 'bench',
  topic,
  schema: z.object({ n: z.number().int(), note: z.string() }),
});
const catalog = new MessageCatalog([Measured]);

function benchEvents(aggregateId: string, count: number) {
  return Array.from({ length: count }, (_, i) =>
    createEnvelope(
      Measured,
      { n: i, note: 'benchmark event with a short payload' },
      {
        producer: 'trading',
        aggregateId,
        aggregateSequence: i + 1,
        correlationId: aggregateId,
      },
    ),
  );
}

/** Appends `total` events as streams of `batch` events from `writers` concurrent loops. */
async function appendAll(
  store: EventStore,
  total: number,
  batch: number,
  writers: number,
  prefix: string,
): Promise<{ seconds: number; latencies: number[] }> {
  const streams = Math.ceil(total / batch);
  let next = 0;
  const latencies: number[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: writers }, async () => {
      while (next < streams) {
        const stream = next++;
        const aggregateId = `${prefix}-${stream}`;
        const events = benchEvents(aggregateId, Math.min(batch, total - stream * batch));
        const t0 = performance.now();
        await store.append(aggregateId, events, { expectedVersion: EXPECTED.NO_STREAM });
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return { seconds: (performance.now() - started) / 1000, latencies };
}

/** Appends at a steady `rate` (events/s) in appends of `batch`, without waiting for each to finish. */
async function appendPaced(
  store: EventStore,
  total: number,
  batch: number,
  rate: number,
  prefix: string,
) {
  const appends = Math.ceil(total / batch);
  const periodMs = (batch / rate) * 1000;
  const started = performance.now();
  const inFlight: Promise<unknown>[] = [];
  for (let a = 0; a < appends; a++) {
    const wait = started + a * periodMs - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const aggregateId = `${prefix}-${a}`;
    const events = benchEvents(aggregateId, batch);
    inFlight.push(store.append(aggregateId, events, { expectedVersion: EXPECTED.NO_STREAM }));
  }
  await Promise.all(inFlight);
}

export async function eventStoreBenchmark(flags: Record<string, string>): Promise<void> {
  const total = Number(flags.events ?? 100_000);
  const batch = Number(flags.batch ?? 100);
  const writers = Number(flags.writers ?? 8);
  const live = Number(flags['live-events'] ?? total / 2);
  const rate = Number(flags.rate ?? 5_000);
  const paced = Number(flags['paced-events'] ?? rate * 10);
  if (flags['no-notify'] !== undefined)
    process.stdout.write('outbox NOTIFY trigger dropped: the relay polls\n');
  process.stdout.write(
    `event-store: ${total.toLocaleString('en-US')} events, ${batch} per append, ${writers} writers; ` +
      `live pipeline ${live.toLocaleString('en-US')} events; paced ${paced.toLocaleString('en-US')} at ${rate}/s\n`,
  );

  await provisionBench(['events'], async ({ urls: [url], kafkaBrokers, prefix }) => {
    const fullTopic = topicName(topic, prefix);
    await ensureTopics(kafkaBrokers, [{ name: fullTopic, partitions: topic.partitions }]);
    const logger = createLogger('bench', 'warn');
    const dataSource: DataSource = await openDatabase({
      url,
      applicationName: 'bench',
      poolSize: writers + 6,
      migrations: [MessagingTables1763769600000, EventStoreTables1763856000000],
    });
    if (flags['no-notify'] !== undefined) {
      // Compare: the commit-time NOTIFY takes a server-wide lock; without it the relay only polls.
      await dataSource.query('DROP TRIGGER outbox_inserted ON outbox');
    }
    const store = new EventStore(dataSource, { outbox: { catalog, topicPrefix: prefix } });
    const kafka = createKafka({ brokers: kafkaBrokers, clientId: 'bench', logger });
    const results: Record<string, Summary> = {};
    const report = (label: string, s: Summary) => {
      results[label] = s;
      process.stdout.write(`${formatSummary(label, s)}\n`);
    };

    try {
      // 1. Appends alone (each append also writes its outbox rows in the same transaction).
      const appended = await appendAll(store, total, batch, writers, 'backlog');
      report(
        `append (${batch}/append, with outbox)`,
        summarize(total, appended.seconds, appended.latencies),
      );

      // 2. The relay drains the backlog to Kafka.
      const relay = new OutboxRelay({
        dataSource,
        kafka,
        logger,
        batchSize: 5_000,
        registry: new Registry(),
      });
      let t0 = performance.now();
      await relay.drain();
      report('relay → kafka (backlog)', summarize(total, (performance.now() - t0) / 1000));

      // 3. The inbox consumer drains the topic.
      let handled = 0;
      const latencies: number[] = [];
      let measureLatency = false;
      const consumer = new InboxConsumer({
        name: `${prefix}consumer`,
        kafka,
        dataSource,
        logger,
        topics: [fullTopic],
        catalog,
        maxTransactionSize: 500,
        partitionsConsumedConcurrently: 4,
        handle: async (message) => {
          if (measureLatency) latencies.push(Date.now() - Date.parse(message.metadata.occurredAt));
        },
        onHandled: () => {
          handled++;
        },
      });
      t0 = performance.now();
      await consumer.start();
      await waitFor(() => handled >= total, 300_000, 'the consumer to drain the topic');
      report('inbox consumer (backlog)', summarize(total, (performance.now() - t0) / 1000));

      // 4. Everything live: writers append while the relay and the consumer run.
      relay.start();
      handled = 0;
      measureLatency = true;
      t0 = performance.now();
      const liveAppend = await appendAll(store, live, batch, writers, 'live');
      await waitFor(() => handled >= live, 300_000, 'the live events to be consumed');
      const seconds = (performance.now() - t0) / 1000;
      report(
        `live: append (${batch}/append)`,
        summarize(live, liveAppend.seconds, liveAppend.latencies),
      );
      report('live: append → consumed, end to end', summarize(live, seconds, latencies));

      // 5. A steady rate the pipeline keeps up with: latency without a backlog.
      handled = 0;
      latencies.length = 0;
      t0 = performance.now();
      await appendPaced(store, paced, batch, rate, 'paced');
      await waitFor(() => handled >= paced, 300_000, 'the paced events to be consumed');
      report(
        `paced ${rate}/s: append → consumed`,
        summarize(paced, (performance.now() - t0) / 1000, latencies),
      );
      const [relayDelay] = await dataSource.query(
        `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d) AS p50,
                percentile_cont(0.99) WITHIN GROUP (ORDER BY d) AS p99
           FROM (SELECT extract(epoch FROM published_at - created_at) * 1000 AS d
                   FROM outbox WHERE message_key LIKE 'paced-%') t`,
      );
      process.stdout.write(
        `${'  of which outbox → kafka (relay)'.padEnd(34)} p50 ${Number(relayDelay.p50).toFixed(1)} ms` +
          `  p99 ${Number(relayDelay.p99).toFixed(1)} ms\n`,
      );

      await consumer.stop();
      await relay.stop();
      const out = join(localDir(), 'reports');
      await mkdir(out, { recursive: true });
      await writeFile(
        join(out, 'bench-event-store.json'),
        JSON.stringify(
          { machine: machine(), total, batch, writers, live, rate, paced, results },
          null,
          2,
        ),
      );
    } finally {
      await dataSource.destroy();
    }
  });
}
