// What a settlement cycle did, for operations and compliance: the trades it settled and failed (with
// each fail's age and whether it was carried over or unwound), the net movement of every account,
// the same for one account, and the fails still open.
import { Currency, formatMoney, isCurrency, money } from '@finance/money';
import type { EntityManager } from 'typeorm';

export interface TradeLine {
  cycleId: string;
  tradeId: string;
  outcome: 'SETTLED' | 'FAILED';
  symbol: string;
  quantity: string;
  price: string;
  currency: string;
  value: string;
  buyerFee: string;
  buyer: string;
  seller: string;
  settlementDate: string;
  failCode: string | null;
  failMessage: string | null;
  failedCycles: number;
  /** Whole days since the trade first failed (fails only). */
  failAgeDays: number | null;
  /** CARRIED_OVER: open for the next cycle; UNWOUND: failed for good and compensated. */
  disposition: 'SETTLED' | 'CARRIED_OVER' | 'UNWOUND';
}

export interface MovementLine {
  cycleId: string;
  party: string;
  assetKind: string;
  asset: string;
  /** Positive: the party received; negative: it delivered. Cash as a decimal, shares whole. */
  net: string;
}

export interface CycleReport {
  cycleId: string;
  businessDate: string;
  state: string;
  requestedBy: string;
  startedAt: string;
  postedAt: string | null;
  tradesSettled: number;
  tradesFailed: number;
  transfers: number;
  trades: TradeLine[];
  movements: MovementLine[];
}

export const TRADE_COLUMNS: Array<keyof TradeLine> = [
  'cycleId',
  'tradeId',
  'outcome',
  'disposition',
  'symbol',
  'quantity',
  'price',
  'currency',
  'value',
  'buyerFee',
  'buyer',
  'seller',
  'settlementDate',
  'failCode',
  'failMessage',
  'failedCycles',
  'failAgeDays',
];
export const MOVEMENT_COLUMNS: Array<keyof MovementLine> = [
  'cycleId',
  'party',
  'assetKind',
  'asset',
  'net',
];

function cash(currency: string, minor: string | bigint): string {
  return isCurrency(currency)
    ? formatMoney(money(currency as Currency, BigInt(minor)))
    : String(minor);
}

interface TradeRow {
  cycle_id: string;
  trade_id: string;
  outcome: 'SETTLED' | 'FAILED';
  symbol: string;
  quantity: string;
  price_minor: string;
  currency: string;
  value_minor: string;
  buyer_fee_minor: string;
  buy_account_id: string;
  sell_account_id: string;
  settlement_date: string;
  fail_code: string | null;
  fail_message: string | null;
  failed_cycles: number;
  fail_age_days: number | null;
  disposition: TradeLine['disposition'];
}

const TRADE_SELECT = `
  SELECT c.cycle_id, c.trade_id, c.outcome, o.symbol, o.quantity, o.price_minor, o.currency,
         o.value_minor, o.buyer_fee_minor, o.buy_account_id, o.sell_account_id,
         to_char(o.settlement_date, 'YYYY-MM-DD') AS settlement_date, c.fail_code, c.fail_message,
         c.failed_cycles, c.disposition,
         CASE WHEN c.outcome = 'FAILED'
              THEN floor(extract(epoch FROM (clock_timestamp() - o.first_failed_at)) / 86400)::int END AS fail_age_days
    FROM settlement_cycle_trades c JOIN settlement_obligations o USING (trade_id)`;

function tradeLine(r: TradeRow): TradeLine {
  return {
    cycleId: r.cycle_id,
    tradeId: r.trade_id,
    outcome: r.outcome,
    symbol: r.symbol,
    quantity: String(r.quantity),
    price: cash(r.currency, r.price_minor),
    currency: r.currency,
    value: cash(r.currency, r.value_minor),
    buyerFee: cash(r.currency, r.buyer_fee_minor),
    buyer: r.buy_account_id,
    seller: r.sell_account_id,
    settlementDate: r.settlement_date,
    failCode: r.fail_code,
    failMessage: r.fail_message,
    failedCycles: r.failed_cycles,
    failAgeDays: r.fail_age_days,
    disposition: r.disposition,
  };
}

export async function cycleReport(
  manager: EntityManager,
  cycleId: string,
  accountId?: string,
  page: { offset: number; limit: number } = { offset: 0, limit: 100_000 },
): Promise<CycleReport | undefined> {
  const [cycle]: Array<{
    cycle_id: string;
    business_date: string;
    state: string;
    requested_by: string;
    started_at: Date;
    posted_at: Date | null;
    trades_settled: number;
    trades_failed: number;
    transfers: number;
  }> = await manager.query(
    `SELECT cycle_id, to_char(business_date, 'YYYY-MM-DD') AS business_date, state, requested_by,
            started_at, posted_at, trades_settled, trades_failed, transfers
       FROM settlement_cycles WHERE cycle_id = $1`,
    [cycleId],
  );
  if (!cycle) return undefined;
  const trades: TradeRow[] = await manager.query(
    `${TRADE_SELECT}
      WHERE c.cycle_id = $1 AND ($2::text IS NULL OR $2 IN (o.buy_account_id, o.sell_account_id))
      ORDER BY c.outcome DESC, o.executed_at, c.trade_id
      OFFSET $3 LIMIT $4`,
    [cycleId, accountId ?? null, page.offset, page.limit],
  );
  const movements: Array<{
    cycle_id: string;
    party: string;
    asset_kind: string;
    asset: string;
    net: string;
  }> = await manager.query(
    `SELECT cycle_id, party, asset_kind, asset, net FROM settlement_cycle_movements
      WHERE cycle_id = $1 AND ($2::text IS NULL OR party = $2)
      ORDER BY party, asset_kind, asset`,
    [cycleId, accountId ?? null],
  );
  return {
    cycleId: cycle.cycle_id,
    businessDate: cycle.business_date,
    state: cycle.state,
    requestedBy: cycle.requested_by,
    startedAt: cycle.started_at.toISOString(),
    postedAt: cycle.posted_at?.toISOString() ?? null,
    tradesSettled: cycle.trades_settled,
    tradesFailed: cycle.trades_failed,
    transfers: cycle.transfers,
    trades: trades.map(tradeLine),
    movements: movements.map((m) => ({
      cycleId: m.cycle_id,
      party: m.party,
      assetKind: m.asset_kind,
      asset: m.asset,
      net: m.asset_kind === 'CASH' ? cash(m.asset, m.net) : String(m.net),
    })),
  };
}

export interface FailLine {
  tradeId: string;
  state: 'OPEN' | 'FAILED';
  symbol: string;
  quantity: string;
  currency: string;
  value: string;
  buyer: string;
  seller: string;
  settlementDate: string;
  failedCycles: number;
  failCode: string | null;
  failMessage: string | null;
  firstFailedAt: string | null;
  ageDays: number;
  sagaId: string | null;
}

/** Trades that failed at least once: OPEN ones are carried to the next cycle, FAILED ones unwound. */
export async function fails(
  manager: EntityManager,
  filter: { state?: 'OPEN' | 'FAILED'; accountId?: string },
): Promise<FailLine[]> {
  const rows: Array<Record<string, unknown>> = await manager.query(
    `SELECT trade_id, state, symbol, quantity, currency, value_minor, buy_account_id, sell_account_id,
            to_char(settlement_date, 'YYYY-MM-DD') AS settlement_date, failed_cycles, last_fail_code,
            last_fail_message, first_failed_at, saga_id,
            floor(extract(epoch FROM (clock_timestamp() - first_failed_at)) / 86400)::int AS age_days
       FROM settlement_obligations
      WHERE failed_cycles > 0 AND state IN ('OPEN', 'FAILED')
        AND ($1::text IS NULL OR state = $1)
        AND ($2::text IS NULL OR $2 IN (buy_account_id, sell_account_id))
      ORDER BY first_failed_at, trade_id`,
    [filter.state ?? null, filter.accountId ?? null],
  );
  return rows.map((r) => ({
    tradeId: r.trade_id as string,
    state: r.state as 'OPEN' | 'FAILED',
    symbol: r.symbol as string,
    quantity: String(r.quantity),
    currency: r.currency as string,
    value: cash(r.currency as string, r.value_minor as string),
    buyer: r.buy_account_id as string,
    seller: r.sell_account_id as string,
    settlementDate: r.settlement_date as string,
    failedCycles: r.failed_cycles as number,
    failCode: (r.last_fail_code as string | null) ?? null,
    failMessage: (r.last_fail_message as string | null) ?? null,
    firstFailedAt: (r.first_failed_at as Date | null)?.toISOString() ?? null,
    ageDays: (r.age_days as number | null) ?? 0,
    sagaId: (r.saga_id as string | null) ?? null,
  }));
}
