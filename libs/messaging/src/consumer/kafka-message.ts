// Pure helpers for one consumed record: header text, classification, dead-letter headers.
import { DecodeResult, Envelope, MessageCatalog } from '@finance/contracts';
import type { IHeaders, KafkaMessage } from 'kafkajs';
import { HEADERS } from '../kafka';

/** Which consumer group gave up on a dead-lettered message. */
export const DEAD_LETTER_CONSUMER_HEADER = 'dead-letter-consumer';

// Kafka headers are bytes; a long stack trace must not make the DLQ record too large.
const MAX_ERROR_HEADER_LENGTH = 2_000;

/** Header values as text; a repeated header keeps its first value. */
export function headerText(headers: IHeaders | undefined): Record<string, string> {
  const text: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    const first = Array.isArray(value) ? value[0] : value;
    if (first !== undefined) text[name] = first.toString();
  }
  return text;
}

/** What the consumer does with a record, decided before any I/O. */
export type Classified<M extends Envelope = Envelope> =
  | { kind: 'message'; eventId: string; type: string; message: M }
  | { kind: 'unknown-type'; eventId: string; type: string }
  | {
      kind: 'newer-version';
      eventId: string;
      type: string;
      version: number;
      known: number;
      action: 'park' | 'skip';
      payload: unknown;
    }
  | { kind: 'poison'; eventId: string | null; type: string | null; error: string };

export function classify<M extends Envelope>(
  catalog: MessageCatalog<M>,
  value: Buffer | null,
): Classified<M> {
  if (value === null || value.length === 0) {
    return { kind: 'poison', eventId: null, type: null, error: 'empty message value' };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(value.toString('utf8'));
  } catch (error) {
    return {
      kind: 'poison',
      eventId: null,
      type: null,
      error: `invalid JSON: ${error instanceof Error ? error.message : String(error)}`,
    };
  }
  const decoded: DecodeResult<M> = catalog.decode(raw);
  switch (decoded.status) {
    case 'ok':
      return {
        kind: 'message',
        eventId: decoded.message.metadata.eventId,
        type: decoded.message.type,
        message: decoded.message,
      };
    // Past this point the wire envelope validated, so its metadata is well formed.
    case 'unknown-type':
      return { kind: 'unknown-type', eventId: wireEventId(raw), type: decoded.type };
    case 'newer-version':
      return {
        kind: 'newer-version',
        eventId: wireEventId(raw),
        type: decoded.type,
        version: decoded.version,
        known: decoded.known,
        action: decoded.action,
        payload: raw,
      };
    case 'invalid': {
      const { eventId, type } = bestEffortIdentity(raw);
      return { kind: 'poison', eventId, type, error: decoded.error };
    }
    default: {
      const never: never = decoded;
      throw new Error(`unhandled decode status ${JSON.stringify(never)}`);
    }
  }
}

function wireEventId(raw: unknown): string {
  return (raw as { metadata: { eventId: string } }).metadata.eventId;
}

// For log lines about an invalid message: whatever identity it claims, if any.
function bestEffortIdentity(raw: unknown): { eventId: string | null; type: string | null } {
  const r = (typeof raw === 'object' && raw !== null ? raw : {}) as {
    type?: unknown;
    metadata?: { eventId?: unknown };
  };
  return {
    eventId: typeof r.metadata?.eventId === 'string' ? r.metadata.eventId : null,
    type: typeof r.type === 'string' ? r.type : null,
  };
}

export interface DeadLetterFailure {
  consumer: string;
  topic: string;
  partition: number;
  offset: string;
  error: string;
}

/** The original headers plus where the message came from and why it failed. */
export function deadLetterHeaders(
  original: KafkaMessage['headers'],
  failure: DeadLetterFailure,
): IHeaders {
  const error =
    failure.error.length > MAX_ERROR_HEADER_LENGTH
      ? `${failure.error.slice(0, MAX_ERROR_HEADER_LENGTH - 1)}…`
      : failure.error;
  return {
    ...(original ?? {}),
    [HEADERS.error]: error,
    [HEADERS.originalTopic]: failure.topic,
    [HEADERS.originalPartition]: String(failure.partition),
    [HEADERS.originalOffset]: failure.offset,
    [DEAD_LETTER_CONSUMER_HEADER]: failure.consumer,
  };
}
