// What risk does with trading's events: each trade once (both of its orders' OrderExecuted carry it)
// moves the two orders' open exposure into the two accounts' positions, sets the symbol's reference
// price, and runs the breakers and the large-trade rule; a cancel or a replace adjusts the order's
// open exposure. All of it in the inbox consumer's transaction, so it happens exactly once.
import { OrderCancelled, OrderExecuted, OrderReplaced, MessageOf } from '@finance/contracts';
import { PermanentMessageError } from '@finance/messaging';
import { Currency, formatMoney, isCurrency, money, parseMoney } from '@finance/money';
import type { EntityManager } from 'typeorm';
import type { RiskConfig } from '../config';
import { raiseAlert } from '../breakers/alerts';
import { lossBreach, priceBandBreach } from '../breakers/breakers';
import { applyFill, Position, unrealized } from './position';

export type TradesConfig = Pick<
  RiskConfig,
  | 'KAFKA_TOPIC_PREFIX'
  | 'RISK_PRICE_BAND_PERCENT'
  | 'RISK_PRICE_BAND_WINDOW_SECONDS'
  | 'RISK_LARGE_TRADE_NOTIONAL'
  | 'RISK_LARGE_TRADE_COUNT'
  | 'RISK_LARGE_TRADE_WINDOW_SECONDS'
>;

type Trade = MessageOf<typeof OrderExecuted>['data'];

function currencyOf(code: string): Currency {
  if (!isCurrency(code)) throw new PermanentMessageError(`unsupported currency ${code}`);
  return code;
}

function priceMinor(currency: Currency, price: string): bigint {
  try {
    return parseMoney(currency, price).minor;
  } catch (error) {
    throw new PermanentMessageError(`price ${price} ${currency}: ${(error as Error).message}`);
  }
}

export async function applyTrade(
  manager: EntityManager,
  config: TradesConfig,
  trade: Trade,
  eventId: string,
): Promise<'applied' | 'seen'> {
  const currency = currencyOf(trade.currency);
  const price = priceMinor(currency, trade.price);
  const quantity = BigInt(trade.quantity);
  const inserted: unknown[] = await manager.query(
    `INSERT INTO risk_trades (trade_id, symbol, currency, price_minor, quantity, notional_minor,
                              buy_account, sell_account, buy_order, sell_order, executed_at)
     VALUES ($1, $2, $3, $4::bigint, $5::bigint, $4::numeric * $5::numeric, $6, $7, $8, $9, $10)
     ON CONFLICT (trade_id) DO NOTHING RETURNING 1`,
    [
      trade.tradeId,
      trade.symbol,
      currency,
      price.toString(),
      quantity.toString(),
      trade.buy.accountId,
      trade.sell.accountId,
      trade.buy.orderId,
      trade.sell.orderId,
      trade.executedAt,
    ],
  );
  if (inserted.length === 0) return 'seen';

  // The filled part of each order leaves its open exposure (it is in the position now).
  await manager.query(
    `UPDATE risk_orders SET
       filled_quantity = filled_quantity + $2,
       open_quantity = greatest(quantity - filled_quantity - $2, 0),
       open_minor = ceil(notional_minor::numeric * greatest(quantity - filled_quantity - $2, 0) / quantity)::bigint,
       state = CASE WHEN quantity - filled_quantity - $2 <= 0 THEN 'DONE' ELSE state END,
       updated_at = clock_timestamp()
     WHERE order_id = ANY($1) AND state = 'OPEN'`,
    [[trade.buy.orderId, trade.sell.orderId], quantity.toString()],
  );

  // The reference price is the latest trade by execution time, whatever order events arrive in.
  await manager.query(
    `INSERT INTO risk_symbol_prices (symbol, currency, price_minor, trade_id, executed_at)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (symbol) DO UPDATE SET currency = EXCLUDED.currency, price_minor = EXCLUDED.price_minor,
       trade_id = EXCLUDED.trade_id, executed_at = EXCLUDED.executed_at
     WHERE (risk_symbol_prices.executed_at, risk_symbol_prices.trade_id) < (EXCLUDED.executed_at, EXCLUDED.trade_id)`,
    [trade.symbol, currency, price.toString(), trade.tradeId, trade.executedAt],
  );

  // Both positions, locked in account order (two consumers never wait on each other in a cycle).
  const sides = [
    { accountId: trade.buy.accountId, quantity },
    { accountId: trade.sell.accountId, quantity: -quantity },
  ].sort((a, b) => (a.accountId < b.accountId ? -1 : a.accountId > b.accountId ? 1 : 0));
  for (const side of sides) {
    const [row]: Array<{ quantity: string; cost_minor: string; realized_minor: string }> =
      await manager.query(
        `SELECT quantity, cost_minor, realized_minor FROM risk_positions
         WHERE account_id = $1 AND symbol = $2 FOR UPDATE`,
        [side.accountId, trade.symbol],
      );
    const before: Position = row
      ? {
          quantity: BigInt(row.quantity),
          cost: BigInt(row.cost_minor),
          realized: BigInt(row.realized_minor),
        }
      : { quantity: 0n, cost: 0n, realized: 0n };
    const after = applyFill(before, side.quantity, price);
    await manager.query(
      `INSERT INTO risk_positions (account_id, symbol, currency, quantity, cost_minor, realized_minor)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (account_id, symbol) DO UPDATE SET quantity = EXCLUDED.quantity,
         cost_minor = EXCLUDED.cost_minor, realized_minor = EXCLUDED.realized_minor, updated_at = clock_timestamp()`,
      [
        side.accountId,
        trade.symbol,
        currency,
        after.quantity.toString(),
        after.cost.toString(),
        after.realized.toString(),
      ],
    );
  }

  await priceBand(manager, config, trade, currency, price, eventId);
  await lossLimits(manager, config, trade, currency, eventId);
  await largeTrades(manager, config, trade, currency, price * quantity, eventId);
  return 'applied';
}

const show = (currency: Currency, minor: bigint) =>
  `${formatMoney(money(currency, minor))} ${currency}`;

async function engaged(manager: EntityManager, target: string): Promise<boolean> {
  const rows: unknown[] = await manager.query(
    'SELECT 1 FROM risk_kill_switches WHERE target = $1 AND released_at IS NULL',
    [target],
  );
  return rows.length > 0;
}

async function priceBand(
  manager: EntityManager,
  config: TradesConfig,
  trade: Trade,
  currency: Currency,
  price: bigint,
  eventId: string,
): Promise<void> {
  if (/^0+(\.0+)?$/.test(config.RISK_PRICE_BAND_PERCENT)) return;
  const [window]: Array<{ low: string | null; high: string | null }> = await manager.query(
    `SELECT min(price_minor) AS low, max(price_minor) AS high FROM risk_trades
     WHERE symbol = $1 AND trade_id <> $2
       AND executed_at <= $3 AND executed_at > $3::timestamptz - make_interval(secs => $4)`,
    [trade.symbol, trade.tradeId, trade.executedAt, config.RISK_PRICE_BAND_WINDOW_SECONDS],
  );
  const breach = priceBandBreach(
    price,
    window.low === null || window.high === null
      ? null
      : { low: BigInt(window.low), high: BigInt(window.high) },
    config.RISK_PRICE_BAND_PERCENT,
  );
  if (!breach || (await engaged(manager, `SYMBOL:${trade.symbol}`))) return;
  const from = breach === 'UP' ? BigInt(window.low!) : BigInt(window.high!);
  await raiseAlert(
    manager,
    config.KAFKA_TOPIC_PREFIX,
    {
      kind: 'PRICE_BAND',
      scope: { scope: 'SYMBOL', symbol: trade.symbol },
      message:
        `${trade.symbol} traded at ${show(currency, price)} (trade ${trade.tradeId}), more than ` +
        `${config.RISK_PRICE_BAND_PERCENT}% ${breach === 'UP' ? 'above' : 'below'} ${show(currency, from)} ` +
        `within ${config.RISK_PRICE_BAND_WINDOW_SECONDS} s`,
      engage: true,
      tradeIds: [trade.tradeId],
    },
    eventId,
  );
}

/** Every account holding the symbol (its price moved) and both traders: P&L against its loss limit. */
async function lossLimits(
  manager: EntityManager,
  config: TradesConfig,
  trade: Trade,
  currency: Currency,
  eventId: string,
): Promise<void> {
  const rows: Array<{
    account_id: string;
    quantity: string;
    cost_minor: string;
    realized_minor: string;
    price_minor: string;
    loss_limit: string | null;
  }> = await manager.query(
    `WITH accounts AS (
       SELECT account_id FROM risk_positions WHERE symbol = $1 AND quantity <> 0
       UNION SELECT $2 UNION SELECT $3),
     limits AS (
       SELECT a.account_id, coalesce(
         (SELECT value #>> '{}' FROM risk_limit_values WHERE scope = 'ACCOUNT' AND account_id = a.account_id AND name = 'lossLimit' AND currency = $4),
         (SELECT value #>> '{}' FROM risk_limit_values WHERE scope = 'FIRM' AND name = 'lossLimit' AND currency = $4)) AS loss_limit
       FROM accounts a)
     SELECT p.account_id, p.quantity, p.cost_minor, p.realized_minor, s.price_minor, l.loss_limit
     FROM limits l JOIN risk_positions p USING (account_id) JOIN risk_symbol_prices s USING (symbol)
     WHERE l.loss_limit IS NOT NULL AND p.currency = $4`,
    [trade.symbol, trade.buy.accountId, trade.sell.accountId, currency],
  );
  const pnl = new Map<string, { pnl: bigint; limit: bigint }>();
  for (const r of rows) {
    const position: Position = {
      quantity: BigInt(r.quantity),
      cost: BigInt(r.cost_minor),
      realized: BigInt(r.realized_minor),
    };
    const total = position.realized + unrealized(position, BigInt(r.price_minor));
    const entry = pnl.get(r.account_id) ?? {
      pnl: 0n,
      limit: parseMoney(currency, r.loss_limit!).minor,
    };
    entry.pnl += total;
    pnl.set(r.account_id, entry);
  }
  for (const [accountId, { pnl: total, limit }] of [...pnl].sort()) {
    if (!lossBreach(total, limit) || (await engaged(manager, `ACCOUNT:${accountId}`))) continue;
    await raiseAlert(
      manager,
      config.KAFKA_TOPIC_PREFIX,
      {
        kind: 'LOSS_LIMIT',
        scope: { scope: 'ACCOUNT', accountId },
        message: `account ${accountId} is at a P&L of ${show(currency, total)}, beyond its loss limit of ${show(currency, limit)}`,
        engage: true,
        tradeIds: [trade.tradeId],
      },
      eventId,
    );
  }
}

/** Seed 004's CEP rule: COUNT trades of one account, each above the notional, within the window. */
async function largeTrades(
  manager: EntityManager,
  config: TradesConfig,
  trade: Trade,
  currency: Currency,
  notional: bigint,
  eventId: string,
): Promise<void> {
  const threshold = parseMoney(currency, config.RISK_LARGE_TRADE_NOTIONAL).minor;
  if (notional <= threshold) return;
  for (const accountId of [...new Set([trade.buy.accountId, trade.sell.accountId])].sort()) {
    const trades: Array<{ trade_id: string }> = await manager.query(
      `SELECT trade_id FROM risk_trades
       WHERE (buy_account = $1 OR sell_account = $1) AND notional_minor > $2
         AND executed_at <= $3 AND executed_at > $3::timestamptz - make_interval(secs => $4)
       ORDER BY executed_at, trade_id`,
      [accountId, threshold.toString(), trade.executedAt, config.RISK_LARGE_TRADE_WINDOW_SECONDS],
    );
    if (trades.length < config.RISK_LARGE_TRADE_COUNT) continue;
    // One alert per window: the pattern keeps matching while the trades keep coming.
    const recent: unknown[] = await manager.query(
      `SELECT 1 FROM risk_alerts WHERE kind = 'LARGE_TRADES' AND account_id = $1
         AND raised_at > clock_timestamp() - make_interval(secs => $2)`,
      [accountId, config.RISK_LARGE_TRADE_WINDOW_SECONDS],
    );
    if (recent.length > 0) continue;
    await raiseAlert(
      manager,
      config.KAFKA_TOPIC_PREFIX,
      {
        kind: 'LARGE_TRADES',
        scope: { scope: 'ACCOUNT', accountId },
        message:
          `account ${accountId} made ${trades.length} trades above ${config.RISK_LARGE_TRADE_NOTIONAL} ${currency} ` +
          `within ${config.RISK_LARGE_TRADE_WINDOW_SECONDS} s`,
        engage: false,
        tradeIds: trades.map((t) => t.trade_id),
      },
      eventId,
    );
  }
}

/** A cancelled (or expired, or kill-switched) order no longer adds to the account's exposure. */
export async function closeOrder(
  manager: EntityManager,
  event: MessageOf<typeof OrderCancelled>['data'],
): Promise<void> {
  await manager.query(
    `UPDATE risk_orders SET open_quantity = 0, open_minor = 0, state = 'DONE', updated_at = clock_timestamp()
     WHERE order_id = $1 AND state = 'OPEN'`,
    [event.orderId],
  );
}

/** Cancel/replace: the order's new price and total quantity give its open exposure. */
export async function replaceOrder(
  manager: EntityManager,
  event: MessageOf<typeof OrderReplaced>['data'],
): Promise<void> {
  const [order]: Array<{ currency: string }> = await manager.query(
    `SELECT currency FROM risk_orders WHERE order_id = $1 AND state = 'OPEN'`,
    [event.orderId],
  );
  if (!order) return;
  const price = priceMinor(currencyOf(order.currency), event.price);
  await manager.query(
    `UPDATE risk_orders SET price = $2, quantity = $3::bigint, notional_minor = $4::numeric * $3::bigint,
       open_quantity = greatest($3::bigint - filled_quantity, 0),
       open_minor = $4::numeric * greatest($3::bigint - filled_quantity, 0), updated_at = clock_timestamp()
     WHERE order_id = $1`,
    [event.orderId, event.price, event.quantity, price.toString()],
  );
}
