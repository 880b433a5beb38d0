// Metrics of the inbox consumers in this process: messages by outcome (counted after their commit),
// and, read from Kafka when Prometheus scrapes, how far each group is behind per partition and how
// many records wait in the dead-letter topics of what it consumes.
import type { Admin, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { Counter, Gauge, Registry, register as defaultRegistry } from 'prom-client';

/** What the scrape needs to know about a running consumer. */
export interface LagSource {
  readonly group: string;
  readonly topics: readonly string[];
  readonly kafka: Kafka;
  readonly deadLetter: (topic: string) => string;
  readonly logger: Logger;
}

// Kafka must not hold up the whole scrape: past this the lag series are left out of it.
const KAFKA_QUERY_TIMEOUT_MS = 2_000;

interface Tracked {
  source: LagSource;
  admin?: Promise<Admin>;
}

const running = new Set<Tracked>();

export interface ConsumerMetrics {
  messages: Counter<'consumer' | 'topic' | 'outcome'>;
  /** Starts reporting lag and dead letters for a consumer; the returned function stops it. */
  track(source: LagSource): () => Promise<void>;
}

function track(source: LagSource): () => Promise<void> {
  const tracked: Tracked = { source };
  running.add(tracked);
  return async () => {
    running.delete(tracked);
    const admin = await tracked.admin?.catch(() => undefined);
    await admin?.disconnect().catch(() => undefined);
  };
}

export function consumerMetrics(registry: Registry = defaultRegistry): ConsumerMetrics {
  const existing = registry.getSingleMetric('inbox_messages_total');
  if (existing) return { messages: existing as ConsumerMetrics['messages'], track };
  const messages = new Counter({
    name: 'inbox_messages_total',
    help: 'Messages an inbox consumer settled, by outcome (handled, duplicate, dead-lettered, ...)',
    labelNames: ['consumer', 'topic', 'outcome'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'kafka_consumer_lag_messages',
    help: "Records of a partition after the consumer group's committed offset",
    labelNames: ['consumer', 'topic', 'partition'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      await Promise.all(
        [...running].map(async (tracked) => {
          for (const row of await bounded(tracked, lagOf)) {
            const { topic, partition, lag } = row;
            this.set({ consumer: tracked.source.group, topic, partition }, lag);
          }
        }),
      );
    },
  });
  new Gauge({
    name: 'kafka_dead_letter_messages',
    help: 'Records kept in a dead-letter topic of what this service consumes',
    labelNames: ['topic'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const seen = new Map<string, number>();
      await Promise.all(
        [...running].map(async (tracked) => {
          for (const row of await bounded(tracked, deadLettersOf)) seen.set(row.topic, row.count);
        }),
      );
      for (const [topic, count] of seen) this.set({ topic }, count);
    },
  });
  return { messages, track };
}

function admin(tracked: Tracked): Promise<Admin> {
  if (!tracked.admin) {
    const client = tracked.source.kafka.admin();
    tracked.admin = client.connect().then(
      () => client,
      (error: unknown) => {
        tracked.admin = undefined;
        throw error;
      },
    );
  }
  return tracked.admin;
}

async function bounded<T>(tracked: Tracked, query: (tracked: Tracked) => Promise<T[]>) {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      query(tracked),
      new Promise<T[]>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer from Kafka in ${KAFKA_QUERY_TIMEOUT_MS} ms`)),
          KAFKA_QUERY_TIMEOUT_MS,
        );
      }),
    ]);
  } catch (error) {
    tracked.source.logger.debug({ err: error }, 'consumer metrics: Kafka offsets unavailable');
    return [];
  } finally {
    clearTimeout(timer);
  }
}

async function lagOf(tracked: Tracked) {
  const client = await admin(tracked);
  const { group, topics } = tracked.source;
  const committed = await client.fetchOffsets({ groupId: group, topics: [...topics] });
  const rows: Array<{ topic: string; partition: string; lag: number }> = [];
  for (const { topic, partitions } of committed) {
    const ends = new Map(
      (await client.fetchTopicOffsets(topic)).map((p) => [p.partition, p] as const),
    );
    for (const { partition, offset } of partitions) {
      const end = ends.get(partition);
      if (!end) continue;
      // No commit yet: the group starts from the earliest retained record.
      const from = Number(offset) >= 0 ? Number(offset) : Number(end.low);
      rows.push({
        topic,
        partition: String(partition),
        lag: Math.max(0, Number(end.high) - from),
      });
    }
  }
  return rows;
}

async function deadLettersOf(tracked: Tracked) {
  const client = await admin(tracked);
  const rows: Array<{ topic: string; count: number }> = [];
  for (const source of tracked.source.topics) {
    const topic = tracked.source.deadLetter(source);
    const offsets = await client.fetchTopicOffsets(topic).catch(() => undefined);
    if (!offsets) continue; // a deployment without that dead-letter topic
    rows.push({
      topic,
      count: offsets.reduce((sum, p) => sum + Math.max(0, Number(p.high) - Number(p.low)), 0),
    });
  }
  return rows;
}
