// Builds the envelope of a new message: id, time, causality and the current trace context.
import {
  Envelope,
  EventMetadata,
  MessageDefinition,
  ServiceName,
  utcNowMicros,
  uuidv7,
} from '@finance/contracts';
import { context, propagation } from '@opentelemetry/api';
import type { z } from 'zod';

export interface MessageContext {
  producer: ServiceName;
  aggregateId: string;
  /** Position in the aggregate's stream, from 1 (the event store fills it in on append). */
  aggregateSequence: number;
  correlationId: string;
  causationId?: string | null;
}

export function createEnvelope<D extends MessageDefinition>(
  definition: D,
  data: z.input<D['schema']>,
  ctx: MessageContext,
): Envelope<D['type'], z.infer<D['schema']>> {
  const parsed = definition.schema.safeParse(data);
  if (!parsed.success) {
    const where = parsed.error.issues
      .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
      .join('; ');
    throw new Error(`invalid ${definition.type}: ${where}`);
  }
  const metadata: EventMetadata = {
    eventId: uuidv7(),
    type: definition.type,
    version: definition.version,
    aggregateType: definition.aggregateType,
    aggregateId: ctx.aggregateId,
    aggregateSequence: ctx.aggregateSequence,
    occurredAt: utcNowMicros(),
    correlationId: ctx.correlationId,
    causationId: ctx.causationId ?? null,
    producer: ctx.producer,
    ...currentTraceContext(),
  };
  return { type: definition.type, data: parsed.data as z.infer<D['schema']>, metadata };
}

/** traceparent/tracestate of the active span, if a propagator and a span are active. */
export function currentTraceContext(): { traceparent?: string; tracestate?: string } {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return {
    ...(carrier.traceparent ? { traceparent: carrier.traceparent } : {}),
    ...(carrier.tracestate ? { tracestate: carrier.tracestate } : {}),
  };
}
