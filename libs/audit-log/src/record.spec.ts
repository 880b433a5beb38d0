// The bytes an entry's leaf hash covers are the canonical JSON of all its fields, however built.
import { canonicalJson, JsonValue } from '@finance/merkle';
import fc from 'fast-check';
import { inputFromEnvelope, prepareInput, recordLeafText, traceIdOf } from './record';
import { sampleRecord } from './test-fixtures/memory-log';

describe('audit record', () => {
  it('builds exactly canonicalJson(record) by concatenation', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.string(),
        fc.option(fc.string(), { nil: null }),
        fc.jsonValue(),
        (aggregateId, type, traceId, payload) => {
          const record = sampleRecord(1, {
            aggregateId,
            type,
            traceId,
            payload: payload as JsonValue,
          });
          const { payload: p, ...rest } = record;
          expect(recordLeafText(rest, canonicalJson(p))).toBe(canonicalJson(record));
        },
      ),
    );
  });

  it('records a consumed envelope whole, with where it came from and its trace id', () => {
    const envelope = {
      type: 'OrderCreated',
      data: { orderId: 'o-1', price: '101.25' },
      metadata: {
        eventId: '0195f0c2-7d4e-7a61-9b2c-3d4e5f6a7b8c',
        type: 'OrderCreated',
        version: 1,
        aggregateType: 'order',
        aggregateId: 'o-1',
        aggregateSequence: 1,
        occurredAt: '2026-11-22T10:00:00.123456Z',
        correlationId: 'c-1',
        causationId: null,
        producer: 'trading' as const,
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      },
    };
    expect(
      inputFromEnvelope(envelope, { topic: 't.trading.events', partition: 3, offset: '42' }),
    ).toEqual({
      source: 't.trading.events/3/42',
      eventId: envelope.metadata.eventId,
      type: 'OrderCreated',
      producer: 'trading',
      aggregateId: 'o-1',
      correlationId: 'c-1',
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      occurredAt: '2026-11-22T10:00:00.123456Z',
      payload: envelope,
    });
    expect(traceIdOf(undefined)).toBeNull();
  });

  it('refuses an input whose fields would not read back from the database unchanged', () => {
    const { appendedAt: _appendedAt, ...input } = sampleRecord(1);
    expect(() => prepareInput({ ...input, occurredAt: '2026-11-22T10:00:00.123Z' })).toThrow(
      /not UTC microseconds/,
    );
    expect(() => prepareInput({ ...input, eventId: 'not-a-uuid' })).toThrow(/eventId/);
    expect(() => prepareInput({ ...input, producer: '' })).toThrow(/producer is empty/);
    expect(prepareInput({ ...input, eventId: input.eventId.toUpperCase() }).eventId).toBe(
      input.eventId,
    );
  });
});
