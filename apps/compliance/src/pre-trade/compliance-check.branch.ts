// Compliance's branch of the order-placement TCC: the pre-trade rules of finance.compliance (largest
// single order, orders per beneficial owner per hour) asked of OPA inside the participant's barrier.
// A denial is a BranchRejected with one code per rule; the policy unreachable refuses (fail closed).
//
// What counts toward the hour: every check that passed, whatever became of the order. A Cancel (another
// branch refused, or the Try phase timed out) marks the check RELEASED but it still counts: the rule
// bounds how fast an owner submits orders, and refused attempts are submissions too (risk's throttles
// do the same). Orders compliance itself denied are not counted: they never reached a book.
import { OrderPlacementPayload, PlacementRejectCode } from '@finance/contracts';
import { SERVICE_CONFIG, SERVICE_LOGGER } from '@finance/platform';
import { BranchContext, BranchHandlers, BranchRejected, Payload } from '@finance/tcc';
import { Inject, Injectable, Optional } from '@nestjs/common';
import type { Logger } from 'pino';
import type { ComplianceConfig } from '../config';
import {
  COMPLIANCE_POLICY,
  ComplianceDecision,
  CompliancePolicy,
  ComplianceUnavailable,
  PreTradeInput,
} from './compliance-policy';

export type ComplianceCheckConfig = Pick<
  ComplianceConfig,
  'COMPLIANCE_MAX_ORDER_NOTIONAL' | 'COMPLIANCE_MAX_ORDERS_PER_HOUR'
>;

// A denial names the first rule in this order; the message lists every violation.
const CODE_OF_RULE: ReadonlyArray<readonly [string, PlacementRejectCode]> = [
  ['malformed-input', 'COMPLIANCE_INPUT_INVALID'],
  ['max-order-notional', 'COMPLIANCE_MAX_ORDER_NOTIONAL'],
  ['max-orders-per-hour', 'COMPLIANCE_ORDER_RATE'],
];

/** The reject code of a denial: its first known rule, else input invalid (an unknown rule denied). */
export function rejectCode(decision: ComplianceDecision): PlacementRejectCode {
  const rules = new Set(decision.violations.map((v) => v.rule));
  return CODE_OF_RULE.find(([rule]) => rules.has(rule))?.[1] ?? 'COMPLIANCE_INPUT_INVALID';
}

@Injectable()
export class ComplianceCheckBranch implements BranchHandlers {
  constructor(
    @Inject(SERVICE_CONFIG) private readonly config: ComplianceCheckConfig,
    @Inject(COMPLIANCE_POLICY) private readonly policy: CompliancePolicy,
    @Optional() @Inject(SERVICE_LOGGER) private readonly logger?: Logger,
  ) {}

  async try(ctx: BranchContext, payload: Payload): Promise<void> {
    const parsed = OrderPlacementPayload.safeParse(payload);
    if (!parsed.success) {
      const where = parsed.error.issues
        .map((i) => `${i.path.join('.') || '(payload)'}: ${i.message}`)
        .join('; ');
      throw new BranchRejected('INVALID_PAYLOAD', where);
    }
    const order = parsed.data;
    const owner = order.owner ?? order.accountId;
    const { manager } = ctx;

    // One owner's Tries run one at a time to the commit, so each counts the ones before it.
    await manager.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`compliance:${owner}`]);
    const [{ n }]: Array<{ n: number }> = await manager.query(
      `SELECT count(*)::int AS n FROM compliance_checks
        WHERE owner = $1 AND checked_at > clock_timestamp() - interval '1 hour'`,
      [owner],
    );

    const input: PreTradeInput = {
      kind: 'pre-trade',
      order: {
        orderId: order.orderId,
        accountId: order.accountId,
        owner,
        user: owner,
        symbol: order.symbol,
        side: order.side,
        type: order.orderType,
        price: order.price ?? null,
        quantity: order.quantity,
        notional: order.notional,
      },
      history: { ordersByUserLastHour: n },
      ...this.policyConfig(),
    };

    let decision: ComplianceDecision;
    try {
      decision = await this.policy.decide(input);
    } catch (error) {
      if (!(error instanceof ComplianceUnavailable)) throw error;
      this.logger?.error({ err: error, orderId: order.orderId }, 'compliance policy unavailable');
      throw new BranchRejected(
        'COMPLIANCE_CHECK_UNAVAILABLE',
        `the compliance rules could not be evaluated: ${error.message}`,
      );
    }
    if (!decision.allow) {
      const message = decision.violations.map((v) => v.message).join('; ') || decision.reason;
      throw new BranchRejected(rejectCode(decision), message);
    }

    await manager.query(
      `INSERT INTO compliance_checks (gtid, branch_id, order_id, account_id, owner, symbol, side,
                                      notional_amount, currency, state)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'ACCEPTED')`,
      [
        ctx.gtid,
        ctx.branchId,
        order.orderId,
        order.accountId,
        owner,
        order.symbol,
        order.side,
        order.notional.amount,
        order.notional.currency,
      ],
    );
  }

  async confirm(ctx: BranchContext): Promise<void> {
    await ctx.manager.query(
      `UPDATE compliance_checks SET state = 'CONFIRMED', updated_at = clock_timestamp()
        WHERE gtid = $1 AND branch_id = $2 AND state = 'ACCEPTED'`,
      [ctx.gtid, ctx.branchId],
    );
  }

  /** Released, yet still counted toward the hour (see the header). A Cancel without a Try: no row. */
  async cancel(ctx: BranchContext): Promise<void> {
    await ctx.manager.query(
      `UPDATE compliance_checks SET state = 'RELEASED', updated_at = clock_timestamp()
        WHERE gtid = $1 AND branch_id = $2 AND state <> 'RELEASED'`,
      [ctx.gtid, ctx.branchId],
    );
  }

  // Only this deployment's configuration, never anything from the order (a client could lift limits).
  private policyConfig(): { config?: Record<string, string> } {
    const config: Record<string, string> = {};
    if (this.config.COMPLIANCE_MAX_ORDER_NOTIONAL !== undefined) {
      config['maxOrderNotional'] = this.config.COMPLIANCE_MAX_ORDER_NOTIONAL;
    }
    if (this.config.COMPLIANCE_MAX_ORDERS_PER_HOUR !== undefined) {
      config['maxOrdersPerUserPerHour'] = this.config.COMPLIANCE_MAX_ORDERS_PER_HOUR;
    }
    return Object.keys(config).length > 0 ? { config } : {};
  }
}
