// The envelope around every event and command: what it is, where it comes from, what caused it.
import { z } from 'zod';
import { MICROS_TIMESTAMP, UUID_PATTERN } from './ids';
import { SERVICE_NAMES } from './services';

export const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

export const eventMetadataSchema = z.object({
  eventId: z.string().regex(UUID_PATTERN, 'must be a UUID'),
  type: z.string().min(1),
  version: z.number().int().min(1),
  aggregateType: z.string().min(1),
  aggregateId: z.string().min(1),
  /** Position of the event in its aggregate's stream, from 1. */
  aggregateSequence: z.number().int().min(1),
  occurredAt: z.string().regex(MICROS_TIMESTAMP, 'must be UTC with microseconds'),
  /** The business flow this belongs to (order id, global transaction id). */
  correlationId: z.string().min(1),
  /** The message that caused this one; null for a request from outside. */
  causationId: z.string().min(1).nullable(),
  producer: z.enum(SERVICE_NAMES),
  /** W3C trace context of the span that produced the message. */
  traceparent: z.string().regex(TRACEPARENT).optional(),
  tracestate: z.string().max(512).optional(),
});

export type EventMetadata = z.infer<typeof eventMetadataSchema>;

export interface Envelope<T extends string = string, D = unknown> {
  type: T;
  data: D;
  metadata: EventMetadata;
}

/** Wire form: what is stored in the outbox and sent as the Kafka message value. */
export const wireEnvelopeSchema = z.object({
  type: z.string().min(1),
  data: z.unknown(),
  metadata: eventMetadataSchema,
});
