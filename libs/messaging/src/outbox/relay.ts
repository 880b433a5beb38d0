// Publishes outbox rows to Kafka in order. One relay per database is the leader (a Postgres
// advisory lock held on its own connection); others wait, so no row is published twice in normal
// operation, and a crash between send and mark only means a row is sent again (consumers dedupe).
import { Kafka, Message, Partitioners, Producer } from 'kafkajs';
import { Client } from 'pg';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry, register as defaultRegistry } from 'prom-client';
import type { DataSource } from 'typeorm';
import type { PostgresConnectionOptions } from 'typeorm/driver/postgres/PostgresConnectionOptions';
import { startSendSpans } from './publish-tracing';

export interface OutboxRelayOptions {
  dataSource: DataSource;
  kafka: Kafka;
  logger: Logger;
  /** Rows per Kafka batch. */
  batchSize?: number;
  /** Fallback poll when no notification arrives (notifications wake it sooner). */
  pollIntervalMs?: number;
  /** Published rows older than this are deleted. */
  retainPublishedMs?: number;
  registry?: Registry;
  /** Called after a batch reached Kafka and before it is marked sent (instrumentation, fault tests). */
  afterSend?: (rows: number) => void | Promise<void>;
  /** How often a round starts from the lowest unpublished row (the safety net for late commits). */
  rescanIntervalMs?: number;
}

interface OutboxRow {
  position: string;
  /** Already sent (rows after the resume point are read whether sent or not). */
  published: boolean;
  topic: string;
  message_key: string;
  payload: string;
  headers: Record<string, string>;
}

// Distinct from the migration lock; one relay leader per database.
const LEADER_LOCK_KEY = 7_210_431_002;
const CHANNEL = 'outbox';
const PURGE_EVERY_MS = 60_000;
const MAX_BACKOFF_MS = 30_000;
// A relay stuck connecting to a dead broker must not hold up the service's shutdown.
const STOP_WAIT_MS = 5_000;
// Rows published since the last vacuum leave dead entries at the front of the unpublished index, so
// rounds resume after the last published position and rescan from the start only this often (to
// pick up a row whose transaction took a lower position but committed later).
const RESCAN_EVERY_MS = 1_000;
// A gap in the positions a round saw is usually a transaction still in flight: rounds keep resuming
// from before the gap (its commit's NOTIFY then finds the row at once) for this long, after which
// the gap is taken for a rolled-back position and left to the periodic rescan.
const GAP_WAIT_MS = 2_000;
// The producer puts one send's records for a partition into one record batch, and the broker refuses
// a batch over its message.max.bytes (1 MiB by default): each send carries at most this many payload
// bytes, whatever the number of rows.
const SEND_BYTES = 512 * 1024;

export class OutboxRelay {
  private readonly batchSize: number;
  private readonly pollIntervalMs: number;
  private readonly retainPublishedMs: number;
  private producer: Producer | undefined;
  private leaderConnection: Client | undefined;
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private lastPurge = 0;
  private leader = false;
  // Set by NOTIFY; a round that started before it may have missed the new rows.
  private notified = false;
  private resumeAfter = '0';
  private lastRescan = 0;
  private gapSince: number | undefined;
  private readonly metrics: ReturnType<typeof relayMetrics>;

  constructor(private readonly options: OutboxRelayOptions) {
    this.batchSize = options.batchSize ?? 2_000;
    this.pollIntervalMs = options.pollIntervalMs ?? 250;
    this.retainPublishedMs = options.retainPublishedMs ?? 24 * 60 * 60 * 1000;
    this.metrics = relayMetrics(options.registry ?? defaultRegistry, options.dataSource);
  }

  get isLeader(): boolean {
    return this.leader;
  }

  /** Starts the background loop; returns at once. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run().catch((error: unknown) => {
      this.options.logger.fatal({ err: error }, 'outbox relay stopped unexpectedly');
    });
  }

  /** Finishes the batch in flight, releases leadership and disconnects. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    this.interruptSleep?.();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.loop,
      new Promise((resolve) => (timer = setTimeout(resolve, STOP_WAIT_MS))),
    ]);
    clearTimeout(timer);
    if (this.loop) {
      await this.resign();
      await this.producer?.disconnect().catch(() => undefined);
    }
    this.loop = undefined;
  }

  /** Leads for one pass and publishes everything pending now; returns how many rows were published. */
  async drain(): Promise<number> {
    if (this.running) throw new Error('drain() is for a relay that is not started');
    this.running = true;
    try {
      await this.becomeLeader();
      return await this.publishRound(await this.ensureProducer());
    } finally {
      this.running = false;
      await this.resign();
      await this.producer?.disconnect().catch(() => undefined);
      this.producer = undefined;
    }
  }

  private async run(): Promise<void> {
    const { logger } = this.options;
    let failures = 0;
    while (this.running) {
      try {
        await this.becomeLeader();
        const producer = await this.ensureProducer();
        while (this.running) {
          await this.publishRound(producer);
          failures = 0;
          await this.purgeIfDue();
          await this.idle();
        }
      } catch (error) {
        failures++;
        const backoff = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(failures, 6));
        logger.error({ err: error, retryInMs: backoff }, 'outbox relay failed; retrying');
        await this.resign();
        await this.producer?.disconnect().catch(() => undefined);
        this.producer = undefined;
        await this.sleep(backoff);
      }
    }
    await this.resign();
    await this.producer?.disconnect().catch(() => undefined);
    this.producer = undefined;
  }

  private async becomeLeader(): Promise<void> {
    if (this.leader) return;
    const url = (this.options.dataSource.options as PostgresConnectionOptions).url;
    while (this.running) {
      const client = new Client({ connectionString: url, application_name: 'outbox-relay' });
      await client.connect();
      const { rows } = await client.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_lock($1) AS locked',
        [LEADER_LOCK_KEY],
      );
      if (rows[0].locked) {
        client.on('notification', () => {
          this.notified = true;
          this.wake?.();
        });
        client.on('error', (error) => {
          this.options.logger.warn({ err: error }, 'outbox relay lost its leader connection');
          this.leader = false;
          this.wake?.();
        });
        await client.query(`LISTEN ${CHANNEL}`);
        this.leaderConnection = client;
        this.leader = true;
        // Start before the oldest unpublished row (or after the newest row); the first round's
        // rescan covers anything still in flight below it.
        const { rows: start } = await client.query<{ after: string }>(
          `SELECT coalesce((SELECT min(position) - 1 FROM outbox WHERE published_at IS NULL),
                           (SELECT max(position) FROM outbox), 0)::text AS after`,
        );
        this.resumeAfter = start[0].after;
        this.lastRescan = 0;
        this.gapSince = undefined;
        this.options.logger.info('outbox relay is the leader');
        return;
      }
      await client.end();
      await this.sleep(1_000);
    }
  }

  private async resign(): Promise<void> {
    this.leader = false;
    const client = this.leaderConnection;
    this.leaderConnection = undefined;
    // Closing the session releases the advisory lock.
    await client?.end().catch(() => undefined);
  }

  private async ensureProducer(): Promise<Producer> {
    if (!this.producer) {
      const producer = this.options.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        // murmur2 on the key, as the Java client: the same key lands on the same partition everywhere.
        createPartitioner: Partitioners.DefaultPartitioner,
      });
      await producer.connect();
      this.producer = producer;
    }
    return this.producer;
  }

  /**
   * Publishes until the outbox is caught up; returns how many rows went out. A round reads every row
   * after the resume point, published or not, so a missing position shows for what it is: a
   * transaction still in flight (or a rolled-back position). Rounds resume from before such a gap, so
   * its row goes out on its own commit's NOTIFY; a gap older than GAP_WAIT_MS is passed, and the
   * periodic rescan of unpublished rows below the resume point catches whatever commits later still.
   * Kafka sends are strictly sequential (per-key order); marking batch N overlaps sending batch N + 1.
   */
  private async publishRound(producer: Producer): Promise<number> {
    if (!this.leader) throw new Error('only the leader publishes');
    this.notified = false;
    let total = 0;
    if (Date.now() - this.lastRescan >= (this.options.rescanIntervalMs ?? RESCAN_EVERY_MS)) {
      this.lastRescan = Date.now();
      const below = this.resumeAfter;
      total += await this.publishFrom(producer, '0', (after) => this.fetchLate(after, below));
    }
    let contiguous = BigInt(this.resumeAfter);
    let highest = contiguous;
    let gap = false;
    total += await this.publishFrom(
      producer,
      this.resumeAfter,
      (after) => this.fetchAfter(after),
      (position) => {
        if (position > highest) highest = position;
        if (!gap && position === contiguous + 1n) contiguous = position;
        else gap = true;
      },
    );
    this.advance(contiguous, gap, highest);
    return total;
  }

  private async publishFrom(
    producer: Producer,
    from: string,
    fetch: (after: string) => Promise<OutboxRow[]>,
    seen?: (position: bigint) => void,
  ): Promise<number> {
    let total = 0;
    let marking: Promise<void> = Promise.resolve();
    let next: Promise<OutboxRow[]> | undefined = fetch(from);
    try {
      while (next && this.running) {
        const rows: OutboxRow[] = await next;
        if (rows.length === 0) break;
        const started = process.hrtime.bigint();
        next = rows.length === this.batchSize ? fetch(rows[rows.length - 1].position) : undefined;
        if (seen) for (const row of rows) seen(BigInt(row.position));
        const pending = rows.filter((row) => !row.published);
        if (pending.length === 0) continue;
        for (const part of bySize(pending, SEND_BYTES)) {
          const spans = startSendSpans(part);
          try {
            await producer.sendBatch({
              acks: -1,
              topicMessages: groupByTopic(part, spans.headers),
            });
            spans.end();
          } catch (error) {
            spans.end(error);
            throw error;
          }
        }
        await this.options.afterSend?.(pending.length);
        await marking; // at most one batch is sent but not yet marked
        marking = this.mark(pending);
        total += pending.length;
        this.metrics.published.inc(pending.length);
        this.metrics.batchSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
      }
    } finally {
      await marking;
      await next?.catch(() => undefined);
    }
    return total;
  }

  // Where the next round resumes: after the last gap-free position, or past a gap that lasted.
  private advance(contiguous: bigint, gap: boolean, highest: bigint): void {
    if (!gap) {
      this.gapSince = undefined;
      this.resumeAfter = contiguous.toString();
      return;
    }
    this.gapSince ??= Date.now();
    if (Date.now() - this.gapSince >= GAP_WAIT_MS) {
      this.gapSince = undefined;
      this.resumeAfter = highest.toString();
    } else {
      this.resumeAfter = contiguous.toString();
    }
  }

  // Every row after a position, published or not (published ones without their payload).
  private fetchAfter(after: string): Promise<OutboxRow[]> {
    return this.options.dataSource.query(
      `SELECT position::text, published_at IS NOT NULL AS published, topic, message_key,
              CASE WHEN published_at IS NULL THEN payload::text END AS payload, headers
         FROM outbox WHERE outbox.position > $1
        ORDER BY outbox.position LIMIT $2`, // the table column, not its text cast
      [after, this.batchSize],
    );
  }

  // Unpublished rows at or below the resume point: commits that came after their gap was passed.
  private fetchLate(after: string, below: string): Promise<OutboxRow[]> {
    return this.options.dataSource.query(
      `SELECT position::text, false AS published, topic, message_key, payload::text AS payload, headers
         FROM outbox WHERE published_at IS NULL AND outbox.position > $1 AND outbox.position <= $3
        ORDER BY outbox.position LIMIT $2`,
      [after, this.batchSize, below],
    );
  }

  private async mark(rows: OutboxRow[]): Promise<void> {
    await this.options.dataSource.query(
      'UPDATE outbox SET published_at = clock_timestamp() WHERE position = ANY($1::bigint[])',
      [rows.map((r) => r.position)],
    );
  }

  private async purgeIfDue(): Promise<void> {
    if (Date.now() - this.lastPurge < PURGE_EVERY_MS) return;
    this.lastPurge = Date.now();
    await this.options.dataSource.query(
      `DELETE FROM outbox WHERE published_at < clock_timestamp() - ($1::bigint * interval '1 millisecond')`,
      [this.retainPublishedMs],
    );
  }

  private idle(): Promise<void> {
    if (this.notified) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, this.pollIntervalMs);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    });
  }

  private interruptSleep: (() => void) | undefined;

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.interruptSleep = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

// Rows keep their outbox order inside each topic, which keeps per-key order inside each partition.
/** Consecutive runs of rows whose payloads add up to at most `limit` bytes (a larger row goes alone). */
function bySize(rows: OutboxRow[], limit: number): OutboxRow[][] {
  const parts: OutboxRow[][] = [];
  let part: OutboxRow[] = [];
  let bytes = 0;
  for (const row of rows) {
    // The key, headers and record framing: a few hundred bytes at most.
    const size = Buffer.byteLength(row.payload) + 512;
    if (part.length > 0 && bytes + size > limit) {
      parts.push(part);
      part = [];
      bytes = 0;
    }
    part.push(row);
    bytes += size;
  }
  if (part.length > 0) parts.push(part);
  return parts;
}

function groupByTopic(
  rows: OutboxRow[],
  headers: ReadonlyArray<Record<string, string>>,
): Array<{ topic: string; messages: Message[] }> {
  const byTopic = new Map<string, Message[]>();
  rows.forEach((row, i) => {
    let messages = byTopic.get(row.topic);
    if (!messages) byTopic.set(row.topic, (messages = []));
    messages.push({ key: row.message_key, value: row.payload, headers: headers[i] });
  });
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}

function relayMetrics(registry: Registry, dataSource: DataSource) {
  const existing = registry.getSingleMetric('outbox_published_total');
  if (existing) {
    return {
      published: existing as Counter,
      batchSeconds: registry.getSingleMetric('outbox_publish_batch_seconds') as Histogram,
    };
  }
  new Gauge({
    name: 'outbox_lag_events',
    help: 'Outbox rows not yet published to Kafka',
    registers: [registry],
    async collect() {
      const [row] = await dataSource.query(
        'SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL',
      );
      this.set(row.n);
    },
  });
  new Gauge({
    name: 'outbox_lag_seconds',
    help: 'Age of the oldest outbox row not yet published',
    registers: [registry],
    async collect() {
      const [row] = await dataSource.query(
        `SELECT coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0)::float8 AS s
           FROM outbox WHERE published_at IS NULL`,
      );
      this.set(row.s);
    },
  });
  return {
    published: new Counter({
      name: 'outbox_published_total',
      help: 'Outbox rows published to Kafka',
      registers: [registry],
    }),
    batchSeconds: new Histogram({
      name: 'outbox_publish_batch_seconds',
      help: 'Time to publish one outbox batch and mark it sent',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
  };
}
