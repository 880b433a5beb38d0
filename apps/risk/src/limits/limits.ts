// Risk limits, firm-wide and per account: what each limit is, setting them (PUT) with a
// RiskLimitChanged event per limit, reading them with where each value comes from, and the two
// levels the pre-trade policy is given for an order. An account's own value wins over the firm's;
// the firm's applies to every account without one; the configured defaults stand in for a firm-wide
// max order value and risk quota nobody has set. Restricted symbols add up across the two levels.
import { RiskLimitChanged, SYSTEM_CATALOG, uuidv7 } from '@finance/contracts';
import { createEnvelope, enqueueOutbox, routeMessage } from '@finance/messaging';
import { Currency, formatMoney, isCurrency, parseMoney } from '@finance/money';
import type { DataSource, EntityManager } from 'typeorm';
import { z } from 'zod';
import type { RiskConfig } from '../config';
import type { LimitLevel } from '../pre-trade/risk-policy';

export type LimitsConfig = Pick<
  RiskConfig,
  'RISK_DEFAULT_MAX_ORDER_VALUE' | 'RISK_DEFAULT_QUOTA' | 'KAFKA_TOPIC_PREFIX'
>;

type Kind = 'money' | 'whole' | 'decimal' | 'symbols';

/** Every limit: its kind, and its name in RiskLimitChanged events. */
export const LIMITS = {
  maxOrderValue: { kind: 'money', event: 'max-order-value' },
  quota: { kind: 'money', event: 'risk-quota' },
  lossLimit: { kind: 'money', event: 'loss-limit' },
  maxOrderQuantity: { kind: 'whole', event: 'max-order-quantity' },
  maxPosition: { kind: 'whole', event: 'max-position' },
  priceCollarPercent: { kind: 'decimal', event: 'price-collar-percent' },
  ordersPerSecond: { kind: 'whole', event: 'orders-per-second' },
  ordersPerMinute: { kind: 'whole', event: 'orders-per-minute' },
  duplicateWindowSeconds: { kind: 'decimal', event: 'duplicate-window-seconds' },
  restrictedSymbols: { kind: 'symbols', event: 'restricted-symbols' },
} as const satisfies Record<string, { kind: Kind; event: string }>;

export type LimitName = keyof typeof LIMITS;
const LIMIT_NAMES = Object.keys(LIMITS) as LimitName[];
const MONEY_LIMITS = LIMIT_NAMES.filter((n) => LIMITS[n].kind === 'money');

export type LimitValue = string | string[];

const BIGINT_MAX = 2n ** 63n - 1n;

export const accountIdParam = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be an account id (letters, digits, _ and -)');

const amount = z
  .string()
  .regex(/^\d{1,19}(\.\d{1,10})?$/, 'must be a non-negative decimal string, e.g. "1000000.00"');
const wholeCount = z.string().regex(/^(0|[1-9]\d{0,17})$/, 'must be a whole number >= 0');
const percent = z
  .string()
  .regex(/^\d{1,3}(\.\d{1,4})?$/, 'must be a percentage such as "5" or "2.5"')
  .refine((v) => Number(v) <= 100, 'must be at most 100');
const seconds = z
  .string()
  .regex(/^\d{1,4}(\.\d{1,3})?$/, 'must be a number of seconds such as "2" or "0.5"')
  .refine((v) => Number(v) <= 3600, 'must be at most 3600 (one hour)');
const symbols = z
  .array(z.string().regex(/^[A-Z0-9.]{1,12}$/, 'must be an upper-case ticker'))
  .max(1000);

// null removes the scope's own value (the firm's, or the default, applies again).
const field = <T extends z.ZodType>(schema: T) => schema.nullable().optional();

/**
 * PUT /risk/limits and PUT /risk/limits/:accountId: the limits named in the body are set (null
 * removes one), the others keep their value. Money limits are in `currency`.
 */
export const limitsBody = z
  .strictObject({
    currency: z
      .string()
      .refine(isCurrency, 'must be a supported ISO 4217 currency code')
      .optional(),
    maxOrderValue: field(amount),
    quota: field(amount),
    lossLimit: field(amount),
    maxOrderQuantity: field(wholeCount),
    maxPosition: field(wholeCount),
    priceCollarPercent: field(percent),
    ordersPerSecond: field(wholeCount),
    ordersPerMinute: field(wholeCount),
    duplicateWindowSeconds: field(seconds),
    restrictedSymbols: field(symbols),
  })
  .transform((body, ctx) => {
    const changes: Array<{ name: LimitName; currency: Currency | ''; value: LimitValue | null }> =
      [];
    for (const name of LIMIT_NAMES) {
      const raw = body[name];
      if (raw === undefined) continue;
      const kind: Kind = LIMITS[name].kind;
      if (kind !== 'money') {
        const value =
          raw === null
            ? null
            : Array.isArray(raw)
              ? [...new Set(raw)].sort()
              : canonical(kind, raw);
        changes.push({ name, currency: '', value });
        continue;
      }
      if (!body.currency) {
        ctx.addIssue({ code: 'custom', path: ['currency'], message: `is required with ${name}` });
        continue;
      }
      const currency = body.currency as Currency;
      if (raw === null) {
        changes.push({ name, currency, value: null });
        continue;
      }
      try {
        const exact = parseMoney(currency, raw as string);
        if (exact.minor > BIGINT_MAX) {
          ctx.addIssue({ code: 'custom', path: [name], message: 'is too large' });
          continue;
        }
        changes.push({ name, currency, value: formatMoney(exact) });
      } catch (error) {
        // More decimal places than the currency has: refuse rather than round.
        ctx.addIssue({ code: 'custom', path: [name], message: (error as Error).message });
      }
    }
    if (body.currency && !MONEY_LIMITS.some((n) => body[n] !== undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['currency'],
        message: `applies only with ${MONEY_LIMITS.join(', ')}`,
      });
    }
    if (changes.length === 0 && Object.keys(body).length === 0) {
      ctx.addIssue({ code: 'custom', path: [], message: 'must set at least one limit' });
    }
    return changes;
  });

function canonical(kind: Kind, raw: string): string {
  return kind === 'whole' ? BigInt(raw).toString() : raw;
}

export type LimitChanges = z.output<typeof limitsBody>;

export type Scope = { scope: 'FIRM' } | { scope: 'ACCOUNT'; accountId: string };

const scopeKey = (s: Scope) => (s.scope === 'FIRM' ? '' : s.accountId);
/** Aggregate id of the firm's RiskLimitChanged events: '*' is no account id. */
const aggregateOf = (s: Scope) => (s.scope === 'FIRM' ? '*' : s.accountId);

/** Sets the limits of one scope and records who did it: the rows and their events commit together. */
export async function setLimits(
  dataSource: DataSource,
  config: LimitsConfig,
  change: { scope: Scope; changes: LimitChanges; changedBy: string; correlationId?: string },
): Promise<LimitsView> {
  const { scope, changes, changedBy } = change;
  await dataSource.transaction(async (manager) => {
    for (const c of changes) {
      const key = [scope.scope, scopeKey(scope), c.name, c.currency];
      if (c.value === null) {
        await manager.query(
          `DELETE FROM risk_limit_values WHERE scope = $1 AND account_id = $2 AND name = $3 AND currency = $4`,
          key,
        );
      } else {
        await manager.query(
          `INSERT INTO risk_limit_values (scope, account_id, name, currency, value, set_by)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6)
           ON CONFLICT (scope, account_id, name, currency) DO UPDATE
             SET value = EXCLUDED.value, set_by = EXCLUDED.set_by, set_at = clock_timestamp()`,
          [...key, JSON.stringify(c.value), changedBy],
        );
      }
    }
    if (changes.length === 0) return;
    const aggregateId = aggregateOf(scope);
    const [{ revision }]: Array<{ revision: string }> = await manager.query(
      `INSERT INTO risk_limit_revisions (account_id, revision) VALUES ($1, $2)
       ON CONFLICT (account_id) DO UPDATE SET revision = risk_limit_revisions.revision + EXCLUDED.revision
       RETURNING revision`,
      [aggregateId, changes.length],
    );
    const first = Number(revision) - changes.length + 1;
    const correlationId = change.correlationId ?? uuidv7();
    await enqueueOutbox(
      manager,
      changes.map((c, i) =>
        routeMessage(
          SYSTEM_CATALOG,
          createEnvelope(
            RiskLimitChanged,
            {
              scope: scope.scope,
              ...(scope.scope === 'ACCOUNT' ? { accountId: scope.accountId } : {}),
              limit: c.currency ? `${LIMITS[c.name].event}:${c.currency}` : LIMITS[c.name].event,
              value: c.value ?? [],
              changedBy,
              ...(c.value === null ? { unset: true as const } : {}),
            },
            {
              producer: 'risk',
              aggregateId,
              aggregateSequence: first + i,
              correlationId,
              causationId: null,
            },
          ),
          config.KAFKA_TOPIC_PREFIX,
        ),
      ),
    );
  });
  return readLimits(dataSource, config, scope);
}

interface ValueRow {
  scope: 'FIRM' | 'ACCOUNT';
  name: LimitName;
  currency: string;
  value: LimitValue;
  set_by: string;
  set_at: Date;
}

export interface LimitEntry {
  limit: LimitName;
  currency?: string;
  value: LimitValue;
  setBy: string;
  setAt: string;
}

export interface LimitsView {
  scope: 'FIRM' | 'ACCOUNT';
  accountId?: string;
  /** The values this scope set itself. */
  own: LimitEntry[];
  /** For an account: every limit in force and where it comes from. */
  inForce?: Array<{
    limit: LimitName;
    currency?: string;
    value: LimitValue;
    source: 'ACCOUNT' | 'FIRM' | 'DEFAULT';
  }>;
  /** What stands in for a firm-wide max order value and risk quota nobody set (whole units of any currency). */
  defaults: { maxOrderValue: string; quota: string };
}

const entry = (r: ValueRow): LimitEntry => ({
  limit: r.name,
  ...(r.currency ? { currency: r.currency } : {}),
  value: r.value,
  setBy: r.set_by,
  setAt: r.set_at.toISOString(),
});

export async function readLimits(
  dataSource: DataSource | EntityManager,
  config: LimitsConfig,
  scope: Scope,
): Promise<LimitsView> {
  const rows: ValueRow[] = await dataSource.query(
    `SELECT scope, name, currency, value, set_by, set_at FROM risk_limit_values
     WHERE scope = 'FIRM' OR (scope = $1 AND account_id = $2) ORDER BY name, currency`,
    [scope.scope, scopeKey(scope)],
  );
  const own = rows.filter((r) => r.scope === scope.scope).map(entry);
  const defaults = {
    maxOrderValue: config.RISK_DEFAULT_MAX_ORDER_VALUE,
    quota: config.RISK_DEFAULT_QUOTA,
  };
  if (scope.scope === 'FIRM') return { scope: 'FIRM', own, defaults };

  const inForce: NonNullable<LimitsView['inForce']> = [];
  const key = (r: { name: string; currency: string }) => `${r.name}\0${r.currency}`;
  const firm = new Map(rows.filter((r) => r.scope === 'FIRM').map((r) => [key(r), r]));
  const account = new Map(rows.filter((r) => r.scope === 'ACCOUNT').map((r) => [key(r), r]));
  for (const k of [...new Set([...account.keys(), ...firm.keys()])].sort()) {
    const r = account.get(k) ?? firm.get(k)!;
    const value =
      r.name === 'restrictedSymbols'
        ? [...new Set([...asList(firm.get(k)?.value), ...asList(account.get(k)?.value)])].sort()
        : r.value;
    inForce.push({
      limit: r.name,
      ...(r.currency ? { currency: r.currency } : {}),
      value,
      source: account.has(k) ? 'ACCOUNT' : 'FIRM',
    });
  }
  return { scope: 'ACCOUNT', accountId: scope.accountId, own, inForce, defaults };
}

const asList = (v: LimitValue | undefined): string[] => (Array.isArray(v) ? v : []);

/**
 * The two levels of limits the policy gets for an order in `currency`, from the rows of
 * risk_limit_values for the firm and the account (money limits of other currencies left out).
 */
export function policyLevels(
  rows: ReadonlyArray<{ scope: string; name: string; currency: string; value: LimitValue }>,
  currency: Currency,
  config: Pick<RiskConfig, 'RISK_DEFAULT_MAX_ORDER_VALUE' | 'RISK_DEFAULT_QUOTA'>,
): { account: LimitLevel; firm: LimitLevel } {
  const levels: { account: LimitLevel; firm: LimitLevel } = {
    account: {},
    firm: {
      maxOrderValue: formatMoney(parseMoney(currency, config.RISK_DEFAULT_MAX_ORDER_VALUE)),
      quota: formatMoney(parseMoney(currency, config.RISK_DEFAULT_QUOTA)),
    },
  };
  for (const row of rows) {
    if (row.currency !== '' && row.currency !== currency) continue;
    if (row.name === 'lossLimit' || !(row.name in LIMITS)) continue;
    const level = row.scope === 'FIRM' ? levels.firm : levels.account;
    (level as Record<string, LimitValue>)[row.name] = row.value;
  }
  return levels;
}
