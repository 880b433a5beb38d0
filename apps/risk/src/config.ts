// The risk service's configuration: the platform's variables, the firm-wide limits in force until a
// risk officer sets them, how the pre-trade policy is evaluated, and the thresholds of the circuit
// breakers and the large-trade rule.
import { baseConfigSchema } from '@finance/platform';
import { z } from 'zod';

// Whole units so the value means the same in every currency (JPY has no minor unit); 15 digits keep
// the minor units of a three-decimal currency inside a PostgreSQL bigint.
const wholeAmount = z
  .string()
  .regex(/^(0|[1-9]\d{0,14})$/, 'must be a whole amount of at most 15 digits');
const seconds = z.coerce.number().int().min(1).max(86_400);

export const riskConfigSchema = baseConfigSchema.extend({
  /** Largest single order, in the order's currency, unless the firm or the account set one. */
  RISK_DEFAULT_MAX_ORDER_VALUE: wholeAmount.default('1000000'),
  /** Risk quota (credit limit on gross exposure), in the order's currency, unless set. */
  RISK_DEFAULT_QUOTA: wholeAmount.default('5000000'),
  /**
   * wasm: the policy compiled to Wasm, evaluated in-process (no network in the Try). sidecar: asked
   * of OPA at OPA_URL per order, one HTTP round trip (for comparison, or to run a policy pushed to OPA).
   */
  RISK_POLICY_ENGINE: z.enum(['wasm', 'sidecar']).default('wasm'),
  /** A symbol trading more than this percentage away from a trade within the window halts it; 0 = off. */
  RISK_PRICE_BAND_PERCENT: z
    .string()
    .regex(/^\d{1,2}(\.\d{1,4})?$/, 'must be a percentage such as "5" or "2.5" (0 turns it off)')
    .default('5'),
  RISK_PRICE_BAND_WINDOW_SECONDS: seconds.default(60),
  /** This many refused orders of one account within the window stop the account; 0 = off. */
  RISK_REJECTION_BURST_COUNT: z.coerce.number().int().min(0).max(100_000).default(20),
  RISK_REJECTION_BURST_WINDOW_SECONDS: seconds.default(10),
  /** Large-trade alert (seed 004): this many trades of one account, each above the notional, within the window. */
  RISK_LARGE_TRADE_NOTIONAL: wholeAmount.default('1000000'),
  RISK_LARGE_TRADE_COUNT: z.coerce.number().int().min(1).max(1_000).default(3),
  RISK_LARGE_TRADE_WINDOW_SECONDS: seconds.default(10),
});

export type RiskConfig = z.infer<typeof riskConfigSchema>;
