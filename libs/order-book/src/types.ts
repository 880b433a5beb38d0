// The order book's language: what goes in, what comes out, and why an order stopped.
//
// Prices are integer ticks and quantities integer lots. They are indices, not money: the trading
// service converts its decimal/bigint prices to ticks at the boundary with the instrument's tick
// size (and back for fills), so money is never a JS number while the book can compare plain numbers.

export type Side = 'BUY' | 'SELL';
export type OrderType = 'LIMIT' | 'MARKET';
export type TimeInForce = 'GTC' | 'IOC' | 'FOK' | 'DAY';
/** Only GTC and DAY orders ever rest. */
export type RestingTimeInForce = 'GTC' | 'DAY';
/** What happens when an incoming order would trade with a resting order of the same owner. */
export type SelfTradePrevention = 'CANCEL_INCOMING' | 'CANCEL_RESTING';

export interface IncomingOrder {
  readonly id: string;
  /** Beneficial owner; two orders of one owner never trade with each other. */
  readonly owner: string;
  readonly side: Side;
  readonly type: OrderType;
  /** Limit price in ticks; LIMIT only. */
  readonly price?: number;
  /** MARKET only: the worst price in ticks it may trade at (collar). */
  readonly protectionPrice?: number;
  /** Lots. */
  readonly quantity: number;
  /** A MARKET order never rests: GTC, DAY and IOC all mean "cancel the remainder"; FOK means all or none. */
  readonly timeInForce: TimeInForce;
}

/** A resting order as the book holds it; `quantity` is the open (unfilled) quantity in lots. */
export interface RestingOrderState {
  readonly id: string;
  readonly owner: string;
  readonly side: Side;
  readonly price: number;
  readonly quantity: number;
  readonly timeInForce: RestingTimeInForce;
}

export interface Fill {
  readonly makerOrderId: string;
  readonly makerOwner: string;
  readonly takerOrderId: string;
  readonly takerOwner: string;
  readonly takerSide: Side;
  /** Always the resting (maker) order's price. */
  readonly price: number;
  readonly quantity: number;
  readonly makerRemaining: number;
  readonly takerRemaining: number;
}

export type CancelReason =
  /** `cancel()` was called. */
  | 'REQUESTED'
  /** `expire('DAY')` at the end of the session. */
  | 'EXPIRED'
  /** What an IOC limit order could not fill at once. */
  | 'IOC_REMAINDER'
  /** A FOK order that could not fill completely; nothing traded. */
  | 'FOK_NOT_FILLABLE'
  /** A MARKET order's remainder after the opposite side ran out. */
  | 'MARKET_NO_LIQUIDITY'
  /** A MARKET order's remainder when the next price is beyond its protection price. */
  | 'PROTECTION_PRICE'
  /** Self-trade prevention: the incoming remainder (CANCEL_INCOMING) or a resting order (CANCEL_RESTING). */
  | 'SELF_TRADE';

export interface Cancellation {
  readonly orderId: string;
  readonly owner: string;
  readonly side: Side;
  /** Null for a MARKET order. */
  readonly price: number | null;
  /** Lots removed by this cancellation. */
  readonly quantity: number;
  readonly reason: CancelReason;
}

/** `cancel()` and `expire()` answer with the cancellation of a resting order. */
export type CancelResult = Cancellation;

export type OrderStatus =
  'RESTING' | 'PARTIALLY_FILLED_RESTING' | 'FILLED' | 'PARTIALLY_FILLED_CANCELLED' | 'CANCELLED';

export interface SubmitResult {
  readonly orderId: string;
  readonly status: OrderStatus;
  /** Lots filled by this operation. */
  readonly filled: number;
  /** Lots left resting in the book (0 unless the status is one of the RESTING ones). */
  readonly remaining: number;
  /** In execution order. */
  readonly fills: readonly Fill[];
  /** Resting orders cancelled by self-trade prevention, in the order met, then the incoming remainder. */
  readonly cancelled: readonly Cancellation[];
}

export interface ReplaceResult extends SubmitResult {
  /** False when the order left the book and re-entered it (and may have matched on the way). */
  readonly priorityKept: boolean;
  readonly previousPrice: number;
  readonly previousQuantity: number;
}

export interface ReplaceChange {
  /** New limit price in ticks. */
  readonly price?: number;
  /** New open quantity in lots (what remains to fill, not the original order quantity). */
  readonly quantity?: number;
}

/** L2: one price with its total open quantity and number of orders. */
export interface Level {
  readonly price: number;
  readonly quantity: number;
  readonly orders: number;
}

export interface BookSnapshot {
  readonly symbol: string;
  readonly selfTradePrevention: SelfTradePrevention;
  /** Best price first, then arrival order within a price: the order `rest()` must replay them in. */
  readonly bids: readonly RestingOrderState[];
  readonly asks: readonly RestingOrderState[];
}

export interface OrderBookOptions {
  /** Default CANCEL_INCOMING: wash trades are never allowed, so there is no "off". */
  readonly selfTradePrevention?: SelfTradePrevention;
}

export type OrderBookErrorCode =
  'INVALID_PRICE' | 'INVALID_QUANTITY' | 'INVALID_ORDER' | 'DUPLICATE_ORDER_ID' | 'WOULD_CROSS';

export class OrderBookError extends Error {
  override readonly name = 'OrderBookError';
  constructor(
    readonly code: OrderBookErrorCode,
    message: string,
  ) {
    super(message);
  }
}
