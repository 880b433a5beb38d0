// Writes messages to the outbox inside the caller's transaction, so they leave if and only if the
// state change that produced them commits.
import { Envelope, MessageCatalog, topicName } from '@finance/contracts';
import type { EntityManager } from 'typeorm';
import { HEADERS } from '../kafka';

export interface OutboxMessage {
  /** Full topic name, prefix included. */
  topic: string;
  /** Kafka key: per-key order is what consumers rely on. */
  key: string;
  envelope: Envelope;
}

/** Routes an envelope to the topic its type is declared on, keyed by aggregate id. */
export function routeMessage(
  catalog: MessageCatalog,
  envelope: Envelope,
  topicPrefix = '',
): OutboxMessage {
  const definition = catalog.definition(envelope.type);
  if (!definition) throw new Error(`message type ${envelope.type} is not in the catalog`);
  return {
    topic: topicName(definition.topic, topicPrefix),
    key: envelope.metadata.aggregateId,
    envelope,
  };
}

export function kafkaHeaders(envelope: Envelope): Record<string, string> {
  const { metadata } = envelope;
  return {
    [HEADERS.eventId]: metadata.eventId,
    [HEADERS.type]: envelope.type,
    [HEADERS.version]: String(metadata.version),
    [HEADERS.producer]: metadata.producer,
    [HEADERS.contentType]: 'application/json',
    ...(metadata.traceparent ? { [HEADERS.traceparent]: metadata.traceparent } : {}),
    ...(metadata.tracestate ? { [HEADERS.tracestate]: metadata.tracestate } : {}),
  };
}

/** Inserts the messages in one statement; must run inside the caller's transaction. */
export async function enqueueOutbox(
  manager: EntityManager,
  messages: readonly OutboxMessage[],
): Promise<void> {
  if (messages.length === 0) return;
  if (!manager.queryRunner?.isTransactionActive) {
    throw new Error('enqueueOutbox must run inside the transaction of the state change');
  }
  await manager.query(
    `INSERT INTO outbox (event_id, topic, message_key, payload, headers)
     SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::jsonb[])`,
    [
      messages.map((m) => m.envelope.metadata.eventId),
      messages.map((m) => m.topic),
      messages.map((m) => m.key),
      messages.map((m) => JSON.stringify(m.envelope)),
      messages.map((m) => JSON.stringify(kafkaHeaders(m.envelope))),
    ],
  );
}
