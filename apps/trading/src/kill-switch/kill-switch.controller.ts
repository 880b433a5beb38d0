// Risk's kill switch, as trading obeys it: when it engages, every resting order in its scope (the
// firm, one account, or one symbol) is queued for cancellation in the same transaction that records
// the event, so the matching engine removes them in order with the rest of its work. The switch's
// state is kept, so a placement decided while it holds is cancelled rather than booked.
import { KillSwitchChanged, MessageOf } from '@finance/contracts';
import { INBOX_KAFKA_TRANSPORT, InboxRpcContext } from '@finance/messaging';
import { Controller } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { MATCHING_CHANNEL } from '../orders/order-notifications';

/** `requested_by` of the cancels a kill switch queues; the engine reports them as KILL_SWITCH. */
export const KILL_SWITCH_REQUESTER = 'kill-switch';

@Controller()
export class KillSwitchController {
  @EventPattern(KillSwitchChanged.type, INBOX_KAFKA_TRANSPORT)
  async changed(
    @Payload() message: MessageOf<typeof KillSwitchChanged>,
    @Ctx() ctx: InboxRpcContext,
  ): Promise<void> {
    const change = message.data;
    const target =
      change.scope === 'ACCOUNT'
        ? change.accountId
        : change.scope === 'SYMBOL'
          ? change.symbol
          : '';
    // Remembered for placements decided while it holds (they are cancelled instead of booked).
    await ctx.manager.query(
      `INSERT INTO kill_switches (scope, target, engaged, reason) VALUES ($1, $2, $3, $4)
       ON CONFLICT (scope, target) DO UPDATE
         SET engaged = EXCLUDED.engaged, reason = EXCLUDED.reason, changed_at = clock_timestamp()`,
      [change.scope, target ?? '', change.engaged, change.reason],
    );
    if (!change.engaged) return; // releasing lets new orders through; nothing to undo here
    const queued: unknown[] = await ctx.manager.query(
      `WITH q AS (
         INSERT INTO matching_commands (kind, order_id, requested_by)
         SELECT 'CANCEL', order_id, $4 FROM orders
          WHERE status IN ('NEW', 'PARTIALLY_FILLED')
            AND ($1 = 'FIRM' OR ($1 = 'ACCOUNT' AND account_id = $2) OR ($1 = 'SYMBOL' AND symbol = $3))
          ORDER BY order_id
         ON CONFLICT (order_id) WHERE kind = 'CANCEL' DO NOTHING
         RETURNING 1)
       SELECT * FROM q`,
      [
        change.scope,
        change.accountId ?? null,
        change.symbol ?? null,
        `${KILL_SWITCH_REQUESTER}: ${change.reason}`.slice(0, 500),
      ],
    );
    if (queued.length > 0)
      await ctx.manager.query('SELECT pg_notify($1, $2)', [MATCHING_CHANNEL, 'kill-switch']);
  }
}
