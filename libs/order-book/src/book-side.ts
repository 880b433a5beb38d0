// One side of the book: price levels sorted with the best price at the end of an array (the best
// level is touched most, so taking it is a pop and new levels near the touch splice near the end),
// each level a FIFO of resting orders as an intrusive doubly-linked list so a cancel is O(1).
import type { RestingTimeInForce, Side } from './types';

export class RestingOrder {
  prev: RestingOrder | null = null;
  next: RestingOrder | null = null;
  constructor(
    readonly id: string,
    readonly owner: string,
    readonly side: Side,
    readonly price: number,
    public remaining: number,
    readonly timeInForce: RestingTimeInForce,
    public level: PriceLevel,
  ) {}
}

export class PriceLevel {
  head: RestingOrder | null = null;
  tail: RestingOrder | null = null;
  /** Sum of the open quantity of the orders at this price. */
  quantity = 0;
  count = 0;
  constructor(readonly price: number) {}

  append(order: RestingOrder): void {
    order.prev = this.tail;
    order.next = null;
    if (this.tail === null) this.head = order;
    else this.tail.next = order;
    this.tail = order;
    this.quantity += order.remaining;
    this.count++;
  }

  /** Unlinks the order; the caller has already taken its open quantity off `quantity`. */
  unlink(order: RestingOrder): void {
    if (order.prev === null) this.head = order.next;
    else order.prev.next = order.next;
    if (order.next === null) this.tail = order.prev;
    else order.next.prev = order.prev;
    order.prev = null;
    order.next = null;
    this.count--;
  }
}

export class BookSide {
  /** Worst first, best last. */
  readonly levels: PriceLevel[] = [];
  private readonly byPrice = new Map<number, PriceLevel>();
  // Bids sort ascending and asks descending, so "best is last" holds for both.
  private readonly direction: 1 | -1;

  constructor(readonly side: Side) {
    this.direction = side === 'BUY' ? 1 : -1;
  }

  best(): PriceLevel | null {
    const n = this.levels.length;
    return n === 0 ? null : this.levels[n - 1];
  }

  levelAt(price: number): PriceLevel | undefined {
    return this.byPrice.get(price);
  }

  /** The level at `price`, created in its sorted place if there is none. */
  levelFor(price: number): PriceLevel {
    const existing = this.byPrice.get(price);
    if (existing !== undefined) return existing;
    const level = new PriceLevel(price);
    this.byPrice.set(price, level);
    const levels = this.levels;
    const key = price * this.direction;
    const n = levels.length;
    if (n === 0 || levels[n - 1].price * this.direction < key) {
      levels.push(level);
    } else {
      levels.splice(this.search(key), 0, level);
    }
    return level;
  }

  removeLevel(level: PriceLevel): void {
    this.byPrice.delete(level.price);
    const levels = this.levels;
    const n = levels.length;
    if (levels[n - 1] === level) levels.pop();
    else levels.splice(this.search(level.price * this.direction), 1);
  }

  /** First index whose key is >= `key`. */
  private search(key: number): number {
    const levels = this.levels;
    const direction = this.direction;
    let lo = 0;
    let hi = levels.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (levels[mid].price * direction < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
