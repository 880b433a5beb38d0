// The risk-quota branch of order placement (TCC): the pre-trade checks of an order, decided by the
// finance.risk policy, and what the order holds in risk while open. TccParticipant runs these inside
// its barrier, in the consumer's transaction.
import { SERVICE_CONFIG, SERVICE_LOGGER } from '@finance/platform';
import { BranchContext, BranchHandlers, BranchRejected, Payload } from '@finance/tcc';
import { Inject, Injectable, Optional } from '@nestjs/common';
import type { Logger } from 'pino';
import { Histogram, register } from 'prom-client';
import { DataSource } from 'typeorm';
import { recordRejection, RejectionConfig } from '../breakers/rejections';
import type { RiskConfig } from '../config';
import { preTradeInput } from '../pre-trade/pre-trade-input';
import {
  RISK_POLICY,
  RiskDecision,
  RiskPolicy,
  RiskPolicyUnavailable,
} from '../pre-trade/risk-policy';
import { parsePlacement } from './placement-payload';

export type RiskQuotaConfig = Pick<
  RiskConfig,
  'RISK_DEFAULT_MAX_ORDER_VALUE' | 'RISK_DEFAULT_QUOTA'
> &
  RejectionConfig;

const histogram = (name: string, help: string, labelNames: string[]) =>
  (register.getSingleMetric(name) as Histogram | undefined) ??
  new Histogram({
    name,
    help,
    labelNames,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
  });

/** The policy evaluation alone (p99 aim: 1 ms). */
export const policySeconds = histogram(
  'risk_pretrade_policy_seconds',
  'Time to evaluate the pre-trade policy, by engine',
  ['engine'],
);
/** The whole Try: lock, facts, policy, reservation (not the barrier or the commit). */
export const trySeconds = histogram(
  'risk_pretrade_try_seconds',
  "Time of risk's Try handler, by outcome",
  ['outcome'],
);

@Injectable()
export class RiskQuotaBranch implements BranchHandlers {
  constructor(
    @Inject(SERVICE_CONFIG) private readonly config: RiskQuotaConfig,
    private readonly dataSource: DataSource,
    @Inject(RISK_POLICY) private readonly policy: RiskPolicy,
    @Optional() @Inject(SERVICE_LOGGER) private readonly logger?: Logger,
  ) {}

  /**
   * The order's value is its notional, for BUY and SELL alike: the limits bound market exposure, and
   * fees are not exposure (trading freezes them with the cash of a BUY). So a BUY of exactly the max
   * order value passes whatever its fees.
   */
  async try(ctx: BranchContext, payload: Payload): Promise<void> {
    const started = performance.now();
    const order = parsePlacement(payload);
    const { manager } = ctx;

    // The account's Tries run one at a time from here to the commit, so each sees the orders the
    // previous ones reserved (throttles, duplicates, exposure) and none can overtake another.
    await manager.query(
      `INSERT INTO risk_accounts (account_id) VALUES ($1)
       ON CONFLICT (account_id) DO UPDATE SET tries = risk_accounts.tries + 1`,
      [order.accountId],
    );
    const input = await preTradeInput(manager, this.config, order);

    let decision: RiskDecision;
    const evaluated = performance.now();
    try {
      decision = await this.policy.decide(input);
    } catch (error) {
      if (!(error instanceof RiskPolicyUnavailable)) throw error;
      // Fail closed: an order nobody could check is refused, not passed and not retried.
      this.logger?.error({ err: error, orderId: order.orderId }, 'pre-trade policy unavailable');
      decision = {
        allow: false,
        code: 'RISK_CHECK_UNAVAILABLE',
        message: `the pre-trade checks could not be evaluated: ${error.message}`,
        violations: [
          {
            code: 'RISK_CHECK_UNAVAILABLE',
            limit: 'policy',
            scope: 'FIRM',
            message: error.message,
          },
        ],
      };
    } finally {
      policySeconds.observe({ engine: this.policy.engine }, (performance.now() - evaluated) / 1000);
    }

    if (!decision.allow) {
      await recordRejection(this.dataSource, this.config, {
        gtid: ctx.gtid,
        branchId: ctx.branchId,
        order,
        code: decision.code,
        message: decision.message,
        violations: decision.violations,
      });
      trySeconds.observe({ outcome: 'rejected' }, (performance.now() - started) / 1000);
      throw new BranchRejected(decision.code, decision.message);
    }

    // The order counts from now: against the throttles (placed_at), the exposure (open_minor) and
    // the account's usage, which always equals its open reservations.
    const value = order.notional.minor.toString();
    await manager.query(
      `WITH o AS (
         INSERT INTO risk_orders (order_id, gtid, account_id, symbol, side, order_type, price, currency,
                                  quantity, open_quantity, notional_minor, open_minor, state)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $10, 'OPEN')),
       r AS (
         INSERT INTO risk_reservations (gtid, branch_id, order_id, account_id, currency, amount_minor, state)
         VALUES ($2, $11, $1, $3, $8, $10, 'RESERVED'))
       INSERT INTO risk_limits (account_id, currency, used_minor) VALUES ($3, $8, $10)
       ON CONFLICT (account_id, currency) DO UPDATE SET used_minor = risk_limits.used_minor + EXCLUDED.used_minor`,
      [
        order.orderId,
        ctx.gtid,
        order.accountId,
        order.symbol,
        order.side,
        order.orderType,
        order.price ?? null,
        order.notional.currency,
        order.quantity.toString(),
        value,
        ctx.branchId,
      ],
    );
    trySeconds.observe({ outcome: 'reserved' }, (performance.now() - started) / 1000);
  }

  /** The order is placed: what it holds stays until it fills or is cancelled (trading's events). */
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
   * The placement failed elsewhere: gives back the usage and takes the order out of the exposure
   * (it still counted against the throttles: it was reserved). One statement.
   */
  async cancel(ctx: BranchContext): Promise<void> {
    await ctx.manager.query(
      `WITH released AS (
         UPDATE risk_reservations SET state = 'RELEASED', updated_at = clock_timestamp()
         WHERE gtid = $1 AND branch_id = $2 AND state IN ('RESERVED', 'CONFIRMED')
         RETURNING account_id, currency, amount_minor, order_id),
       orders AS (
         UPDATE risk_orders o SET state = 'RELEASED', open_quantity = 0, open_minor = 0, updated_at = clock_timestamp()
         FROM released r WHERE o.order_id = r.order_id)
       UPDATE risk_limits l SET used_minor = l.used_minor - r.amount_minor
       FROM released r WHERE l.account_id = r.account_id AND l.currency = r.currency`,
      [ctx.gtid, ctx.branchId],
    );
  }
}
