// Risk limits per account and currency: the values in force (an officer's or the configured
// defaults), setting them with their RiskLimitChanged events, and the view risk officers read.
import { RiskLimitChanged, SYSTEM_CATALOG, uuidv7 } from '@finance/contracts';
import { createEnvelope, enqueueOutbox, routeMessage } from '@finance/messaging';
import { Currency, formatMoney, isCurrency, money, Money, parseMoney } from '@finance/money';
import type { DataSource, EntityManager } from 'typeorm';
import { z } from 'zod';
import type { RiskConfig } from '../config';

export type RiskLimitsConfig = Pick<
  RiskConfig,
  'RISK_DEFAULT_MAX_ORDER_VALUE' | 'RISK_DEFAULT_QUOTA' | 'KAFKA_TOPIC_PREFIX'
>;

/** A row of `risk_limits` as pg returns it (bigint columns come back as strings). */
export interface RiskLimitsRow {
  account_id: string;
  currency: string;
  max_order_value_minor: string | null;
  quota_minor: string | null;
  used_minor: string;
  limits_set_by: string | null;
  limits_set_at: Date | null;
}

export interface EffectiveLimits {
  readonly maxOrderValue: Money;
  readonly quota: Money;
  readonly used: Money;
  /** DEFAULT: no officer has set this account's limits in this currency; the config applies. */
  readonly source: 'ACCOUNT' | 'DEFAULT';
}

export function defaultLimits(
  config: Pick<RiskConfig, 'RISK_DEFAULT_MAX_ORDER_VALUE' | 'RISK_DEFAULT_QUOTA'>,
  currency: Currency,
): { maxOrderValue: Money; quota: Money } {
  return {
    maxOrderValue: parseMoney(currency, config.RISK_DEFAULT_MAX_ORDER_VALUE),
    quota: parseMoney(currency, config.RISK_DEFAULT_QUOTA),
  };
}

export function effectiveLimits(
  config: Pick<RiskConfig, 'RISK_DEFAULT_MAX_ORDER_VALUE' | 'RISK_DEFAULT_QUOTA'>,
  currency: Currency,
  row: RiskLimitsRow | undefined,
): EffectiveLimits {
  const defaults = defaultLimits(config, currency);
  return {
    maxOrderValue:
      row?.max_order_value_minor == null
        ? defaults.maxOrderValue
        : money(currency, BigInt(row.max_order_value_minor)),
    quota: row?.quota_minor == null ? defaults.quota : money(currency, BigInt(row.quota_minor)),
    used: money(currency, BigInt(row?.used_minor ?? 0)),
    source: row?.quota_minor == null ? 'DEFAULT' : 'ACCOUNT',
  };
}

export async function findLimitsRow(
  manager: EntityManager,
  accountId: string,
  currency: string,
): Promise<RiskLimitsRow | undefined> {
  const rows: RiskLimitsRow[] = await manager.query(
    'SELECT * FROM risk_limits WHERE account_id = $1 AND currency = $2',
    [accountId, currency],
  );
  return rows[0];
}

// --- setting limits (PUT /risk/limits/:accountId) ---

const BIGINT_MAX = 2n ** 63n - 1n;

export const accountIdParam = z.string().min(1).max(128);

const amountField = z
  .string()
  .regex(/^\d{1,19}(\.\d{1,10})?$/, 'must be a non-negative decimal string, e.g. "1000000.00"');

/** The PUT body; with `parseOrProblem(limitsBody, body, 'body')` a bad field answers 400 naming it. */
export const limitsBody = z
  .strictObject({
    currency: z.string().refine(isCurrency, 'must be a supported ISO 4217 currency code'),
    maxOrderValue: amountField,
    quota: amountField,
  })
  .transform((body, ctx) => {
    const currency = body.currency as Currency;
    const exact = (field: 'maxOrderValue' | 'quota'): Money => {
      try {
        const value = parseMoney(currency, body[field]);
        if (value.minor <= BIGINT_MAX) return value;
        ctx.addIssue({ code: 'custom', path: [field], message: 'is too large' });
      } catch (error) {
        // More decimal places than the currency has: refuse rather than round.
        ctx.addIssue({ code: 'custom', path: [field], message: (error as Error).message });
      }
      return money(currency, 0n);
    };
    return { currency, maxOrderValue: exact('maxOrderValue'), quota: exact('quota') };
  });

export type LimitsRequest = z.output<typeof limitsBody>;

export interface LimitsView {
  currency: string;
  maxOrderValue: string;
  quota: string;
  used: string;
  /** What the quota still allows; 0 when usage is above a lowered quota. */
  available: string;
  source: 'ACCOUNT' | 'DEFAULT';
  setBy: string | null;
  setAt: string | null;
}

function limitsView(limits: EffectiveLimits, row: RiskLimitsRow | undefined): LimitsView {
  const left = limits.quota.minor - limits.used.minor;
  return {
    currency: limits.quota.currency,
    maxOrderValue: formatMoney(limits.maxOrderValue),
    quota: formatMoney(limits.quota),
    used: formatMoney(limits.used),
    available: formatMoney(money(limits.quota.currency, left > 0n ? left : 0n)),
    source: limits.source,
    setBy: row?.limits_set_by ?? null,
    setAt: row?.limits_set_at?.toISOString() ?? null,
  };
}

/**
 * Sets an account's limits in one currency and records who did it: the row and its RiskLimitChanged
 * events (one per limit) commit together, so compliance sees every change that took effect.
 */
export async function setAccountLimits(
  dataSource: DataSource,
  config: RiskLimitsConfig,
  change: { accountId: string; limits: LimitsRequest; changedBy: string; correlationId?: string },
): Promise<{ accountId: string } & LimitsView> {
  const { accountId, limits, changedBy } = change;
  return dataSource.transaction(async (manager) => {
    const [row]: RiskLimitsRow[] = await manager.query(
      `INSERT INTO risk_limits (account_id, currency, max_order_value_minor, quota_minor, limits_set_by, limits_set_at)
       VALUES ($1, $2, $3, $4, $5, clock_timestamp())
       ON CONFLICT (account_id, currency) DO UPDATE SET
         max_order_value_minor = EXCLUDED.max_order_value_minor, quota_minor = EXCLUDED.quota_minor,
         limits_set_by = EXCLUDED.limits_set_by, limits_set_at = EXCLUDED.limits_set_at
       RETURNING *`,
      [
        accountId,
        limits.currency,
        limits.maxOrderValue.minor.toString(),
        limits.quota.minor.toString(),
        changedBy,
      ],
    );
    const events = [
      { limit: `max-order-value:${limits.currency}`, value: formatMoney(limits.maxOrderValue) },
      { limit: `risk-quota:${limits.currency}`, value: formatMoney(limits.quota) },
    ];
    const [{ revision }]: Array<{ revision: string }> = await manager.query(
      `INSERT INTO risk_limit_revisions (account_id, revision) VALUES ($1, $2)
       ON CONFLICT (account_id) DO UPDATE SET revision = risk_limit_revisions.revision + EXCLUDED.revision
       RETURNING revision`,
      [accountId, events.length],
    );
    const first = Number(revision) - events.length + 1;
    const correlationId = change.correlationId ?? uuidv7();
    await enqueueOutbox(
      manager,
      events.map((event, i) =>
        routeMessage(
          SYSTEM_CATALOG,
          createEnvelope(
            RiskLimitChanged,
            { scope: 'ACCOUNT', accountId, ...event, changedBy },
            {
              producer: 'risk',
              aggregateId: accountId,
              aggregateSequence: first + i,
              correlationId,
              causationId: null,
            },
          ),
          config.KAFKA_TOPIC_PREFIX,
        ),
      ),
    );
    return { accountId, ...limitsView(effectiveLimits(config, limits.currency, row), row) };
  });
}

// --- reading limits (GET /risk/limits/:accountId) ---

export interface AccountLimitsView {
  accountId: string;
  /** One entry per currency the account has limits or usage in. */
  limits: LimitsView[];
  /** What applies in any other currency (whole units of that currency). */
  defaults: { maxOrderValue: string; quota: string; appliesTo: string };
  /** Reservations still holding quota (RESERVED or CONFIRMED), oldest first. */
  reservations: Array<{
    gtid: string;
    branchId: string;
    orderId: string;
    currency: string;
    amount: string;
    state: 'RESERVED' | 'CONFIRMED';
    reservedAt: string;
    updatedAt: string;
  }>;
}

export async function readAccountLimits(
  dataSource: DataSource,
  config: RiskLimitsConfig,
  accountId: string,
): Promise<AccountLimitsView> {
  const rows: RiskLimitsRow[] = await dataSource.query(
    'SELECT * FROM risk_limits WHERE account_id = $1 ORDER BY currency',
    [accountId],
  );
  const reservations: Array<{
    gtid: string;
    branch_id: string;
    order_id: string;
    currency: string;
    amount_minor: string;
    state: 'RESERVED' | 'CONFIRMED';
    created_at: Date;
    updated_at: Date;
  }> = await dataSource.query(
    `SELECT gtid, branch_id, order_id, currency, amount_minor, state, created_at, updated_at
     FROM risk_reservations WHERE account_id = $1 AND state <> 'RELEASED' ORDER BY created_at, gtid`,
    [accountId],
  );
  return {
    accountId,
    limits: rows
      .filter((row) => isCurrency(row.currency))
      .map((row) => limitsView(effectiveLimits(config, row.currency as Currency, row), row)),
    defaults: {
      maxOrderValue: config.RISK_DEFAULT_MAX_ORDER_VALUE,
      quota: config.RISK_DEFAULT_QUOTA,
      appliesTo: 'every currency without limits of its own, in units of that currency',
    },
    reservations: reservations.map((r) => ({
      gtid: r.gtid,
      branchId: r.branch_id,
      orderId: r.order_id,
      currency: r.currency,
      amount: formatMoney(money(r.currency as Currency, BigInt(r.amount_minor))),
      state: r.state,
      reservedAt: r.created_at.toISOString(),
      updatedAt: r.updated_at.toISOString(),
    })),
  };
}
