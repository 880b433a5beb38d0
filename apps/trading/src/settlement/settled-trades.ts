// A trade settled: what was pending becomes final. The buyer's cash (value + fee) leaves and its
// shares become available; the seller's shares leave and its cash becomes available; the fee is the
// firm's income. Once per trade (the trade row remembers), in the inbox consumer's transaction, and
// each of the trade's two orders gets an OrderSettled.
import { OrderSettled } from '@finance/contracts';
import type { EntityManager } from 'typeorm';
import { publishOrderEvent } from '../orders/order-events';

export async function settleTrade(
  manager: EntityManager,
  topicPrefix: string,
  trade: { tradeId: string; cycleId: string; settledAt: string },
): Promise<'settled' | 'seen'> {
  const [row]: Array<{ buy_order_id: string; sell_order_id: string }> = await manager.query(
    `WITH t AS (
       UPDATE trades SET settled_at = $2, settlement_cycle_id = $3
        WHERE trade_id = $1 AND settled_at IS NULL AND unwound_at IS NULL
       RETURNING trade_id, buy_order_id, sell_order_id, buy_account_id, sell_account_id, symbol,
                 currency, quantity, price_minor * quantity AS value, buyer_fee_minor AS fee),
     bc AS (
       UPDATE cash_balances c SET pending_out = c.pending_out - (t.value + t.fee)
         FROM t WHERE c.account_id = t.buy_account_id AND c.currency = t.currency),
     bh AS (
       UPDATE holdings h SET pending_in = h.pending_in - t.quantity, available = h.available + t.quantity
         FROM t WHERE h.account_id = t.buy_account_id AND h.symbol = t.symbol),
     sh AS (
       UPDATE holdings h SET pending_out = h.pending_out - t.quantity
         FROM t WHERE h.account_id = t.sell_account_id AND h.symbol = t.symbol),
     sc AS (
       UPDATE cash_balances c SET pending_in = c.pending_in - t.value, available = c.available + t.value
         FROM t WHERE c.account_id = t.sell_account_id AND c.currency = t.currency),
     fee AS (
       INSERT INTO fee_income (currency, amount) SELECT currency, fee FROM t WHERE fee > 0
       ON CONFLICT (currency) DO UPDATE SET amount = fee_income.amount + EXCLUDED.amount)
     SELECT buy_order_id, sell_order_id FROM t`,
    [trade.tradeId, trade.settledAt, trade.cycleId],
  );
  if (!row) return 'seen';
  for (const orderId of [row.buy_order_id, row.sell_order_id]) {
    await publishOrderEvent(
      manager,
      topicPrefix,
      orderId,
      OrderSettled,
      { orderId, tradeId: trade.tradeId, settledAt: trade.settledAt },
      trade.tradeId,
    );
  }
  return 'settled';
}
