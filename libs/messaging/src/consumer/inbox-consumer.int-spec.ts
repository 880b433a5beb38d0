// InboxConsumer on real Kafka and PostgreSQL: poison, retries, versions, outages, start and stop.
import { Envelope } from '@finance/contracts';
import { createLogger } from '@finance/platform';
import { createTestDatabase, testStack } from '@finance/testing';
import type { Kafka } from 'kafkajs';
import type { DataSource } from 'typeorm';
import { createKafka, HEADERS } from '../kafka';
import {
  committedTotal,
  credited,
  effectCounts,
  envelopeRecord,
  migratedDataSource,
  produce,
  readTopic,
  testMessages,
  TestMessages,
  waitFor,
  provisionTopic,
} from '../../test/consumer/support';
import { PermanentMessageError } from './errors';
import { HandledInfo, InboxConsumer, InboxConsumerOptions, InboxContext } from './inbox-consumer';

const logger = createLogger('inbox-consumer-test', process.env.TEST_LOG_LEVEL ?? 'silent');

interface Harness {
  kafka: Kafka;
  dataSource: DataSource;
  topic: string;
  messages: TestMessages;
  outcomes: HandledInfo[];
  start(overrides?: Partial<InboxConsumerOptions>): Promise<InboxConsumer>;
}

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
});

async function harness(label: string, partitions = 1): Promise<Harness> {
  const stack = testStack();
  const { definition, topic } = await provisionTopic(label, partitions);
  const db = await createTestDatabase(`inbox_${label}`);
  const dataSource = await migratedDataSource(db.url);
  cleanup.push(() => dataSource.destroy());
  const kafka = createKafka({ brokers: stack.kafkaBrokers, clientId: `inbox-${label}`, logger });
  const messages = testMessages(definition);
  const outcomes: HandledInfo[] = [];
  return {
    kafka,
    dataSource,
    topic,
    messages,
    outcomes,
    async start(overrides = {}) {
      const consumer = new InboxConsumer({
        name: `inbox-${label}-${Math.random().toString(36).slice(2, 8)}`,
        kafka,
        dataSource,
        logger,
        topics: [topic],
        catalog: messages.catalog,
        retry: { attempts: 3, initialDelayMs: 10, maxDelayMs: 50 },
        handle: writeEffect,
        onHandled: (info) => void outcomes.push(info),
        ...overrides,
      });
      cleanup.push(() => consumer.stop());
      await consumer.start();
      return consumer;
    },
  };
}

async function writeEffect(message: Envelope, ctx: InboxContext): Promise<void> {
  await ctx.manager.query('INSERT INTO effects (event_id, note) VALUES ($1, $2)', [
    message.metadata.eventId,
    message.type,
  ]);
}

function outcomesOf(h: Harness): string[] {
  return [...h.outcomes]
    .sort((a, b) => Number(a.offset) - Number(b.offset))
    .map((o) => `${o.offset}:${o.outcome}`);
}

describe('InboxConsumer', () => {
  it('dead-letters invalid JSON and invalid data with the error, and moves the partition on', async () => {
    const h = await harness('poison');
    const valid = [1, 2, 3, 4].map((n) => credited(h.messages, { account: 'acct-1', amount: n }));
    const badData = credited(h.messages, { account: 'acct-1', amount: 5 });
    const badDataValue = JSON.stringify({ ...badData, data: { account: 'acct-1', amount: -5 } });
    await produce(h.kafka, h.topic, [
      { ...envelopeRecord(valid[0]), partition: 0 },
      { ...envelopeRecord(valid[1]), partition: 0 },
      { key: 'acct-1', value: '{"type": "TestCredited", "data": ', partition: 0 },
      { ...envelopeRecord(badData), value: badDataValue, partition: 0 },
      { ...envelopeRecord(valid[2]), partition: 0 },
      { ...envelopeRecord(valid[3]), partition: 0 },
    ]);
    const consumer = await h.start();

    const dead = await readTopic(h.kafka, `${h.topic}.dlq`, 2);
    dead.sort(
      (a, b) =>
        Number(a.headers[HEADERS.originalOffset]) - Number(b.headers[HEADERS.originalOffset]),
    );
    expect(dead.map((r) => r.headers[HEADERS.originalOffset])).toEqual(['2', '3']);
    expect(dead[0].headers[HEADERS.error]).toMatch(/^invalid JSON: /);
    expect(dead[0].value?.toString()).toBe('{"type": "TestCredited", "data": ');
    expect(dead[0].key).toBe('acct-1');
    expect(dead[1].headers[HEADERS.error]).toMatch(/TestCredited data: amount/);
    expect(dead[1].value?.toString()).toBe(badDataValue);
    for (const record of dead) {
      expect(record.headers[HEADERS.originalTopic]).toBe(h.topic);
      expect(record.headers[HEADERS.originalPartition]).toBe('0');
    }
    // Original headers travel along.
    expect(dead[1].headers[HEADERS.eventId]).toBe(badData.metadata.eventId);

    await waitFor(
      'all six offsets',
      () => committedTotal(h.kafka, consumer.name, h.topic),
      (n) => n === 6,
    );
    expect(await effectCounts(h.dataSource)).toEqual({ rows: 4, distinct: 4 });
    expect(outcomesOf(h)).toEqual([
      '0:handled',
      '1:handled',
      '2:dead-lettered',
      '3:dead-lettered',
      '4:handled',
      '5:handled',
    ]);
  });

  it('retries a transient handler failure and has its effect once', async () => {
    const h = await harness('transient');
    const [before, flaky, after] = [1, 2, 3].map((n) =>
      credited(h.messages, { account: 'acct-1', amount: n }),
    );
    const calls = new Map<string, number>();
    await produce(
      h.kafka,
      h.topic,
      [before, flaky, after].map((e) => envelopeRecord(e)),
    );
    const consumer = await h.start({
      handle: async (message, ctx) => {
        const id = message.metadata.eventId;
        calls.set(id, (calls.get(id) ?? 0) + 1);
        await writeEffect(message, ctx);
        if (id === flaky.metadata.eventId && calls.get(id)! <= 2) {
          throw new Error('lock timeout, try again');
        }
      },
    });

    await waitFor(
      'three offsets',
      () => committedTotal(h.kafka, consumer.name, h.topic),
      (n) => n === 3,
    );
    expect(calls.get(flaky.metadata.eventId)).toBe(3);
    expect(await effectCounts(h.dataSource)).toEqual({ rows: 3, distinct: 3 });
    const rows = (await h.dataSource.query('SELECT event_id FROM effects WHERE event_id = $1', [
      flaky.metadata.eventId,
    ])) as unknown[];
    expect(rows).toHaveLength(1);
    expect(outcomesOf(h)).toEqual(['0:handled', '1:handled', '2:handled']);
  });

  it('hands a run to the run handler in one call, and redoes a failed run one message at a time', async () => {
    const h = await harness('runs');
    const records = [1, 2, 3, 4, 5, 6].map((n) =>
      credited(h.messages, { account: 'acct-1', amount: n }),
    );
    await produce(
      h.kafka,
      h.topic,
      records.map((e) => envelopeRecord(e)),
    );
    const runs: string[][] = [];
    const oneByOne: string[] = [];
    let failed = false;
    const consumer = await h.start({
      maxTransactionSize: 3,
      handle: async (message, ctx) => {
        oneByOne.push(message.metadata.eventId);
        await writeEffect(message, ctx);
      },
      handleRun: async (entries) => {
        runs.push(entries.map((e) => e.message.metadata.eventId));
        for (const { message, ctx } of entries) await writeEffect(message, ctx);
        // The second run fails after its effects were written: they must be rolled back.
        if (entries.some((e) => e.message.metadata.eventId === records[4].metadata.eventId)) {
          if (!failed) {
            failed = true;
            throw new Error('run failed');
          }
        }
      },
    });

    await waitFor(
      'six offsets',
      () => committedTotal(h.kafka, consumer.name, h.topic),
      (n) => n === 6,
    );
    const ids = records.map((r) => r.metadata.eventId);
    expect(runs).toEqual([ids.slice(0, 3), ids.slice(3, 6)]);
    expect(oneByOne).toEqual(ids.slice(3, 6));
    expect(await effectCounts(h.dataSource)).toEqual({ rows: 6, distinct: 6 });
    expect(outcomesOf(h)).toEqual(ids.map((_, i) => `${i}:handled`));
  });

  it('dead-letters a permanent failure at once and a transient one when retries run out', async () => {
    const h = await harness('exhausted');
    const [permanent, hopeless, fine] = [1, 2, 3].map((n) =>
      credited(h.messages, { account: 'acct-1', amount: n }),
    );
    const calls = new Map<string, number>();
    await produce(
      h.kafka,
      h.topic,
      [permanent, hopeless, fine].map((e) => envelopeRecord(e)),
    );
    const consumer = await h.start({
      maxTransactionSize: 1, // one by one, so the call counts are exact
      handle: async (message, ctx) => {
        const id = message.metadata.eventId;
        calls.set(id, (calls.get(id) ?? 0) + 1);
        if (id === permanent.metadata.eventId) throw new PermanentMessageError('account closed');
        if (id === hopeless.metadata.eventId) throw new Error('still failing');
        await writeEffect(message, ctx);
      },
    });

    const dead = await readTopic(h.kafka, `${h.topic}.dlq`, 2);
    const errors = Object.fromEntries(
      dead.map((r) => [r.headers[HEADERS.eventId], r.headers[HEADERS.error]]),
    );
    expect(errors[permanent.metadata.eventId]).toBe('PermanentMessageError: account closed');
    expect(errors[hopeless.metadata.eventId]).toBe(
      'Error: still failing (gave up after 3 attempts)',
    );
    expect(calls.get(permanent.metadata.eventId)).toBe(1);
    expect(calls.get(hopeless.metadata.eventId)).toBe(3);
    await waitFor(
      'three offsets',
      () => committedTotal(h.kafka, consumer.name, h.topic),
      (n) => n === 3,
    );
    expect(await effectCounts(h.dataSource)).toEqual({ rows: 1, distinct: 1 });
    // Dead-lettered messages are not in the inbox: replaying them from the DLQ must work.
    const inbox = (await h.dataSource.query('SELECT event_id FROM inbox')) as Array<{
      event_id: string;
    }>;
    expect(inbox.map((r) => r.event_id)).toEqual([fine.metadata.eventId]);
  });

  it('records unknown types, parks newer versions (once) and skips those that ask for it', async () => {
    const h = await harness('versions');
    const base = credited(h.messages, { account: 'acct-1', amount: 1 });
    const unknown = {
      ...base,
      type: 'TestFromTheFuture',
      metadata: { ...base.metadata, type: 'TestFromTheFuture', eventId: fresh(base, 1) },
    };
    const parkable = {
      type: 'TestParkable',
      data: { note: 'v2 shape', extra: true },
      metadata: { ...base.metadata, type: 'TestParkable', version: 2, eventId: fresh(base, 2) },
    };
    const skippable = {
      type: 'TestSkippable',
      data: { note: 'v3 shape' },
      metadata: { ...base.metadata, type: 'TestSkippable', version: 3, eventId: fresh(base, 3) },
    };
    const valid = credited(h.messages, { account: 'acct-1', amount: 2 });
    await produce(
      h.kafka,
      h.topic,
      [unknown, parkable, skippable, valid, parkable].map((e) => envelopeRecord(e as Envelope)),
    );
    const consumer = await h.start();

    await waitFor(
      'five offsets',
      () => committedTotal(h.kafka, consumer.name, h.topic),
      (n) => n === 5,
    );
    expect(outcomesOf(h)).toEqual([
      '0:unknown-type',
      '1:parked',
      '2:skipped',
      '3:handled',
      '4:duplicate',
    ]);
    const parked = (await h.dataSource.query(
      'SELECT consumer, type, version, "offset", event_id, payload, reason FROM parked_messages',
    )) as Array<Record<string, unknown>>;
    expect(parked).toEqual([
      {
        consumer: consumer.name,
        type: 'TestParkable',
        version: 2,
        offset: '1',
        event_id: parkable.metadata.eventId,
        payload: JSON.parse(JSON.stringify(parkable)),
        reason: 'version 2 is newer than version 1 this build reads',
      },
    ]);
    expect(await effectCounts(h.dataSource)).toEqual({ rows: 1, distinct: 1 });
    const [{ count }] = (await h.dataSource.query('SELECT count(*)::int AS count FROM inbox')) as [
      { count: number },
    ];
    expect(count).toBe(4);
  });

  it('waits out a database connection that dies mid-transaction without dead-lettering', async () => {
    const h = await harness('connection');
    const envelopes = [1, 2, 3, 4, 5].map((n) => credited(h.messages, { account: 'a', amount: n }));
    let killed = false;
    await produce(
      h.kafka,
      h.topic,
      envelopes.map((e) => envelopeRecord(e)),
    );
    const consumer = await h.start({
      retry: { attempts: 1, initialDelayMs: 10, maxDelayMs: 50 }, // an outage must not use attempts
      handle: async (message, ctx) => {
        await writeEffect(message, ctx);
        if (!killed && message.metadata.eventId === envelopes[2].metadata.eventId) {
          killed = true;
          await ctx.manager.query('SELECT pg_terminate_backend(pg_backend_pid())');
        }
      },
    });

    await waitFor(
      'five offsets',
      () => committedTotal(h.kafka, consumer.name, h.topic),
      (n) => n === 5,
    );
    expect(killed).toBe(true);
    expect(await effectCounts(h.dataSource)).toEqual({ rows: 5, distinct: 5 });
    expect(h.outcomes.map((o) => o.outcome)).toEqual(Array(5).fill('handled'));
  });

  it('starts once joined, and stop() finishes the batch in flight and commits its offsets', async () => {
    const h = await harness('drain', 2);
    const consumer = await h.start({ maxTransactionSize: 1 });
    const admin = h.kafka.admin();
    await admin.connect();
    try {
      const { groups } = await admin.describeGroups([consumer.name]);
      expect(groups[0].state).toBe('Stable');
      expect(groups[0].members).toHaveLength(1);
    } finally {
      await admin.disconnect();
    }

    let entered: () => void = () => undefined;
    const firstHandlerEntered = new Promise<void>((resolve) => (entered = resolve));
    await consumer.stop();
    const slow = await h.start({
      maxTransactionSize: 1,
      handle: async (message, ctx) => {
        entered();
        await new Promise((resolve) => setTimeout(resolve, 150));
        await writeEffect(message, ctx);
      },
    });
    const envelopes = [1, 2, 3, 4].map((n) => credited(h.messages, { account: 'a', amount: n }));
    await produce(
      h.kafka,
      h.topic,
      envelopes.map((e) => ({ ...envelopeRecord(e), partition: 0 })),
    );
    await firstHandlerEntered;
    await slow.stop();

    const effects = await effectCounts(h.dataSource);
    expect(effects.rows).toBeGreaterThan(0);
    expect(effects.rows).toBe(effects.distinct);
    // Everything whose effect committed has its offset committed too: nothing left to redo.
    expect(await committedTotal(h.kafka, slow.name, h.topic)).toBe(effects.rows);
    expect(slow.status).toBe('stopped');
  });
});

// A distinct UUIDv7-shaped id derived from an envelope's id.
function fresh(envelope: Envelope, n: number): string {
  const id = envelope.metadata.eventId;
  return `${id.slice(0, 24)}${n.toString(16).padStart(12, '0')}`;
}
