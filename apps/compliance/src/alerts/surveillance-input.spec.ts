import { buildSurveillanceInput, sessionCloseOn, WindowEntry } from './surveillance-input';

const executed = (tradeId: string, quantity: string): WindowEntry => ({
  type: 'OrderExecuted',
  occurredAt: '2026-11-22T10:00:01.000Z',
  data: {
    tradeId,
    symbol: 'ACME',
    price: '10',
    quantity,
    buy: { orderId: 'B', accountId: 'ACC-1' },
    sell: { orderId: 'S', accountId: 'ACC-2' },
    executedAt: '2026-11-22T10:00:01.000000Z',
  },
});
const created = (orderId: string, accountId: string, side: string): WindowEntry => ({
  type: 'OrderCreated',
  occurredAt: '2026-11-22T10:00:00.000Z',
  data: { orderId, accountId, side, symbol: 'ACME', quantity: '500' },
});

describe('buildSurveillanceInput', () => {
  it('makes one trade per tradeId, sums fills, marks cancels and resolves owners', () => {
    const input = buildSurveillanceInput(
      [
        created('B', 'ACC-1', 'BUY'),
        created('S', 'ACC-2', 'SELL'),
        executed('T1', '100'),
        executed('T1', '100'),
        executed('T2', '50'),
        { type: 'OrderCancelled', occurredAt: '2026-11-22T10:00:05.000Z', data: { orderId: 'S' } },
      ],
      new Map([['ACC-1', 'owner-a']]),
    );
    expect(input.trades.map((t) => [t.tradeId, t.buy.owner, t.sell.owner])).toEqual([
      ['T1', 'owner-a', 'ACC-2'],
      ['T2', 'owner-a', 'ACC-2'],
    ]);
    expect(input.orders).toEqual([
      expect.objectContaining({
        orderId: 'B',
        owner: 'owner-a',
        filledQuantity: '150',
        cancelledAt: null,
      }),
      expect.objectContaining({
        orderId: 'S',
        side: 'SELL',
        filledQuantity: '150',
        cancelledAt: '2026-11-22T10:00:05.000Z',
      }),
    ]);
    expect(input.session).toBeUndefined();
  });

  it('sets the session close of the day from HH:MM', () => {
    expect(sessionCloseOn(new Date('2026-11-22T15:00:00Z'), '16:00')).toBe('2026-11-22T16:00:00Z');
  });
});
