// Trading's branch of the placement TCC: Try moves the order's cash (BUY: notional + fees) or shares
// (SELL: quantity) from available to frozen; Confirm keeps them frozen for the book; Cancel gives back
// whatever is still frozen. The TCC barrier around it makes each phase run once.
import { OrderPlacementPayload } from '@finance/contracts';
import { parseMoney } from '@finance/money';
import { BranchContext, BranchHandlers, BranchRejected, Payload } from '@finance/tcc';
import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';

export interface Reserved {
  kind: 'CASH' | 'SECURITY';
  asset: string;
  amount: bigint;
}

/** What a placement freezes in trading. */
export function reservationOf(payload: OrderPlacementPayload): Reserved {
  if (payload.side === 'SELL') {
    return { kind: 'SECURITY', asset: payload.symbol, amount: BigInt(payload.quantity) };
  }
  const notional = parseMoney(payload.notional.currency, payload.notional.amount);
  const fees = parseMoney(payload.fees.currency, payload.fees.amount);
  return { kind: 'CASH', asset: notional.currency, amount: notional.minor + fees.minor };
}

function parsePayload(payload: Payload): OrderPlacementPayload {
  const parsed = OrderPlacementPayload.safeParse(payload);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BranchRejected('INVALID_PAYLOAD', `${issue.path.join('.')}: ${issue.message}`);
  }
  return parsed.data;
}

const balanceTable = (kind: Reserved['kind']) =>
  kind === 'CASH'
    ? { table: 'cash_balances', key: 'currency' }
    : { table: 'holdings', key: 'symbol' };

/** Gives back what an order still has frozen (cancel, rejection, or the end of its life). */
export async function releaseReservation(manager: EntityManager, orderId: string): Promise<bigint> {
  const [row]: Array<{
    account_id: string;
    asset_kind: Reserved['kind'];
    asset: string;
    remaining: string;
  }> = await manager.query(
    `WITH old AS (SELECT * FROM order_reservations WHERE order_id = $1 AND state <> 'RELEASED' FOR UPDATE),
            upd AS (UPDATE order_reservations r SET state = 'RELEASED', remaining = 0, updated_at = now()
                      FROM old WHERE r.order_id = old.order_id)
       SELECT account_id, asset_kind, asset, remaining FROM old`,
    [orderId],
  );
  if (!row || BigInt(row.remaining) === 0n) return 0n;
  const { table, key } = balanceTable(row.asset_kind);
  await manager.query(
    `UPDATE ${table} SET available = available + $3, frozen = frozen - $3 WHERE account_id = $1 AND ${key} = $2`,
    [row.account_id, row.asset, row.remaining],
  );
  return BigInt(row.remaining);
}

/** Gives back what an open order holds beyond `need` (after a cancel/replace made it smaller). */
export async function releaseExcess(
  manager: EntityManager,
  orderId: string,
  need: bigint,
): Promise<bigint> {
  const [row]: Array<{
    account_id: string;
    asset_kind: Reserved['kind'];
    asset: string;
    excess: string;
  }> = await manager.query(
    `WITH old AS (SELECT * FROM order_reservations WHERE order_id = $1 AND state <> 'RELEASED' AND remaining > $2 FOR UPDATE),
            upd AS (UPDATE order_reservations r SET remaining = $2, updated_at = now()
                      FROM old WHERE r.order_id = old.order_id)
       SELECT account_id, asset_kind, asset, remaining - $2 AS excess FROM old`,
    [orderId, need.toString()],
  );
  if (!row) return 0n;
  const { table, key } = balanceTable(row.asset_kind);
  await manager.query(
    `UPDATE ${table} SET available = available + $3, frozen = frozen - $3 WHERE account_id = $1 AND ${key} = $2`,
    [row.account_id, row.asset, row.excess],
  );
  return BigInt(row.excess);
}

@Injectable()
export class OrderFundsBranch implements BranchHandlers {
  async try(ctx: BranchContext, raw: Payload): Promise<void> {
    const payload = parsePayload(raw);
    const reserved = reservationOf(payload);
    const { table, key } = balanceTable(reserved.kind);
    const frozen: unknown[] = await ctx.manager.query(
      `WITH f AS (UPDATE ${table} SET available = available - $3, frozen = frozen + $3
                   WHERE account_id = $1 AND ${key} = $2 AND available >= $3 RETURNING 1)
       SELECT * FROM f`,
      [payload.accountId, reserved.asset, reserved.amount.toString()],
    );
    if (frozen.length === 0) {
      const [row] = await ctx.manager.query(
        `SELECT available FROM ${table} WHERE account_id = $1 AND ${key} = $2`,
        [payload.accountId, reserved.asset],
      );
      const available = row ? String(row.available) : '0';
      throw reserved.kind === 'CASH'
        ? new BranchRejected(
            'INSUFFICIENT_FUNDS',
            `order needs ${reserved.amount} ${reserved.asset} minor units; ${available} available`,
          )
        : new BranchRejected(
            'INSUFFICIENT_HOLDINGS',
            `order sells ${reserved.amount} ${reserved.asset}; ${available} available`,
          );
    }
    await ctx.manager.query(
      `INSERT INTO order_reservations (order_id, gtid, account_id, asset_kind, asset, reserved, remaining, state)
       VALUES ($1, $2, $3, $4, $5, $6, $6, 'RESERVED')`,
      [
        payload.orderId,
        ctx.gtid,
        payload.accountId,
        reserved.kind,
        reserved.asset,
        reserved.amount.toString(),
      ],
    );
  }

  async confirm(ctx: BranchContext, raw: Payload): Promise<void> {
    const payload = parsePayload(raw);
    await ctx.manager.query(
      `UPDATE order_reservations SET state = 'CONFIRMED', updated_at = now() WHERE order_id = $1 AND state = 'RESERVED'`,
      [payload.orderId],
    );
  }

  async cancel(ctx: BranchContext, raw: Payload): Promise<void> {
    const payload = parsePayload(raw);
    await releaseReservation(ctx.manager, payload.orderId);
  }
}
