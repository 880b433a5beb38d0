// The settlement service's configuration: the platform's variables plus the clearing quotas that apply
// until settlement has its own writer for them.
import { baseConfigSchema } from '@finance/platform';
import { z } from 'zod';

// Whole units so the value means the same in every currency (JPY has no minor unit); 15 digits keep
// the minor units of a three-decimal currency inside a PostgreSQL bigint.
const wholeAmount = z
  .string()
  .regex(/^(0|[1-9]\d{0,14})$/, 'must be a whole amount of at most 15 digits');

export const settlementConfigSchema = baseConfigSchema.extend({
  /** Clearing quota of one account (notional of its open orders), in the order's currency. */
  SETTLEMENT_DEFAULT_CLEARING_QUOTA: wholeAmount.default('10000000'),
  /** Clearing quota of the whole firm (all accounts together), per currency. */
  SETTLEMENT_FIRM_CLEARING_QUOTA: wholeAmount.default('1000000000'),
});

export type SettlementConfig = z.infer<typeof settlementConfigSchema>;
