// What one audit entry says, and the exact bytes its leaf hash covers: the canonical JSON of every
// column, so changing any column of a stored entry changes its hash. The service writes these bytes
// when it appends and rebuilds them from the columns when it exports; the verifier hashes them.
import { Envelope, MICROS_TIMESTAMP, UUID_PATTERN } from '@finance/contracts';
import { canonicalJson, JsonValue, leafHash } from '@finance/merkle';

/** Where an entry came from: `<topic>/<partition>/<offset>` of a consumed message, or `local`. */
export type AuditSource = string;

export const LOCAL_SOURCE: AuditSource = 'local';

/** An entry as given to the appender. */
export interface AuditInput {
  readonly source: AuditSource;
  /** Unique across the log: an event is recorded at most once. */
  readonly eventId: string;
  readonly type: string;
  readonly producer: string;
  readonly aggregateId: string;
  readonly correlationId: string;
  readonly traceId: string | null;
  /** UTC with exactly six fractional digits, e.g. 2026-11-22T01:10:26.123456Z. */
  readonly occurredAt: string;
  /** For a consumed message, its whole envelope (type, data, metadata). */
  readonly payload: JsonValue;
}

/** An entry as stored: the input plus when it was appended (the log's clock, UTC microseconds). */
export interface AuditRecord extends AuditInput {
  readonly appendedAt: string;
}

/** An input checked and with its payload serialised once, before the appender takes the lock. */
export interface PreparedInput extends Omit<AuditInput, 'payload'> {
  readonly payloadText: string;
}

const TRACEPARENT_TRACE_ID = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

export function prepareInput(input: AuditInput): PreparedInput {
  const eventId = input.eventId.toLowerCase();
  if (!UUID_PATTERN.test(eventId)) throw new RangeError(`audit entry eventId '${input.eventId}'`);
  if (!MICROS_TIMESTAMP.test(input.occurredAt)) {
    throw new RangeError(`audit entry occurredAt '${input.occurredAt}' is not UTC microseconds`);
  }
  for (const field of ['source', 'type', 'producer', 'aggregateId', 'correlationId'] as const) {
    if (input[field].length === 0) throw new RangeError(`audit entry ${field} is empty`);
  }
  const { payload, ...rest } = input;
  return { ...rest, eventId, payloadText: canonicalJson(payload) };
}

/**
 * canonicalJson(record), built by concatenation because the payload is already canonical: only
 * this part runs while the appender holds the log's lock. Keys are in canonical (sorted) order.
 */
export function recordLeafText(entry: Omit<AuditRecord, 'payload'>, payloadText: string): string {
  const s = JSON.stringify;
  return (
    `{"aggregateId":${s(entry.aggregateId)},"appendedAt":${s(entry.appendedAt)},` +
    `"correlationId":${s(entry.correlationId)},"eventId":${s(entry.eventId)},` +
    `"occurredAt":${s(entry.occurredAt)},"payload":${payloadText},` +
    `"producer":${s(entry.producer)},"source":${s(entry.source)},` +
    `"traceId":${entry.traceId === null ? 'null' : s(entry.traceId)},"type":${s(entry.type)}}`
  );
}

export function recordLeafHash(entry: Omit<AuditRecord, 'payload'>, payloadText: string) {
  return leafHash(Buffer.from(recordLeafText(entry, payloadText), 'utf8'));
}

/** The audit entry of a message consumed from Kafka. */
export function inputFromEnvelope(
  envelope: Envelope,
  from: { topic: string; partition: number; offset: string },
): AuditInput {
  const { metadata } = envelope;
  return {
    source: `${from.topic}/${from.partition}/${from.offset}`,
    eventId: metadata.eventId,
    type: envelope.type,
    producer: metadata.producer,
    aggregateId: metadata.aggregateId,
    correlationId: metadata.correlationId,
    traceId: traceIdOf(metadata.traceparent),
    occurredAt: metadata.occurredAt,
    // Through JSON once, so what is hashed is exactly what a reader of the export will parse.
    payload: JSON.parse(JSON.stringify(envelope)) as JsonValue,
  };
}

export function traceIdOf(traceparent: string | undefined): string | null {
  return TRACEPARENT_TRACE_ID.exec(traceparent ?? '')?.[1] ?? null;
}
