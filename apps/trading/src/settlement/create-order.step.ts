// Trading's step of the post-trade saga (create-order): the trade is booked here, with both orders'
// amounts pending settlement. Its compensation unwinds a trade that could not settle: the buyer's
// cash and the seller's shares go back to available, what each was to receive is dropped, and each
// order gets an OrderTradeUnwound. A settled trade is final and cannot be unwound.
import { OrderTradeUnwound } from '@finance/contracts';
import { SERVICE_CONFIG } from '@finance/platform';
import {
  CompensationContext,
  ExecutionContext,
  StepFailedError,
  StepHandlers,
} from '@finance/saga';
import { Inject, Injectable } from '@nestjs/common';
import type { TradingConfig } from '../config';
import { publishOrderEvent } from '../orders/order-events';

export const CREATE_ORDER = 'create-order';

interface TradeRow {
  buy_order_id: string;
  sell_order_id: string;
  settled_at: Date | null;
  unwound_at: Date | null;
}

@Injectable()
export class CreateOrderStep implements StepHandlers {
  constructor(@Inject(SERVICE_CONFIG) private readonly config: TradingConfig) {}

  async execute(ctx: ExecutionContext) {
    const tradeId = String(ctx.payload.tradeId);
    const [trade]: TradeRow[] = await ctx.manager.query(
      `SELECT buy_order_id, sell_order_id, settled_at, unwound_at FROM trades WHERE trade_id = $1`,
      [tradeId],
    );
    if (!trade) throw new StepFailedError('UNKNOWN_TRADE', `trading has no trade ${tradeId}`);
    if (trade.unwound_at)
      throw new StepFailedError('TRADE_UNWOUND', `trade ${tradeId} was unwound`);
    return { buyOrderId: trade.buy_order_id, sellOrderId: trade.sell_order_id };
  }

  async compensate(ctx: CompensationContext): Promise<void> {
    const tradeId = String(ctx.payload.tradeId);
    const [unwound]: Array<{ buy_order_id: string; sell_order_id: string }> =
      await ctx.manager.query(
        `WITH t AS (
           UPDATE trades SET unwound_at = clock_timestamp()
            WHERE trade_id = $1 AND settled_at IS NULL AND unwound_at IS NULL
           RETURNING buy_order_id, sell_order_id, buy_account_id, sell_account_id, symbol, currency,
                     quantity, price_minor * quantity AS value, buyer_fee_minor AS fee),
         bc AS (
           UPDATE cash_balances c SET pending_out = c.pending_out - (t.value + t.fee),
                  available = c.available + (t.value + t.fee)
             FROM t WHERE c.account_id = t.buy_account_id AND c.currency = t.currency),
         bh AS (
           UPDATE holdings h SET pending_in = h.pending_in - t.quantity
             FROM t WHERE h.account_id = t.buy_account_id AND h.symbol = t.symbol),
         sh AS (
           UPDATE holdings h SET pending_out = h.pending_out - t.quantity,
                  available = h.available + t.quantity
             FROM t WHERE h.account_id = t.sell_account_id AND h.symbol = t.symbol),
         sc AS (
           UPDATE cash_balances c SET pending_in = c.pending_in - t.value
             FROM t WHERE c.account_id = t.sell_account_id AND c.currency = t.currency)
         SELECT buy_order_id, sell_order_id FROM t`,
        [tradeId],
      );
    if (!unwound) {
      const [trade]: TradeRow[] = await ctx.manager.query(
        `SELECT buy_order_id, sell_order_id, settled_at, unwound_at FROM trades WHERE trade_id = $1`,
        [tradeId],
      );
      if (trade?.settled_at) {
        throw new StepFailedError('TRADE_SETTLED', `trade ${tradeId} has settled; it is final`);
      }
      return; // unknown or unwound already: nothing to undo
    }
    const reason = {
      code: 'SETTLEMENT_FAILED',
      message: `trade ${tradeId} could not settle and was unwound`,
    };
    for (const orderId of [unwound.buy_order_id, unwound.sell_order_id]) {
      await publishOrderEvent(
        ctx.manager,
        this.config.KAFKA_TOPIC_PREFIX,
        orderId,
        OrderTradeUnwound,
        { orderId, tradeId, reason },
        tradeId,
      );
    }
  }
}
