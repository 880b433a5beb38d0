// Positions, P&L and exposure as risk officers read them: now (from the positions and each symbol's
// last trade) or at a past moment (replayed from the trades risk has seen up to then). Money stays in
// minor units until it is written out in its currency.
import { Currency, formatMoney, isCurrency, minorUnits, money } from '@finance/money';
import type { DataSource } from 'typeorm';
import { averageCost, Position, unrealized } from './position';

const fmt = (currency: Currency, minor: bigint) => formatMoney(money(currency, minor));
const abs = (n: bigint) => (n < 0n ? -n : n);

export interface PositionView {
  symbol: string;
  currency: string;
  quantity: string;
  averageCost: string | null;
  costBasis: string;
  lastPrice: string;
  lastTradeAt: string;
  marketValue: string;
  realizedPnl: string;
  unrealizedPnl: string;
}

export async function accountPositions(dataSource: DataSource, accountId: string) {
  const rows: Array<{
    symbol: string;
    currency: string;
    quantity: string;
    cost_minor: string;
    realized_minor: string;
    price_minor: string;
    executed_at: Date;
  }> = await dataSource.query(
    `SELECT p.symbol, p.currency, p.quantity, p.cost_minor, p.realized_minor, s.price_minor, s.executed_at
     FROM risk_positions p JOIN risk_symbol_prices s USING (symbol)
     WHERE p.account_id = $1 ORDER BY p.symbol`,
    [accountId],
  );
  const positions: PositionView[] = [];
  for (const r of rows) {
    if (!isCurrency(r.currency)) continue;
    const c = r.currency;
    const p: Position = {
      quantity: BigInt(r.quantity),
      cost: BigInt(r.cost_minor),
      realized: BigInt(r.realized_minor),
    };
    const last = BigInt(r.price_minor);
    positions.push({
      symbol: r.symbol,
      currency: c,
      quantity: p.quantity.toString(),
      averageCost: averageCost(p, minorUnits(c)),
      costBasis: fmt(c, p.cost),
      lastPrice: fmt(c, last),
      lastTradeAt: r.executed_at.toISOString(),
      marketValue: fmt(c, p.quantity * last),
      realizedPnl: fmt(c, p.realized),
      unrealizedPnl: fmt(c, unrealized(p, last)),
    });
  }
  return { accountId, positions };
}

export interface ExposureView {
  currency: string;
  /** Σ |quantity| × last price. */
  gross: string;
  /** Σ quantity × last price (long minus short). */
  net: string;
  long: string;
  short: string;
  /** What open orders could add (their open quantity's share of the notional). */
  openOrders: string;
  realizedPnl: string;
  unrealizedPnl: string;
}

interface Totals {
  long: bigint;
  short: bigint;
  open: bigint;
  realized: bigint;
  unrealized: bigint;
}

function exposureViews(totals: Map<string, Totals>): ExposureView[] {
  return [...totals]
    .filter(([c]) => isCurrency(c))
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([c, t]) => {
      const currency = c as Currency;
      return {
        currency,
        gross: fmt(currency, t.long + t.short),
        net: fmt(currency, t.long - t.short),
        long: fmt(currency, t.long),
        short: fmt(currency, t.short),
        openOrders: fmt(currency, t.open),
        realizedPnl: fmt(currency, t.realized),
        unrealizedPnl: fmt(currency, t.unrealized),
      };
    });
}

const zero = (): Totals => ({ long: 0n, short: 0n, open: 0n, realized: 0n, unrealized: 0n });

/** Exposure per currency of one account, or of every account (the firm) with each account's. */
export async function exposure(dataSource: DataSource, accountId?: string) {
  const positions: Array<{
    account_id: string;
    currency: string;
    quantity: string;
    cost_minor: string;
    realized_minor: string;
    price_minor: string;
  }> = await dataSource.query(
    `SELECT p.account_id, p.currency, p.quantity, p.cost_minor, p.realized_minor, s.price_minor
     FROM risk_positions p JOIN risk_symbol_prices s USING (symbol)
     WHERE $1::text IS NULL OR p.account_id = $1`,
    [accountId ?? null],
  );
  const open: Array<{ account_id: string; currency: string; open_minor: string }> =
    await dataSource.query(
      `SELECT account_id, currency, sum(open_minor)::text AS open_minor FROM risk_orders
       WHERE open_quantity > 0 AND ($1::text IS NULL OR account_id = $1) GROUP BY account_id, currency`,
      [accountId ?? null],
    );
  const byAccount = new Map<string, Map<string, Totals>>();
  const totalsOf = (account: string, currency: string) => {
    const perCurrency = byAccount.get(account) ?? new Map<string, Totals>();
    byAccount.set(account, perCurrency);
    const t = perCurrency.get(currency) ?? zero();
    perCurrency.set(currency, t);
    return t;
  };
  for (const r of positions) {
    const t = totalsOf(r.account_id, r.currency);
    const p: Position = {
      quantity: BigInt(r.quantity),
      cost: BigInt(r.cost_minor),
      realized: BigInt(r.realized_minor),
    };
    const value = p.quantity * BigInt(r.price_minor);
    if (value >= 0n) t.long += value;
    else t.short += abs(value);
    t.realized += p.realized;
    t.unrealized += unrealized(p, BigInt(r.price_minor));
  }
  for (const r of open) totalsOf(r.account_id, r.currency).open += BigInt(r.open_minor);

  const firm = new Map<string, Totals>();
  for (const perCurrency of byAccount.values()) {
    for (const [c, t] of perCurrency) {
      const f = firm.get(c) ?? zero();
      f.long += t.long;
      f.short += t.short;
      f.open += t.open;
      f.realized += t.realized;
      f.unrealized += t.unrealized;
      firm.set(c, f);
    }
  }
  if (accountId) return { accountId, exposure: exposureViews(firm) };
  return {
    firm: exposureViews(firm),
    accounts: [...byAccount]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([id, perCurrency]) => ({ accountId: id, exposure: exposureViews(perCurrency) })),
  };
}

/**
 * Exposure of every account at a past moment: net quantities from the trades executed up to `at`,
 * valued at each symbol's last trade up to `at`. (Open orders are not replayed.)
 */
export async function exposureAt(dataSource: DataSource, at: Date) {
  const rows: Array<{
    account_id: string;
    symbol: string;
    currency: string;
    quantity: string;
    price_minor: string;
  }> = await dataSource.query(
    `WITH upto AS (SELECT * FROM risk_trades WHERE executed_at <= $1),
     legs AS (
       SELECT buy_account AS account_id, symbol, currency, quantity FROM upto
       UNION ALL SELECT sell_account, symbol, currency, -quantity FROM upto),
     net AS (
       SELECT account_id, symbol, currency, sum(quantity) AS quantity FROM legs
       GROUP BY account_id, symbol, currency HAVING sum(quantity) <> 0),
     last AS (
       SELECT DISTINCT ON (symbol) symbol, price_minor FROM upto ORDER BY symbol, executed_at DESC, trade_id DESC)
     SELECT n.account_id, n.symbol, n.currency, n.quantity::text, l.price_minor
     FROM net n JOIN last l USING (symbol) ORDER BY n.account_id, n.symbol`,
    [at],
  );
  return rows
    .filter((r) => isCurrency(r.currency))
    .map((r) => {
      const c = r.currency as Currency;
      const value = BigInt(r.quantity) * BigInt(r.price_minor);
      return {
        accountId: r.account_id,
        symbol: r.symbol,
        currency: c,
        quantity: r.quantity,
        price: fmt(c, BigInt(r.price_minor)),
        marketValue: fmt(c, value),
        grossExposure: fmt(c, abs(value)),
      };
    });
}
