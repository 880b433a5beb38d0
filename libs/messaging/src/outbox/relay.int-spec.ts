// The relay under a crash: killed after a batch reached Kafka but before it was marked sent, then
// restarted. Every event must reach Kafka, in order per key, and duplicates must be the only cost.
import { defineMessage, MessageCatalog, TopicDefinition, topicName } from '@finance/contracts';
import { ensureTopics } from '@finance/local-stack';
import { createLogger, openDatabase } from '@finance/platform';
import { createTestDatabase, launchNodeScript, testStack, waitFor } from '@finance/testing';
import { Kafka, logLevel } from 'kafkajs';
import { Registry } from 'prom-client';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { z } from 'zod';
import { createEnvelope } from '../envelopes';
import { createKafka } from '../kafka';
import { MessagingTables1763769600000 } from '../migrations/messaging-tables';
import { enqueueOutbox, routeMessage } from './outbox';
import { OutboxRelay } from './relay';
import { InboxConsumer } from '../consumer';

const KEYS = 200;
const PER_KEY = 50;
const TOTAL = KEYS * PER_KEY;

const topic: TopicDefinition = {
  name: 'relay-crash.events',
  partitions: 10,
  retentionMs: 3_600_000,
  key: 'aggregateId',
  description: 'relay crash test',
};
const Numbered = defineMessage({
  type: 'Numbered',
  aggregateType: 'counter',
  topic,
  schema: z.object({ seq: z.number().int() }),
});
const catalog = new MessageCatalog([Numbered]);

async function pendingRows(dataSource: DataSource): Promise<number> {
  const [{ n }] = await dataSource.query(
    'SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL',
  );
  return n;
}

describe('outbox relay', () => {
  let dataSource: DataSource;
  let url: string;
  let fullTopic: string;

  beforeAll(async () => {
    const stack = testStack();
    fullTopic = topicName(topic, stack.topicPrefix);
    await ensureTopics(stack.kafkaBrokers, [{ name: fullTopic, partitions: topic.partitions }]);
    ({ url } = await createTestDatabase('relay'));
    dataSource = await openDatabase({
      url,
      applicationName: 'relay-test',
      poolSize: 4,
      migrations: [MessagingTables1763769600000],
    });
  });

  afterAll(async () => {
    await dataSource?.destroy();
  });

  it('publishes every one of 10,000 events in per-key order across a SIGKILL mid-batch', async () => {
    const stack = testStack();
    // seq 1 of every key, then seq 2, ... so each batch holds many keys and each key spans batches.
    for (let seq = 1; seq <= PER_KEY; seq += 5) {
      await dataSource.transaction(async (manager) => {
        const messages = [];
        for (let s = seq; s < seq + 5; s++) {
          for (let k = 0; k < KEYS; k++) {
            const envelope = createEnvelope(
              Numbered,
              { seq: s },
              {
                producer: 'trading',
                aggregateId: `key-${k}`,
                aggregateSequence: s,
                correlationId: `key-${k}`,
              },
            );
            messages.push(routeMessage(catalog, envelope, stack.topicPrefix));
          }
        }
        await enqueueOutbox(manager, messages);
      });
    }

    const env = {
      DATABASE_URL: url,
      KAFKA_BROKERS: stack.kafkaBrokers.join(','),
      RELAY_BATCH_SIZE: '1000',
    };
    const first = launchNodeScript('libs/messaging/test/outbox/relay-process.ts', {
      env: { ...env, RELAY_KILL_AFTER_BATCH: '3' },
    });
    expect((await first.exited).signal).toBe('SIGKILL');
    // A statement the dead process had already sent may still commit: wait until its sessions end.
    await waitFor(
      'the killed relay to leave the database',
      async () =>
        (
          await dataSource.query(
            `SELECT count(*)::int AS n FROM pg_stat_activity
              WHERE datname = current_database() AND application_name IN ('relay-fixture', 'outbox-relay')`,
          )
        )[0].n as number,
      (n) => n === 0,
    );
    const [{ published }] = await dataSource.query(
      'SELECT count(*)::int AS published FROM outbox WHERE published_at IS NOT NULL',
    );
    // Batch 3 reached Kafka unmarked; batch 2 may still have been marking when the process died.
    expect([1_000, 2_000]).toContain(published);

    const second = launchNodeScript('libs/messaging/test/outbox/relay-process.ts', { env });
    const deadline = Date.now() + 60_000;
    let pending = TOTAL;
    while (pending > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      [{ pending }] = await dataSource.query(
        'SELECT count(*)::int AS pending FROM outbox WHERE published_at IS NULL',
      );
    }
    expect(pending).toBe(0);
    expect(await second.stop('SIGTERM')).toEqual({ code: 0, signal: null });

    // Read the topic back and check each key's messages as they sit in their partition.
    const received = new Map<string, number[]>();
    let distinct = 0;
    const seen = new Set<string>();
    const consumer = new Kafka({
      brokers: stack.kafkaBrokers,
      logLevel: logLevel.NOTHING,
    }).consumer({
      groupId: `relay-check-${Date.now()}`,
    });
    await consumer.connect();
    await consumer.subscribe({ topic: fullTopic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`only ${distinct} of ${TOTAL} arrived`)),
        60_000,
      );
      void consumer.run({
        eachMessage: async ({ message }) => {
          const key = message.key!.toString();
          const { data } = JSON.parse(message.value!.toString()) as { data: { seq: number } };
          const list = received.get(key) ?? [];
          list.push(data.seq);
          received.set(key, list);
          if (!seen.has(`${key}/${data.seq}`)) {
            seen.add(`${key}/${data.seq}`);
            if (++distinct === TOTAL) {
              clearTimeout(timer);
              resolve();
            }
          }
        },
      });
    });
    await consumer.disconnect();

    expect(received.size).toBe(KEYS);
    const expected = Array.from({ length: PER_KEY }, (_, i) => i + 1);
    let duplicates = 0;
    for (const seqs of received.values()) {
      // A redelivered run may repeat earlier numbers, but nothing arrives ahead of its predecessor.
      let highest = 0;
      for (const seq of seqs) {
        expect(seq).toBeLessThanOrEqual(highest + 1);
        highest = Math.max(highest, seq);
      }
      expect([...new Set(seqs)]).toEqual(expected);
      duplicates += seqs.length - PER_KEY;
    }
    // The crash cost exactly the batches that were sent but not marked: they went out twice.
    expect(duplicates).toBe(3_000 - published);

    // A consumer with an inbox turns the at-least-once stream into exactly-once effects, in order.
    await dataSource.query(
      'CREATE TABLE effects (id bigserial PRIMARY KEY, key text NOT NULL, seq int NOT NULL, event_id uuid NOT NULL)',
    );
    const logger = createLogger('relay-test', 'silent');
    let handled = 0;
    const inbox = new InboxConsumer({
      name: `relay-crash-effects-${Date.now()}`,
      kafka: createKafka({ brokers: stack.kafkaBrokers, clientId: 'relay-crash-effects', logger }),
      dataSource,
      logger,
      topics: [fullTopic],
      catalog,
      handle: async (message, ctx) => {
        const { seq } = message.data as { seq: number };
        await ctx.manager.query('INSERT INTO effects (key, seq, event_id) VALUES ($1, $2, $3)', [
          message.metadata.aggregateId,
          seq,
          message.metadata.eventId,
        ]);
      },
      onHandled: (info) => {
        if (info.outcome === 'handled' || info.outcome === 'duplicate') handled++;
      },
    });
    await inbox.start();
    try {
      const until = Date.now() + 60_000;
      while (handled < TOTAL + duplicates && Date.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      await inbox.stop();
    }
    const [counts] = await dataSource.query(
      'SELECT count(*)::int AS effects, count(DISTINCT event_id)::int AS distinct_events FROM effects',
    );
    expect(counts).toEqual({ effects: TOTAL, distinct_events: TOTAL });
    const perKey: Array<{ key: string; seqs: number[] }> = await dataSource.query(
      'SELECT key, array_agg(seq ORDER BY id) AS seqs FROM effects GROUP BY key',
    );
    expect(perKey).toHaveLength(KEYS);
    for (const { seqs } of perKey) expect(seqs).toEqual(expected);
  });

  it('elects one leader among several relays, so no row is published twice, and reports its lag', async () => {
    const stack = testStack();
    const topicB: TopicDefinition = { ...topic, name: 'relay-leader.events' };
    const fullB = topicName(topicB, stack.topicPrefix);
    await ensureTopics(stack.kafkaBrokers, [{ name: fullB, partitions: 10 }]);
    const { url: urlB } = await createTestDatabase('relay_leader');
    const db = await openDatabase({
      url: urlB,
      applicationName: 'relay-leader',
      poolSize: 8,
      migrations: [MessagingTables1763769600000],
    });
    const catalogB = new MessageCatalog([{ ...Numbered, topic: topicB }]);
    const logger = createLogger('relay-test', 'silent');
    const registry = new Registry();
    const relays = [1, 2, 3].map(
      (i) =>
        new OutboxRelay({
          dataSource: db,
          kafka: createKafka({ brokers: stack.kafkaBrokers, clientId: `relay-${i}`, logger }),
          logger,
          batchSize: 300,
          pollIntervalMs: 20,
          registry,
        }),
    );
    try {
      await db.transaction(async (manager) => {
        const messages = [];
        for (let k = 0; k < 2_000; k++) {
          const envelope = createEnvelope(
            Numbered,
            { seq: 1 },
            {
              producer: 'trading',
              aggregateId: `key-${k}`,
              aggregateSequence: 1,
              correlationId: 'leader',
            },
          );
          messages.push(routeMessage(catalogB, envelope, stack.topicPrefix));
        }
        await enqueueOutbox(manager, messages);
      });
      const lag = async (name: string) =>
        (await registry.getSingleMetric(name)!.get()).values[0].value;
      expect(await lag('outbox_lag_events')).toBe(2_000);
      expect(await lag('outbox_lag_seconds')).toBeGreaterThan(0);

      for (const relay of relays) relay.start();
      const deadline = Date.now() + 30_000;
      while ((await pendingRows(db)) > 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(await pendingRows(db)).toBe(0);
      expect(relays.filter((r) => r.isLeader)).toHaveLength(1);
      expect(await lag('outbox_lag_events')).toBe(0);

      const admin = new Kafka({ brokers: stack.kafkaBrokers, logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      const offsets = await admin.fetchTopicOffsets(fullB);
      await admin.disconnect();
      expect(offsets.reduce((sum, p) => sum + Number(p.high), 0)).toBe(2_000);
    } finally {
      await Promise.all(relays.map((r) => r.stop()));
      await db.destroy();
    }
  });

  it('publishes a row that took a lower position but committed later on its own commit, not at the next rescan', async () => {
    const stack = testStack();
    const logger = createLogger('relay-test', 'silent');
    // The periodic rescan is pushed out of the test's reach: only the commit's NOTIFY can find the row.
    const relay = new OutboxRelay({
      dataSource,
      kafka: createKafka({ brokers: stack.kafkaBrokers, clientId: 'relay-late', logger }),
      logger,
      pollIntervalMs: 60_000,
      rescanIntervalMs: 600_000,
      registry: new Registry(),
    });
    const row = (seq: number) =>
      routeMessage(
        catalog,
        createEnvelope(
          Numbered,
          { seq },
          {
            producer: 'trading',
            aggregateId: `late-${seq}`,
            aggregateSequence: 1,
            correlationId: 'late',
          },
        ),
        stack.topicPrefix,
      );
    const published = async (seq: number) => {
      const [r] = await dataSource.query(
        `SELECT published_at FROM outbox WHERE payload->'data'->>'seq' = $1`,
        [String(seq)],
      );
      return r?.published_at != null;
    };
    await waitFor(
      'the backlog to drain',
      () => pendingRows(dataSource),
      (n) => n === 0,
    ).catch(() => undefined);
    relay.start();
    try {
      // A first row once the relay leads, so its resume point is set before the race below.
      await waitFor('leadership', async () => relay.isLeader, Boolean, 20_000);
      await dataSource.transaction((manager) => enqueueOutbox(manager, [row(900_000)]));
      await waitFor('the first row', () => published(900_000), Boolean, 20_000);
      // Transaction A takes a position and stays open while B, with a higher position, commits.
      const runner = dataSource.createQueryRunner();
      await runner.connect();
      await runner.startTransaction();
      await enqueueOutbox(runner.manager, [row(900_001)]);
      await dataSource.transaction((manager) => enqueueOutbox(manager, [row(900_002)]));
      await waitFor('the later row', () => published(900_002), Boolean, 20_000);
      await runner.commitTransaction();
      await runner.release();
      await waitFor('the earlier row', () => published(900_001), Boolean, 20_000);
    } finally {
      await relay.stop();
    }
  });

  it('publishes rows that together exceed what the broker takes in one batch, in order', async () => {
    const stack = testStack();
    const logger = createLogger('relay-test', 'silent');
    const relay = new OutboxRelay({
      dataSource,
      kafka: createKafka({ brokers: stack.kafkaBrokers, clientId: 'relay-large', logger }),
      logger,
      registry: new Registry(),
    });
    await waitFor(
      'the backlog to drain',
      () => pendingRows(dataSource),
      (n) => n === 0,
    ).catch(() => undefined);
    // 24 rows of 100 kB on one key: one partition, about 2.4 MB, over the broker's 1 MiB per batch.
    const padding = 'x'.repeat(100_000);
    const rows = Array.from({ length: 24 }, (_, i) =>
      routeMessage(
        catalog,
        {
          ...createEnvelope(
            Numbered,
            { seq: 800_000 + i },
            {
              producer: 'trading',
              aggregateId: 'large',
              aggregateSequence: i + 1,
              correlationId: 'large',
            },
          ),
          padding,
        } as never,
        stack.topicPrefix,
      ),
    );
    await dataSource.transaction((manager) => enqueueOutbox(manager, rows));
    const consumer = new Kafka({
      brokers: stack.kafkaBrokers,
      logLevel: logLevel.NOTHING,
    }).consumer({ groupId: `${stack.topicPrefix}relay-large` });
    const seen: number[] = [];
    relay.start();
    try {
      await waitFor(
        'every large row published',
        () => pendingRows(dataSource),
        (n) => n === 0,
        30_000,
      );
      await consumer.connect();
      await consumer.subscribe({ topic: fullTopic, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          if (message.key?.toString() !== 'large') return;
          seen.push(JSON.parse(message.value!.toString()).data.seq);
        },
      });
      await waitFor(
        'every large row consumed',
        async () => seen.length,
        (n) => n >= 24,
        30_000,
      );
      expect(seen).toEqual(rows.map((_, i) => 800_000 + i));
    } finally {
      await consumer.disconnect();
      await relay.stop();
    }
  });

  it('wakes the relay when an outbox write commits, not before and not on rollback', async () => {
    const listener = new Client({ connectionString: url });
    await listener.connect();
    const notifications: string[] = [];
    listener.on('notification', (n) => notifications.push(n.channel));
    await listener.query('LISTEN outbox');
    const envelope = () =>
      routeMessage(
        catalog,
        createEnvelope(
          Numbered,
          { seq: 1 },
          {
            producer: 'trading',
            aggregateId: 'notify',
            aggregateSequence: 1,
            correlationId: 'notify',
          },
        ),
      );
    const settle = () => new Promise((resolve) => setTimeout(resolve, 200));
    try {
      await dataSource
        .transaction(async (manager) => {
          await enqueueOutbox(manager, [envelope()]);
          throw new Error('roll back');
        })
        .catch(() => undefined);
      await settle();
      expect(notifications).toEqual([]);

      await dataSource.transaction(async (manager) => {
        await enqueueOutbox(manager, [envelope()]);
        await settle();
        expect(notifications).toEqual([]); // still uncommitted
      });
      await settle();
      expect(notifications).toEqual(['outbox']);
    } finally {
      await listener.end();
    }
  });
});
