// Shared inbox consumer test pieces: message types, migrated database, producing, polling.
import {
  defineMessage,
  Envelope,
  MessageCatalog,
  TopicDefinition,
  topicName,
} from '@finance/contracts';
import { ensureTopics } from '@finance/local-stack';
import { openDatabase } from '@finance/platform';
import { testStack } from '@finance/testing';
import { IHeaders, Kafka } from 'kafkajs';
import type { DataSource, MigrationInterface, QueryRunner } from 'typeorm';
import { z } from 'zod';
import { createEnvelope } from '../../src/envelopes';
import { HEADERS } from '../../src/kafka';
import { MessagingTables1763769600000 } from '../../src/migrations/messaging-tables';

/** The effect every test handler has: one row per handled message, duplicates allowed. */
export class TestEffects1763769600001 implements MigrationInterface {
  name = 'TestEffects1763769600001';

  async up(db: QueryRunner): Promise<void> {
    // No unique constraint on purpose: a second effect must show up as a second row.
    await db.query(`
      CREATE TABLE effects (
        id         bigserial   PRIMARY KEY,
        event_id   uuid        NOT NULL,
        note       text        NOT NULL DEFAULT '',
        created_at timestamptz NOT NULL DEFAULT clock_timestamp()
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE effects');
  }
}

export async function migratedDataSource(url: string, poolSize = 10): Promise<DataSource> {
  return openDatabase({
    url,
    applicationName: 'inbox-consumer-test',
    poolSize,
    migrations: [MessagingTables1763769600000, TestEffects1763769600001],
  });
}

export function testTopic(label: string, partitions: number): TopicDefinition {
  return {
    name: `inbox.${label}.${Math.random().toString(36).slice(2, 8)}`,
    partitions,
    retentionMs: 60 * 60 * 1000,
    key: 'aggregateId',
    description: `inbox consumer test: ${label}`,
  };
}

/** Message types on one test topic, and their catalog. */
export function testMessages(topic: TopicDefinition) {
  const TestCredited = defineMessage({
    type: 'TestCredited',
    aggregateType: 'account',
    topic,
    schema: z.object({
      account: z.string().min(1),
      amount: z.number().int().positive(),
      n: z.number().int().optional(),
    }),
  });
  const TestParkable = defineMessage({
    type: 'TestParkable',
    aggregateType: 'account',
    topic,
    schema: z.object({ note: z.string() }),
  });
  const TestSkippable = defineMessage({
    type: 'TestSkippable',
    aggregateType: 'account',
    topic,
    schema: z.object({ note: z.string() }),
    onNewerVersion: 'skip',
  });
  return {
    TestCredited,
    TestParkable,
    TestSkippable,
    catalog: new MessageCatalog([TestCredited, TestParkable, TestSkippable]),
  };
}

export type TestMessages = ReturnType<typeof testMessages>;

export function credited(
  messages: TestMessages,
  data: { account: string; amount: number; n?: number },
): Envelope {
  return createEnvelope(messages.TestCredited, data, {
    producer: 'trading',
    aggregateId: data.account,
    aggregateSequence: 1,
    correlationId: `corr-${data.account}`,
  });
}

export interface RawRecord {
  key: string | null;
  value: string | Buffer | null;
  headers?: IHeaders;
  partition?: number;
}

/** The record the outbox relay would produce for an envelope. */
export function envelopeRecord(envelope: Envelope, extraHeaders: IHeaders = {}): RawRecord {
  return {
    key: envelope.metadata.aggregateId,
    value: JSON.stringify(envelope),
    headers: {
      [HEADERS.eventId]: envelope.metadata.eventId,
      [HEADERS.type]: envelope.type,
      [HEADERS.version]: String(envelope.metadata.version),
      [HEADERS.producer]: envelope.metadata.producer,
      [HEADERS.contentType]: 'application/json',
      ...(envelope.metadata.traceparent
        ? { [HEADERS.traceparent]: envelope.metadata.traceparent }
        : {}),
      ...extraHeaders,
    },
  };
}

export { produceRecords as produce, waitFor } from '@finance/testing';

export async function effectCounts(
  dataSource: DataSource,
): Promise<{ rows: number; distinct: number }> {
  const [row] = (await dataSource.query(
    'SELECT count(*)::int AS rows, count(DISTINCT event_id)::int AS distinct FROM effects',
  )) as Array<{ rows: number; distinct: number }>;
  return row;
}

/** Sum over partitions of the group's committed offsets (messages it has moved past). */
export async function committedTotal(
  kafka: Kafka,
  groupId: string,
  topic: string,
): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [entry] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return entry.partitions.reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
  } finally {
    await admin.disconnect();
  }
}

export function fullTopic(definition: TopicDefinition, prefix: string): string {
  return topicName(definition, prefix);
}

/** A test topic under the run's prefix, created with its dead-letter topic. */
export async function provisionTopic(
  label: string,
  partitions: number,
): Promise<{ definition: TopicDefinition; topic: string }> {
  const stack = testStack();
  const definition = testTopic(label, partitions);
  const topic = fullTopic(definition, stack.topicPrefix);
  await ensureTopics(stack.kafkaBrokers, [
    { name: topic, partitions },
    { name: `${topic}.dlq`, partitions: 1 },
  ]);
  return { definition, topic };
}

export interface ReadRecord {
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

/** The first `count` records of a topic, read by a throw-away group. */
export async function readTopic(kafka: Kafka, topic: string, count: number): Promise<ReadRecord[]> {
  const consumer = kafka.consumer({
    groupId: `reader-${Math.random().toString(36).slice(2)}`,
    maxWaitTimeInMs: 200,
  });
  const records: ReadRecord[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    let enough: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (enough = resolve));
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        records.push({
          partition,
          offset: message.offset,
          key: message.key?.toString() ?? null,
          value: message.value,
          headers: Object.fromEntries(
            Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]),
          ),
        });
        if (records.length >= count) enough();
      },
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      done,
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`read ${records.length}/${count} of ${topic}`)),
          30_000,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    return records;
  } finally {
    await consumer.disconnect();
  }
}
