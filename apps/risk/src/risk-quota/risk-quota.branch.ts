// The risk-quota branch of order placement (TCC): the pre-trade checks of an order and the risk quota
// it holds while open. TccParticipant runs these inside its barrier, in the consumer's transaction.
import { formatMoney, money, Money } from '@finance/money';
import { SERVICE_CONFIG } from '@finance/platform';
import { BranchContext, BranchHandlers, BranchRejected, Payload } from '@finance/tcc';
import { Inject, Injectable } from '@nestjs/common';
import type { RiskConfig } from '../config';
import { parsePlacement } from './placement-payload';
import { defaultLimits, effectiveLimits, findLimitsRow } from './risk-limits';

export type RiskQuotaConfig = Pick<
  RiskConfig,
  'RISK_DEFAULT_MAX_ORDER_VALUE' | 'RISK_DEFAULT_QUOTA'
>;

const show = (value: Money) => `${formatMoney(value)} ${value.currency}`;

@Injectable()
export class RiskQuotaBranch implements BranchHandlers {
  constructor(@Inject(SERVICE_CONFIG) private readonly config: RiskQuotaConfig) {}

  /**
   * The order's value is its notional, for BUY and SELL alike: the limits bound market exposure, and
   * fees are not exposure (trading freezes them with the cash of a BUY). So a BUY of exactly the max
   * order value passes whatever its fees.
   */
  async try(ctx: BranchContext, payload: Payload): Promise<void> {
    const order = parsePlacement(payload);
    const { accountId } = order;
    const value = order.notional;
    const { currency } = value;
    const { manager } = ctx;

    const row = await findLimitsRow(manager, accountId, currency);
    const limits = effectiveLimits(this.config, currency, row);
    if (value.minor > limits.maxOrderValue.minor) {
      throw new BranchRejected(
        'ORDER_VALUE_LIMIT',
        `order value ${show(value)} exceeds the max order value ${show(limits.maxOrderValue)} of account ${accountId}`,
      );
    }

    // The usage row must exist for the guarded UPDATE to lock; a Try creates it with NULL limits
    // (the configured defaults). Concurrent first Tries meet on the primary key, not in a race.
    if (!row) {
      await manager.query(
        'INSERT INTO risk_limits (account_id, currency) VALUES ($1, $2) ON CONFLICT DO NOTHING',
        [accountId, currency],
      );
    }
    // One statement checks and takes the quota under the row lock: a concurrent Try waits, then
    // re-evaluates the condition against the usage this one left, so two can never both pass.
    // The comparison is numeric so no order value can overflow bigint before being refused.
    // (TypeORM answers a bare UPDATE with [rows, count]; the CTE makes it a plain row set.)
    const reserved: unknown[] = await manager.query(
      `WITH reserved AS (
         UPDATE risk_limits SET used_minor = used_minor + $3::numeric
         WHERE account_id = $1 AND currency = $2
           AND used_minor + $3::numeric <= COALESCE(quota_minor, $4::numeric)
         RETURNING 1)
       SELECT 1 FROM reserved`,
      [
        accountId,
        currency,
        value.minor.toString(),
        defaultLimits(this.config, currency).quota.minor.toString(),
      ],
    );
    if (reserved.length === 0) {
      const now = effectiveLimits(
        this.config,
        currency,
        await findLimitsRow(manager, accountId, currency),
      );
      const left = now.quota.minor - now.used.minor;
      throw new BranchRejected(
        'RISK_QUOTA_EXCEEDED',
        `order value ${show(value)} exceeds what is left of the risk quota ${show(now.quota)} of account ${accountId}: ` +
          `${show(now.used)} used, ${show(money(currency, left > 0n ? left : 0n))} left`,
      );
    }
    await manager.query(
      `INSERT INTO risk_reservations (gtid, branch_id, order_id, account_id, currency, amount_minor, state)
       VALUES ($1, $2, $3, $4, $5, $6, 'RESERVED')`,
      [ctx.gtid, ctx.branchId, order.orderId, accountId, currency, value.minor.toString()],
    );
  }

  /**
   * The order is placed: its quota stays used while it is open. Releasing it as the order fills or
   * is cancelled is the job of the order-event consumer, not of this TCC.
   */
  async confirm(ctx: BranchContext): Promise<void> {
    const confirmed: unknown[] = await ctx.manager.query(
      `WITH confirmed AS (
         UPDATE risk_reservations SET state = 'CONFIRMED', updated_at = clock_timestamp()
         WHERE gtid = $1 AND branch_id = $2 AND state = 'RESERVED' RETURNING 1)
       SELECT 1 FROM confirmed`,
      [ctx.gtid, ctx.branchId],
    );
    if (confirmed.length === 1) return;
    const [existing]: Array<{ state: string }> = await ctx.manager.query(
      'SELECT state FROM risk_reservations WHERE gtid = $1 AND branch_id = $2',
      [ctx.gtid, ctx.branchId],
    );
    if (existing?.state === 'CONFIRMED') return;
    // The barrier only confirms a successful Try, which always leaves a reservation: this is a bug
    // or a tampered table, so fail loudly and let the message be retried or dead-lettered.
    throw new Error(
      `no reservation to confirm for ${ctx.gtid}/${ctx.branchId} (found ${existing?.state ?? 'none'})`,
    );
  }

  /**
   * Gives the quota back. Without a reservation (a rejected or never-run Try, which the barrier
   * normally answers itself) there is nothing to undo. One statement: reservation, then usage row.
   */
  async cancel(ctx: BranchContext): Promise<void> {
    await ctx.manager.query(
      `WITH released AS (
         UPDATE risk_reservations SET state = 'RELEASED', updated_at = clock_timestamp()
         WHERE gtid = $1 AND branch_id = $2 AND state IN ('RESERVED', 'CONFIRMED')
         RETURNING account_id, currency, amount_minor)
       UPDATE risk_limits l SET used_minor = l.used_minor - r.amount_minor
       FROM released r WHERE l.account_id = r.account_id AND l.currency = r.currency`,
      [ctx.gtid, ctx.branchId],
    );
  }
}
