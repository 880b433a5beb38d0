// Many commands (or replies) in one record: a TccCommandBatch carries whole TccTry / TccConfirm /
// TccCancel envelopes for one participant, a TccReplyBatch the TccReply envelopes answering them.
// Packing costs one outbox row, Kafka record and inbox row per batch instead of per branch; each
// element keeps its own id, causation and trace context and is handled as if it had come alone.
import {
  Envelope,
  MessageCatalog,
  ServiceName,
  TccCommandBatch,
  TccReplyBatch,
} from '@finance/contracts';
import {
  createEnvelope,
  extractTraceContext,
  OutboxMessage,
  PermanentMessageError,
  routeMessage,
} from '@finance/messaging';
import type { Context } from '@opentelemetry/api';

/** Most elements in one batch (the contracts allow 1,000; this keeps records well under 1 MB). */
export const MAX_BATCH_ELEMENTS = 200;

const COMMAND_TYPES: ReadonlySet<string> = new Set(['TccTry', 'TccConfirm', 'TccCancel']);
const REPLY_TYPES: ReadonlySet<string> = new Set(['TccReply']);

export interface PackOptions {
  producer: ServiceName;
  catalog: MessageCatalog;
  topicPrefix?: string;
}

/**
 * Packs commands into one TccCommandBatch per participant (in chunks of MAX_BATCH_ELEMENTS),
 * keeping their order; a participant with a single command gets it as it is.
 */
export function packCommands(messages: OutboxMessage[], options: PackOptions): OutboxMessage[] {
  const byParticipant = new Map<ServiceName, OutboxMessage[]>();
  for (const message of messages) {
    const participant = (message.envelope.data as { participant: ServiceName }).participant;
    const list = byParticipant.get(participant);
    if (list) list.push(message);
    else byParticipant.set(participant, [message]);
  }
  return [...byParticipant].flatMap(([participant, list]) =>
    chunks(list).map((chunk) =>
      chunk.length === 1
        ? chunk[0]
        : pack(options, TccCommandBatch, chunk, (envelopes) => ({
            participant,
            commands: envelopes,
          })),
    ),
  );
}

/** Packs one participant's replies into TccReplyBatch records. */
export function packReplies(
  messages: OutboxMessage[],
  participant: ServiceName,
  options: PackOptions,
): OutboxMessage[] {
  return chunks(messages).map((chunk) =>
    chunk.length === 1
      ? chunk[0]
      : pack(options, TccReplyBatch, chunk, (envelopes) => ({ participant, replies: envelopes })),
  );
}

/** The commands of a TccCommandBatch, each decoded and checked; a bad one fails the whole batch. */
export function unpackCommands(batch: Envelope, catalog: MessageCatalog): Envelope[] {
  return unpack(batch, (batch.data as { commands: unknown[] }).commands, COMMAND_TYPES, catalog);
}

/** The replies of a TccReplyBatch, each decoded and checked. */
export function unpackReplies(batch: Envelope, catalog: MessageCatalog): Envelope[] {
  return unpack(batch, (batch.data as { replies: unknown[] }).replies, REPLY_TYPES, catalog);
}

/** The trace context an element was created in (its own traceparent), else `fallback`. */
export function elementTrace(element: Envelope, fallback: Context): Context {
  return element.metadata.traceparent ? extractTraceContext({}, element.metadata) : fallback;
}

function pack(
  options: PackOptions,
  definition: typeof TccCommandBatch | typeof TccReplyBatch,
  chunk: OutboxMessage[],
  data: (envelopes: Array<Record<string, unknown>>) => object,
): OutboxMessage {
  const first = chunk[0].envelope.metadata;
  const envelope = createEnvelope(
    definition,
    data(chunk.map((m) => m.envelope as unknown as Record<string, unknown>)) as never,
    {
      producer: options.producer,
      aggregateId: first.aggregateId,
      aggregateSequence: 1,
      correlationId: first.correlationId,
      causationId: null,
    },
  );
  return routeMessage(options.catalog, envelope, options.topicPrefix);
}

function chunks<T>(list: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += MAX_BATCH_ELEMENTS)
    out.push(list.slice(i, i + MAX_BATCH_ELEMENTS));
  return out;
}

function unpack(
  batch: Envelope,
  elements: unknown[],
  types: ReadonlySet<string>,
  catalog: MessageCatalog,
): Envelope[] {
  return elements.map((raw, i) => {
    const decoded = catalog.decode(raw);
    if (decoded.status !== 'ok' || !types.has(decoded.message.type)) {
      const why = decoded.status === 'ok' ? `a ${decoded.message.type}` : decoded.status;
      throw new PermanentMessageError(
        `${batch.type} ${batch.metadata.eventId}: element ${i} is ${why}, not one of ${[...types].join(', ')}`,
      );
    }
    return decoded.message;
  });
}
