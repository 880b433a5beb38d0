import { OrderAccepted, UUID_PATTERN } from '@finance/contracts';
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { createEnvelope } from './envelopes';
import { HEADERS } from './kafka';
import { kafkaHeaders } from './outbox/outbox';

const ctx = {
  producer: 'trading' as const,
  aggregateId: 'o-1',
  aggregateSequence: 2,
  correlationId: 'o-1',
};

describe('createEnvelope', () => {
  it('fills the metadata and validates the data', () => {
    const envelope = createEnvelope(
      OrderAccepted,
      { orderId: 'o-1', globalTransactionId: 'g-1' },
      ctx,
    );
    expect(envelope.metadata).toMatchObject({
      type: 'OrderAccepted',
      version: 1,
      aggregateType: 'order',
      aggregateId: 'o-1',
      aggregateSequence: 2,
      causationId: null,
      producer: 'trading',
    });
    expect(envelope.metadata.eventId).toMatch(UUID_PATTERN);
    expect(() => createEnvelope(OrderAccepted, { orderId: '' } as never, ctx)).toThrow(/orderId/);
  });

  it('carries the active span into the envelope and the Kafka headers', () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    const tracer = new BasicTracerProvider().getTracer('test');
    const span = tracer.startSpan('place order');
    try {
      const envelope = context.with(trace.setSpan(context.active(), span), () =>
        createEnvelope(OrderAccepted, { orderId: 'o-1', globalTransactionId: 'g-1' }, ctx),
      );
      const { traceId, spanId } = span.spanContext();
      expect(envelope.metadata.traceparent).toBe(`00-${traceId}-${spanId}-01`);
      expect(kafkaHeaders(envelope)[HEADERS.traceparent]).toBe(envelope.metadata.traceparent);
    } finally {
      span.end();
      propagation.disable();
      context.disable();
    }
  });
});
