// The TCC that places an order: its branches, their resources and the payload every branch gets.
// The payload travels inside TccTry.payload; each participant parses it with this schema.
import { z } from 'zod';
import * as f from './fields';

/** Resource names of the branches of an order placement. */
export const PLACEMENT_RESOURCES = {
  /** trading: cash (BUY) or holdings (SELL) moved from available to frozen. */
  funds: 'order-funds',
  /** risk: risk quota reserved after the pre-trade checks. */
  riskQuota: 'risk-quota',
  /** settlement: clearing quota reserved for the trade's settlement. */
  clearingQuota: 'clearing-quota',
  /** compliance: the pre-trade rules of finance.compliance (notional, orders per user per hour). */
  complianceCheck: 'compliance-check',
} as const;

export const PLACEMENT_KIND = 'order-placement';

export const OrderPlacementPayload = z.object({
  orderId: f.id,
  accountId: f.id,
  symbol: f.symbol,
  side: f.side,
  orderType: f.orderType,
  timeInForce: f.timeInForce,
  quantity: f.quantity,
  /** Limit price; absent for MARKET. */
  price: f.positiveDecimal.optional(),
  /**
   * Value the order can reach, in the instrument's currency: price × quantity for LIMIT, the
   * collar price × quantity for MARKET. Risk checks it against the account's limits.
   */
  notional: f.money,
  /** Fees reserved on top of the notional for a BUY. */
  fees: f.money,
  /**
   * The account's beneficial owner, from trading's accounts table: the "user" of compliance's
   * orders-per-hour rule. Optional so Tries sent before it existed still parse.
   */
  owner: f.id.optional(),
});
export type OrderPlacementPayload = z.infer<typeof OrderPlacementPayload>;

/** Business codes a placement branch replies with when it refuses its Try. */
export const PLACEMENT_REJECT_CODES = [
  'INSUFFICIENT_FUNDS',
  'INSUFFICIENT_HOLDINGS',
  'ORDER_VALUE_LIMIT',
  'RISK_QUOTA_EXCEEDED',
  'KILL_SWITCH_ACTIVE',
  'CLEARING_QUOTA_EXCEEDED',
  'INVALID_PAYLOAD',
  // Risk's pre-trade rules (finance.risk): one code per limit.
  'RESTRICTED_SYMBOL',
  'DUPLICATE_ORDER',
  'ORDER_RATE_PER_SECOND',
  'ORDER_RATE_PER_MINUTE',
  'ORDER_QUANTITY_LIMIT',
  'PRICE_COLLAR',
  'POSITION_LIMIT',
  /** The risk policy found its input unreadable: refused rather than passed. */
  'RISK_INPUT_INVALID',
  /** The risk policy could not be evaluated: refused rather than passed (fail closed). */
  'RISK_CHECK_UNAVAILABLE',
  // Compliance's pre-trade rules (finance.compliance): one code per rule.
  /** A single order above the largest notional allowed (seed: 1,000,000). */
  'COMPLIANCE_MAX_ORDER_NOTIONAL',
  /** The owner's orders in the last hour would exceed the limit (seed: 100). */
  'COMPLIANCE_ORDER_RATE',
  /** The compliance policy found its input unreadable: refused rather than passed. */
  'COMPLIANCE_INPUT_INVALID',
  /** The compliance policy could not be evaluated: refused rather than passed (fail closed). */
  'COMPLIANCE_CHECK_UNAVAILABLE',
] as const;
export type PlacementRejectCode = (typeof PLACEMENT_REJECT_CODES)[number];
