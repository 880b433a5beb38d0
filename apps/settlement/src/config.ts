// The settlement service's configuration: the platform's variables, the clearing quotas that apply
// until settlement has its own writer for them, settlement periods and how fails are handled.
import { baseConfigSchema } from '@finance/platform';
import { z } from 'zod';

// Whole units so the value means the same in every currency (JPY has no minor unit); 15 digits keep
// the minor units of a three-decimal currency inside a PostgreSQL bigint.
const wholeAmount = z
  .string()
  .regex(/^(0|[1-9]\d{0,14})$/, 'must be a whole amount of at most 15 digits');

/** "T+n": settlement n business days after the trade date. */
const period = z
  .string()
  .regex(/^T\+[0-9]$/, 'must be T+n with n a single digit, e.g. T+1')
  .transform((v) => Number(v.slice(2)));

/** "AAPL=T+0,MSFT=T+2": a settlement period per symbol. */
const periodsBySymbol = z
  .string()
  .default('')
  .transform((value, ctx) => {
    const periods: Record<string, number> = {};
    for (const item of value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)) {
      const match = /^([A-Z0-9.]{1,12})=T\+([0-9])$/.exec(item);
      if (!match) {
        ctx.addIssue({ code: 'custom', message: `"${item}" must be SYMBOL=T+n, e.g. AAPL=T+0` });
        return z.NEVER;
      }
      periods[match[1]] = Number(match[2]);
    }
    return periods;
  });

export const settlementConfigSchema = baseConfigSchema.extend({
  /** Clearing quota of one account (notional of its open orders), in the order's currency. */
  SETTLEMENT_DEFAULT_CLEARING_QUOTA: wholeAmount.default('10000000'),
  /** Clearing quota of the whole firm (all accounts together), per currency. */
  SETTLEMENT_FIRM_CLEARING_QUOTA: wholeAmount.default('1000000000'),
  /** Settlement period of a trade, in business days after its trade date (UTC). */
  SETTLEMENT_PERIOD: period.prefault('T+1'),
  /** Periods that differ from SETTLEMENT_PERIOD, per symbol. */
  SETTLEMENT_PERIOD_BY_SYMBOL: periodsBySymbol,
  /** Trading's base URL: reconciliation reads its balances (GET /trading/balances). */
  TRADING_URL: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
    .default('https://127.0.0.1:3001'),
  /** Cycles a trade may fail before it is unwound through the post-trade saga's compensation. */
  SETTLEMENT_MAX_FAILED_CYCLES: z.coerce
    .number({ error: 'must be a whole number from 1 to 100' })
    .int('must be a whole number from 1 to 100')
    .min(1, 'must be a whole number from 1 to 100')
    .max(100, 'must be a whole number from 1 to 100')
    .default(3),
});

export type SettlementConfig = z.infer<typeof settlementConfigSchema>;
