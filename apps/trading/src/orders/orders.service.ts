// Orders: validated at the edge, reserved through the placement TCC (trading funds, risk quota,
// clearing quota), booked and matched by the engine. A retry with the same clientOrderId answers the
// first order; an answer not known in time is a 202 with the order's URL.
import {
  fields,
  OrderCreated,
  OrderPlacementPayload,
  PLACEMENT_KIND,
  PLACEMENT_RESOURCES,
  uuidv7,
} from '@finance/contracts';
import { Currency, formatMoney, money, parseMoney } from '@finance/money';
import { SERVICE_CONFIG } from '@finance/platform';
import { TCC_COORDINATOR, TccCoordinator } from '@finance/tcc';
import { Inject, Injectable } from '@nestjs/common';
import { trace } from '@opentelemetry/api';
import { DataSource, EntityManager } from 'typeorm';
import { z } from 'zod';
import type { TradingConfig } from '../config';
import { Instrument, MatchingEngine } from '../matching/matching-engine';
import { fieldProblem } from '../problems';
import { publishOrderEvent } from './order-events';
import { ordersPlaced, registerTradingGauges } from './order-metrics';
import { MATCHING_CHANNEL, OrderNotifications } from './order-notifications';

const identifier = z
  .string()
  .regex(/^[A-Za-z0-9._:-]{1,64}$/, 'must be 1-64 letters, digits or . _ : -');

export const placeOrderBody = z
  .object({
    clientOrderId: identifier,
    accountId: identifier,
    symbol: fields.symbol,
    side: fields.side,
    type: fields.orderType,
    price: fields.positiveDecimal.optional(),
    quantity: fields.quantity,
    timeInForce: fields.timeInForce.default('GTC'),
  })
  .strict()
  .superRefine((order, ctx) => {
    if (order.type === 'LIMIT' && order.price === undefined) {
      ctx.addIssue({ code: 'custom', path: ['price'], message: 'is required for a LIMIT order' });
    }
    if (order.type === 'MARKET' && order.price !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['price'],
        message: 'must be absent for a MARKET order',
      });
    }
  });
export type PlaceOrder = z.infer<typeof placeOrderBody>;

export const replaceOrderBody = z
  .object({ price: fields.positiveDecimal.optional(), quantity: fields.quantity.optional() })
  .strict()
  .refine((body) => body.price !== undefined || body.quantity !== undefined, {
    message: 'give a new price, a new quantity or both',
    path: ['price'],
  });
export type ReplaceOrder = z.infer<typeof replaceOrderBody>;

export const listOrdersQuery = z.object({
  accountId: identifier,
  status: z
    .enum(['PENDING_NEW', 'NEW', 'PARTIALLY_FILLED', 'FILLED', 'CANCELLED', 'REJECTED'])
    .optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: identifier.optional(),
});

interface OrderRow {
  order_id: string;
  account_id: string;
  client_order_id: string;
  symbol: string;
  side: 'BUY' | 'SELL';
  order_type: 'LIMIT' | 'MARKET';
  time_in_force: string;
  currency: Currency;
  price_minor: string | null;
  protection_minor: string | null;
  quantity: string;
  filled_quantity: string;
  notional_minor: string;
  fees_minor: string;
  status: string;
  gtid: string;
  reject_branch: string | null;
  reject_code: string | null;
  reject_message: string | null;
  booked_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface OrderView {
  orderId: string;
  clientOrderId: string;
  accountId: string;
  symbol: string;
  side: string;
  type: string;
  timeInForce: string;
  price: string | null;
  protectionPrice: string | null;
  quantity: string;
  filledQuantity: string;
  remainingQuantity: string;
  currency: string;
  status: string;
  reserved: { notional: string; fees: string };
  rejection: { branch: string | null; code: string; message: string } | null;
  fills: Array<{ tradeId: string; price: string; quantity: string; executedAt: string }>;
  globalTransactionId: string;
  createdAt: string;
  updatedAt: string;
}

export type Answer = { status: 200 | 201 | 202; order: OrderView };

const FINAL = new Set(['FILLED', 'CANCELLED', 'REJECTED']);

@Injectable()
export class OrdersService {
  constructor(
    private readonly db: DataSource,
    private readonly engine: MatchingEngine,
    private readonly notifications: OrderNotifications,
    @Inject(TCC_COORDINATOR) private readonly coordinator: TccCoordinator,
    @Inject(SERVICE_CONFIG) private readonly config: TradingConfig,
  ) {
    registerTradingGauges(db);
  }

  async place(input: PlaceOrder, actor: string): Promise<Answer> {
    const instrument = this.engine.instrument(input.symbol);
    if (!instrument) {
      throw fieldProblem(
        422,
        'unknown symbol',
        'body.symbol',
        `${input.symbol} is not traded here`,
      );
    }
    const quantity = BigInt(input.quantity);
    if (quantity % instrument.lotSize !== 0n) {
      throw fieldProblem(
        422,
        'invalid quantity',
        'body.quantity',
        `must be a multiple of the lot size ${instrument.lotSize}`,
      );
    }
    const price = input.price === undefined ? undefined : this.parsePrice(instrument, input.price);

    const replay = await this.byClientOrderId(input.accountId, input.clientOrderId);
    if (replay) return this.replay(replay, input, price);
    const [account]: Array<{ owner: string }> = await this.db.query(
      `SELECT owner FROM accounts WHERE account_id = $1`,
      [input.accountId],
    );
    if (!account) {
      throw fieldProblem(
        422,
        'unknown account',
        'body.accountId',
        `${input.accountId} does not exist`,
      );
    }

    const protection =
      input.type === 'MARKET' ? this.protectionPrice(instrument, input.side) : undefined;
    const notional = (price ?? protection!) * quantity;
    const fees =
      input.side === 'BUY'
        ? (notional * BigInt(this.config.TRADING_FEE_BPS) + 9_999n) / 10_000n
        : 0n;
    const orderId = uuidv7();
    const gtid = uuidv7();
    // `npm run trace -- <orderId>` finds the order's trace by these.
    trace.getActiveSpan()?.setAttributes({ 'finance.order_id': orderId, 'finance.gtid': gtid });
    const amount = (minor: bigint) => ({
      amount: formatMoney(money(instrument.currency, minor)),
      currency: instrument.currency,
    });
    const payload: OrderPlacementPayload = {
      orderId,
      accountId: input.accountId,
      symbol: input.symbol,
      side: input.side,
      orderType: input.type,
      timeInForce: input.timeInForce,
      quantity: input.quantity,
      ...(price !== undefined ? { price: amount(price).amount } : {}),
      notional: amount(notional),
      fees: amount(fees),
      // Compliance counts orders per beneficial owner, not per account.
      owner: account.owner,
    };

    try {
      await this.db.transaction(async (manager) => {
        await manager.query(
          `INSERT INTO orders (order_id, account_id, client_order_id, symbol, side, order_type, time_in_force,
                               currency, price_minor, protection_minor, quantity, notional_minor, fees_minor,
                               status, gtid, created_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'PENDING_NEW', $14, $15)`,
          [
            orderId,
            input.accountId,
            input.clientOrderId,
            input.symbol,
            input.side,
            input.type,
            input.timeInForce,
            instrument.currency,
            price?.toString() ?? null,
            protection?.toString() ?? null,
            input.quantity,
            notional.toString(),
            fees.toString(),
            gtid,
            actor,
          ],
        );
        await publishOrderEvent(manager, this.config.KAFKA_TOPIC_PREFIX, orderId, OrderCreated, {
          orderId,
          accountId: input.accountId,
          clientOrderId: input.clientOrderId,
          symbol: input.symbol,
          side: input.side,
          orderType: input.type,
          ...(payload.price ? { price: payload.price } : {}),
          quantity: input.quantity,
          timeInForce: input.timeInForce,
          currency: instrument.currency,
        });
        await this.coordinator.begin({
          manager,
          gtid,
          kind: PLACEMENT_KIND,
          correlationId: orderId,
          timeoutMs: this.config.TRADING_PLACEMENT_TIMEOUT_MS,
          branches: [
            {
              branchId: 'funds',
              participant: 'trading',
              resource: PLACEMENT_RESOURCES.funds,
              payload,
            },
            {
              branchId: 'risk',
              participant: 'risk',
              resource: PLACEMENT_RESOURCES.riskQuota,
              payload,
            },
            {
              branchId: 'clearing',
              participant: 'settlement',
              resource: PLACEMENT_RESOURCES.clearingQuota,
              payload,
            },
            // Compliance's pre-trade rules; off only where no compliance service runs (see config).
            ...(this.config.TRADING_COMPLIANCE_CHECK === 'on'
              ? [
                  {
                    branchId: 'compliance',
                    participant: 'compliance' as const,
                    resource: PLACEMENT_RESOURCES.complianceCheck,
                    payload,
                  },
                ]
              : []),
          ],
        });
      });
    } catch (error) {
      // The same clientOrderId placed concurrently: the first insert won; answer its order.
      if ((error as { code?: string }).code === '23505') {
        const first = await this.byClientOrderId(input.accountId, input.clientOrderId);
        if (first) return this.replay(first, input, price);
      }
      throw error;
    }
    ordersPlaced.inc({ side: input.side, type: input.type });

    const { value, timedOut } = await this.notifications.waitFor(
      orderId,
      () => this.row(orderId),
      (row) => row.status === 'REJECTED' || row.booked_at !== null || FINAL.has(row.status),
      this.config.TRADING_RESPONSE_TIMEOUT_MS,
    );
    return { status: timedOut ? 202 : 201, order: await this.view(value) };
  }

  async get(orderId: string): Promise<OrderView> {
    const row = await this.row(orderId).catch(() => undefined);
    if (!row) throw fieldProblem(404, 'unknown order', 'id', `${orderId} does not exist`);
    return this.view(row);
  }

  async list(
    query: z.infer<typeof listOrdersQuery>,
  ): Promise<{ orders: OrderView[]; nextCursor: string | null }> {
    const rows: OrderRow[] = await this.db.query(
      `SELECT * FROM orders
        WHERE account_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR order_id < $3)
        ORDER BY order_id DESC LIMIT $4`,
      [query.accountId, query.status ?? null, query.cursor ?? null, query.limit + 1],
    );
    const page = rows.slice(0, query.limit);
    return {
      orders: await Promise.all(page.map((row) => this.view(row))),
      nextCursor: rows.length > query.limit ? page[page.length - 1].order_id : null,
    };
  }

  /** Cancels what is left of an order and releases what it still has frozen. */
  async cancel(orderId: string, actor: string): Promise<Answer> {
    const current = await this.row(orderId).catch(() => undefined);
    if (!current) throw fieldProblem(404, 'unknown order', 'id', `${orderId} does not exist`);
    this.assertCancellable(current);
    await this.db.transaction(async (manager: EntityManager) => {
      await manager.query(
        `INSERT INTO matching_commands (kind, order_id, requested_by) VALUES ('CANCEL', $1, $2)
         ON CONFLICT (order_id) WHERE kind = 'CANCEL' DO NOTHING`,
        [orderId, actor],
      );
      await manager.query('SELECT pg_notify($1, $2)', [MATCHING_CHANNEL, orderId]);
    });
    const { value, timedOut } = await this.notifications.waitFor(
      orderId,
      () => this.row(orderId),
      (row) => FINAL.has(row.status),
      this.config.TRADING_RESPONSE_TIMEOUT_MS,
    );
    if (value.status === 'FILLED') this.assertCancellable(value);
    return { status: timedOut ? 202 : 200, order: await this.view(value) };
  }

  /**
   * Cancel/replace of a resting LIMIT order: new price and/or new total quantity. It must fit in
   * what the placement reserved (price × quantity within the reserved notional, quantity not above
   * the original), because risk and settlement reserved that much; more needs a new order.
   */
  async replace(orderId: string, change: ReplaceOrder, actor: string): Promise<Answer> {
    const current = await this.row(orderId).catch(() => undefined);
    if (!current) throw fieldProblem(404, 'unknown order', 'id', `${orderId} does not exist`);
    this.assertCancellable(current);
    if (current.order_type !== 'LIMIT' || current.booked_at === null) {
      throw fieldProblem(
        409,
        'order cannot be replaced',
        'id',
        'only a LIMIT order resting in the book can be replaced',
        { orderStatus: current.status },
      );
    }
    const instrument = this.engine.instrument(current.symbol)!;
    const price =
      change.price === undefined
        ? BigInt(current.price_minor!)
        : this.parsePrice(instrument, change.price);
    const quantity =
      change.quantity === undefined ? BigInt(current.quantity) : BigInt(change.quantity);
    if (quantity % instrument.lotSize !== 0n) {
      throw fieldProblem(
        422,
        'invalid quantity',
        'body.quantity',
        `must be a multiple of the lot size ${instrument.lotSize}`,
      );
    }
    if (quantity <= BigInt(current.filled_quantity)) {
      throw fieldProblem(
        422,
        'invalid quantity',
        'body.quantity',
        `must be above the ${current.filled_quantity} already filled; cancel to stop the order`,
      );
    }
    if (quantity > BigInt(current.quantity) || price * quantity > BigInt(current.notional_minor)) {
      throw fieldProblem(
        409,
        'more than reserved',
        change.quantity === undefined ? 'body.price' : 'body.quantity',
        `price × quantity may not exceed the ${formatMoney(money(current.currency, BigInt(current.notional_minor)))} ${current.currency} the order reserved, nor the quantity its original ${current.quantity}; cancel it and place a new order`,
      );
    }
    const [{ sequence }] = await this.db.transaction(async (manager: EntityManager) => {
      const rows: Array<{ sequence: string }> = await manager.query(
        `INSERT INTO matching_commands (kind, order_id, requested_by, price_minor, quantity)
         VALUES ('REPLACE', $1, $2, $3, $4) RETURNING sequence`,
        [orderId, actor, price.toString(), quantity.toString()],
      );
      await manager.query('SELECT pg_notify($1, $2)', [MATCHING_CHANNEL, orderId]);
      return rows;
    });
    const { timedOut } = await this.notifications.waitFor(
      orderId,
      async () =>
        (
          await this.db.query(`SELECT done_at FROM matching_commands WHERE sequence = $1`, [
            sequence,
          ])
        )[0] as { done_at: Date | null },
      (command) => command.done_at !== null,
      this.config.TRADING_RESPONSE_TIMEOUT_MS,
    );
    return { status: timedOut ? 202 : 200, order: await this.view(await this.row(orderId)) };
  }

  private assertCancellable(row: OrderRow): void {
    const conflict = (message: string) =>
      fieldProblem(409, 'order cannot be cancelled', 'id', message, { orderStatus: row.status });
    if (row.status === 'FILLED') throw conflict('the order is already filled');
    if (row.status === 'CANCELLED' || row.status === 'REJECTED') {
      throw conflict(`the order is already ${row.status.toLowerCase()}`);
    }
    if (row.status === 'PENDING_NEW') {
      throw conflict('the order is still being placed; retry once it is accepted or rejected');
    }
  }

  private parsePrice(instrument: Instrument, text: string): bigint {
    let minor: bigint;
    try {
      minor = parseMoney(instrument.currency, text).minor;
    } catch (error) {
      throw fieldProblem(422, 'invalid price', 'body.price', (error as Error).message);
    }
    if (minor % instrument.tickSize !== 0n) {
      const tick = formatMoney(money(instrument.currency, instrument.tickSize));
      throw fieldProblem(
        422,
        'invalid price',
        'body.price',
        `must be a multiple of the tick size ${tick}`,
      );
    }
    return minor;
  }

  // MARKET orders reserve for, and may trade up to, the opposite touch moved by the collar.
  private protectionPrice(instrument: Instrument, side: 'BUY' | 'SELL'): bigint {
    const top = this.engine.book(instrument.symbol)?.top();
    const touch = side === 'BUY' ? top?.ask : top?.bid;
    if (!touch) {
      throw fieldProblem(
        422,
        'no liquidity',
        'body.type',
        `no ${side === 'BUY' ? 'offers' : 'bids'} to trade a MARKET order against`,
      );
    }
    const collar = BigInt(this.config.TRADING_MARKET_COLLAR_BPS);
    const ticks = BigInt(touch.price);
    const limit =
      side === 'BUY'
        ? (ticks * (10_000n + collar)) / 10_000n
        : (ticks * (10_000n - collar) + 9_999n) / 10_000n;
    return (limit > 0n ? limit : 1n) * instrument.tickSize;
  }

  private async byClientOrderId(
    accountId: string,
    clientOrderId: string,
  ): Promise<OrderRow | undefined> {
    const [row] = await this.db.query(
      `SELECT * FROM orders WHERE account_id = $1 AND client_order_id = $2`,
      [accountId, clientOrderId],
    );
    return row as OrderRow | undefined;
  }

  private async replay(
    row: OrderRow,
    input: PlaceOrder,
    price: bigint | undefined,
  ): Promise<Answer> {
    const same =
      row.symbol === input.symbol &&
      row.side === input.side &&
      row.order_type === input.type &&
      row.time_in_force === input.timeInForce &&
      row.quantity === input.quantity &&
      (row.price_minor === null ? price === undefined : BigInt(row.price_minor) === price);
    if (!same) {
      throw fieldProblem(
        409,
        'clientOrderId reused',
        'body.clientOrderId',
        'was used for a different order of this account',
      );
    }
    return { status: 200, order: await this.view(row) };
  }

  private async row(orderId: string): Promise<OrderRow> {
    const [row] = await this.db.query(`SELECT * FROM orders WHERE order_id = $1`, [orderId]);
    if (!row) throw new Error(`order ${orderId} not found`);
    return row as OrderRow;
  }

  private async view(row: OrderRow): Promise<OrderView> {
    const price = (minor: string | null) =>
      minor === null ? null : formatMoney(money(row.currency, BigInt(minor)));
    const fills: Array<{
      trade_id: string;
      price_minor: string;
      quantity: string;
      executed_at: Date;
    }> = await this.db.query(
      `SELECT trade_id, price_minor, quantity, executed_at FROM trades
          WHERE buy_order_id = $1 OR sell_order_id = $1 ORDER BY sequence`,
      [row.order_id],
    );
    return {
      orderId: row.order_id,
      clientOrderId: row.client_order_id,
      accountId: row.account_id,
      symbol: row.symbol,
      side: row.side,
      type: row.order_type,
      timeInForce: row.time_in_force,
      price: price(row.price_minor),
      protectionPrice: price(row.protection_minor),
      quantity: row.quantity,
      filledQuantity: row.filled_quantity,
      remainingQuantity: FINAL.has(row.status)
        ? '0'
        : (BigInt(row.quantity) - BigInt(row.filled_quantity)).toString(),
      currency: row.currency,
      status: row.status,
      reserved: { notional: price(row.notional_minor)!, fees: price(row.fees_minor)! },
      rejection: row.reject_code
        ? { branch: row.reject_branch, code: row.reject_code, message: row.reject_message ?? '' }
        : null,
      fills: fills.map((f) => ({
        tradeId: f.trade_id,
        price: price(f.price_minor)!,
        quantity: f.quantity,
        executedAt: new Date(f.executed_at).toISOString(),
      })),
      globalTransactionId: row.gtid,
      createdAt: new Date(row.created_at).toISOString(),
      updatedAt: new Date(row.updated_at).toISOString(),
    };
  }
}
