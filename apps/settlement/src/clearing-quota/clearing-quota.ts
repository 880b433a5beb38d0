// Clearing quotas in force (firm-wide and per account, per currency) and the view of an account's
// usage and open reservations that GET /settlement/clearing-quota/:accountId answers with.
import { Currency, formatMoney, isCurrency, money, Money, parseMoney } from '@finance/money';
import type { DataSource, EntityManager } from 'typeorm';
import { z } from 'zod';
import type { SettlementConfig } from '../config';

export type ClearingQuotaConfig = Pick<
  SettlementConfig,
  'SETTLEMENT_DEFAULT_CLEARING_QUOTA' | 'SETTLEMENT_FIRM_CLEARING_QUOTA'
>;

export type QuotaScope = 'FIRM' | 'ACCOUNT';

/** A usage row of either table as pg returns it (bigint columns come back as strings). */
export interface QuotaRow {
  currency: string;
  quota_minor: string | null;
  used_minor: string;
}

export interface QuotaInForce {
  readonly quota: Money;
  readonly used: Money;
  /** DEFAULT: the configured quota applies (nothing has set this one). */
  readonly source: 'SET' | 'DEFAULT';
}

export function defaultQuota(
  config: ClearingQuotaConfig,
  scope: QuotaScope,
  currency: Currency,
): Money {
  return parseMoney(
    currency,
    scope === 'FIRM'
      ? config.SETTLEMENT_FIRM_CLEARING_QUOTA
      : config.SETTLEMENT_DEFAULT_CLEARING_QUOTA,
  );
}

export function quotaInForce(
  config: ClearingQuotaConfig,
  scope: QuotaScope,
  currency: Currency,
  row: QuotaRow | undefined,
): QuotaInForce {
  return {
    quota:
      row?.quota_minor == null
        ? defaultQuota(config, scope, currency)
        : money(currency, BigInt(row.quota_minor)),
    used: money(currency, BigInt(row?.used_minor ?? 0)),
    source: row?.quota_minor == null ? 'DEFAULT' : 'SET',
  };
}

export async function findQuotaRow(
  manager: EntityManager,
  scope: QuotaScope,
  accountId: string,
  currency: string,
): Promise<QuotaRow | undefined> {
  const rows: QuotaRow[] =
    scope === 'FIRM'
      ? await manager.query(
          'SELECT currency, quota_minor, used_minor FROM clearing_firm_quota WHERE currency = $1',
          [currency],
        )
      : await manager.query(
          'SELECT currency, quota_minor, used_minor FROM clearing_quota WHERE account_id = $1 AND currency = $2',
          [accountId, currency],
        );
  return rows[0];
}

export const accountIdParam = z.string().min(1).max(128);

export interface QuotaView {
  currency: string;
  quota: string;
  used: string;
  /** What the quota still allows; 0 when usage is above a lowered quota. */
  available: string;
  source: 'SET' | 'DEFAULT';
}

function quotaView(q: QuotaInForce): QuotaView {
  const left = q.quota.minor - q.used.minor;
  return {
    currency: q.quota.currency,
    quota: formatMoney(q.quota),
    used: formatMoney(q.used),
    available: formatMoney(money(q.quota.currency, left > 0n ? left : 0n)),
    source: q.source,
  };
}

export interface ClearingQuotaView {
  accountId: string;
  /** The account's quota and usage in each currency it has used. */
  account: QuotaView[];
  /** The firm-wide quota and usage (all accounts) in those currencies. */
  firm: QuotaView[];
  /** What applies in any currency without a row (whole units of that currency). */
  defaults: { accountQuota: string; firmQuota: string; appliesTo: string };
  /** Reservations still holding quota (RESERVED or CONFIRMED), oldest first. */
  reservations: Array<{
    gtid: string;
    branchId: string;
    orderId: string;
    currency: string;
    amount: string;
    /** What the reservation holds now: the open part of the order plus its unsettled trades. */
    held: string;
    state: 'RESERVED' | 'CONFIRMED';
    reservedAt: string;
    updatedAt: string;
  }>;
}

export async function readClearingQuota(
  dataSource: DataSource,
  config: ClearingQuotaConfig,
  accountId: string,
): Promise<ClearingQuotaView> {
  const accountRows: QuotaRow[] = await dataSource.query(
    'SELECT currency, quota_minor, used_minor FROM clearing_quota WHERE account_id = $1 ORDER BY currency',
    [accountId],
  );
  const currencies = accountRows.map((r) => r.currency).filter(isCurrency);
  const firmRows: QuotaRow[] = await dataSource.query(
    'SELECT currency, quota_minor, used_minor FROM clearing_firm_quota WHERE currency = ANY($1) ORDER BY currency',
    [currencies],
  );
  const reservations: Array<{
    gtid: string;
    branch_id: string;
    order_id: string;
    currency: string;
    amount_minor: string;
    held_minor: string;
    state: 'RESERVED' | 'CONFIRMED';
    created_at: Date;
    updated_at: Date;
  }> = await dataSource.query(
    `SELECT gtid, branch_id, order_id, currency, amount_minor, held_minor, state, created_at, updated_at
     FROM clearing_reservations WHERE account_id = $1 AND state <> 'RELEASED' ORDER BY created_at, gtid`,
    [accountId],
  );
  const view = (scope: QuotaScope, rows: QuotaRow[]) =>
    rows
      .filter((row) => isCurrency(row.currency))
      .map((row) => quotaView(quotaInForce(config, scope, row.currency as Currency, row)));
  return {
    accountId,
    account: view('ACCOUNT', accountRows),
    firm: view('FIRM', firmRows),
    defaults: {
      accountQuota: config.SETTLEMENT_DEFAULT_CLEARING_QUOTA,
      firmQuota: config.SETTLEMENT_FIRM_CLEARING_QUOTA,
      appliesTo: 'every currency without a quota of its own, in units of that currency',
    },
    reservations: reservations.map((r) => ({
      gtid: r.gtid,
      branchId: r.branch_id,
      orderId: r.order_id,
      currency: r.currency,
      amount: formatMoney(money(r.currency as Currency, BigInt(r.amount_minor))),
      held: formatMoney(money(r.currency as Currency, BigInt(r.held_minor))),
      state: r.state,
      reservedAt: r.created_at.toISOString(),
      updatedAt: r.updated_at.toISOString(),
    })),
  };
}
