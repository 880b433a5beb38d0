// Kafka consumer whose handler effect and inbox record commit in one PostgreSQL transaction.
import type { Envelope, MessageCatalog } from '@finance/contracts';
import {
  context,
  SpanKind,
  type Attributes,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
} from '@opentelemetry/api';
import {
  Partitioners,
  type Consumer,
  type ConsumerConfig,
  type EachBatchPayload,
  type Kafka,
  type KafkaMessage,
  type Producer,
} from 'kafkajs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { DataSource, EntityManager, QueryRunner } from 'typeorm';
import { backoffDelay, RetryPolicy, retryPolicy } from './backoff';
import { ConsumerMetrics, consumerMetrics } from './consumer-metrics';
import {
  ConsumerStoppingError,
  describeError,
  isUnavailableError,
  PermanentMessageError,
} from './errors';
import { Classified, classify, deadLetterHeaders, headerText } from './kafka-message';
import { consumerTracer, extractTraceContext, inConsumerSpan } from './tracing';

/** What a handler gets besides the message: the open transaction and where the message came from. */
export interface InboxContext {
  /** Bound to the transaction that also records the message in the inbox. */
  readonly manager: EntityManager;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly headers: Readonly<Record<string, string>>;
}

export type InboxHandler<M extends Envelope = Envelope> = (
  message: M,
  ctx: InboxContext,
) => Promise<void>;

/** One message of a run handed to a run handler, with the trace context of its processing span. */
export interface InboxRunEntry<M extends Envelope = Envelope> {
  readonly message: M;
  readonly ctx: InboxContext;
  /** Make it active (`context.with`) around whatever this message causes, e.g. outgoing envelopes. */
  readonly trace: Context;
}

/**
 * Handles every new message of a run (in order, all in the same transaction) in one call, so a
 * handler can apply them with a few set-based statements instead of a few statements each.
 */
export type InboxRunHandler<M extends Envelope = Envelope> = (
  entries: ReadonlyArray<InboxRunEntry<M>>,
) => Promise<void>;

/**
 * handled: the handler ran and committed. duplicate: already in the inbox, nothing ran.
 * unknown-type / skipped (newer version, `skip`) / parked (newer version, `park`): recorded in the
 * inbox without a handler. dead-lettered: copied to the dead-letter topic.
 */
export type InboxOutcome =
  'handled' | 'duplicate' | 'unknown-type' | 'skipped' | 'parked' | 'dead-lettered';

export interface HandledInfo {
  readonly consumer: string;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly eventId: string | null;
  readonly type: string | null;
  readonly outcome: InboxOutcome;
  /** Failed tries before the outcome (0 when the first try settled it). */
  readonly failures: number;
  /** Why it was dead-lettered. */
  readonly error?: string;
}

export interface InboxConsumerOptions<M extends Envelope = Envelope> {
  /** Kafka group id and the `consumer` column of the inbox. */
  readonly name: string;
  readonly kafka: Kafka;
  readonly dataSource: DataSource;
  readonly logger: Logger;
  /** Full topic names, prefix included. */
  readonly topics: readonly string[];
  readonly catalog: MessageCatalog<M>;
  readonly handle: InboxHandler<M>;
  /**
   * Optional: handles a run of several messages in one call instead of calling `handle` per message.
   * If it throws, the run is rolled back and redone one message at a time with `handle`, so it must
   * have the same effects as `handle` applied to each message in order.
   */
  readonly handleRun?: InboxRunHandler<M>;
  readonly retry?: Partial<RetryPolicy>;
  /** Errors to dead-letter without retrying (PermanentMessageError always is). */
  readonly isPermanent?: (error: unknown) => boolean;
  /** After the database commit, before the offset commit; errors are logged and ignored. */
  readonly onHandled?: (info: HandledInfo) => void | Promise<void>;
  /** Dead-letter topic of a source topic; default `<topic>.dlq`. */
  readonly deadLetter?: (topic: string) => string;
  /** Called when the Kafka consumer crashed and kafkajs will not restart it. */
  readonly onCrash?: (error: Error) => void;
  /** Most messages of one partition handled in one transaction (default 200). */
  readonly maxTransactionSize?: number;
  /** Partitions processed at the same time, each in order (default 4; each takes a pool connection). */
  readonly partitionsConsumedConcurrently?: number;
  /** Where a new group starts (default true: from the earliest retained message). */
  readonly fromBeginning?: boolean;
  /** Extra kafkajs consumer settings. */
  readonly consumerConfig?: Omit<ConsumerConfig, 'groupId'>;
}

export type InboxConsumerState = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped';

// A record of the batch being processed with its classification.
interface Item<M extends Envelope> {
  readonly record: KafkaMessage;
  readonly headers: Record<string, string>;
  readonly classified: Classified<M>;
}

// Records the inbox can hold (every record except poison ones has a valid event id).
interface RecordableItem<M extends Envelope> extends Item<M> {
  readonly classified: Exclude<Classified<M>, { kind: 'poison' }>;
}

interface Source {
  readonly topic: string;
  readonly partition: number;
}

// Sorted so concurrent transactions take the inbox locks in one order and cannot deadlock on them.
const INSERT_INBOX = `
  INSERT INTO inbox (consumer, event_id, topic, partition, "offset")
  SELECT $1, t.event_id, $2, $3, t.record_offset
    FROM unnest($4::uuid[], $5::bigint[]) AS t(event_id, record_offset)
   ORDER BY t.event_id
  ON CONFLICT (consumer, event_id) DO NOTHING
  RETURNING event_id`;

const INSERT_PARKED = `
  INSERT INTO parked_messages
    (consumer, topic, partition, "offset", event_id, type, version, payload, reason)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9)`;

const DEFAULT_MAX_TRANSACTION_SIZE = 200;
const DEFAULT_CONCURRENCY = 4;
// kafkajs heartbeats only when asked to; a wait longer than this would risk the session.
const HEARTBEAT_SLICE_MS = 1_000;

export class InboxConsumer<M extends Envelope = Envelope> {
  private readonly consumer: Consumer;
  private readonly producer: Producer;
  private readonly retry: RetryPolicy;
  private readonly log: Logger;
  private readonly tracer = consumerTracer();
  private readonly metrics: ConsumerMetrics = consumerMetrics();
  private untrack?: () => Promise<void>;
  private readonly maxTransactionSize: number;
  private readonly stopRequested = new AbortController();
  private state: InboxConsumerState = 'idle';
  private starting?: Promise<void>;
  private stopping?: Promise<void>;

  constructor(private readonly options: InboxConsumerOptions<M>) {
    if (!options.name) throw new Error('InboxConsumer needs a name (its Kafka group id)');
    if (options.topics.length === 0) throw new Error(`InboxConsumer ${options.name} has no topics`);
    this.maxTransactionSize = options.maxTransactionSize ?? DEFAULT_MAX_TRANSACTION_SIZE;
    if (!Number.isInteger(this.maxTransactionSize) || this.maxTransactionSize < 1) {
      throw new RangeError('maxTransactionSize must be a positive integer');
    }
    this.retry = retryPolicy(options.retry);
    this.log = options.logger.child({ consumer: options.name });
    this.consumer = options.kafka.consumer({
      maxWaitTimeInMs: 1_000, // bounds how long stop() waits for an idle fetch
      ...options.consumerConfig,
      groupId: options.name,
    });
    this.producer = options.kafka.producer({
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    this.consumer.on(this.consumer.events.CRASH, ({ payload }) => {
      if (payload.restart) return;
      this.log.error({ err: payload.error }, 'inbox consumer crashed and will not restart');
      options.onCrash?.(payload.error);
    });
  }

  get name(): string {
    return this.options.name;
  }

  get status(): InboxConsumerState {
    return this.state;
  }

  /** Resolves once the consumer has joined its group and is fetching. */
  start(): Promise<void> {
    if (this.state !== 'idle') {
      return Promise.reject(new Error(`inbox consumer ${this.name} is ${this.state}, not idle`));
    }
    this.state = 'starting';
    this.starting = this.connectAndRun().then(
      () => {
        this.state = 'running';
        this.untrack = this.metrics.track({
          group: this.name,
          topics: this.options.topics,
          kafka: this.options.kafka,
          deadLetter: this.options.deadLetter ?? defaultDeadLetterTopic,
          logger: this.log,
        });
      },
      async (error: unknown) => {
        this.state = 'stopped';
        await this.disconnectAll();
        throw error;
      },
    );
    return this.starting;
  }

  /** Finishes the batch in flight (waits for retries are cut short), commits, disconnects. */
  stop(): Promise<void> {
    this.stopping ??= this.drain();
    return this.stopping;
  }

  private async connectAndRun(): Promise<void> {
    await this.producer.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({
      topics: [...this.options.topics],
      fromBeginning: this.options.fromBeginning ?? true,
    });
    const { GROUP_JOIN, CRASH } = this.consumer.events;
    let removers: Array<() => void> = [];
    const joined = new Promise<void>((resolve, reject) => {
      removers = [
        this.consumer.on(GROUP_JOIN, () => resolve()),
        this.consumer.on(CRASH, ({ payload }) => {
          if (!payload.restart) reject(payload.error);
        }),
      ];
    });
    try {
      await this.consumer.run({
        // Offsets are committed only by processBatch, right after what they cover is durable.
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently:
          this.options.partitionsConsumedConcurrently ?? DEFAULT_CONCURRENCY,
        eachBatch: (payload) => this.processBatch(payload),
      });
      await joined;
    } finally {
      removers.forEach((remove) => remove());
    }
  }

  private async drain(): Promise<void> {
    if (this.state === 'idle') {
      this.state = 'stopped';
      return;
    }
    await this.starting?.catch(() => undefined);
    if (this.state === 'stopped') return;
    this.state = 'stopping';
    this.stopRequested.abort();
    try {
      await this.consumer.stop(); // waits for the batch in flight
    } finally {
      await this.disconnectAll();
      this.state = 'stopped';
    }
  }

  private async disconnectAll(): Promise<void> {
    const untrack = this.untrack;
    this.untrack = undefined;
    await Promise.allSettled([this.consumer.disconnect(), this.producer.disconnect(), untrack?.()]);
  }

  // One partition's batch, in order, as steps: a run of recordable messages (one transaction
  // when possible) or one poison message (dead-lettered). Each step ends with its offset commit.
  private async processBatch(payload: EachBatchPayload): Promise<void> {
    const { topic, partition } = payload.batch;
    const source: Source = { topic, partition };
    const items: Item<M>[] = payload.batch.messages.map((record) => ({
      record,
      headers: headerText(record.headers),
      classified: classify(this.options.catalog, record.value),
    }));
    try {
      let i = 0;
      while (i < items.length) {
        if (payload.isStale()) return; // seeked elsewhere: the rest will be fetched again
        const first = items[i];
        if (first.classified.kind === 'poison') {
          await this.deadLetter(source, first, first.classified.error, 0, payload);
          i += 1;
        } else {
          let end = i + 1;
          while (
            end < items.length &&
            end - i < this.maxTransactionSize &&
            items[end].classified.kind !== 'poison'
          ) {
            end += 1;
          }
          await this.processRun(source, items.slice(i, end) as RecordableItem<M>[], payload);
          i = end;
        }
        await this.commitThrough(source, items[i - 1].record.offset, payload);
      }
    } catch (error) {
      // Only a retry wait cut short by stop(); what is unresolved is fetched again next time.
      if (error instanceof ConsumerStoppingError) return;
      throw error;
    }
  }

  private async commitThrough(
    { topic, partition }: Source,
    offset: string,
    payload: EachBatchPayload,
  ): Promise<void> {
    payload.resolveOffset(offset);
    // After the batch's last message, skip past trailing control records of transactional
    // producers too (kafkajs resolves the same way).
    const { batch } = payload;
    const last = batch.messages[batch.messages.length - 1];
    const through = offset === last?.offset ? batch.lastOffset() : offset;
    const next = (BigInt(through) + 1n).toString();
    await payload.commitOffsetsIfNecessary({
      topics: [{ topic, partitions: [{ partition, offset: next }] }],
    });
    await payload.heartbeat();
  }

  // All in one transaction; if a handler fails, the run is rolled back and redone one by one so
  // only the failing message is retried and, if need be, dead-lettered.
  private async processRun(
    source: Source,
    run: RecordableItem<M>[],
    payload: EachBatchPayload,
  ): Promise<void> {
    if (run.length > 1) {
      for (let outages = 1; ; outages++) {
        try {
          const outcomes = await this.transaction(source, run, true);
          for (let k = 0; k < run.length; k++) await this.settled(source, run[k], outcomes[k], 0);
          return;
        } catch (error) {
          if (!isUnavailableError(error)) {
            this.log.debug(
              { topic: source.topic, partition: source.partition, err: error },
              'transaction of a run failed; handling its messages one by one',
            );
            break;
          }
          await this.waitForDatabase(error, outages, payload);
        }
      }
    }
    for (const item of run) await this.processOne(source, item, payload);
  }

  private async processOne(
    source: Source,
    item: RecordableItem<M>,
    payload: EachBatchPayload,
  ): Promise<void> {
    let failures = 0;
    for (let outages = 1; ;) {
      try {
        const [outcome] = await this.transaction(source, [item]);
        await this.settled(source, item, outcome, failures);
        return;
      } catch (error) {
        if (isUnavailableError(error)) {
          await this.waitForDatabase(error, outages++, payload);
          continue;
        }
        failures += 1;
        const permanent = this.isPermanent(error);
        if (permanent || failures >= this.retry.attempts) {
          const why = permanent
            ? describeError(error)
            : `${describeError(error)} (gave up after ${failures} attempts)`;
          await this.deadLetter(source, item, why, failures, payload);
          return;
        }
        const delayMs = backoffDelay(failures, this.retry);
        this.log.warn(
          { ...this.where(source, item), err: error, failures, delayMs },
          'message handler failed; retrying',
        );
        await this.wait(delayMs, payload);
      }
    }
  }

  private isPermanent(error: unknown): boolean {
    if (error instanceof PermanentMessageError) return true;
    try {
      return this.options.isPermanent?.(error) ?? false;
    } catch {
      return false;
    }
  }

  // Inbox rows for the whole run in one statement, then the handler for each message that was
  // not there yet (or the run handler once for all of them), then one commit.
  private async transaction(
    source: Source,
    run: RecordableItem<M>[],
    asRun = false,
  ): Promise<InboxOutcome[]> {
    const runner = this.options.dataSource.createQueryRunner();
    try {
      await runner.connect();
      await runner.startTransaction();
      const fresh = await this.recordInInbox(runner, source, run);
      const outcomes: InboxOutcome[] = [];
      const batched: RecordableItem<M>[] = [];
      for (const item of run) {
        // A message produced twice may sit twice in one run: only its first copy is fresh.
        if (!fresh.delete(item.classified.eventId)) outcomes.push('duplicate');
        else if (asRun && this.options.handleRun && item.classified.kind === 'message') {
          batched.push(item);
          outcomes.push('handled');
        } else outcomes.push(await this.apply(runner.manager, source, item));
      }
      if (batched.length > 0) await this.applyRun(runner.manager, source, batched);
      await runner.commitTransaction();
      return outcomes;
    } catch (error) {
      if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
      throw error;
    } finally {
      await runner.release().catch(() => undefined);
    }
  }

  private async recordInInbox(
    runner: QueryRunner,
    { topic, partition }: Source,
    run: RecordableItem<M>[],
  ): Promise<Set<string>> {
    const rows = (await runner.query(INSERT_INBOX, [
      this.name,
      topic,
      partition,
      run.map((item) => item.classified.eventId),
      run.map((item) => item.record.offset),
    ])) as Array<{ event_id: string }>;
    return new Set(rows.map((row) => row.event_id));
  }

  private async apply(
    manager: EntityManager,
    source: Source,
    item: RecordableItem<M>,
  ): Promise<InboxOutcome> {
    const { classified, record, headers } = item;
    switch (classified.kind) {
      case 'message': {
        const ctx: InboxContext = { manager, ...source, offset: record.offset, headers };
        await inConsumerSpan(
          this.tracer,
          source.topic,
          extractTraceContext(headers, classified.message.metadata),
          this.processAttributes(source, record.offset, classified),
          () => this.options.handle(classified.message, ctx),
        );
        return 'handled';
      }
      case 'unknown-type':
        return 'unknown-type';
      case 'newer-version':
        if (classified.action === 'skip') return 'skipped';
        await manager.query(INSERT_PARKED, [
          this.name,
          source.topic,
          source.partition,
          record.offset,
          classified.eventId,
          classified.type,
          classified.version,
          JSON.stringify(classified.payload),
          `version ${classified.version} is newer than version ${classified.known} this build reads`,
        ]);
        return 'parked';
      default: {
        const never: never = classified;
        throw new Error(`unhandled message kind ${JSON.stringify(never)}`);
      }
    }
  }

  // What a processing span says about the message it handles.
  private processAttributes(
    source: Source,
    offset: string,
    classified: Extract<Classified<M>, { kind: 'message' }>,
  ): Attributes {
    return {
      'messaging.system': 'kafka',
      'messaging.operation.type': 'process',
      'messaging.destination.name': source.topic,
      'messaging.destination.partition.id': String(source.partition),
      'messaging.consumer.group.name': this.name,
      'messaging.kafka.offset': Number(offset),
      'messaging.message.id': classified.eventId,
      'finance.message.type': classified.type,
      'finance.correlation_id': classified.message.metadata.correlationId,
    };
  }

  // The run handler with one processing span per message, as `apply` has for each.
  private async applyRun(
    manager: EntityManager,
    source: Source,
    items: RecordableItem<M>[],
  ): Promise<void> {
    const spans: Span[] = [];
    const entries: InboxRunEntry<M>[] = [];
    for (const { classified, record, headers } of items) {
      if (classified.kind !== 'message') continue;
      const parent = extractTraceContext(headers, classified.message.metadata);
      const span = this.tracer.startSpan(
        `${source.topic} process`,
        {
          kind: SpanKind.CONSUMER,
          attributes: {
            ...this.processAttributes(source, record.offset, classified),
            'messaging.batch.message_count': items.length,
          },
        },
        parent,
      );
      spans.push(span);
      entries.push({
        message: classified.message,
        ctx: { manager, ...source, offset: record.offset, headers },
        trace: trace.setSpan(parent, span),
      });
    }
    try {
      await context.with(entries[0].trace, () => this.options.handleRun!(entries));
    } catch (error) {
      for (const span of spans) {
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: error instanceof Error ? error.message : String(error),
        });
      }
      throw error;
    } finally {
      for (const span of spans) span.end();
    }
  }

  // After the database commit: one log line for what was not handled, then onHandled.
  private async settled(
    source: Source,
    item: RecordableItem<M>,
    outcome: InboxOutcome,
    failures: number,
  ): Promise<void> {
    const where = this.where(source, item);
    if (outcome === 'unknown-type') {
      this.log.info(where, 'message type unknown to this build; recorded and skipped');
    } else if (outcome === 'skipped' || outcome === 'parked') {
      const { classified } = item;
      const version = classified.kind === 'newer-version' ? classified.version : undefined;
      this.log.warn(
        { ...where, version },
        outcome === 'parked'
          ? 'message version newer than this build; parked for replay'
          : 'message version newer than this build; skipped',
      );
    }
    this.metrics.messages.inc({ consumer: this.name, topic: source.topic, outcome });
    await this.notify({ consumer: this.name, ...where, outcome, failures });
  }

  // The dead-letter copy must be durable before the offset moves past the original.
  private async deadLetter(
    source: Source,
    item: Item<M>,
    error: string,
    failures: number,
    payload: EachBatchPayload,
  ): Promise<void> {
    const topic = (this.options.deadLetter ?? defaultDeadLetterTopic)(source.topic);
    const { record } = item;
    const headers = deadLetterHeaders(record.headers, {
      consumer: this.name,
      ...source,
      offset: record.offset,
      error,
    });
    for (let sendFailures = 1; ; sendFailures++) {
      try {
        await this.producer.send({
          topic,
          acks: -1,
          messages: [{ key: record.key, value: record.value, headers }],
        });
        break;
      } catch (sendError) {
        const delayMs = backoffDelay(sendFailures, this.retry);
        this.log.error(
          { ...this.where(source, item), deadLetterTopic: topic, err: sendError, delayMs },
          'cannot write to the dead-letter topic; the partition waits',
        );
        await this.wait(delayMs, payload);
      }
    }
    const where = this.where(source, item);
    this.log.error({ ...where, deadLetterTopic: topic, error }, 'message dead-lettered');
    this.metrics.messages.inc({
      consumer: this.name,
      topic: source.topic,
      outcome: 'dead-lettered',
    });
    await this.notify({ consumer: this.name, ...where, outcome: 'dead-lettered', failures, error });
  }

  private async notify(info: HandledInfo): Promise<void> {
    if (!this.options.onHandled) return;
    try {
      await this.options.onHandled(info);
    } catch (error) {
      this.log.warn({ err: error, offset: info.offset }, 'onHandled failed; ignored');
    }
  }

  private async waitForDatabase(
    error: unknown,
    outages: number,
    payload: EachBatchPayload,
  ): Promise<void> {
    const delayMs = backoffDelay(outages, this.retry);
    this.log.warn(
      { err: error, outages, delayMs },
      'database unavailable; the partition waits and retries',
    );
    await this.wait(delayMs, payload);
  }

  // Sleeps in slices with heartbeats so a long wait keeps the group membership; stop() cuts it.
  private async wait(ms: number, payload: EachBatchPayload): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      if (this.stopRequested.signal.aborted || !payload.isRunning()) {
        throw new ConsumerStoppingError();
      }
      const left = deadline - Date.now();
      if (left <= 0) return;
      await sleep(Math.min(left, HEARTBEAT_SLICE_MS), undefined, {
        signal: this.stopRequested.signal,
      }).catch(() => undefined);
      await payload.heartbeat();
    }
  }

  private where(source: Source, item: Item<M>) {
    const { classified } = item;
    return {
      topic: source.topic,
      partition: source.partition,
      offset: item.record.offset,
      eventId: classified.eventId,
      type: classified.type,
    };
  }
}

export function defaultDeadLetterTopic(topic: string): string {
  return `${topic}.dlq`;
}
