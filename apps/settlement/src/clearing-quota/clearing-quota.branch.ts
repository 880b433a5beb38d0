// The clearing-quota branch of order placement (TCC): settlement capacity an order holds while open,
// against the firm-wide quota and its account's. TccParticipant runs these inside its barrier, in
// the consumer's transaction.
import { Currency, formatMoney, money, Money } from '@finance/money';
import { SERVICE_CONFIG } from '@finance/platform';
import { BranchContext, BranchHandlers, BranchRejected, Payload } from '@finance/tcc';
import { Inject, Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import {
  ClearingQuotaConfig,
  defaultQuota,
  findQuotaRow,
  QuotaScope,
  quotaInForce,
} from './clearing-quota';
import { parsePlacement } from './placement-payload';

const show = (value: Money) => `${formatMoney(value)} ${value.currency}`;

// Both tables are always locked firm row first, then account row (Try and Cancel alike), so two
// transactions never wait on each other in opposite orders. The comparisons are numeric so no
// notional can overflow bigint before being refused.
const RESERVE: Record<QuotaScope, string> = {
  FIRM: `WITH reserved AS (
           UPDATE clearing_firm_quota SET used_minor = used_minor + $2::numeric
           WHERE currency = $1 AND used_minor + $2::numeric <= COALESCE(quota_minor, $3::numeric)
           RETURNING 1)
         SELECT 1 FROM reserved`,
  ACCOUNT: `WITH reserved AS (
              UPDATE clearing_quota SET used_minor = used_minor + $2::numeric
              WHERE currency = $1 AND account_id = $4
                AND used_minor + $2::numeric <= COALESCE(quota_minor, $3::numeric)
              RETURNING 1)
            SELECT 1 FROM reserved`,
};

@Injectable()
export class ClearingQuotaBranch implements BranchHandlers {
  constructor(@Inject(SERVICE_CONFIG) private readonly config: ClearingQuotaConfig) {}

  /** Reserves the order's notional (BUY and SELL alike: both settle that value) on both quotas. */
  async try(ctx: BranchContext, payload: Payload): Promise<void> {
    const order = parsePlacement(payload);
    const { accountId, notional } = order;
    const { manager } = ctx;
    // The usage rows must exist for the guarded UPDATEs to lock; created with NULL quota (the
    // configured one). Concurrent first Tries meet on the primary key, not in a race.
    await manager.query(
      'INSERT INTO clearing_firm_quota (currency) VALUES ($1) ON CONFLICT DO NOTHING',
      [notional.currency],
    );
    await manager.query(
      'INSERT INTO clearing_quota (account_id, currency) VALUES ($1, $2) ON CONFLICT DO NOTHING',
      [accountId, notional.currency],
    );
    // If the account's quota refuses after the firm's was taken, BranchRejected rolls both back
    // (the participant's savepoint).
    for (const scope of ['FIRM', 'ACCOUNT'] as const) {
      await this.reserve(manager, scope, accountId, notional);
    }
    await manager.query(
      `INSERT INTO clearing_reservations (gtid, branch_id, order_id, account_id, currency, amount_minor,
                                          held_minor, quantity, state)
       VALUES ($1, $2, $3, $4, $5, $6, $6, $7, 'RESERVED')`,
      [
        ctx.gtid,
        ctx.branchId,
        order.orderId,
        accountId,
        notional.currency,
        notional.minor.toString(),
        order.quantity.toString(),
      ],
    );
  }

  /**
   * The order is placed: its clearing quota stays used while it is open and while its trades wait
   * for settlement. Fills, cancels and settled trades lower it (obligations/obligations.ts).
   */
  async confirm(ctx: BranchContext): Promise<void> {
    const confirmed: unknown[] = await ctx.manager.query(
      `WITH confirmed AS (
         UPDATE clearing_reservations SET state = 'CONFIRMED', updated_at = clock_timestamp()
         WHERE gtid = $1 AND branch_id = $2 AND state = 'RESERVED' RETURNING 1)
       SELECT 1 FROM confirmed`,
      [ctx.gtid, ctx.branchId],
    );
    if (confirmed.length === 1) return;
    const [existing]: Array<{ state: string }> = await ctx.manager.query(
      'SELECT state FROM clearing_reservations WHERE gtid = $1 AND branch_id = $2',
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
   * Gives both quotas back. Without a reservation (a rejected or never-run Try, which the barrier
   * normally answers itself) there is nothing to undo.
   */
  async cancel(ctx: BranchContext): Promise<void> {
    const released: Array<{ account_id: string; currency: string; amount_minor: string }> =
      await ctx.manager.query(
        `WITH released AS (
           UPDATE clearing_reservations r SET state = 'RELEASED', held_minor = 0, updated_at = clock_timestamp()
             FROM (SELECT gtid, branch_id, held_minor FROM clearing_reservations
                    WHERE gtid = $1 AND branch_id = $2 FOR UPDATE) old
            WHERE r.gtid = old.gtid AND r.branch_id = old.branch_id AND r.state IN ('RESERVED', 'CONFIRMED')
           RETURNING r.account_id, r.currency, old.held_minor AS amount_minor)
         SELECT * FROM released`,
        [ctx.gtid, ctx.branchId],
      );
    for (const r of released) {
      await ctx.manager.query(
        'UPDATE clearing_firm_quota SET used_minor = used_minor - $2 WHERE currency = $1',
        [r.currency, r.amount_minor],
      );
      await ctx.manager.query(
        'UPDATE clearing_quota SET used_minor = used_minor - $3 WHERE account_id = $1 AND currency = $2',
        [r.account_id, r.currency, r.amount_minor],
      );
    }
  }

  private async reserve(
    manager: EntityManager,
    scope: QuotaScope,
    accountId: string,
    notional: Money,
  ): Promise<void> {
    const currency: Currency = notional.currency;
    const params = [
      currency,
      notional.minor.toString(),
      defaultQuota(this.config, scope, currency).minor.toString(),
      ...(scope === 'ACCOUNT' ? [accountId] : []),
    ];
    const reserved: unknown[] = await manager.query(RESERVE[scope], params);
    if (reserved.length === 1) return;
    const now = quotaInForce(
      this.config,
      scope,
      currency,
      await findQuotaRow(manager, scope, accountId, currency),
    );
    const left = now.quota.minor - now.used.minor;
    const which =
      scope === 'FIRM'
        ? `the firm clearing quota ${show(now.quota)}`
        : `the clearing quota ${show(now.quota)} of account ${accountId}`;
    throw new BranchRejected(
      'CLEARING_QUOTA_EXCEEDED',
      `notional ${show(notional)} exceeds what is left of ${which}: ` +
        `${show(now.used)} used, ${show(money(currency, left > 0n ? left : 0n))} left`,
    );
  }
}
