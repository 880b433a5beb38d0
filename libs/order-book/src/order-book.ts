// Price-time-priority matching for one instrument. Pure and deterministic: no clock, no ids, no
// I/O, so the trading service can rebuild a book from its events and get the same trades again.
// Priority is arrival order into the book; the caller decides what arrives when.
import { BookSide, PriceLevel, RestingOrder } from './book-side';
import {
  BookSnapshot,
  Cancellation,
  CancelReason,
  CancelResult,
  Fill,
  IncomingOrder,
  Level,
  OrderBookError,
  OrderBookOptions,
  OrderStatus,
  ReplaceChange,
  ReplaceResult,
  RestingOrderState,
  RestingTimeInForce,
  SelfTradePrevention,
  Side,
  SubmitResult,
  TimeInForce,
} from './types';

// Shared by every result that has none, so the common "rested, nothing happened" case allocates
// no arrays; frozen because callers get them.
const NO_FILLS: readonly Fill[] = Object.freeze([]);
const NO_CANCELS: readonly Cancellation[] = Object.freeze([]);

export class OrderBook {
  readonly selfTradePrevention: SelfTradePrevention;
  private readonly bids = new BookSide('BUY');
  private readonly asks = new BookSide('SELL');
  private readonly orders = new Map<string, RestingOrder>();
  // What the operation in progress produced; allocated only when it produces something.
  private fills: Fill[] | null = null;
  private cancels: Cancellation[] | null = null;
  private stoppedBySelfTrade = false;

  constructor(
    readonly symbol: string,
    options: OrderBookOptions = {},
  ) {
    const stp = options.selfTradePrevention ?? 'CANCEL_INCOMING';
    if (stp !== 'CANCEL_INCOMING' && stp !== 'CANCEL_RESTING') {
      throw new OrderBookError('INVALID_ORDER', `unknown self-trade prevention '${String(stp)}'`);
    }
    this.selfTradePrevention = stp;
  }

  /** A new book holding exactly the snapshot's orders, in the same priority. */
  static fromSnapshot(snapshot: BookSnapshot): OrderBook {
    const book = new OrderBook(snapshot.symbol, {
      selfTradePrevention: snapshot.selfTradePrevention,
    });
    for (const order of snapshot.bids) book.rest(order);
    for (const order of snapshot.asks) book.rest(order);
    return book;
  }

  /** Number of resting orders. */
  get size(): number {
    return this.orders.size;
  }

  /** Matches the order, then rests the remainder of a GTC/DAY limit order. */
  submit(order: IncomingOrder): SubmitResult {
    const { id, owner, side, quantity, timeInForce } = order;
    checkOrder(id, owner, side);
    checkLots(quantity, 'quantity');
    if (
      timeInForce !== 'GTC' &&
      timeInForce !== 'IOC' &&
      timeInForce !== 'FOK' &&
      timeInForce !== 'DAY'
    ) {
      throw new OrderBookError('INVALID_ORDER', `unknown time in force '${String(timeInForce)}'`);
    }
    let price: number | null;
    let limit: number;
    if (order.type === 'LIMIT') {
      checkTicks(order.price, 'price');
      if (order.protectionPrice !== undefined) {
        throw new OrderBookError('INVALID_ORDER', 'a limit order has no protection price');
      }
      price = limit = order.price;
    } else if (order.type === 'MARKET') {
      if (order.price !== undefined) {
        throw new OrderBookError('INVALID_ORDER', 'a market order has no price');
      }
      price = null;
      if (order.protectionPrice === undefined) limit = side === 'BUY' ? Infinity : -Infinity;
      else {
        checkTicks(order.protectionPrice, 'protectionPrice');
        limit = order.protectionPrice;
      }
    } else {
      throw new OrderBookError('INVALID_ORDER', `unknown order type '${String(order.type)}'`);
    }
    if (this.orders.has(id)) {
      throw new OrderBookError('DUPLICATE_ORDER_ID', `order '${id}' is already in the book`);
    }
    return this.execute(id, owner, side, price, limit, quantity, timeInForce);
  }

  /** Removes a resting order's open quantity; null if it is not resting (filled, cancelled, unknown). */
  cancel(orderId: string): CancelResult | null {
    const order = this.orders.get(orderId);
    if (order === undefined) return null;
    this.remove(order);
    return cancellation(order, order.remaining, 'REQUESTED');
  }

  /**
   * Changes a resting order's price and/or open quantity. It keeps its time priority only when the
   * price is unchanged and the quantity does not go up; otherwise it leaves the book and re-enters
   * as a new arrival, matching if the new price crosses. Null if the order is not resting.
   */
  replace(orderId: string, change: ReplaceChange): ReplaceResult | null {
    const order = this.orders.get(orderId);
    if (order === undefined) return null;
    if (change.price !== undefined) checkTicks(change.price, 'price');
    if (change.quantity !== undefined) checkLots(change.quantity, 'quantity');
    const previousPrice = order.price;
    const previousQuantity = order.remaining;
    const price = change.price ?? previousPrice;
    const quantity = change.quantity ?? previousQuantity;
    if (price === previousPrice && quantity <= previousQuantity) {
      order.level.quantity -= previousQuantity - quantity;
      order.remaining = quantity;
      return {
        orderId,
        status: 'RESTING',
        filled: 0,
        remaining: quantity,
        fills: NO_FILLS,
        cancelled: NO_CANCELS,
        priorityKept: true,
        previousPrice,
        previousQuantity,
      };
    }
    this.remove(order);
    const result = this.execute(
      orderId,
      order.owner,
      order.side,
      price,
      price,
      quantity,
      order.timeInForce,
    );
    // Spelled out, not spread: one object shape with the priority-kept answer, and V8 builds it fast.
    return {
      orderId,
      status: result.status,
      filled: result.filled,
      remaining: result.remaining,
      fills: result.fills,
      cancelled: result.cancelled,
      priorityKept: false,
      previousPrice,
      previousQuantity,
    };
  }

  /** End of session: cancels every DAY order, bids then asks, each in priority order. */
  expire(timeInForce: 'DAY'): CancelResult[] {
    if (timeInForce !== 'DAY') {
      throw new OrderBookError('INVALID_ORDER', `only DAY orders expire, not '${timeInForce}'`);
    }
    const expiring: RestingOrder[] = [];
    for (const side of [this.bids, this.asks]) {
      forEachInPriority(side, (order) => {
        if (order.timeInForce === 'DAY') expiring.push(order);
      });
    }
    return expiring.map((order) => {
      this.remove(order);
      return cancellation(order, order.remaining, 'EXPIRED');
    });
  }

  /**
   * Adds an order without matching, behind the orders already at its price: replaying a snapshot
   * or the book's events in priority order rebuilds the same book. Refuses an order that would cross.
   */
  rest(order: RestingOrderState): void {
    const { id, owner, side, price, quantity, timeInForce } = order;
    checkOrder(id, owner, side);
    checkTicks(price, 'price');
    checkLots(quantity, 'quantity');
    if (timeInForce !== 'GTC' && timeInForce !== 'DAY') {
      throw new OrderBookError('INVALID_ORDER', `a ${String(timeInForce)} order cannot rest`);
    }
    if (this.orders.has(id)) {
      throw new OrderBookError('DUPLICATE_ORDER_ID', `order '${id}' is already in the book`);
    }
    const best = (side === 'BUY' ? this.asks : this.bids).best();
    if (best !== null && (side === 'BUY' ? best.price <= price : best.price >= price)) {
      throw new OrderBookError(
        'WOULD_CROSS',
        `${side} ${id} at ${price} would cross the best opposite price ${best.price}`,
      );
    }
    this.addResting(id, owner, side, price, quantity, timeInForce);
  }

  has(orderId: string): boolean {
    return this.orders.has(orderId);
  }

  get(orderId: string): RestingOrderState | undefined {
    const order = this.orders.get(orderId);
    return order === undefined ? undefined : state(order);
  }

  /** L1: the best bid and ask. */
  top(): { bid: Level | null; ask: Level | null } {
    const bid = this.bids.best();
    const ask = this.asks.best();
    return { bid: bid === null ? null : view(bid), ask: ask === null ? null : view(ask) };
  }

  /** L2: up to `levels` prices per side, best first. */
  depth(levels: number): { bids: Level[]; asks: Level[] } {
    if (!Number.isSafeInteger(levels) || levels < 0) {
      throw new OrderBookError('INVALID_ORDER', `depth needs a count of levels, got ${levels}`);
    }
    return { bids: bestLevels(this.bids, levels), asks: bestLevels(this.asks, levels) };
  }

  /** Every resting order, best price first and in arrival order within a price; plain data. */
  snapshot(): BookSnapshot {
    const bids: RestingOrderState[] = [];
    const asks: RestingOrderState[] = [];
    forEachInPriority(this.bids, (order) => bids.push(state(order)));
    forEachInPriority(this.asks, (order) => asks.push(state(order)));
    return { symbol: this.symbol, selfTradePrevention: this.selfTradePrevention, bids, asks };
  }

  private execute(
    id: string,
    owner: string,
    side: Side,
    price: number | null,
    limit: number,
    quantity: number,
    timeInForce: TimeInForce,
  ): SubmitResult {
    this.fills = null;
    this.cancels = null;
    this.stoppedBySelfTrade = false;
    let left: number;
    let resting = 0;
    if (timeInForce === 'FOK' && !this.canFill(owner, side, limit, quantity)) {
      left = quantity;
      this.cancelled(id, owner, side, price, quantity, 'FOK_NOT_FILLABLE');
    } else {
      left = this.match(id, owner, side, limit, quantity);
      if (left > 0) {
        if (
          price !== null &&
          !this.stoppedBySelfTrade &&
          (timeInForce === 'GTC' || timeInForce === 'DAY')
        ) {
          this.addResting(id, owner, side, price, left, timeInForce);
          resting = left;
        } else {
          this.cancelled(id, owner, side, price, left, this.remainderReason(side, price));
        }
      }
    }
    const filled = quantity - left;
    let status: OrderStatus;
    if (left === 0) status = 'FILLED';
    else if (resting > 0) status = filled > 0 ? 'PARTIALLY_FILLED_RESTING' : 'RESTING';
    else status = filled > 0 ? 'PARTIALLY_FILLED_CANCELLED' : 'CANCELLED';
    const result: SubmitResult = {
      orderId: id,
      status,
      filled,
      remaining: resting,
      fills: this.fills ?? NO_FILLS,
      cancelled: this.cancels ?? NO_CANCELS,
    };
    this.fills = null;
    this.cancels = null;
    return result;
  }

  private remainderReason(side: Side, price: number | null): CancelReason {
    if (this.stoppedBySelfTrade) return 'SELF_TRADE';
    if (price !== null) return 'IOC_REMAINDER';
    // A market order stops either because nothing is left or because of its protection price.
    return (side === 'BUY' ? this.asks : this.bids).best() === null
      ? 'MARKET_NO_LIQUIDITY'
      : 'PROTECTION_PRICE';
  }

  /** Trades against the opposite side up to `limit`; returns the quantity left. */
  private match(id: string, owner: string, side: Side, limit: number, quantity: number): number {
    const buying = side === 'BUY';
    const opposite = buying ? this.asks : this.bids;
    const levels = opposite.levels;
    const cancelIncoming = this.selfTradePrevention === 'CANCEL_INCOMING';
    let left = quantity;
    while (left > 0 && levels.length > 0) {
      const level = levels[levels.length - 1];
      if (buying ? level.price > limit : level.price < limit) break;
      let maker = level.head;
      while (maker !== null && left > 0) {
        const next = maker.next;
        if (maker.owner === owner) {
          if (cancelIncoming) {
            this.stoppedBySelfTrade = true;
            return left;
          }
          level.quantity -= maker.remaining;
          level.unlink(maker);
          this.orders.delete(maker.id);
          this.cancelled(
            maker.id,
            maker.owner,
            maker.side,
            maker.price,
            maker.remaining,
            'SELF_TRADE',
          );
        } else {
          const traded = maker.remaining < left ? maker.remaining : left;
          maker.remaining -= traded;
          level.quantity -= traded;
          left -= traded;
          (this.fills ??= []).push({
            makerOrderId: maker.id,
            makerOwner: maker.owner,
            takerOrderId: id,
            takerOwner: owner,
            takerSide: side,
            price: level.price,
            quantity: traded,
            makerRemaining: maker.remaining,
            takerRemaining: left,
          });
          if (maker.remaining === 0) {
            level.unlink(maker);
            this.orders.delete(maker.id);
          }
        }
        maker = next;
      }
      if (level.count === 0) opposite.removeLevel(level);
    }
    return left;
  }

  /** Would matching fill `quantity` completely? Same walk as `match`, without changing anything. */
  private canFill(owner: string, side: Side, limit: number, quantity: number): boolean {
    const buying = side === 'BUY';
    const levels = (buying ? this.asks : this.bids).levels;
    const cancelIncoming = this.selfTradePrevention === 'CANCEL_INCOMING';
    let needed = quantity;
    for (let i = levels.length - 1; i >= 0; i--) {
      const level = levels[i];
      if (buying ? level.price > limit : level.price < limit) return false;
      for (let order = level.head; order !== null; order = order.next) {
        if (order.owner === owner) {
          // Matching would stop here, or cancel this order and go on without its quantity.
          if (cancelIncoming) return false;
          continue;
        }
        needed -= order.remaining;
        if (needed <= 0) return true;
      }
    }
    return false;
  }

  private addResting(
    id: string,
    owner: string,
    side: Side,
    price: number,
    quantity: number,
    timeInForce: RestingTimeInForce,
  ): void {
    const level = (side === 'BUY' ? this.bids : this.asks).levelFor(price);
    const order = new RestingOrder(id, owner, side, price, quantity, timeInForce, level);
    level.append(order);
    this.orders.set(id, order);
  }

  private remove(order: RestingOrder): void {
    const level = order.level;
    level.quantity -= order.remaining;
    level.unlink(order);
    if (level.count === 0) (order.side === 'BUY' ? this.bids : this.asks).removeLevel(level);
    this.orders.delete(order.id);
  }

  private cancelled(
    orderId: string,
    owner: string,
    side: Side,
    price: number | null,
    quantity: number,
    reason: CancelReason,
  ): void {
    (this.cancels ??= []).push({ orderId, owner, side, price, quantity, reason });
  }
}

function checkOrder(id: unknown, owner: unknown, side: unknown): void {
  if (typeof id !== 'string' || id.length === 0) {
    throw new OrderBookError('INVALID_ORDER', 'an order needs a non-empty id');
  }
  if (typeof owner !== 'string' || owner.length === 0) {
    throw new OrderBookError('INVALID_ORDER', `order '${id}' needs a non-empty owner`);
  }
  if (side !== 'BUY' && side !== 'SELL') {
    throw new OrderBookError('INVALID_ORDER', `order '${id}' has unknown side '${String(side)}'`);
  }
}

function checkTicks(value: unknown, what: string): asserts value is number {
  if (!Number.isSafeInteger(value) || (value as number) <= 0) {
    throw new OrderBookError(
      'INVALID_PRICE',
      `${what} must be a positive safe integer number of ticks, got ${String(value)}`,
    );
  }
}

function checkLots(value: unknown, what: string): asserts value is number {
  if (!Number.isSafeInteger(value) || (value as number) <= 0) {
    throw new OrderBookError(
      'INVALID_QUANTITY',
      `${what} must be a positive safe integer number of lots, got ${String(value)}`,
    );
  }
}

function cancellation(order: RestingOrder, quantity: number, reason: CancelReason): Cancellation {
  return {
    orderId: order.id,
    owner: order.owner,
    side: order.side,
    price: order.price,
    quantity,
    reason,
  };
}

function state(order: RestingOrder): RestingOrderState {
  return {
    id: order.id,
    owner: order.owner,
    side: order.side,
    price: order.price,
    quantity: order.remaining,
    timeInForce: order.timeInForce,
  };
}

function view(level: PriceLevel): Level {
  return { price: level.price, quantity: level.quantity, orders: level.count };
}

function bestLevels(side: BookSide, count: number): Level[] {
  const levels = side.levels;
  const out: Level[] = [];
  for (let i = levels.length - 1; i >= 0 && out.length < count; i--) out.push(view(levels[i]));
  return out;
}

function forEachInPriority(side: BookSide, visit: (order: RestingOrder) => void): void {
  const levels = side.levels;
  for (let i = levels.length - 1; i >= 0; i--) {
    for (let order = levels[i].head; order !== null; order = order.next) visit(order);
  }
}
