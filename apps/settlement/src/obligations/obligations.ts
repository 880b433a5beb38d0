// What settlement does with trading's events, each in the inbox consumer's transaction (so exactly
// once): an executed trade becomes an obligation due on its settlement date; deposits and
// withdrawals move cash and shares between the client's ledger accounts and the bank or custodian;
// fills, cancels and replaces change what an order's clearing reservation holds.
import {
  FundsDeposited,
  FundsWithdrawn,
  MessageOf,
  OrderExecuted,
  OrderReplaced,
  SecuritiesDeposited,
  SecuritiesWithdrawn,
} from '@finance/contracts';
import { PermanentMessageError } from '@finance/messaging';
import { isCurrency, parseMoney } from '@finance/money';
import type { EntityManager } from 'typeorm';
import type { SettlementConfig } from '../config';
import {
  AssetKind,
  clientAccount,
  createTransfers,
  externalAccount,
  LedgerError,
} from '../ledger/ledger';
import { settlementDate } from './settlement-date';

export type ObligationsConfig = Pick<
  SettlementConfig,
  'SETTLEMENT_PERIOD' | 'SETTLEMENT_PERIOD_BY_SYMBOL'
>;

type Trade = MessageOf<typeof OrderExecuted>['data'];

function minor(currency: string, amount: string, field: string): bigint {
  if (!isCurrency(currency)) throw new PermanentMessageError(`unsupported currency ${currency}`);
  try {
    return parseMoney(currency, amount).minor;
  } catch (error) {
    throw new PermanentMessageError(`${field} ${amount} ${currency}: ${(error as Error).message}`);
  }
}

/** Records the trade's obligation (the second side's event finds it there and does nothing). */
export async function recordObligation(
  manager: EntityManager,
  config: ObligationsConfig,
  trade: Trade,
): Promise<'recorded' | 'seen'> {
  const price = minor(trade.currency, trade.price, 'price');
  const fee = minor(trade.currency, trade.buyerFee ?? '0', 'buyerFee');
  const quantity = BigInt(trade.quantity);
  const value = price * quantity;
  const inserted: unknown[] = await manager.query(
    `INSERT INTO settlement_obligations (trade_id, symbol, currency, price_minor, quantity, value_minor,
        buyer_fee_minor, buy_account_id, sell_account_id, buy_order_id, sell_order_id, executed_at,
        settlement_date, state)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'OPEN')
     ON CONFLICT (trade_id) DO NOTHING RETURNING 1`,
    [
      trade.tradeId,
      trade.symbol,
      trade.currency,
      price.toString(),
      quantity.toString(),
      value.toString(),
      fee.toString(),
      trade.buy.accountId,
      trade.sell.accountId,
      trade.buy.orderId,
      trade.sell.orderId,
      trade.executedAt,
      settlementDate(trade.executedAt, trade.symbol, config),
    ],
  );
  if (inserted.length === 0) return 'seen';
  // Both orders' reservations: the filled part leaves the open order and waits for settlement.
  await adjustReservations(manager, [trade.buy.orderId, trade.sell.orderId], (r) => ({
    ...r,
    filled: r.filled + quantity,
    unsettled: r.unsettled + value,
  }));
  return 'recorded';
}

/** The order will trade no more: its open part stops holding clearing quota. */
export async function closeOrder(manager: EntityManager, orderId: string): Promise<void> {
  await adjustReservations(manager, [orderId], (r) => ({ ...r, open: false }));
}

export async function replaceOrder(
  manager: EntityManager,
  data: MessageOf<typeof OrderReplaced>['data'],
): Promise<void> {
  await adjustReservations(manager, [data.orderId], (r) => ({
    ...r,
    quantity: r.quantity === null ? null : BigInt(data.quantity),
  }));
}

/**
 * Trades settled or were unwound: their values no longer wait for settlement on their orders. One
 * statement for any number of trades (a cycle can settle a hundred thousand); it locks reservation
 * rows, then firm rows, then account rows, as the placement branch's Cancel does.
 */
export async function releaseTrades(
  manager: EntityManager,
  trades: ReadonlyArray<{ buyOrderId: string; sellOrderId: string; value: bigint }>,
): Promise<void> {
  const byOrder = new Map<string, bigint>();
  for (const t of trades) {
    for (const order of [t.buyOrderId, t.sellOrderId]) {
      byOrder.set(order, (byOrder.get(order) ?? 0n) + t.value);
    }
  }
  if (byOrder.size === 0) return;
  const orders = [...byOrder.keys()].sort();
  await manager.query(
    `WITH rel AS (
       SELECT * FROM unnest($1::text[], $2::bigint[]) AS x(order_id, value)),
     old AS (
       SELECT r.gtid, r.branch_id, r.held_minor AS held, rel.value,
              greatest(r.unsettled_minor - rel.value, 0) AS unsettled,
              CASE WHEN NOT r.open THEN 0
                   WHEN r.quantity IS NULL THEN r.amount_minor
                   WHEN r.filled_quantity >= r.quantity THEN 0
                   ELSE least(r.amount_minor,
                              (r.amount_minor::numeric * (r.quantity - r.filled_quantity) + r.quantity - 1)
                                 / r.quantity)::bigint
              END AS open_part
         FROM clearing_reservations r JOIN rel USING (order_id)
        WHERE r.state = 'CONFIRMED'
        ORDER BY r.gtid, r.branch_id
          FOR UPDATE OF r),
     upd AS (
       UPDATE clearing_reservations r
          SET unsettled_minor = old.unsettled, held_minor = old.open_part + old.unsettled,
              state = CASE WHEN old.open_part + old.unsettled = 0 AND (NOT r.open OR r.filled_quantity >= r.quantity)
                           THEN 'RELEASED' ELSE r.state END,
              updated_at = clock_timestamp()
         FROM old
        WHERE r.gtid = old.gtid AND r.branch_id = old.branch_id
       RETURNING r.account_id, r.currency, (old.open_part + old.unsettled) - old.held AS delta),
     firm AS (
       UPDATE clearing_firm_quota f SET used_minor = f.used_minor + d.delta
         FROM (SELECT currency, sum(delta) AS delta FROM upd GROUP BY currency) d
        WHERE f.currency = d.currency
       RETURNING 1)
     UPDATE clearing_quota q SET used_minor = q.used_minor + d.delta
       FROM (SELECT account_id, currency, sum(delta) AS delta FROM upd GROUP BY account_id, currency) d
      WHERE q.account_id = d.account_id AND q.currency = d.currency
        AND (SELECT count(*) FROM firm) >= 0`,
    [orders, orders.map((o) => byOrder.get(o)!.toString())],
  );
}

interface ReservationState {
  amount: bigint;
  /** null: reserved before quantities were recorded; the whole amount then stays held while open. */
  quantity: bigint | null;
  filled: bigint;
  open: boolean;
  unsettled: bigint;
}

/** Open part at the reserved price (rounded up) plus what waits for settlement. */
export function heldBy(r: ReservationState): bigint {
  let open = 0n;
  if (r.open) {
    if (r.quantity === null) open = r.amount;
    else if (r.filled < r.quantity) {
      open = (r.amount * (r.quantity - r.filled) + r.quantity - 1n) / r.quantity;
      if (open > r.amount) open = r.amount;
    }
  }
  return open + r.unsettled;
}

interface ReservationRow {
  gtid: string;
  branch_id: string;
  account_id: string;
  currency: string;
  amount_minor: string;
  quantity: string | null;
  filled_quantity: string;
  open: boolean;
  unsettled_minor: string;
  held_minor: string;
}

/**
 * Applies `change` to the live reservations of the orders and moves the quota usage by what they
 * hold less or more. Locks reservation rows, then the firm row, then the account row: the order in
 * which the placement branch's Cancel locks them.
 */
async function adjustReservations(
  manager: EntityManager,
  orderIds: readonly string[],
  change: (r: ReservationState) => ReservationState,
): Promise<void> {
  const rows: ReservationRow[] = await manager.query(
    `SELECT gtid, branch_id, account_id, currency, amount_minor, quantity, filled_quantity, open,
            unsettled_minor, held_minor
       FROM clearing_reservations
      WHERE order_id = ANY($1) AND state = 'CONFIRMED'
      ORDER BY gtid, branch_id FOR UPDATE`,
    [orderIds],
  );
  for (const row of rows) {
    const before = BigInt(row.held_minor);
    const next = change({
      amount: BigInt(row.amount_minor),
      quantity: row.quantity === null ? null : BigInt(row.quantity),
      filled: BigInt(row.filled_quantity),
      open:
        row.open && (row.quantity === null || BigInt(row.filled_quantity) < BigInt(row.quantity)),
      unsettled: BigInt(row.unsettled_minor),
    });
    const open = next.open && (next.quantity === null || next.filled < next.quantity);
    const held = heldBy({ ...next, open });
    const done = !open && held === 0n;
    await manager.query(
      `UPDATE clearing_reservations SET quantity = $3, filled_quantity = $4, open = $5,
              unsettled_minor = $6, held_minor = $7,
              state = CASE WHEN $8 THEN 'RELEASED' ELSE state END, updated_at = clock_timestamp()
        WHERE gtid = $1 AND branch_id = $2`,
      [
        row.gtid,
        row.branch_id,
        next.quantity?.toString() ?? null,
        next.filled.toString(),
        open,
        next.unsettled.toString(),
        held.toString(),
        done,
      ],
    );
    const delta = held - before;
    if (delta === 0n) continue;
    await manager.query(
      'UPDATE clearing_firm_quota SET used_minor = used_minor + $2 WHERE currency = $1',
      [row.currency, delta.toString()],
    );
    await manager.query(
      'UPDATE clearing_quota SET used_minor = used_minor + $3 WHERE account_id = $1 AND currency = $2',
      [row.account_id, row.currency, delta.toString()],
    );
  }
}

type Movement =
  | MessageOf<typeof FundsDeposited>
  | MessageOf<typeof FundsWithdrawn>
  | MessageOf<typeof SecuritiesDeposited>
  | MessageOf<typeof SecuritiesWithdrawn>;

/**
 * Mirrors a deposit or withdrawal trading recorded: the bank (cash) or the custodian (shares) and
 * the client's ledger account. A withdrawal the ledger cannot cover is a break to investigate, not
 * something to retry: the message goes to the dead-letter topic with the reason.
 */
export async function recordMovement(manager: EntityManager, message: Movement): Promise<void> {
  const inbound = message.type === 'FundsDeposited' || message.type === 'SecuritiesDeposited';
  let asset: string;
  let assetKind: AssetKind;
  let amount: bigint;
  if (message.type === 'FundsDeposited' || message.type === 'FundsWithdrawn') {
    const data = message.data;
    asset = data.amount.currency;
    assetKind = 'CASH';
    amount = minor(data.amount.currency, data.amount.amount, 'amount');
  } else {
    const data = message.data;
    asset = data.symbol;
    assetKind = 'SECURITY';
    amount = BigInt(data.quantity);
  }
  const client = clientAccount(message.data.accountId, asset, assetKind);
  const outside = externalAccount(asset, assetKind);
  try {
    await createTransfers(manager, [
      {
        id: `${inbound ? 'deposit' : 'withdrawal'}/${message.data.accountId}/${message.data.requestId}`,
        debit: inbound ? outside : client,
        credit: inbound ? client : outside,
        amount,
        code: message.type,
        reference: message.metadata.eventId,
      },
    ]);
  } catch (error) {
    if (error instanceof LedgerError) {
      throw new PermanentMessageError(
        `${message.type} ${message.data.requestId}: ${error.message}`,
      );
    }
    throw error;
  }
}
