// The placement's decision as trading applies it: accepted orders are queued for the book, but one
// decided while a kill switch covers it is cancelled at once and its funds go back.
import { PLACEMENT_KIND } from '@finance/contracts';
import { openDatabase } from '@finance/platform';
import { createTestDatabase } from '@finance/testing';
import type { DataSource } from 'typeorm';
import { TradingConfig } from '../config';
import { tradingService } from '../service';
import { PlacementDecisions } from './placement-decisions';

let db: DataSource;
const decisions = new PlacementDecisions({ KAFKA_TOPIC_PREFIX: '' } as TradingConfig);

beforeAll(async () => {
  const { url } = await createTestDatabase('placement_decisions');
  db = await openDatabase({
    url,
    applicationName: 'placement-decisions-test',
    poolSize: 2,
    migrations: tradingService.migrations,
  });
  await db.query(
    `INSERT INTO accounts (account_id, owner, created_by) VALUES ('A', 'alice', 'test')`,
  );
  await db.query(
    `INSERT INTO cash_balances (account_id, currency, available, frozen) VALUES ('A', 'USD', 90000, 10000)`,
  );
});
afterAll(() => db?.destroy());

// An order whose Tries all succeeded: 100.00 USD frozen for it.
async function triedOrder(orderId: string, symbol: string): Promise<void> {
  await db.query(
    `INSERT INTO orders (order_id, account_id, client_order_id, symbol, side, order_type, time_in_force,
                         currency, price_minor, quantity, notional_minor, fees_minor, status, gtid, created_by)
     VALUES ($1, 'A', $1, $2, 'BUY', 'LIMIT', 'GTC', 'USD', 1000, 10, 10000, 0, 'PENDING_NEW', $1 || '-g', 'test')`,
    [orderId, symbol],
  );
  await db.query(
    `INSERT INTO order_reservations (order_id, gtid, account_id, asset_kind, asset, reserved, remaining, state)
     VALUES ($1, $1 || '-g', 'A', 'CASH', 'USD', 10000, 10000, 'RESERVED')`,
    [orderId],
  );
}

const decide = (orderId: string) =>
  db.transaction((manager) =>
    decisions.onDecided(
      {
        gtid: `${orderId}-g`,
        kind: PLACEMENT_KIND,
        correlationId: orderId,
        state: 'CONFIRMING',
        failure: null,
      },
      manager,
    ),
  );

const events = async (orderId: string) =>
  (
    await db.query(
      `SELECT payload->>'type' AS type, payload->'data'->'reason'->>'code' AS code FROM outbox
        WHERE payload->'metadata'->>'aggregateId' = $1 ORDER BY position`,
      [orderId],
    )
  ).map((r: { type: string; code: string | null }) => (r.code ? `${r.type}:${r.code}` : r.type));

it('queues an accepted order for the book', async () => {
  await triedOrder('o-1', 'AAPL');
  await decide('o-1');
  const [order] = await db.query(`SELECT status FROM orders WHERE order_id = 'o-1'`);
  expect(order.status).toBe('NEW');
  expect(await db.query(`SELECT kind FROM matching_commands WHERE order_id = 'o-1'`)).toEqual([
    { kind: 'NEW' },
  ]);
  expect(await events('o-1')).toEqual(['OrderAccepted']);
});

it('cancels, instead of booking, an order decided while a kill switch covers its symbol', async () => {
  await db.query(
    `INSERT INTO kill_switches (scope, target, engaged, reason) VALUES ('SYMBOL', 'TSLA', true, 'halted')`,
  );
  await triedOrder('o-2', 'TSLA');
  const [before] = await db.query(
    `SELECT available, frozen FROM cash_balances WHERE account_id = 'A'`,
  );
  await decide('o-2');

  const [order] = await db.query(`SELECT status FROM orders WHERE order_id = 'o-2'`);
  expect(order.status).toBe('CANCELLED');
  expect(await db.query(`SELECT 1 FROM matching_commands WHERE order_id = 'o-2'`)).toEqual([]);
  expect(await events('o-2')).toEqual(['OrderAccepted', 'OrderCancelled:KILL_SWITCH']);
  // Its 100.00 USD is available again.
  const [after] = await db.query(
    `SELECT available, frozen FROM cash_balances WHERE account_id = 'A'`,
  );
  expect(BigInt(after.available) - BigInt(before.available)).toBe(10000n);
  expect(BigInt(before.frozen) - BigInt(after.frozen)).toBe(10000n);

  // Released, the switch no longer stops the next order of that symbol.
  await db.query(`UPDATE kill_switches SET engaged = false`);
  await triedOrder('o-3', 'TSLA');
  await decide('o-3');
  expect((await db.query(`SELECT status FROM orders WHERE order_id = 'o-3'`))[0].status).toBe(
    'NEW',
  );
});
