// With a tracer provider and W3C propagator, a message is handled in a span of the producer trace.
import { createLogger } from '@finance/platform';
import { createTestDatabase, testStack } from '@finance/testing';
import {
  Context,
  ContextManager,
  ROOT_CONTEXT,
  SpanKind,
  context,
  propagation,
  trace,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { AsyncLocalStorage } from 'node:async_hooks';
import type { DataSource } from 'typeorm';
import { createKafka, HEADERS } from '../kafka';
import {
  credited,
  envelopeRecord,
  migratedDataSource,
  produce,
  testMessages,
  waitFor,
  provisionTopic,
} from '../../test/consumer/support';
import { InboxConsumer } from './inbox-consumer';

// Carries the active context across awaits (what @opentelemetry/context-async-hooks does).
class AsyncLocalStorageContextManager implements ContextManager {
  private readonly storage = new AsyncLocalStorage<Context>();
  active(): Context {
    return this.storage.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    ctx: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.storage.run(ctx, () => fn.call(thisArg, ...args));
  }
  bind<T>(ctx: Context, target: T): T {
    if (typeof target !== 'function') return target;
    return ((...args: unknown[]) => this.with(ctx, () => target(...args))) as T;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.storage.disable();
    return this;
  }
}

describe('InboxConsumer trace context', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  let dataSource: DataSource | undefined;
  let consumer: InboxConsumer | undefined;

  beforeAll(() => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager());
    trace.setGlobalTracerProvider(provider);
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  });

  afterAll(async () => {
    await consumer?.stop();
    await dataSource?.destroy();
    await provider.shutdown();
  });

  it('handles each message in a consumer span that continues the producer trace', async () => {
    const stack = testStack();
    const { definition, topic } = await provisionTopic('trace', 1);
    dataSource = await migratedDataSource((await createTestDatabase('inbox_trace')).url);
    const logger = createLogger('inbox-trace-test', 'silent');
    const kafka = createKafka({ brokers: stack.kafkaBrokers, clientId: 'inbox-trace', logger });
    const messages = testMessages(definition);

    // Producer side: the envelope is created under a span, so it carries its traceparent.
    const producerSpan = trace.getTracer('test-producer').startSpan('place order');
    const traced = context.with(trace.setSpan(ROOT_CONTEXT, producerSpan), () =>
      credited(messages, { account: 'acct-1', amount: 1 }),
    );
    producerSpan.end();
    // Another one carries its context only in the Kafka header.
    const headerOnly = credited(messages, { account: 'acct-2', amount: 2 });
    const headerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const headerParent = '00f067aa0ba902b7';
    await produce(kafka, topic, [
      envelopeRecord(traced),
      envelopeRecord(headerOnly, { [HEADERS.traceparent]: `00-${headerTrace}-${headerParent}-01` }),
    ]);

    const seen = new Map<string, string | undefined>();
    consumer = new InboxConsumer({
      name: `inbox-trace-${Date.now().toString(36)}`,
      kafka,
      dataSource,
      logger,
      topics: [topic],
      catalog: messages.catalog,
      handle: async (message, ctx) => {
        await ctx.manager.query('SELECT 1'); // the span must survive an await
        seen.set(message.metadata.eventId, trace.getActiveSpan()?.spanContext().traceId);
      },
    });
    await consumer.start();
    await waitFor(
      'both messages',
      async () => seen.size,
      (n) => n === 2,
    );

    const producer = producerSpan.spanContext();
    expect(seen.get(traced.metadata.eventId)).toBe(producer.traceId);
    expect(seen.get(headerOnly.metadata.eventId)).toBe(headerTrace);

    const spans = exporter.getFinishedSpans().filter((s) => s.name === `${topic} process`);
    expect(spans).toHaveLength(2);
    const byEvent = new Map(spans.map((s) => [s.attributes['messaging.message.id'], s]));
    const first = byEvent.get(traced.metadata.eventId);
    expect(first?.kind).toBe(SpanKind.CONSUMER);
    expect(first?.spanContext().traceId).toBe(producer.traceId);
    expect(first?.parentSpanContext?.spanId).toBe(producer.spanId);
    expect(first?.attributes).toMatchObject({
      'messaging.system': 'kafka',
      'messaging.destination.name': topic,
      'messaging.consumer.group.name': consumer.name,
    });
    expect(byEvent.get(headerOnly.metadata.eventId)?.parentSpanContext?.spanId).toBe(headerParent);
  });
});
