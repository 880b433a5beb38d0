// Every account's cash and holdings in one paged list, with the firm's fee income: what settlement
// reconciles its ledger against. Amounts are decimals in the asset's currency (cash) or whole shares.
import { Currency, formatMoney, isCurrency, money } from '@finance/money';
import { parseOrProblem as parse } from '@finance/platform';
import { Controller, Get, Query } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { z } from 'zod';

const query = z.strictObject({
  /** The last account id of the previous page. */
  after: z.string().min(1).max(128).optional(),
  limit: z.coerce.number().int().min(1).max(5_000).default(1_000),
  /**
   * Settlement cycles (comma-separated, at most 50) whose trades this page should say it has
   * applied: the reconciling side then knows exactly which settlements this snapshot includes.
   */
  cycles: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}(,[A-Za-z0-9_-]{1,64}){0,49}$/, 'must be up to 50 cycle ids')
    .optional(),
});

interface Row {
  account_id: string;
  asset_kind: 'CASH' | 'SECURITY';
  asset: string;
  available: string;
  frozen: string;
  pending_out: string;
  pending_in: string;
}

@Controller('trading/balances')
export class BalancesController {
  constructor(private readonly dataSource: DataSource) {}

  @Get()
  async list(@Query() input: unknown) {
    const q = parse(query, input ?? {}, 'query');
    // One snapshot for the page and the fee income, so they agree with each other.
    return this.dataSource.transaction('REPEATABLE READ', async (manager) => {
      const accounts: Array<{ account_id: string }> = await manager.query(
        `SELECT account_id FROM accounts WHERE ($1::text IS NULL OR account_id > $1)
          ORDER BY account_id LIMIT $2`,
        [q.after ?? null, q.limit + 1],
      );
      const page = accounts.slice(0, q.limit).map((a) => a.account_id);
      const rows: Row[] = await manager.query(
        `SELECT account_id, 'CASH' AS asset_kind, currency::text AS asset, available, frozen, pending_out, pending_in
           FROM cash_balances WHERE account_id = ANY($1)
         UNION ALL
         SELECT account_id, 'SECURITY', symbol, available, frozen, pending_out, pending_in
           FROM holdings WHERE account_id = ANY($1)
         ORDER BY 1, 2, 3`,
        [page],
      );
      const fees: Array<{ currency: string; amount: string }> = await manager.query(
        `SELECT currency::text AS currency, amount FROM fee_income ORDER BY currency`,
      );
      const settled: Array<{ trade_id: string }> = q.cycles
        ? await manager.query(
            `SELECT trade_id FROM trades WHERE settlement_cycle_id = ANY($1) ORDER BY trade_id`,
            [q.cycles.split(',')],
          )
        : [];
      const show = (kind: string, asset: string, minor: string) =>
        kind === 'CASH' && isCurrency(asset)
          ? formatMoney(money(asset as Currency, BigInt(minor)))
          : String(minor);
      return {
        balances: rows.map((r) => ({
          accountId: r.account_id,
          assetKind: r.asset_kind,
          asset: r.asset,
          available: show(r.asset_kind, r.asset, r.available),
          frozen: show(r.asset_kind, r.asset, r.frozen),
          pendingOut: show(r.asset_kind, r.asset, r.pending_out),
          pendingIn: show(r.asset_kind, r.asset, r.pending_in),
        })),
        feeIncome: fees.map((f) => ({
          currency: f.currency,
          amount: show('CASH', f.currency, f.amount),
        })),
        settledTrades: settled.map((t) => t.trade_id),
        next: accounts.length > q.limit ? page[page.length - 1] : null,
      };
    });
  }
}
