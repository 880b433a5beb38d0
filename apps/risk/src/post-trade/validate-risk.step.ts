// Risk's step of the post-trade saga (validate-risk): the trade is in the positions. Its compensation
// takes an unwound trade out of them: both accounts' positions in the symbol are folded again from
// their remaining trades, in execution order, so quantity, cost and realized P&L are exactly what
// they would be had the trade never happened.
import { CompensationContext, ExecutionContext, StepHandlers } from '@finance/saga';
import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { applyFill, FLAT, Position } from '../positions/position';

export const VALIDATE_RISK = 'validate-risk';

@Injectable()
export class ValidateRiskStep implements StepHandlers {
  async execute(ctx: ExecutionContext) {
    const tradeId = String(ctx.payload.tradeId);
    const [trade]: Array<{ unwound_at: Date | null }> = await ctx.manager.query(
      `SELECT unwound_at FROM risk_trades WHERE trade_id = $1`,
      [tradeId],
    );
    // The command can overtake the trade's own event: not an answer yet, so the consumer retries.
    if (!trade) throw new Error(`trade ${tradeId} is not in the positions yet`);
    return { inPositions: trade.unwound_at === null };
  }

  async compensate(ctx: CompensationContext): Promise<void> {
    const tradeId = String(ctx.payload.tradeId);
    const [trade]: Array<{ symbol: string; buy_account: string; sell_account: string }> =
      await ctx.manager.query(
        `WITH t AS (
           UPDATE risk_trades SET unwound_at = clock_timestamp()
            WHERE trade_id = $1 AND unwound_at IS NULL
           RETURNING symbol, buy_account, sell_account)
         SELECT * FROM t`,
        [tradeId],
      );
    if (!trade) return;
    for (const account of [trade.buy_account, trade.sell_account].sort()) {
      await refold(ctx.manager, account, trade.symbol);
    }
  }
}

async function refold(manager: EntityManager, account: string, symbol: string): Promise<void> {
  await manager.query(
    `SELECT 1 FROM risk_positions WHERE account_id = $1 AND symbol = $2 FOR UPDATE`,
    [account, symbol],
  );
  const fills: Array<{ buy_account: string; quantity: string; price_minor: string }> =
    await manager.query(
      `SELECT buy_account, quantity, price_minor FROM risk_trades
        WHERE symbol = $2 AND unwound_at IS NULL AND $1 IN (buy_account, sell_account)
        ORDER BY executed_at, trade_id`,
      [account, symbol],
    );
  let position: Position = FLAT;
  for (const f of fills) {
    const quantity = BigInt(f.quantity);
    position = applyFill(
      position,
      f.buy_account === account ? quantity : -quantity,
      BigInt(f.price_minor),
    );
  }
  await manager.query(
    `UPDATE risk_positions SET quantity = $3, cost_minor = $4, realized_minor = $5,
            updated_at = clock_timestamp()
      WHERE account_id = $1 AND symbol = $2`,
    [
      account,
      symbol,
      position.quantity.toString(),
      position.cost.toString(),
      position.realized.toString(),
    ],
  );
}
