// Refused orders: each is recorded as a limit breach (the breaches report), and a burst of them from
// one account within the window trips the account's kill switch with an alert. This runs in its own
// transaction because the Try's refusal rolls back everything the Try wrote; the gtid makes a
// redelivered Try record nothing twice.
import type { DataSource } from 'typeorm';
import type { RiskConfig } from '../config';
import type { RiskViolation } from '../pre-trade/risk-policy';
import type { PlacementOrder } from '../risk-quota/placement-payload';
import { formatMoney } from '@finance/money';
import { raiseAlert } from './alerts';

export type RejectionConfig = Pick<
  RiskConfig,
  'RISK_REJECTION_BURST_COUNT' | 'RISK_REJECTION_BURST_WINDOW_SECONDS' | 'KAFKA_TOPIC_PREFIX'
>;

export async function recordRejection(
  dataSource: DataSource,
  config: RejectionConfig,
  refusal: {
    gtid: string;
    branchId: string;
    order: PlacementOrder;
    code: string;
    message: string;
    violations: RiskViolation[];
  },
): Promise<void> {
  const { order } = refusal;
  await dataSource.transaction(async (manager) => {
    const inserted: unknown[] = await manager.query(
      `INSERT INTO risk_limit_breaches (gtid, branch_id, order_id, account_id, symbol, code, message, violations, order_data)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING RETURNING 1`,
      [
        refusal.gtid,
        refusal.branchId,
        order.orderId,
        order.accountId,
        order.symbol,
        refusal.code,
        refusal.message,
        JSON.stringify(refusal.violations),
        JSON.stringify({
          side: order.side,
          type: order.orderType,
          quantity: order.quantity.toString(),
          price: order.price ?? null,
          notional: { amount: formatMoney(order.notional), currency: order.notional.currency },
        }),
      ],
    );
    const threshold = config.RISK_REJECTION_BURST_COUNT;
    // A refusal by the kill switch itself does not feed the burst: it would re-trip what is engaged.
    if (inserted.length === 0 || threshold === 0 || refusal.code === 'KILL_SWITCH_ACTIVE') return;
    const [{ n }]: Array<{ n: string }> = await manager.query(
      `SELECT count(*) AS n FROM risk_limit_breaches
       WHERE account_id = $1 AND code <> 'KILL_SWITCH_ACTIVE'
         AND decided_at > clock_timestamp() - make_interval(secs => $2)
         -- After an officer released the account, only refusals since then count.
         AND decided_at > coalesce((SELECT max(released_at) FROM risk_kill_switches WHERE target = $3), '-infinity')`,
      [order.accountId, config.RISK_REJECTION_BURST_WINDOW_SECONDS, `ACCOUNT:${order.accountId}`],
    );
    if (Number(n) < threshold) return;
    const [engaged]: unknown[] = await manager.query(
      `SELECT 1 FROM risk_kill_switches WHERE target = $1 AND released_at IS NULL`,
      [`ACCOUNT:${order.accountId}`],
    );
    if (engaged) return;
    await raiseAlert(manager, config.KAFKA_TOPIC_PREFIX, {
      kind: 'REJECTION_BURST',
      scope: { scope: 'ACCOUNT', accountId: order.accountId },
      message: `${n} orders of account ${order.accountId} refused within ${config.RISK_REJECTION_BURST_WINDOW_SECONDS} s (limit ${threshold}); the last: ${refusal.code}`,
      engage: true,
    });
  });
}
