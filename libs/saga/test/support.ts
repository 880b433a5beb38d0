// Kafka and polling helpers of the saga integration tests.
import { Kafka, logLevel } from 'kafkajs';

export { waitFor } from '@finance/testing';

export interface TopicRecord {
  key: string | null;
  value: string;
  headers: Record<string, string>;
  envelope: { type: string; data: Record<string, unknown>; metadata: Record<string, unknown> };
}

export function quietKafka(brokers: string[]): Kafka {
  return new Kafka({ brokers, clientId: 'saga-test', logLevel: logLevel.NOTHING });
}

/**
 * Reads a topic from the start with a throw-away group until `enough` holds for the records that
 * `keep` accepts, or the timeout passes.
 */
export async function readUntil(
  kafka: Kafka,
  topic: string,
  keep: (record: TopicRecord) => boolean,
  enough: (records: TopicRecord[]) => boolean,
  timeoutMs = 30_000,
): Promise<TopicRecord[]> {
  const consumer = kafka.consumer({
    groupId: `saga-reader-${Math.random().toString(36).slice(2)}`,
    maxWaitTimeInMs: 200,
  });
  const records: TopicRecord[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    let finish: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (finish = resolve));
    await consumer.run({
      eachMessage: async ({ message }) => {
        const value = message.value?.toString() ?? '';
        const record: TopicRecord = {
          key: message.key?.toString() ?? null,
          value,
          headers: Object.fromEntries(
            Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]),
          ),
          envelope: JSON.parse(value) as TopicRecord['envelope'],
        };
        if (keep(record)) records.push(record);
        if (enough(records)) finish();
      },
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      done,
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`read ${records.length} matching records of ${topic}`)),
          timeoutMs,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    return records;
  } finally {
    await consumer.disconnect();
  }
}

export { produceRecords as produceRaw } from '@finance/testing';
