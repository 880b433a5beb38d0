// Events published by trading on trading.events (design: order lifecycle and account changes).
import { z } from 'zod';
import { TOPICS } from '../topics';
import { defineMessage } from './catalog';
import * as f from './fields';

const order = { aggregateType: 'order', topic: TOPICS.tradingEvents } as const;
const account = { aggregateType: 'account', topic: TOPICS.tradingEvents } as const;

export const FundsDeposited = defineMessage({
  type: 'FundsDeposited',
  ...account,
  schema: z.object({ accountId: f.id, requestId: f.id, amount: f.money }),
});

export const FundsWithdrawn = defineMessage({
  type: 'FundsWithdrawn',
  ...account,
  schema: z.object({ accountId: f.id, requestId: f.id, amount: f.money }),
});

export const AccountOpened = defineMessage({
  type: 'AccountOpened',
  ...account,
  schema: z.object({ accountId: f.id, owner: f.id, openedBy: f.id }),
});

export const SecuritiesDeposited = defineMessage({
  type: 'SecuritiesDeposited',
  ...account,
  schema: z.object({ accountId: f.id, requestId: f.id, symbol: f.symbol, quantity: f.quantity }),
});

export const SecuritiesWithdrawn = defineMessage({
  type: 'SecuritiesWithdrawn',
  ...account,
  schema: z.object({ accountId: f.id, requestId: f.id, symbol: f.symbol, quantity: f.quantity }),
});

export const OrderCreated = defineMessage({
  type: 'OrderCreated',
  ...order,
  schema: z.object({
    orderId: f.id,
    accountId: f.id,
    clientOrderId: f.id,
    symbol: f.symbol,
    side: f.side,
    orderType: f.orderType,
    price: f.positiveDecimal.optional(),
    quantity: f.quantity,
    timeInForce: f.timeInForce,
    currency: f.currency,
  }),
});

export const OrderAccepted = defineMessage({
  type: 'OrderAccepted',
  ...order,
  schema: z.object({ orderId: f.id, globalTransactionId: f.id }),
});

export const OrderRejected = defineMessage({
  type: 'OrderRejected',
  ...order,
  schema: z.object({ orderId: f.id, branch: z.string().optional(), reason: f.reason }),
});

/** One per fill, carrying both sides. */
export const OrderExecuted = defineMessage({
  type: 'OrderExecuted',
  ...order,
  schema: z.object({
    tradeId: f.id,
    symbol: f.symbol,
    price: f.positiveDecimal,
    quantity: f.quantity,
    currency: f.currency,
    buy: z.object({ orderId: f.id, accountId: f.id }),
    sell: z.object({ orderId: f.id, accountId: f.id }),
    executedAt: f.timestamp,
    /** What the buyer pays on top of price x quantity, in `currency`; absent means none. */
    buyerFee: f.decimal.optional(),
  }),
});

export const OrderCancelled = defineMessage({
  type: 'OrderCancelled',
  ...order,
  schema: z.object({ orderId: f.id, cancelledQuantity: f.nonNegativeQuantity, reason: f.reason }),
});

/** Cancel/replace: the order's new limit price and total quantity, and whether it kept its place. */
export const OrderReplaced = defineMessage({
  type: 'OrderReplaced',
  ...order,
  schema: z.object({
    orderId: f.id,
    price: f.positiveDecimal,
    quantity: f.quantity,
    priorityKept: z.boolean(),
  }),
});

export const OrderSettled = defineMessage({
  type: 'OrderSettled',
  ...order,
  schema: z.object({ orderId: f.id, tradeId: f.id, settledAt: f.timestamp }),
});

/**
 * A trade that could not settle was unwound (the post-trade saga's compensation): what it moved to
 * pending settlement went back. One per order of the trade.
 */
export const OrderTradeUnwound = defineMessage({
  type: 'OrderTradeUnwound',
  ...order,
  schema: z.object({ orderId: f.id, tradeId: f.id, reason: f.reason }),
});

export const TRADING_EVENTS = [
  AccountOpened,
  FundsDeposited,
  FundsWithdrawn,
  SecuritiesDeposited,
  SecuritiesWithdrawn,
  OrderCreated,
  OrderAccepted,
  OrderRejected,
  OrderExecuted,
  OrderCancelled,
  OrderReplaced,
  OrderSettled,
  OrderTradeUnwound,
] as const;
