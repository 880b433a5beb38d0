import { IncomingOrder, OrderBook, OrderBookError, Side, TimeInForce } from './index';

function limit(
  id: string,
  side: Side,
  price: number,
  quantity: number,
  options: { owner?: string; timeInForce?: TimeInForce } = {},
): IncomingOrder {
  const { owner = `owner-${id}`, timeInForce = 'GTC' } = options;
  return { id, owner, side, type: 'LIMIT', price, quantity, timeInForce };
}

function market(
  id: string,
  side: Side,
  quantity: number,
  options: { owner?: string; protectionPrice?: number; timeInForce?: TimeInForce } = {},
): IncomingOrder {
  const { owner = `owner-${id}`, timeInForce = 'IOC', protectionPrice } = options;
  return { id, owner, side, type: 'MARKET', quantity, timeInForce, protectionPrice };
}

/** A book with asks a1 100×5, a2 101×5, a3 101×5 (a2 before a3) and bids b1 99×5, b2 98×5. */
function bookWithDepth(options?: ConstructorParameters<typeof OrderBook>[1]): OrderBook {
  const book = new OrderBook('ACME', options);
  book.submit(limit('a1', 'SELL', 100, 5));
  book.submit(limit('a2', 'SELL', 101, 5));
  book.submit(limit('a3', 'SELL', 101, 5));
  book.submit(limit('b1', 'BUY', 99, 5));
  book.submit(limit('b2', 'BUY', 98, 5));
  return book;
}

function openQuantities(book: OrderBook): Record<string, number> {
  const { bids, asks } = book.snapshot();
  return Object.fromEntries([...bids, ...asks].map((o) => [o.id, o.quantity]));
}

describe('OrderBook', () => {
  describe('limit orders', () => {
    it('rests an order that does not cross and shows it in L1 and L2', () => {
      const book = bookWithDepth();
      expect(book.top()).toEqual({
        bid: { price: 99, quantity: 5, orders: 1 },
        ask: { price: 100, quantity: 5, orders: 1 },
      });
      expect(book.depth(5).asks).toEqual([
        { price: 100, quantity: 5, orders: 1 },
        { price: 101, quantity: 10, orders: 2 },
      ]);
      expect(book.depth(1).bids).toEqual([{ price: 99, quantity: 5, orders: 1 }]);
    });

    it('fills at the resting price, best price first, then in arrival order, partially if needed', () => {
      const book = bookWithDepth();
      const result = book.submit(limit('t', 'BUY', 101, 12, { owner: 'taker' }));
      expect(result).toMatchObject({ status: 'FILLED', filled: 12, remaining: 0, cancelled: [] });
      expect(result.fills).toEqual([
        {
          makerOrderId: 'a1',
          makerOwner: 'owner-a1',
          takerOrderId: 't',
          takerOwner: 'taker',
          takerSide: 'BUY',
          price: 100,
          quantity: 5,
          makerRemaining: 0,
          takerRemaining: 7,
        },
        expect.objectContaining({ makerOrderId: 'a2', price: 101, quantity: 5, takerRemaining: 2 }),
        expect.objectContaining({ makerOrderId: 'a3', price: 101, quantity: 2, makerRemaining: 3 }),
      ]);
      expect(book.has('a1')).toBe(false);
      expect(book.get('a3')).toMatchObject({ quantity: 3 });
      expect(book.top().ask).toEqual({ price: 101, quantity: 3, orders: 1 });
    });

    it('rests the remainder at its limit once the crossing liquidity is gone', () => {
      const book = bookWithDepth();
      const result = book.submit(limit('t', 'BUY', 100, 8));
      expect(result).toMatchObject({ status: 'PARTIALLY_FILLED_RESTING', filled: 5, remaining: 3 });
      expect(book.top()).toEqual({
        bid: { price: 100, quantity: 3, orders: 1 },
        ask: { price: 101, quantity: 10, orders: 2 },
      });
    });

    it('a sell fills against the highest bids first', () => {
      const book = bookWithDepth();
      const result = book.submit(limit('t', 'SELL', 98, 7));
      expect(result.fills.map((f) => [f.makerOrderId, f.price, f.quantity])).toEqual([
        ['b1', 99, 5],
        ['b2', 98, 2],
      ]);
      expect(result.status).toBe('FILLED');
    });
  });

  describe('time in force', () => {
    it('IOC fills what it can and cancels the rest', () => {
      const book = bookWithDepth();
      const result = book.submit(limit('t', 'BUY', 100, 8, { timeInForce: 'IOC' }));
      expect(result).toMatchObject({
        status: 'PARTIALLY_FILLED_CANCELLED',
        filled: 5,
        remaining: 0,
      });
      expect(result.cancelled).toEqual([
        {
          orderId: 't',
          owner: 'owner-t',
          side: 'BUY',
          price: 100,
          quantity: 3,
          reason: 'IOC_REMAINDER',
        },
      ]);
      expect(book.has('t')).toBe(false);
      expect(book.top().bid?.price).toBe(99);
    });

    it('IOC with nothing to match is cancelled whole', () => {
      const book = bookWithDepth();
      const result = book.submit(limit('t', 'BUY', 99, 4, { timeInForce: 'IOC' }));
      expect(result).toMatchObject({ status: 'CANCELLED', filled: 0, fills: [] });
      expect(result.cancelled[0]).toMatchObject({ quantity: 4, reason: 'IOC_REMAINDER' });
    });

    it('FOK fills completely when the liquidity within its limit suffices', () => {
      const book = bookWithDepth();
      const result = book.submit(limit('t', 'BUY', 101, 15, { timeInForce: 'FOK' }));
      expect(result).toMatchObject({ status: 'FILLED', filled: 15, cancelled: [] });
      expect(book.top().ask).toBeNull();
    });

    it('FOK does nothing at all when it cannot fill completely', () => {
      const book = bookWithDepth();
      const before = book.snapshot();
      const result = book.submit(limit('t', 'BUY', 101, 16, { timeInForce: 'FOK' }));
      expect(result).toMatchObject({ status: 'CANCELLED', filled: 0, fills: [] });
      expect(result.cancelled).toEqual([
        expect.objectContaining({ orderId: 't', quantity: 16, reason: 'FOK_NOT_FILLABLE' }),
      ]);
      expect(book.snapshot()).toEqual(before);
    });

    it("FOK does not count the owner's own orders", () => {
      const book = bookWithDepth({ selfTradePrevention: 'CANCEL_RESTING' });
      const before = book.snapshot();
      // 15 lots rest within 101, but a2 is the taker's own.
      const result = book.submit(
        limit('t', 'BUY', 101, 11, { owner: 'owner-a2', timeInForce: 'FOK' }),
      );
      expect(result.cancelled).toEqual([expect.objectContaining({ reason: 'FOK_NOT_FILLABLE' })]);
      expect(book.snapshot()).toEqual(before);
      const fits = book.submit(
        limit('t', 'BUY', 101, 10, { owner: 'owner-a2', timeInForce: 'FOK' }),
      );
      expect(fits.status).toBe('FILLED');
      expect(fits.cancelled).toEqual([
        expect.objectContaining({ orderId: 'a2', reason: 'SELF_TRADE' }),
      ]);
    });

    it('DAY orders rest like GTC until expire cancels them all, GTC stay', () => {
      const book = bookWithDepth();
      book.submit(limit('d1', 'BUY', 97, 2, { timeInForce: 'DAY' }));
      book.submit(limit('d2', 'SELL', 102, 3, { timeInForce: 'DAY' }));
      book.submit(limit('d3', 'BUY', 99, 4, { timeInForce: 'DAY' }));
      expect(book.top().bid).toEqual({ price: 99, quantity: 9, orders: 2 });

      const expired = book.expire('DAY');
      expect(expired.map((c) => [c.orderId, c.quantity, c.reason])).toEqual([
        ['d3', 4, 'EXPIRED'],
        ['d1', 2, 'EXPIRED'],
        ['d2', 3, 'EXPIRED'],
      ]);
      expect(openQuantities(book)).toEqual({ a1: 5, a2: 5, a3: 5, b1: 5, b2: 5 });
      expect(book.expire('DAY')).toEqual([]);
    });
  });

  describe('market orders', () => {
    it('sweeps the book and cancels what is left when liquidity runs out', () => {
      const book = bookWithDepth();
      const result = book.submit(market('m', 'BUY', 20));
      expect(result.fills.map((f) => f.price)).toEqual([100, 101, 101]);
      expect(result).toMatchObject({
        status: 'PARTIALLY_FILLED_CANCELLED',
        filled: 15,
        remaining: 0,
      });
      expect(result.cancelled).toEqual([
        {
          orderId: 'm',
          owner: 'owner-m',
          side: 'BUY',
          price: null,
          quantity: 5,
          reason: 'MARKET_NO_LIQUIDITY',
        },
      ]);
      expect(book.top().ask).toBeNull();
    });

    it('never rests, whatever its time in force', () => {
      const book = new OrderBook('ACME');
      const result = book.submit(market('m', 'SELL', 3, { timeInForce: 'GTC' }));
      expect(result.status).toBe('CANCELLED');
      expect(result.cancelled[0].reason).toBe('MARKET_NO_LIQUIDITY');
      expect(book.size).toBe(0);
    });

    it('stops at its protection price and cancels the rest', () => {
      const book = bookWithDepth();
      const result = book.submit(market('m', 'BUY', 8, { protectionPrice: 100 }));
      expect(result.fills).toEqual([expect.objectContaining({ makerOrderId: 'a1', quantity: 5 })]);
      expect(result.cancelled).toEqual([
        expect.objectContaining({ orderId: 'm', quantity: 3, reason: 'PROTECTION_PRICE' }),
      ]);
      expect(book.top().ask?.price).toBe(101);

      const sell = book.submit(market('s', 'SELL', 8, { protectionPrice: 99 }));
      expect(sell.fills.map((f) => f.makerOrderId)).toEqual(['b1']);
      expect(sell.cancelled[0]).toMatchObject({ quantity: 3, reason: 'PROTECTION_PRICE' });
    });

    it('FOK market fills all or nothing within its protection price', () => {
      const book = bookWithDepth();
      const refused = book.submit(
        market('m', 'BUY', 6, { protectionPrice: 100, timeInForce: 'FOK' }),
      );
      expect(refused.cancelled[0].reason).toBe('FOK_NOT_FILLABLE');
      expect(book.has('a1')).toBe(true);
      expect(book.submit(market('n', 'BUY', 6, { timeInForce: 'FOK' })).status).toBe('FILLED');
    });
  });

  describe('self-trade prevention', () => {
    it('CANCEL_INCOMING (the default) keeps earlier fills and cancels the incoming remainder', () => {
      const book = new OrderBook('ACME');
      book.submit(limit('x1', 'SELL', 100, 2, { owner: 'other' }));
      book.submit(limit('own', 'SELL', 100, 3, { owner: 'me' }));
      book.submit(limit('x2', 'SELL', 100, 4, { owner: 'other' }));
      const result = book.submit(limit('t', 'BUY', 100, 6, { owner: 'me' }));
      expect(result.fills.map((f) => [f.makerOrderId, f.quantity])).toEqual([['x1', 2]]);
      expect(result).toMatchObject({
        status: 'PARTIALLY_FILLED_CANCELLED',
        filled: 2,
        remaining: 0,
      });
      expect(result.cancelled).toEqual([
        expect.objectContaining({ orderId: 't', quantity: 4, reason: 'SELF_TRADE' }),
      ]);
      // The GTC remainder did not rest either, so nothing of its owner's is left crossed.
      expect(openQuantities(book)).toEqual({ own: 3, x2: 4 });
    });

    it("CANCEL_RESTING cancels the owner's resting order and keeps matching", () => {
      const book = new OrderBook('ACME', { selfTradePrevention: 'CANCEL_RESTING' });
      book.submit(limit('x1', 'SELL', 100, 2, { owner: 'other' }));
      book.submit(limit('own', 'SELL', 100, 3, { owner: 'me' }));
      book.submit(limit('x2', 'SELL', 101, 4, { owner: 'other' }));
      const result = book.submit(limit('t', 'BUY', 101, 8, { owner: 'me' }));
      expect(result.fills.map((f) => [f.makerOrderId, f.quantity])).toEqual([
        ['x1', 2],
        ['x2', 4],
      ]);
      expect(result.cancelled).toEqual([
        {
          orderId: 'own',
          owner: 'me',
          side: 'SELL',
          price: 100,
          quantity: 3,
          reason: 'SELF_TRADE',
        },
      ]);
      expect(result).toMatchObject({ status: 'PARTIALLY_FILLED_RESTING', remaining: 2 });
      expect(openQuantities(book)).toEqual({ t: 2 });
    });
  });

  describe('cancel and replace', () => {
    it('cancel removes the open quantity and answers null for anything not resting', () => {
      const book = bookWithDepth();
      book.submit(limit('t', 'BUY', 100, 2));
      expect(book.cancel('a1')).toEqual({
        orderId: 'a1',
        owner: 'owner-a1',
        side: 'SELL',
        price: 100,
        quantity: 3,
        reason: 'REQUESTED',
      });
      expect(book.cancel('a1')).toBeNull();
      expect(book.cancel('t')).toBeNull(); // filled
      expect(book.cancel('nope')).toBeNull();
      expect(book.top().ask).toEqual({ price: 101, quantity: 10, orders: 2 });
    });

    it('keeps time priority when only the quantity goes down', () => {
      const book = bookWithDepth();
      const result = book.replace('a2', { quantity: 2 });
      expect(result).toMatchObject({
        priorityKept: true,
        status: 'RESTING',
        remaining: 2,
        previousPrice: 101,
        previousQuantity: 5,
      });
      const sweep = book.submit(limit('t', 'BUY', 101, 8));
      expect(sweep.fills.map((f) => [f.makerOrderId, f.quantity])).toEqual([
        ['a1', 5],
        ['a2', 2],
        ['a3', 1],
      ]);
    });

    it('loses time priority when the quantity goes up', () => {
      const book = bookWithDepth();
      expect(book.replace('a2', { quantity: 6 })).toMatchObject({
        priorityKept: false,
        remaining: 6,
      });
      const sweep = book.submit(limit('t', 'BUY', 101, 8));
      expect(sweep.fills.map((f) => f.makerOrderId)).toEqual(['a1', 'a3']);
      expect(book.get('a2')).toMatchObject({ quantity: 6, price: 101 });
    });

    it('loses time priority when the price changes, even back to the same level later', () => {
      const book = bookWithDepth();
      book.replace('a2', { price: 102 });
      book.replace('a2', { price: 101 });
      expect(book.snapshot().asks.map((o) => o.id)).toEqual(['a1', 'a3', 'a2']);
    });

    it('matches when the new price crosses, then rests the remainder at the new price', () => {
      const book = bookWithDepth();
      const result = book.replace('b1', { price: 100, quantity: 7 });
      expect(result).toMatchObject({
        priorityKept: false,
        status: 'PARTIALLY_FILLED_RESTING',
        filled: 5,
        remaining: 2,
      });
      expect(
        result?.fills.map((f) => [f.makerOrderId, f.takerOrderId, f.price, f.quantity]),
      ).toEqual([['a1', 'b1', 100, 5]]);
      expect(book.top()).toEqual({
        bid: { price: 100, quantity: 2, orders: 1 },
        ask: { price: 101, quantity: 10, orders: 2 },
      });
    });

    it('answers null for an order that is not resting', () => {
      expect(bookWithDepth().replace('nope', { quantity: 1 })).toBeNull();
    });
  });

  describe('rebuilding', () => {
    it('snapshot is JSON data and fromSnapshot gives back the same book', () => {
      const book = bookWithDepth({ selfTradePrevention: 'CANCEL_RESTING' });
      book.submit(limit('d', 'BUY', 99, 1, { timeInForce: 'DAY' }));
      const snapshot = JSON.parse(JSON.stringify(book.snapshot()));
      const rebuilt = OrderBook.fromSnapshot(snapshot);
      expect(rebuilt.snapshot()).toEqual(book.snapshot());
      expect(rebuilt.selfTradePrevention).toBe('CANCEL_RESTING');
    });

    it('rest refuses an order that would cross or reuse an id', () => {
      const book = bookWithDepth();
      const order = {
        id: 'r',
        owner: 'o',
        side: 'BUY',
        price: 100,
        quantity: 1,
        timeInForce: 'GTC',
      } as const;
      expect(() => book.rest(order)).toThrow(expect.objectContaining({ code: 'WOULD_CROSS' }));
      expect(() => book.rest({ ...order, id: 'b1', price: 90 })).toThrow(
        expect.objectContaining({ code: 'DUPLICATE_ORDER_ID' }),
      );
      book.rest({ ...order, price: 99 });
      expect(book.snapshot().bids.map((o) => o.id)).toEqual(['b1', 'r', 'b2']);
    });
  });

  describe('validation', () => {
    it('refuses a duplicate id of a resting order', () => {
      const book = bookWithDepth();
      expect(() => book.submit(limit('a1', 'BUY', 50, 1))).toThrow(
        expect.objectContaining({ name: 'OrderBookError', code: 'DUPLICATE_ORDER_ID' }),
      );
      expect(book.top().bid?.price).toBe(99);
    });

    it.each([0, -1, 1.5, NaN, Infinity, 2 ** 53])('refuses %p as ticks or lots', (bad) => {
      const book = new OrderBook('ACME');
      expect(() => book.submit(limit('x', 'BUY', bad, 1))).toThrow(
        expect.objectContaining({ code: 'INVALID_PRICE' }),
      );
      expect(() => book.submit(limit('x', 'BUY', 1, bad))).toThrow(
        expect.objectContaining({ code: 'INVALID_QUANTITY' }),
      );
      expect(() => book.submit(market('x', 'BUY', 1, { protectionPrice: bad }))).toThrow(
        expect.objectContaining({ code: 'INVALID_PRICE' }),
      );
      book.submit(limit('r', 'BUY', 10, 1));
      expect(() => book.replace('r', { price: bad })).toThrow(OrderBookError);
      expect(() => book.replace('r', { quantity: bad })).toThrow(OrderBookError);
      expect(book.get('r')).toMatchObject({ price: 10, quantity: 1 });
    });

    it('refuses orders that do not make sense', () => {
      const book = new OrderBook('ACME');
      const invalid = expect.objectContaining({ code: 'INVALID_ORDER' });
      expect(() => book.submit({ ...limit('x', 'BUY', 1, 1), protectionPrice: 2 })).toThrow(
        invalid,
      );
      expect(() => book.submit({ ...market('x', 'BUY', 1), price: 2 })).toThrow(invalid);
      expect(() => book.submit({ ...limit('x', 'BUY', 1, 1), id: '' })).toThrow(invalid);
      expect(() => book.submit({ ...limit('x', 'BUY', 1, 1), owner: '' })).toThrow(invalid);
      expect(() => book.submit({ ...limit('', 'BUY', 1, 1) })).toThrow(invalid);
      expect(() =>
        book.submit(limit('x', 'BUY', 1, 1, { timeInForce: 'GTD' as TimeInForce })),
      ).toThrow(invalid);
      expect(() => book.submit({ ...limit('x', 'BUY', 1, 1), side: 'SHORT' as Side })).toThrow(
        invalid,
      );
      expect(book.size).toBe(0);
    });
  });
});
