import { z } from 'zod';
import { TOPICS } from '../topics';
import { defineMessage, MessageCatalog } from './catalog';
import { SYSTEM_CATALOG } from './index';

const metadata = (type: string, version: number) => ({
  eventId: '01a200d1-f063-717e-8ccd-7fe74a93b3ff',
  type,
  version,
  aggregateType: 'order',
  aggregateId: 'o-1',
  aggregateSequence: 1,
  occurredAt: '2026-11-22T01:10:26.123456Z',
  correlationId: 'o-1',
  causationId: null,
  producer: 'trading' as const,
});

// v1 had a single `name`; v2 split it; v3 added a currency with a default.
const Renamed = defineMessage({
  type: 'Renamed',
  version: 3,
  aggregateType: 'order',
  topic: TOPICS.tradingEvents,
  schema: z.object({ first: z.string(), last: z.string(), currency: z.string() }),
  upcasters: {
    1: (data) => {
      const [first, ...rest] = String((data as { name: string }).name).split(' ');
      return { first, last: rest.join(' ') };
    },
    2: (data) => ({ ...(data as object), currency: 'USD' }),
  },
});
const catalog = new MessageCatalog([Renamed]);

describe('message catalog', () => {
  it('upcasts every older version to the current one', () => {
    const result = catalog.decode({
      type: 'Renamed',
      data: { name: 'Ada King Lovelace' },
      metadata: metadata('Renamed', 1),
    });
    expect(result).toEqual({
      status: 'ok',
      message: {
        type: 'Renamed',
        data: { first: 'Ada', last: 'King Lovelace', currency: 'USD' },
        metadata: { ...metadata('Renamed', 1), version: 3 },
      },
    });
  });

  it('reports a newer version, an unknown type and invalid data instead of throwing', () => {
    expect(catalog.decode({ type: 'Renamed', data: {}, metadata: metadata('Renamed', 4) })).toEqual(
      {
        status: 'newer-version',
        type: 'Renamed',
        version: 4,
        known: 3,
        action: 'park',
      },
    );
    expect(catalog.decode({ type: 'Nope', data: {}, metadata: metadata('Nope', 1) })).toEqual({
      status: 'unknown-type',
      type: 'Nope',
    });
    const invalid = catalog.decode({
      type: 'Renamed',
      data: { first: 1 },
      metadata: metadata('Renamed', 3),
    });
    expect(invalid).toMatchObject({ status: 'invalid' });
    expect(invalid.status === 'invalid' && invalid.error).toMatch(/first/);
    expect(
      catalog.decode({
        type: 'Renamed',
        data: {},
        metadata: { ...metadata('Renamed', 3), eventId: 'x' },
      }),
    ).toMatchObject({
      status: 'invalid',
      error: expect.stringContaining('eventId'),
    });
  });

  it('refuses a declaration that skips an upcaster', () => {
    expect(() =>
      defineMessage({
        type: 'Gap',
        version: 2,
        aggregateType: 'x',
        topic: TOPICS.tradingEvents,
        schema: z.object({}),
      }),
    ).toThrow(/no upcaster from v1/);
  });

  it('decodes the system messages with money as decimal strings, never numbers', () => {
    const executed = {
      type: 'OrderExecuted',
      data: {
        tradeId: 't-1',
        symbol: 'ACME',
        price: '101.25',
        quantity: '300',
        currency: 'USD',
        buy: { orderId: 'o-1', accountId: 'a-1' },
        sell: { orderId: 'o-2', accountId: 'a-2' },
        executedAt: '2026-11-22T01:10:26.123456Z',
      },
      metadata: metadata('OrderExecuted', 1),
    };
    expect(SYSTEM_CATALOG.decode(executed).status).toBe('ok');
    expect(
      SYSTEM_CATALOG.decode({ ...executed, data: { ...executed.data, price: 101.25 } }).status,
    ).toBe('invalid');
    expect(
      SYSTEM_CATALOG.decode({ ...executed, data: { ...executed.data, currency: 'usd' } }).status,
    ).toBe('invalid');
  });
});
