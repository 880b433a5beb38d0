// Nest transport on InboxConsumer: @EventPattern('<MessageType>') handlers, @Ctx() transaction.
import { Envelope, MessageCatalog, SYSTEM_CATALOG, topicName } from '@finance/contracts';
import { CustomTransportStrategy, Server } from '@nestjs/microservices';
import { context } from '@opentelemetry/api';
import { EventEmitter } from 'node:events';
import { isObservable, lastValueFrom } from 'rxjs';
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffDelay, retryPolicy } from './backoff';
import { HandlerFailedError } from './errors';
import {
  HandledInfo,
  InboxConsumer,
  InboxConsumerOptions,
  InboxContext,
  InboxRunEntry,
  InboxRunHandler,
} from './inbox-consumer';
import { InboxRpcContext } from './inbox-rpc.context';

/** Pass it as the transport of `@EventPattern(type, INBOX_KAFKA_TRANSPORT)` in a hybrid app. */
export const INBOX_KAFKA_TRANSPORT = Symbol('INBOX_KAFKA_TRANSPORT');

export interface InboxKafkaServerOptions extends Omit<
  InboxConsumerOptions,
  'topics' | 'handle' | 'catalog'
> {
  /** Where handled types are looked up (default SYSTEM_CATALOG). */
  readonly catalog?: MessageCatalog;
  /** KAFKA_TOPIC_PREFIX of the deployment. */
  readonly topicPrefix?: string;
  /**
   * Keep trying to join the group while Kafka is unreachable (backoff up to 30 s) instead of
   * failing `listen`; for services, which must come up and serve while the broker is down.
   */
  readonly retryStart?: boolean;
  /**
   * Which `@EventPattern(type, transport)` handlers this server runs (default
   * INBOX_KAFKA_TRANSPORT). A second server with its own transport and consumer group keeps one kind
   * of traffic from waiting behind another's batches.
   */
  readonly transportId?: symbol;
}

const START_RETRY = retryPolicy({ initialDelayMs: 1_000, maxDelayMs: 30_000 });

export type InboxKafkaEvents = {
  handled: (info: HandledInfo) => void;
  crash: (error: Error) => void;
};

export type InboxKafkaStatus = 'connecting' | 'connected' | 'disconnected' | 'crashed';

export class InboxKafkaServer
  extends Server<InboxKafkaEvents, InboxKafkaStatus>
  implements CustomTransportStrategy
{
  override transportId = INBOX_KAFKA_TRANSPORT;
  private consumer?: InboxConsumer;
  private closing = false;
  private readonly closed = new AbortController();
  private readonly emitter = new EventEmitter();
  private readonly runHandlers = new Map<string, InboxRunHandler>();

  constructor(private readonly options: InboxKafkaServerOptions) {
    super();
    if (options.transportId) this.transportId = options.transportId;
  }

  listen(callback: (...optionalParams: unknown[]) => unknown): void {
    this.start().then(
      () => callback(),
      (error: unknown) => callback(error),
    );
  }

  /** Finishes the batch in flight, commits its offsets and disconnects. */
  async close(): Promise<void> {
    this.closing = true;
    this.closed.abort();
    await this.consumer?.stop();
    this._status$.next('disconnected');
  }

  on<K extends keyof InboxKafkaEvents = keyof InboxKafkaEvents>(
    event: K,
    callback: InboxKafkaEvents[K],
  ): this {
    this.emitter.on(event, callback);
    return this;
  }

  /**
   * Messages of these types that arrive together in a consumer run go to `handler` in one call
   * (see `InboxConsumerOptions.handleRun`) instead of to their `@EventPattern` handler one by one.
   * The `@EventPattern` handler stays: a run that fails is redone one message at a time with it.
   * Call before the server listens.
   */
  addRunHandler(types: readonly string[], handler: InboxRunHandler): void {
    if (this.consumer) throw new Error('run handlers must be added before the server listens');
    for (const type of types) this.runHandlers.set(type, handler);
  }

  /** For readiness: null once the consumer has joined its group and is fetching. */
  readinessProblem(): string | null {
    const state = this.consumer?.status;
    return state === 'running' ? null : `inbox consumer ${state ?? 'not started'}`;
  }

  /** The InboxConsumer underneath; available once listening. */
  unwrap<T = InboxConsumer>(): T {
    if (!this.consumer) throw new Error('InboxKafkaServer is not listening yet');
    return this.consumer as T;
  }

  /** Full names of the topics carrying the handled types. */
  subscribedTopics(catalog: MessageCatalog = this.options.catalog ?? SYSTEM_CATALOG): string[] {
    const topics = new Set<string>();
    for (const [pattern, handler] of this.getHandlers()) {
      if (!handler.isEventHandler) {
        throw new Error(`${pattern}: the inbox transport takes @EventPattern handlers only`);
      }
      const definition = catalog.definition(pattern);
      if (!definition) throw new Error(`@EventPattern('${pattern}') is not a message type`);
      topics.add(topicName(definition.topic, this.options.topicPrefix));
    }
    if (topics.size === 0) throw new Error('InboxKafkaServer has no @EventPattern handlers');
    return [...topics];
  }

  private async start(): Promise<void> {
    const catalog = this.options.catalog ?? SYSTEM_CATALOG;
    const topics = this.subscribedTopics(catalog);
    for (let failures = 1; ; failures++) {
      try {
        return await this.startOnce(catalog, topics);
      } catch (error) {
        if (!this.options.retryStart || this.closing) throw error;
        const delay = backoffDelay(failures, START_RETRY);
        this.options.logger.warn(
          { err: error, consumer: this.options.name, retryInMs: delay },
          'inbox consumer could not start; retrying',
        );
        await sleep(delay, undefined, { signal: this.closed.signal }).catch(() => undefined);
        if (this.closing) return;
      }
    }
  }

  private async startOnce(catalog: MessageCatalog, topics: string[]): Promise<void> {
    this._status$.next('connecting');
    this.consumer = new InboxConsumer({
      ...this.options,
      catalog,
      topics,
      handle: (message, ctx) => this.dispatch(message, ctx),
      ...(this.runHandlers.size > 0 ? { handleRun: (entries) => this.dispatchRun(entries) } : {}),
      onHandled: async (info) => {
        this.emitter.emit('handled', info);
        await this.options.onHandled?.(info);
      },
      onCrash: (error) => {
        this._status$.next('crashed');
        this.emitter.emit('crash', error);
        this.options.onCrash?.(error);
      },
    });
    await this.consumer.start();
    this._status$.next('connected');
  }

  // In order: consecutive messages with the same run handler go to it together, others one by one.
  private async dispatchRun(entries: ReadonlyArray<InboxRunEntry>): Promise<void> {
    let group: InboxRunEntry[] = [];
    let groupHandler: InboxRunHandler | undefined;
    const flush = async () => {
      if (groupHandler && group.length > 0) await groupHandler(group);
      group = [];
      groupHandler = undefined;
    };
    for (const entry of entries) {
      const handler = this.runHandlers.get(entry.message.type);
      if (handler && handler === groupHandler) {
        group.push(entry);
        continue;
      }
      await flush();
      if (handler) {
        groupHandler = handler;
        group = [entry];
      } else {
        await context.with(entry.trace, () => this.dispatch(entry.message, entry.ctx));
      }
    }
    await flush();
  }

  // Catalog types this service has no handler for share the topics: the inbox records them.
  private async dispatch(message: Envelope, ctx: InboxContext): Promise<void> {
    const handler = this.getHandlerByPattern(message.type);
    if (!handler) return;
    const rpcContext = new InboxRpcContext(ctx);
    await new Promise<void>((resolve, reject) => {
      this.onProcessingStartHook(this.transportId, rpcContext, async () => {
        try {
          const result: unknown = await handler(message, rpcContext);
          // Nest hands errors back as an erroring observable rather than a rejection.
          if (isObservable(result)) await lastValueFrom(result, { defaultValue: undefined });
          resolve();
        } catch (error) {
          reject(error instanceof Error ? error : new HandlerFailedError(error));
        } finally {
          this.onProcessingEndHook?.(this.transportId, rpcContext);
        }
      });
    });
  }
}
