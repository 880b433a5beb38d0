// The placement TCC's decision becomes the order's fate in the same commit: CONFIRMING accepts it and
// queues it for the book; CANCELLING rejects it with the branch and reason that refused.
import { OrderAccepted, OrderCancelled, OrderRejected, PLACEMENT_KIND } from '@finance/contracts';
import { afterCommit, SERVICE_CONFIG } from '@finance/platform';
import { Decision, DecisionListener } from '@finance/tcc';
import { Inject, Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { TradingConfig } from '../config';
import { releaseReservation } from './order-funds.branch';
import { notifyOrder, publishOrderEvent } from './order-events';
import { ordersAccepted, ordersRejected } from './order-metrics';
import { MATCHING_CHANNEL } from './order-notifications';

@Injectable()
export class PlacementDecisions implements DecisionListener {
  constructor(@Inject(SERVICE_CONFIG) private readonly config: TradingConfig) {}

  async onDecided(decision: Decision, manager: EntityManager): Promise<void> {
    if (decision.kind !== PLACEMENT_KIND) return;
    const orderId = decision.correlationId;
    const prefix = this.config.KAFKA_TOPIC_PREFIX;
    if (decision.state === 'CONFIRMING') {
      const [accepted]: Array<{ quantity: string; halted: string | null }> = await manager.query(
        `WITH a AS (UPDATE orders SET status = 'NEW' WHERE order_id = $1 AND status = 'PENDING_NEW'
                     RETURNING account_id, symbol, quantity)
         SELECT a.quantity,
                (SELECT k.reason FROM kill_switches k
                  WHERE k.engaged AND (k.scope = 'FIRM' OR (k.scope = 'ACCOUNT' AND k.target = a.account_id)
                                       OR (k.scope = 'SYMBOL' AND k.target = a.symbol))
                  ORDER BY k.changed_at LIMIT 1) AS halted
           FROM a`,
        [orderId],
      );
      if (!accepted) return;
      afterCommit(manager, () => ordersAccepted.inc());
      await publishOrderEvent(manager, prefix, orderId, OrderAccepted, {
        orderId,
        globalTransactionId: decision.gtid,
      });
      if (accepted.halted !== null) {
        // A kill switch engaged while the branches were reserving: every branch confirms (the TCC
        // decided), but the order never reaches the book and its funds go back now.
        await manager.query(`UPDATE orders SET status = 'CANCELLED' WHERE order_id = $1`, [
          orderId,
        ]);
        await releaseReservation(manager, orderId);
        await publishOrderEvent(manager, prefix, orderId, OrderCancelled, {
          orderId,
          cancelledQuantity: accepted.quantity,
          reason: { code: 'KILL_SWITCH', message: `kill switch engaged: ${accepted.halted}` },
        });
        await notifyOrder(manager, orderId);
        return;
      }
      await manager.query(
        `INSERT INTO matching_commands (kind, order_id, requested_by) VALUES ('NEW', $1, 'placement')`,
        [orderId],
      );
      await manager.query('SELECT pg_notify($1, $2)', [MATCHING_CHANNEL, orderId]);
      return;
    }
    const failure = decision.failure ?? {
      branchId: '',
      participant: '',
      code: 'CANCELLED',
      message: 'the placement was cancelled',
    };
    const rejected: unknown[] = await manager.query(
      `WITH r AS (UPDATE orders SET status = 'REJECTED', reject_branch = $2, reject_code = $3, reject_message = $4
                   WHERE order_id = $1 AND status = 'PENDING_NEW' RETURNING 1)
       SELECT * FROM r`,
      [orderId, failure.participant || null, failure.code, failure.message],
    );
    if (rejected.length === 0) return;
    afterCommit(manager, () =>
      ordersRejected.inc({ branch: failure.participant || 'coordinator', code: failure.code }),
    );
    await publishOrderEvent(manager, prefix, orderId, OrderRejected, {
      orderId,
      ...(failure.participant ? { branch: failure.participant } : {}),
      reason: { code: failure.code, message: failure.message },
    });
    await notifyOrder(manager, orderId);
  }
}
