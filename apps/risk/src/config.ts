// The risk service's configuration: the platform's variables plus the limits an account gets until a
// risk officer sets its own.
import { baseConfigSchema } from '@finance/platform';
import { z } from 'zod';

// Whole units so the value means the same in every currency (JPY has no minor unit); 15 digits keep
// the minor units of a three-decimal currency inside a PostgreSQL bigint.
const wholeAmount = z
  .string()
  .regex(/^(0|[1-9]\d{0,14})$/, 'must be a whole amount of at most 15 digits');

export const riskConfigSchema = baseConfigSchema.extend({
  /** Largest single order, in the order's currency, for an account without limits of its own. */
  RISK_DEFAULT_MAX_ORDER_VALUE: wholeAmount.default('1000000'),
  /** Risk quota (value of open orders), in the order's currency, for such an account. */
  RISK_DEFAULT_QUOTA: wholeAmount.default('5000000'),
});

export type RiskConfig = z.infer<typeof riskConfigSchema>;
