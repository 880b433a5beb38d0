// Property: for any sequence of submits, cancels, replaces and expiries, the order book does exactly
// what a naive model does (all orders in one array, sorted by price then arrival on every match),
// never ends an operation crossed, accounts for every lot, and a book rebuilt from its snapshot
// behaves the same from then on.
import fc from 'fast-check';
import {
  BookSnapshot,
  Cancellation,
  CancelReason,
  Fill,
  IncomingOrder,
  OrderBook,
  OrderStatus,
  ReplaceChange,
  ReplaceResult,
  RestingOrderState,
  RestingTimeInForce,
  SelfTradePrevention,
  Side,
  SubmitResult,
  TimeInForce,
} from './index';

interface ModelOrder {
  id: string;
  owner: string;
  side: Side;
  price: number;
  quantity: number;
  timeInForce: RestingTimeInForce;
  arrival: number;
}

interface ModelResult {
  orderId: string;
  status: OrderStatus;
  filled: number;
  remaining: number;
  fills: Fill[];
  cancelled: Cancellation[];
}

class DuplicateId extends Error {
  readonly code = 'DUPLICATE_ORDER_ID';
}

/** The obvious implementation: slow, short, and written without looking at the real one. */
class NaiveBook {
  private orders: ModelOrder[] = [];
  private arrivals = 0;

  constructor(private readonly stp: SelfTradePrevention) {}

  submit(o: IncomingOrder): ModelResult {
    if (this.orders.some((r) => r.id === o.id)) throw new DuplicateId(o.id);
    const price = o.type === 'LIMIT' ? o.price! : null;
    const limit =
      o.type === 'LIMIT'
        ? o.price!
        : (o.protectionPrice ?? (o.side === 'BUY' ? Infinity : -Infinity));
    return this.enter(o.id, o.owner, o.side, price, limit, o.quantity, o.timeInForce);
  }

  cancel(id: string): Cancellation | null {
    const order = this.orders.find((r) => r.id === id);
    if (!order) return null;
    this.orders = this.orders.filter((r) => r !== order);
    return cancelOf(order, order.quantity, 'REQUESTED');
  }

  replace(id: string, change: ReplaceChange) {
    const order = this.orders.find((r) => r.id === id);
    if (!order) return null;
    const previous = { previousPrice: order.price, previousQuantity: order.quantity };
    const price = change.price ?? order.price;
    const quantity = change.quantity ?? order.quantity;
    if (price === order.price && quantity <= order.quantity) {
      order.quantity = quantity;
      const result: ModelResult = {
        orderId: id,
        status: 'RESTING',
        filled: 0,
        remaining: quantity,
        fills: [],
        cancelled: [],
      };
      return { ...result, priorityKept: true, ...previous };
    }
    this.orders = this.orders.filter((r) => r !== order);
    const result = this.enter(
      id,
      order.owner,
      order.side,
      price,
      price,
      quantity,
      order.timeInForce,
    );
    return { ...result, priorityKept: false, ...previous };
  }

  expire(): Cancellation[] {
    const day = [...this.inPriority('BUY'), ...this.inPriority('SELL')].filter(
      (r) => r.timeInForce === 'DAY',
    );
    this.orders = this.orders.filter((r) => r.timeInForce !== 'DAY');
    return day.map((r) => cancelOf(r, r.quantity, 'EXPIRED'));
  }

  snapshot(): { bids: RestingOrderState[]; asks: RestingOrderState[] } {
    const state = ({ id, owner, side, price, quantity, timeInForce }: ModelOrder) => ({
      id,
      owner,
      side,
      price,
      quantity,
      timeInForce,
    });
    return { bids: this.inPriority('BUY').map(state), asks: this.inPriority('SELL').map(state) };
  }

  private inPriority(side: Side): ModelOrder[] {
    return this.orders
      .filter((r) => r.side === side)
      .sort(
        (a, b) => (side === 'BUY' ? b.price - a.price : a.price - b.price) || a.arrival - b.arrival,
      );
  }

  private enter(
    id: string,
    owner: string,
    side: Side,
    price: number | null,
    limit: number,
    quantity: number,
    timeInForce: TimeInForce,
  ): ModelResult {
    // FOK: try it, and put everything back if it did not fill.
    const saved = this.orders.map((r) => ({ ...r }));
    const fills: Fill[] = [];
    const cancelled: Cancellation[] = [];
    let left = quantity;
    let selfTrade = false;
    for (const maker of this.inPriority(side === 'BUY' ? 'SELL' : 'BUY')) {
      if (left === 0) break;
      if (side === 'BUY' ? maker.price > limit : maker.price < limit) break;
      if (maker.owner === owner) {
        if (this.stp === 'CANCEL_INCOMING') {
          selfTrade = true;
          break;
        }
        this.orders = this.orders.filter((r) => r !== maker);
        cancelled.push(cancelOf(maker, maker.quantity, 'SELF_TRADE'));
        continue;
      }
      const traded = Math.min(left, maker.quantity);
      maker.quantity -= traded;
      left -= traded;
      fills.push({
        makerOrderId: maker.id,
        makerOwner: maker.owner,
        takerOrderId: id,
        takerOwner: owner,
        takerSide: side,
        price: maker.price,
        quantity: traded,
        makerRemaining: maker.quantity,
        takerRemaining: left,
      });
      if (maker.quantity === 0) this.orders = this.orders.filter((r) => r !== maker);
    }
    const incoming = { orderId: id, owner, side, price };
    if (timeInForce === 'FOK' && left > 0) {
      this.orders = saved;
      return {
        orderId: id,
        status: 'CANCELLED',
        filled: 0,
        remaining: 0,
        fills: [],
        cancelled: [{ ...incoming, quantity, reason: 'FOK_NOT_FILLABLE' }],
      };
    }
    let remaining = 0;
    if (left > 0) {
      if (price !== null && !selfTrade && (timeInForce === 'GTC' || timeInForce === 'DAY')) {
        this.orders.push({
          id,
          owner,
          side,
          price,
          quantity: left,
          timeInForce,
          arrival: this.arrivals++,
        });
        remaining = left;
      } else {
        const oppositeEmpty = !this.orders.some((r) => r.side !== side);
        const reason: CancelReason = selfTrade
          ? 'SELF_TRADE'
          : price !== null
            ? 'IOC_REMAINDER'
            : oppositeEmpty
              ? 'MARKET_NO_LIQUIDITY'
              : 'PROTECTION_PRICE';
        cancelled.push({ ...incoming, quantity: left, reason });
      }
    }
    const filled = quantity - left;
    const status: OrderStatus =
      left === 0
        ? 'FILLED'
        : remaining > 0
          ? filled > 0
            ? 'PARTIALLY_FILLED_RESTING'
            : 'RESTING'
          : filled > 0
            ? 'PARTIALLY_FILLED_CANCELLED'
            : 'CANCELLED';
    return { orderId: id, status, filled, remaining, fills, cancelled };
  }
}

function cancelOf(order: ModelOrder, quantity: number, reason: CancelReason): Cancellation {
  const { id: orderId, owner, side, price } = order;
  return { orderId, owner, side, price, quantity, reason };
}

type Op =
  | {
      kind: 'submit';
      reuseId: number | null;
      owner: string;
      side: Side;
      type: 'LIMIT' | 'MARKET';
      price: number;
      protectionPrice: number | null;
      // When set, the price (or protection price) is this many ticks through the opposite touch:
      // random prices alone leave bids low and asks high, and little would trade.
      throughTouch: number | null;
      quantity: number;
      // When set, the quantity is the liquidity the order could reach (other owners' orders within
      // its limit) plus this, so FOK orders land right on the edge of fillable.
      sizeToBook: number | null;
      timeInForce: TimeInForce;
    }
  | { kind: 'cancel'; pick: number }
  | { kind: 'replace'; pick: number; price: number | null; quantity: number | null }
  | { kind: 'expire' };

/** An op with its ids and quantity resolved against the current state, applied to each book alike. */
type Action =
  | { kind: 'submit'; order: IncomingOrder }
  | { kind: 'cancel'; id: string }
  | { kind: 'replace'; id: string; change: ReplaceChange }
  | { kind: 'expire' };

/** `arbitrary` in one case out of `oneIn`, else null. */
function sometimes<T>(arbitrary: fc.Arbitrary<T>, oneIn: number): fc.Arbitrary<T | null> {
  return fc.oneof({ weight: oneIn - 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary });
}

// Three owners and narrow overlapping price bands (bids 94..102, asks 98..106, as `bandPrice` maps
// them), so books have some depth, orders cross often and meet their own owner's orders.
const price = fc.integer({ min: 0, max: 8 });
const bandPrice = (side: Side, offset: number) => (side === 'BUY' ? 94 : 98) + offset;
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({
      kind: fc.constant('submit' as const),
      reuseId: sometimes(fc.nat(), 15),
      owner: fc.constantFrom('o1', 'o2', 'o3'),
      side: fc.constantFrom<Side>('BUY', 'SELL'),
      type: fc.constantFrom<'LIMIT' | 'MARKET'>('LIMIT', 'LIMIT', 'LIMIT', 'LIMIT', 'MARKET'),
      price,
      protectionPrice: fc.option(price),
      throughTouch: sometimes(fc.integer({ min: -1, max: 3 }), 3),
      quantity: fc.integer({ min: 1, max: 10 }),
      sizeToBook: sometimes(fc.integer({ min: -2, max: 2 }), 5),
      timeInForce: fc.constantFrom<TimeInForce>('GTC', 'GTC', 'GTC', 'DAY', 'IOC', 'FOK', 'FOK'),
    }),
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('cancel' as const), pick: fc.nat() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('replace' as const),
      pick: fc.nat(),
      price: fc.option(price),
      quantity: fc.option(fc.integer({ min: 1, max: 12 })),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'expire' as const }) },
);

/** `ids` are every id submitted so far; cancels and replaces pick among them, resting or not. */
function resolve(op: Op, ids: string[], next: string, book: BookSnapshot): Action {
  const pick = (n: number) => (ids.length === 0 ? 'missing' : ids[n % ids.length]);
  switch (op.kind) {
    case 'submit': {
      const id = op.reuseId === null ? next : pick(op.reuseId);
      const { owner, side, timeInForce } = op;
      const touch = (side === 'BUY' ? book.asks : book.bids)[0]?.price;
      const through = (given: number) =>
        op.throughTouch === null || touch === undefined
          ? given
          : Math.max(1, touch + (side === 'BUY' ? op.throughTouch : -op.throughTouch));
      const limitPrice = through(bandPrice(side, op.price));
      const protection =
        op.protectionPrice === null ? undefined : through(bandPrice(side, op.protectionPrice));
      const limit =
        op.type === 'LIMIT' ? limitPrice : (protection ?? (side === 'BUY' ? Infinity : -Infinity));
      const reachable = (side === 'BUY' ? book.asks : book.bids)
        .filter((o) => o.owner !== owner && (side === 'BUY' ? o.price <= limit : o.price >= limit))
        .reduce((n, o) => n + o.quantity, 0);
      const quantity =
        op.sizeToBook === null ? op.quantity : Math.max(1, reachable + op.sizeToBook);
      const order: IncomingOrder =
        op.type === 'LIMIT'
          ? { id, owner, side, type: 'LIMIT', price: limitPrice, quantity, timeInForce }
          : {
              id,
              owner,
              side,
              type: 'MARKET',
              protectionPrice: protection,
              quantity,
              timeInForce,
            };
      return { kind: 'submit', order };
    }
    case 'cancel':
      return { kind: 'cancel', id: pick(op.pick) };
    case 'replace': {
      const id = pick(op.pick);
      const side = [...book.bids, ...book.asks].find((o) => o.id === id)?.side ?? 'BUY';
      const change = {
        price: op.price === null ? undefined : bandPrice(side, op.price),
        quantity: op.quantity ?? undefined,
      };
      return { kind: 'replace', id, change };
    }
    case 'expire':
      return op;
    default: {
      const _never: never = op;
      throw new Error(`unknown op ${JSON.stringify(_never)}`);
    }
  }
}

type Outcome =
  SubmitResult | ReplaceResult | Cancellation | Cancellation[] | null | { error: string };

function apply(book: OrderBook | NaiveBook, action: Action): Outcome {
  switch (action.kind) {
    case 'submit':
      return outcome(() => book.submit(action.order));
    case 'cancel':
      return book.cancel(action.id);
    case 'replace':
      return book.replace(action.id, action.change);
    case 'expire':
      return book instanceof OrderBook ? book.expire('DAY') : book.expire();
  }
}

interface Ledger {
  ordered: Map<string, number>;
  filled: Map<string, number>;
  cancelled: Map<string, number>;
}

function add(map: Map<string, number>, id: string, quantity: number): void {
  map.set(id, (map.get(id) ?? 0) + quantity);
}

function outcome<T>(run: () => T): T | { error: string } {
  try {
    return run();
  } catch (error) {
    return { error: (error as { code?: string }).code ?? String(error) };
  }
}

/** Ordered lots come from the input; filled and cancelled lots from what the book answered. */
function record(ledger: Ledger, action: Action, result: Outcome): void {
  if (result === null || 'error' in result) return;
  if (Array.isArray(result) || 'reason' in result) {
    for (const c of Array.isArray(result) ? result : [result]) {
      add(ledger.cancelled, c.orderId, c.quantity);
    }
    return;
  }
  if (action.kind === 'submit') add(ledger.ordered, action.order.id, action.order.quantity);
  if (action.kind === 'replace' && 'previousQuantity' in result) {
    const quantity = action.change.quantity ?? result.previousQuantity;
    add(ledger.ordered, action.id, quantity - result.previousQuantity);
  }
  for (const c of result.cancelled) add(ledger.cancelled, c.orderId, c.quantity);
  for (const fill of result.fills) {
    add(ledger.filled, fill.makerOrderId, fill.quantity);
    add(ledger.filled, fill.takerOrderId, fill.quantity);
  }
}

function expectConsistent(book: OrderBook): void {
  const snapshot: BookSnapshot = book.snapshot();
  const { bid, ask } = book.top();
  if (bid && ask) expect(bid.price).toBeLessThan(ask.price);
  // L2 agrees with the orders it aggregates.
  const levels = (orders: readonly RestingOrderState[]) => {
    const out: { price: number; quantity: number; orders: number }[] = [];
    for (const o of orders) {
      const last = out[out.length - 1];
      if (last?.price === o.price) {
        last.quantity += o.quantity;
        last.orders++;
      } else out.push({ price: o.price, quantity: o.quantity, orders: 1 });
    }
    return out;
  };
  expect(book.depth(1000)).toEqual({ bids: levels(snapshot.bids), asks: levels(snapshot.asks) });
  expect(book.size).toBe(snapshot.bids.length + snapshot.asks.length);
}

describe('OrderBook against a naive model', () => {
  it('produces the same fills, cancellations and book, keeps every lot accounted, rebuilds exactly', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<SelfTradePrevention>('CANCEL_INCOMING', 'CANCEL_RESTING'),
        fc.array(opArb, { minLength: 1, maxLength: 150, size: 'max' }),
        fc.nat(),
        (stp, ops, splitAt) => {
          const book = new OrderBook('ACME', { selfTradePrevention: stp });
          const model = new NaiveBook(stp);
          const ledger: Ledger = { ordered: new Map(), filled: new Map(), cancelled: new Map() };
          const split = splitAt % ops.length;
          let rebuilt: OrderBook | null = null;
          const ids: string[] = [];
          for (const [i, op] of ops.entries()) {
            if (i === split) {
              rebuilt = OrderBook.fromSnapshot(JSON.parse(JSON.stringify(book.snapshot())));
              expect(rebuilt.snapshot()).toEqual(book.snapshot());
            }
            const next = `x${i}`;
            const action = resolve(op, ids, next, book.snapshot());
            const result = apply(book, action);
            expect(result).toEqual(apply(model, action));
            if (rebuilt) expect(apply(rebuilt, action)).toEqual(result);
            record(ledger, action, result);
            if (op.kind === 'submit' && op.reuseId === null) ids.push(next);

            const { bids, asks } = book.snapshot();
            expect({ bids, asks }).toEqual(model.snapshot());
            expectConsistent(book);
          }
          if (rebuilt) expect(rebuilt.snapshot()).toEqual(book.snapshot());
          for (const [id, ordered] of ledger.ordered) {
            const resting = book.get(id)?.quantity ?? 0;
            const accounted =
              (ledger.filled.get(id) ?? 0) + resting + (ledger.cancelled.get(id) ?? 0);
            expect({ id, lots: accounted }).toEqual({ id, lots: ordered });
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
