// Trading's settings on top of every service's: how long a placement may take, the MARKET collar,
// fees and self-trade prevention.
import { baseConfigSchema } from '@finance/platform';
import { z } from 'zod';

const millis = (fallback: number) =>
  z.coerce.number().int().min(100).max(600_000).default(fallback);
const basisPoints = (fallback: number) =>
  z.coerce.number().int().min(0).max(10_000).default(fallback);

export const tradingConfigSchema = baseConfigSchema
  .extend({
    /** Deadline of the placement TCC's Try phase; a branch silent past it cancels the order. */
    TRADING_PLACEMENT_TIMEOUT_MS: millis(5_000),
    /** How long `POST /trading/orders` waits for the outcome before answering 202 with a URL. */
    TRADING_RESPONSE_TIMEOUT_MS: millis(3_000),
    /** A MARKET order reserves for, and may trade up to, the touch moved by this many basis points. */
    TRADING_MARKET_COLLAR_BPS: basisPoints(500),
    /** Fee charged to the buyer on each fill, in basis points of its value (rounded up). */
    TRADING_FEE_BPS: basisPoints(0),
    /** Daily session close (UTC, HH:MM or HH:MM:SS): DAY orders still resting then expire. */
    TRADING_SESSION_CLOSE: z
      .string()
      .regex(/^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$/, 'must be HH:MM or HH:MM:SS (UTC)')
      .optional(),
    TRADING_SELF_TRADE_PREVENTION: z
      .enum(['CANCEL_INCOMING', 'CANCEL_RESTING'])
      .default('CANCEL_INCOMING'),
    /**
     * Whether order placement asks compliance (the TCC's 4th branch, finance.compliance pre-trade
     * rules). `off` only for test set-ups that run no compliance service; refused in production.
     */
    TRADING_COMPLIANCE_CHECK: z.enum(['on', 'off']).default('on'),
  })
  .superRefine((config, ctx) => {
    // An order path without the compliance rules would accept what the seed says must be denied.
    if (config.NODE_ENV === 'production' && config.TRADING_COMPLIANCE_CHECK === 'off') {
      ctx.addIssue({
        code: 'custom',
        path: ['TRADING_COMPLIANCE_CHECK'],
        message: 'must be on in production',
      });
    }
  });

export type TradingConfig = z.infer<typeof tradingConfigSchema>;
