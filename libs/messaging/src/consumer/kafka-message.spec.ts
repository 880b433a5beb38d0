// Classifying consumed records and building dead-letter headers, without Kafka.
import { defineMessage, MessageCatalog, TopicDefinition } from '@finance/contracts';
import { z } from 'zod';
import { createEnvelope } from '../envelopes';
import { HEADERS } from '../kafka';
import { isUnavailableError, PermanentMessageError } from './errors';
import {
  classify,
  DEAD_LETTER_CONSUMER_HEADER,
  deadLetterHeaders,
  headerText,
} from './kafka-message';

const topic: TopicDefinition = {
  name: 'unit.events',
  partitions: 1,
  retentionMs: 1,
  key: 'aggregateId',
  description: 'unit test topic',
};
const Credited = defineMessage({
  type: 'Credited',
  aggregateType: 'account',
  topic,
  schema: z.object({ amount: z.number().int().positive() }),
});
const Parkable = defineMessage({
  type: 'Parkable',
  aggregateType: 'account',
  topic,
  schema: z.object({}),
});
const Skippable = defineMessage({
  type: 'Skippable',
  aggregateType: 'account',
  topic,
  schema: z.object({}),
  onNewerVersion: 'skip',
});
const catalog = new MessageCatalog([Credited, Parkable, Skippable]);
const ctx = {
  producer: 'trading',
  aggregateId: 'a-1',
  aggregateSequence: 1,
  correlationId: 'c-1',
} as const;

const wire = (value: unknown) => Buffer.from(JSON.stringify(value));

describe('classify', () => {
  it('decodes a valid envelope', () => {
    const envelope = createEnvelope(Credited, { amount: 5 }, ctx);
    expect(classify(catalog, wire(envelope))).toEqual({
      kind: 'message',
      eventId: envelope.metadata.eventId,
      type: 'Credited',
      message: envelope,
    });
  });

  it('calls an empty value, invalid JSON and invalid data poison, naming the problem', () => {
    expect(classify(catalog, null)).toMatchObject({ kind: 'poison', error: 'empty message value' });
    expect(classify(catalog, Buffer.from('{"type":'))).toMatchObject({
      kind: 'poison',
      eventId: null,
      error: expect.stringMatching(/^invalid JSON/),
    });
    const envelope = createEnvelope(Credited, { amount: 5 }, ctx);
    expect(classify(catalog, wire({ ...envelope, data: { amount: -1 } }))).toMatchObject({
      kind: 'poison',
      eventId: envelope.metadata.eventId,
      type: 'Credited',
      error: expect.stringContaining('Credited data: amount'),
    });
    expect(classify(catalog, wire({ type: 'Credited', data: {} }))).toMatchObject({
      kind: 'poison',
      error: expect.stringMatching(/^envelope: metadata/),
    });
  });

  it('tells unknown types and newer versions apart, with the action of the definition', () => {
    const envelope = createEnvelope(Credited, { amount: 5 }, ctx);
    const unknown = {
      ...envelope,
      type: 'Debited',
      metadata: { ...envelope.metadata, type: 'Debited' },
    };
    expect(classify(catalog, wire(unknown))).toEqual({
      kind: 'unknown-type',
      eventId: envelope.metadata.eventId,
      type: 'Debited',
    });
    const parkable = createEnvelope(Parkable, {}, ctx);
    const newer = { ...parkable, metadata: { ...parkable.metadata, version: 3 } };
    expect(classify(catalog, wire(newer))).toEqual({
      kind: 'newer-version',
      eventId: parkable.metadata.eventId,
      type: 'Parkable',
      version: 3,
      known: 1,
      action: 'park',
      payload: newer,
    });
    const skippable = createEnvelope(Skippable, {}, ctx);
    expect(
      classify(catalog, wire({ ...skippable, metadata: { ...skippable.metadata, version: 2 } })),
    ).toMatchObject({ kind: 'newer-version', action: 'skip' });
  });
});

describe('headers', () => {
  it('reads header bytes as text, first value of a repeated header', () => {
    expect(
      headerText({
        a: Buffer.from('x'),
        b: 'y',
        c: [Buffer.from('1'), Buffer.from('2')],
        d: undefined,
      }),
    ).toEqual({ a: 'x', b: 'y', c: '1' });
    expect(headerText(undefined)).toEqual({});
  });

  it('keeps the original headers and adds where the message came from and why it failed', () => {
    const original = {
      [HEADERS.eventId]: Buffer.from('e-1'),
      [HEADERS.traceparent]: Buffer.from('tp'),
    };
    const headers = deadLetterHeaders(original, {
      consumer: 'risk',
      topic: 'trading.events',
      partition: 7,
      offset: '42',
      error: 'invalid JSON: Unexpected end',
    });
    expect(headerText(headers)).toEqual({
      [HEADERS.eventId]: 'e-1',
      [HEADERS.traceparent]: 'tp',
      [HEADERS.error]: 'invalid JSON: Unexpected end',
      [HEADERS.originalTopic]: 'trading.events',
      [HEADERS.originalPartition]: '7',
      [HEADERS.originalOffset]: '42',
      [DEAD_LETTER_CONSUMER_HEADER]: 'risk',
    });
  });

  it('replaces the error of an earlier dead-lettering and truncates a long one', () => {
    const headers = deadLetterHeaders(
      { [HEADERS.error]: Buffer.from('old'), [HEADERS.originalOffset]: Buffer.from('1') },
      { consumer: 'c', topic: 't', partition: 0, offset: '9', error: 'x'.repeat(5_000) },
    );
    const text = headerText(headers);
    expect(text[HEADERS.originalOffset]).toBe('9');
    expect(text[HEADERS.error]).toHaveLength(2_000);
    expect(text[HEADERS.error].endsWith('…')).toBe(true);
  });
});

describe('error kinds', () => {
  it('treats connection failures as the database being unavailable, not the message being bad', () => {
    expect(isUnavailableError(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }))).toBe(
      true,
    );
    expect(isUnavailableError(Object.assign(new Error('bye'), { code: '57P01' }))).toBe(true);
    expect(isUnavailableError(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(
      isUnavailableError({
        name: 'QueryFailedError',
        driverError: { code: '08006' },
        message: 'x',
      }),
    ).toBe(true);
    expect(isUnavailableError(Object.assign(new Error('deadlock'), { code: '40P01' }))).toBe(false);
    expect(isUnavailableError(new PermanentMessageError('bad'))).toBe(false);
    expect(isUnavailableError(undefined)).toBe(false);
  });
});
