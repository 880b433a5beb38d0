// @finance/order-book: a pure, deterministic price-time-priority order book for one instrument.
//
// Prices are integer ticks and quantities integer lots (JS safe integers > 0, else OrderBookError):
// indices, not money. The trading service converts its exact decimal prices to ticks with the
// instrument's tick size at the boundary and converts fill prices back.
//
//   const book = new OrderBook('ACME', { selfTradePrevention: 'CANCEL_RESTING' });
//   book.submit(order)           matches, then rests the remainder of a GTC/DAY LIMIT order;
//                                answers fills (at the maker's price), the order's status, what rests,
//                                and every cancellation with its reason (IOC_REMAINDER,
//                                FOK_NOT_FILLABLE, MARKET_NO_LIQUIDITY, PROTECTION_PRICE, SELF_TRADE)
//   book.cancel(id)              removes what is left of a resting order; null if none
//   book.replace(id, change)     new price and/or open quantity; keeps priority only if the price is
//                                unchanged and the quantity does not go up, else re-enters (may match)
//   book.expire('DAY')           end of session: cancels every DAY order
//   book.rest(state)             adds without matching, to rebuild from events or a snapshot
//   OrderBook.fromSnapshot(s)    the same book again from snapshot() (which is plain JSON data)
//   book.top(), book.depth(n)    L1 and L2 views (price, open quantity, order count)
//   book.has(id), book.get(id), book.size
//
// Time in force: GTC and DAY rest (DAY until expire), IOC cancels what it cannot fill at once, FOK
// fills completely or does nothing. MARKET orders never rest and trade no worse than their
// protectionPrice when given. Self-trade prevention (default CANCEL_INCOMING) never lets one owner's
// orders trade with each other. The book is never crossed after an operation.
export { OrderBook } from './order-book';
export * from './types';
