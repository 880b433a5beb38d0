// Settlement's part in the post-trade saga. It starts one saga per trade when it records the trade's
// obligation, answers its own step (process-settlement) once a cycle has settled the trade or given
// up on it, and undoes that step only if the saga stops waiting.
import { MessageOf, OrderExecuted } from '@finance/contracts';
import {
  CompensationContext,
  ExecutionContext,
  postTradeSaga,
  PostTradeInput,
  SAGA_PARTICIPANT,
  SagaOrchestrator,
  SagaParticipant,
  StepFailedError,
  StepHandlers,
} from '@finance/saga';
import { Inject, Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { CycleListener, ObligationRow, SettledRow } from '../cycles/cycle';
import { releaseTrades } from '../obligations/obligations';

export const PROCESS_SETTLEMENT = 'process-settlement';

export const sagaIdOf = (tradeId: string) => `post-trade-${tradeId}`;

/** Starts the trade's saga in the transaction that records its obligation. */
export async function startPostTrade(
  orchestrator: SagaOrchestrator,
  manager: EntityManager,
  trade: MessageOf<typeof OrderExecuted>['data'],
): Promise<void> {
  const input: PostTradeInput = {
    tradeId: trade.tradeId,
    symbol: trade.symbol,
    currency: trade.currency,
    price: trade.price,
    quantity: trade.quantity,
    buy: trade.buy,
    sell: trade.sell,
  };
  const { sagaId } = await orchestrator.start(postTradeSaga.name, input, {
    sagaId: sagaIdOf(trade.tradeId),
    correlationId: trade.tradeId,
    manager,
  });
  await manager.query(`UPDATE settlement_obligations SET saga_id = $2 WHERE trade_id = $1`, [
    trade.tradeId,
    sagaId,
  ]);
}

@Injectable()
export class ProcessSettlementStep implements StepHandlers {
  /** Settled or failed for good already: answer now; otherwise when a cycle decides. */
  async execute(ctx: ExecutionContext) {
    const tradeId = String(ctx.payload.tradeId);
    const [o]: Array<{
      state: string;
      settled_cycle_id: string | null;
      last_fail_code: string | null;
      last_fail_message: string | null;
    }> = await ctx.manager.query(
      `SELECT state, settled_cycle_id, last_fail_code, last_fail_message
         FROM settlement_obligations WHERE trade_id = $1`,
      [tradeId],
    );
    if (!o)
      throw new StepFailedError('UNKNOWN_TRADE', `settlement has no obligation for ${tradeId}`);
    if (o.state === 'SETTLED') return { cycleId: o.settled_cycle_id };
    if (o.state === 'FAILED') {
      throw new StepFailedError(
        o.last_fail_code ?? 'SETTLEMENT_FAILED',
        o.last_fail_message ?? 'the trade failed to settle',
      );
    }
    return ctx.defer();
  }

  /**
   * Runs only if the saga stops waiting (its step timed out): the obligation is closed and its
   * clearing quota released. A settled trade is final: that parks the saga for an operator.
   */
  async compensate(ctx: CompensationContext): Promise<void> {
    const tradeId = String(ctx.payload.tradeId);
    const [o]: Array<ObligationRow & { state: string }> = await ctx.manager.query(
      `SELECT * FROM settlement_obligations WHERE trade_id = $1 FOR UPDATE`,
      [tradeId],
    );
    if (!o || o.state === 'FAILED') return;
    if (o.state === 'SETTLED') {
      throw new StepFailedError(
        'TRADE_SETTLED',
        `trade ${tradeId} has settled; it cannot be undone`,
      );
    }
    await ctx.manager.query(
      `UPDATE settlement_obligations SET state = 'FAILED', closed_at = clock_timestamp(),
              last_fail_code = 'SETTLEMENT_ABANDONED',
              last_fail_message = 'the post-trade saga stopped waiting for settlement'
        WHERE trade_id = $1`,
      [tradeId],
    );
    await releaseTrades(ctx.manager, [
      { buyOrderId: o.buy_order_id, sellOrderId: o.sell_order_id, value: BigInt(o.value_minor) },
    ]);
  }
}

/** Answers each trade's deferred process-settlement step from the cycle's transactions. */
@Injectable()
export class PostTradeCycleListener implements CycleListener {
  constructor(@Inject(SAGA_PARTICIPANT) private readonly participant: SagaParticipant) {}

  async settled(manager: EntityManager, trades: readonly SettledRow[], cycleId: string) {
    for (const t of trades) {
      if (!t.saga_id) continue;
      await this.participant.completeDeferred(manager, {
        sagaId: t.saga_id,
        step: PROCESS_SETTLEMENT,
        outcome: 'SUCCEEDED',
        result: { cycleId },
      });
    }
  }

  async failedForGood(manager: EntityManager, trades: readonly ObligationRow[], cycleId: string) {
    for (const t of trades) {
      if (!t.saga_id) continue;
      await this.participant.completeDeferred(manager, {
        sagaId: t.saga_id,
        step: PROCESS_SETTLEMENT,
        outcome: 'FAILED',
        reason: {
          code: 'SETTLEMENT_FAILED',
          message: `trade ${t.trade_id} failed ${t.failed_cycles + 1} settlement cycles (the last: ${cycleId})`,
        },
      });
    }
  }
}
