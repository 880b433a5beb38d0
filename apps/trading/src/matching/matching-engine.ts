// The matching engine: one writer per trading database (a PostgreSQL advisory lock elects it) takes
// accepted orders and cancel requests in their queue order, runs them through the pure in-memory
// books, and commits fills, balance moves, order states and their events in one transaction per
// batch. A failed batch reloads the books from the tables, which are what the committed events say.
import { OrderCancelled, OrderExecuted, OrderReplaced } from '@finance/contracts';
import { Currency, formatMoney, money } from '@finance/money';
import { SERVICE_CONFIG, SERVICE_LOGGER } from '@finance/platform';
import {
  Cancellation,
  Fill,
  OrderBook,
  RestingTimeInForce,
  SubmitResult,
} from '@finance/order-book';
import { uuidv7 } from '@finance/contracts';
import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { EventEmitter } from 'node:events';
import { Client } from 'pg';
import type { Logger } from 'pino';
import { DataSource, EntityManager } from 'typeorm';
import type { PostgresConnectionOptions } from 'typeorm/driver/postgres/PostgresConnectionOptions';
import type { TradingConfig } from '../config';
import { releaseExcess, releaseReservation } from '../orders/order-funds.branch';
import { notifyOrder, publishOrderEvent } from '../orders/order-events';
import { fills } from '../orders/order-metrics';
import { OrderNotifications } from '../orders/order-notifications';
import { KILL_SWITCH_REQUESTER } from '../kill-switch/kill-switch.controller';

const LEADER_LOCK = 0x7472_6164; // "trad"
const BATCH = 100;

export interface Instrument {
  symbol: string;
  currency: Currency;
  tickSize: bigint;
  lotSize: bigint;
}

interface OrderRow {
  order_id: string;
  account_id: string;
  owner: string;
  symbol: string;
  side: 'BUY' | 'SELL';
  order_type: 'LIMIT' | 'MARKET';
  time_in_force: 'GTC' | 'IOC' | 'FOK' | 'DAY';
  price_minor: string | null;
  protection_minor: string | null;
  quantity: string;
  filled_quantity: string;
  status: string;
}

interface Command extends OrderRow {
  sequence: string;
  kind: 'NEW' | 'CANCEL' | 'REPLACE';
  requested_by: string;
  /** REPLACE: the new limit price and total quantity. */
  new_price_minor: string | null;
  new_quantity: string | null;
}

/** What market-data subscribers get after each committed batch. */
export type MarketEvent =
  | {
      type: 'trade';
      symbol: string;
      tradeId: string;
      price: bigint;
      quantity: bigint;
      executedAt: string;
    }
  | { type: 'book'; symbol: string };

export interface MarketStats {
  last: bigint | null;
  volume: bigint;
  trades: number;
}

@Injectable()
export class MatchingEngine implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly books = new Map<string, OrderBook>();
  private readonly instruments = new Map<string, Instrument>();
  private readonly stats = new Map<string, MarketStats>();
  private leader: Client | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private wake: () => void = () => undefined;
  private isLeader = false;
  private closedUpTo: Date | undefined;
  private readonly market = new EventEmitter().setMaxListeners(0);
  // Market events of the batch being processed, published once it commits.
  private pending: MarketEvent[] = [];

  constructor(
    private readonly db: DataSource,
    private readonly notifications: OrderNotifications,
    @Inject(SERVICE_CONFIG) private readonly config: TradingConfig,
    @Inject(SERVICE_LOGGER) private readonly logger: Logger,
  ) {}

  onApplicationBootstrap(): void {
    const unsubscribe = this.notifications.onWork(() => this.wake());
    this.loop = this.run()
      .catch((error: unknown) => this.logger.error({ err: error }, 'matching engine stopped'))
      .finally(unsubscribe);
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    this.wake();
    await this.loop;
    await this.leader?.end().catch(() => undefined);
  }

  /** Whether this process runs the books (market data is served from them). */
  get leading(): boolean {
    return this.isLeader;
  }

  instrument(symbol: string): Instrument | undefined {
    return this.instruments.get(symbol);
  }

  book(symbol: string): OrderBook | undefined {
    return this.books.get(symbol);
  }

  /** Trades and book changes of a symbol, after they are committed; returns the unsubscribe. */
  onMarket(symbol: string, listener: (event: MarketEvent) => void): () => void {
    this.market.on(symbol, listener);
    return () => this.market.off(symbol, listener);
  }

  marketStats(symbol: string): MarketStats {
    return this.stats.get(symbol) ?? { last: null, volume: 0n, trades: 0 };
  }

  async loadInstruments(): Promise<void> {
    const rows: Array<{
      symbol: string;
      currency: Currency;
      tick_size_minor: string;
      lot_size: string;
    }> = await this.db.query(
      `SELECT symbol, currency, tick_size_minor, lot_size FROM instruments WHERE active`,
    );
    for (const r of rows) {
      this.instruments.set(r.symbol, {
        symbol: r.symbol,
        currency: r.currency,
        tickSize: BigInt(r.tick_size_minor),
        lotSize: BigInt(r.lot_size),
      });
    }
  }

  private async run(): Promise<void> {
    await this.loadInstruments();
    await this.becomeLeader();
    if (this.stopped) return;
    await this.rebuild();
    while (!this.stopped) {
      let handled = 0;
      try {
        handled = await this.processBatch();
      } catch (error) {
        this.logger.error({ err: error }, 'matching batch failed; reloading the books');
        await this.rebuild().catch((e: unknown) => this.logger.error({ err: e }, 'rebuild failed'));
        await new Promise((r) => setTimeout(r, 200));
      }
      await this.closeSessionIfDue().catch(async (error: unknown) => {
        this.logger.error({ err: error }, 'session close failed; reloading the books');
        await this.rebuild().catch((e: unknown) => this.logger.error({ err: e }, 'rebuild failed'));
      });
      if (handled === 0 && !this.stopped) await this.idle(500);
    }
  }

  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  // One engine per database: others wait here and take over when the leader's session ends.
  private async becomeLeader(): Promise<void> {
    const url = (this.db.options as PostgresConnectionOptions).url;
    const client = new Client({ connectionString: url, application_name: 'trading-matching' });
    await client.connect();
    client.on('error', (error) => {
      this.logger.error({ err: error }, 'matching leader connection lost; exiting the engine');
      this.stopped = true;
      this.isLeader = false;
      this.wake();
    });
    this.leader = client;
    while (!this.stopped) {
      const [{ locked }] = (
        await client.query('SELECT pg_try_advisory_lock($1) AS locked', [LEADER_LOCK])
      ).rows as Array<{ locked: boolean }>;
      if (locked) {
        this.isLeader = true;
        return;
      }
      await this.idle(1_000);
    }
  }

  /** Rebuilds every book from the resting orders, in their time priority. */
  async rebuild(): Promise<void> {
    this.books.clear();
    this.stats.clear();
    const rows: OrderRow[] = await this.db.query(
      `SELECT o.*, a.owner FROM orders o JOIN accounts a USING (account_id)
        WHERE o.status IN ('NEW', 'PARTIALLY_FILLED') AND o.booked_at IS NOT NULL
        ORDER BY o.priority`,
    );
    for (const row of rows) {
      const instrument = this.instruments.get(row.symbol)!;
      this.bookFor(row.symbol).rest({
        id: row.order_id,
        owner: row.owner,
        side: row.side,
        price: this.ticks(instrument, BigInt(row.price_minor!)),
        quantity: this.lots(instrument, BigInt(row.quantity) - BigInt(row.filled_quantity)),
        timeInForce: row.time_in_force as RestingTimeInForce,
      });
    }
    const trades: Array<{ symbol: string; last: string; volume: string; trades: number }> =
      await this.db.query(
        `SELECT DISTINCT ON (symbol) symbol, price_minor AS last,
                sum(quantity) OVER (PARTITION BY symbol) AS volume,
                (count(*) OVER (PARTITION BY symbol))::int AS trades
           FROM trades WHERE executed_at >= date_trunc('day', now())
          ORDER BY symbol, sequence DESC`,
      );
    for (const t of trades) {
      this.stats.set(t.symbol, {
        last: BigInt(t.last),
        volume: BigInt(t.volume),
        trades: t.trades,
      });
    }
  }

  private bookFor(symbol: string): OrderBook {
    let book = this.books.get(symbol);
    if (!book) {
      book = new OrderBook(symbol, {
        selfTradePrevention: this.config.TRADING_SELF_TRADE_PREVENTION,
      });
      this.books.set(symbol, book);
    }
    return book;
  }

  ticks(instrument: Instrument, priceMinor: bigint): number {
    return Number(priceMinor / instrument.tickSize);
  }

  lots(instrument: Instrument, quantity: bigint): number {
    return Number(quantity / instrument.lotSize);
  }

  private async processBatch(): Promise<number> {
    const touched: string[] = [];
    const statsDelta = new Map<string, MarketStats>();
    this.pending = [];
    const handled = await this.db.transaction(async (manager) => {
      const commands: Command[] = await manager.query(
        `SELECT c.sequence, c.kind, c.requested_by, c.price_minor AS new_price_minor,
                c.quantity AS new_quantity, o.*, a.owner
           FROM matching_commands c JOIN orders o USING (order_id) JOIN accounts a USING (account_id)
          WHERE c.done_at IS NULL ORDER BY c.sequence LIMIT $1 FOR UPDATE OF c`,
        [BATCH],
      );
      for (const command of commands) {
        if (command.kind === 'NEW') await this.place(manager, command, touched, statsDelta);
        else if (command.kind === 'REPLACE')
          await this.replace(manager, command, touched, statsDelta);
        else await this.cancel(manager, command, touched);
      }
      if (commands.length > 0) {
        await manager.query(
          `UPDATE matching_commands SET done_at = clock_timestamp() WHERE sequence = ANY($1::bigint[])`,
          [commands.map((c) => c.sequence)],
        );
      }
      for (const orderId of new Set(touched)) await notifyOrder(manager, orderId);
      return commands.length;
    });
    for (const [symbol, delta] of statsDelta) {
      fills.inc({ symbol }, delta.trades); // committed above
      const current = this.marketStats(symbol);
      this.stats.set(symbol, {
        last: delta.last,
        volume: current.volume + delta.volume,
        trades: current.trades + delta.trades,
      });
    }
    const changedBooks = new Set<string>();
    for (const event of this.pending) {
      if (event.type === 'book') changedBooks.add(event.symbol);
      else this.market.emit(event.symbol, event);
    }
    for (const symbol of changedBooks) this.market.emit(symbol, { type: 'book', symbol });
    return handled;
  }

  private async place(
    manager: EntityManager,
    order: Command,
    touched: string[],
    statsDelta: Map<string, MarketStats>,
  ): Promise<void> {
    touched.push(order.order_id);
    if (order.status !== 'NEW') return; // already handled (a repeated command)
    const instrument = this.instruments.get(order.symbol)!;
    const book = this.bookFor(order.symbol);
    this.pending.push({ type: 'book', symbol: order.symbol });
    const result: SubmitResult = book.submit({
      id: order.order_id,
      owner: order.owner,
      side: order.side,
      type: order.order_type,
      ...(order.price_minor ? { price: this.ticks(instrument, BigInt(order.price_minor)) } : {}),
      ...(order.protection_minor
        ? { protectionPrice: this.ticks(instrument, BigInt(order.protection_minor)) }
        : {}),
      quantity: this.lots(instrument, BigInt(order.quantity)),
      timeInForce: order.time_in_force,
    });
    await manager.query(
      `UPDATE orders SET booked_at = clock_timestamp(), priority = $2 WHERE order_id = $1`,
      [order.order_id, order.sequence],
    );
    for (const fill of result.fills) {
      await this.execute(manager, instrument, fill, touched, statsDelta);
    }
    for (const cancellation of result.cancelled) {
      await this.cancelled(manager, instrument, cancellation, touched);
    }
  }

  /** The latest configured session close at or before `now`, if a close is configured. */
  lastClose(now = new Date()): Date | undefined {
    const close = this.config.TRADING_SESSION_CLOSE;
    if (!close) return undefined;
    const [h, m, s = '0'] = close.split(':');
    const today = new Date(now);
    today.setUTCHours(Number(h), Number(m), Number(s), 0);
    return today <= now ? today : new Date(today.getTime() - 24 * 60 * 60 * 1000);
  }

  // At the session close every DAY order booked before it expires, once per close (restart-safe).
  private async closeSessionIfDue(): Promise<void> {
    const closeAt = this.lastClose();
    if (!closeAt || this.closedUpTo?.getTime() === closeAt.getTime()) return;
    const touched: string[] = [];
    this.pending = [];
    await this.db.transaction(async (manager) => {
      const claimed: unknown[] = await manager.query(
        `INSERT INTO session_closes (closed_at, expired) VALUES ($1, 0) ON CONFLICT DO NOTHING RETURNING 1`,
        [closeAt],
      );
      if (claimed.length === 0) return;
      const due: Array<{ order_id: string; symbol: string }> = await manager.query(
        `SELECT order_id, symbol FROM orders
          WHERE time_in_force = 'DAY' AND status IN ('NEW', 'PARTIALLY_FILLED')
            AND booked_at IS NOT NULL AND booked_at < $1
          ORDER BY priority`,
        [closeAt],
      );
      for (const order of due) {
        const removed = this.bookFor(order.symbol).cancel(order.order_id);
        if (!removed) continue;
        this.pending.push({ type: 'book', symbol: order.symbol });
        const instrument = this.instruments.get(order.symbol)!;
        await this.cancelled(manager, instrument, { ...removed, reason: 'EXPIRED' }, touched);
      }
      await manager.query(`UPDATE session_closes SET expired = $2 WHERE closed_at = $1`, [
        closeAt,
        due.length,
      ]);
      for (const orderId of new Set(touched)) await notifyOrder(manager, orderId);
      if (due.length > 0) this.logger.info({ closeAt, expired: due.length }, 'session closed');
    });
    this.closedUpTo = closeAt;
    const symbols = new Set(this.pending.map((e) => e.symbol));
    for (const symbol of symbols) this.market.emit(symbol, { type: 'book', symbol });
  }

  private async cancel(manager: EntityManager, command: Command, touched: string[]): Promise<void> {
    touched.push(command.order_id);
    if (command.status !== 'NEW' && command.status !== 'PARTIALLY_FILLED') return;
    const instrument = this.instruments.get(command.symbol)!;
    const removed = this.bookFor(command.symbol).cancel(command.order_id);
    if (!removed) return;
    this.pending.push({ type: 'book', symbol: command.symbol });
    const killSwitch = command.requested_by.startsWith(KILL_SWITCH_REQUESTER);
    await this.cancelled(
      manager,
      instrument,
      { ...removed, reason: 'REQUESTED' },
      touched,
      command.requested_by,
      killSwitch ? 'KILL_SWITCH' : undefined,
    );
  }

  // Cancel/replace: the book keeps the order's place only when the price is unchanged and the
  // quantity does not go up; otherwise it re-enters (and may trade). Funds it no longer needs go back.
  private async replace(
    manager: EntityManager,
    command: Command,
    touched: string[],
    statsDelta: Map<string, MarketStats>,
  ): Promise<void> {
    touched.push(command.order_id);
    if (command.status !== 'NEW' && command.status !== 'PARTIALLY_FILLED') return;
    const instrument = this.instruments.get(command.symbol)!;
    const price = BigInt(command.new_price_minor!);
    const quantity = BigInt(command.new_quantity!);
    const open = quantity - BigInt(command.filled_quantity);
    const result = this.bookFor(command.symbol).replace(command.order_id, {
      price: this.ticks(instrument, price),
      quantity: this.lots(instrument, open),
    });
    if (!result) return;
    this.pending.push({ type: 'book', symbol: command.symbol });
    await manager.query(
      `UPDATE orders SET price_minor = $2, quantity = $3,
              priority = CASE WHEN $4 THEN priority ELSE $5::bigint END
        WHERE order_id = $1`,
      [
        command.order_id,
        price.toString(),
        quantity.toString(),
        result.priorityKept,
        command.sequence,
      ],
    );
    await publishOrderEvent(
      manager,
      this.config.KAFKA_TOPIC_PREFIX,
      command.order_id,
      OrderReplaced,
      {
        orderId: command.order_id,
        price: formatMoney(money(instrument.currency, price)),
        quantity: quantity.toString(),
        priorityKept: result.priorityKept,
      },
    );
    for (const fill of result.fills)
      await this.execute(manager, instrument, fill, touched, statsDelta);
    for (const cancellation of result.cancelled) {
      await this.cancelled(manager, instrument, cancellation, touched);
    }
    // What the open quantity can still need at the new price; the rest of the reservation goes back.
    const [after]: Array<{ status: string; filled_quantity: string }> = await manager.query(
      `SELECT status, filled_quantity FROM orders WHERE order_id = $1`,
      [command.order_id],
    );
    if (after.status !== 'NEW' && after.status !== 'PARTIALLY_FILLED') return;
    const left = quantity - BigInt(after.filled_quantity);
    const value = price * left;
    const need =
      command.side === 'BUY'
        ? value + (value * BigInt(this.config.TRADING_FEE_BPS) + 9_999n) / 10_000n
        : left;
    await releaseExcess(manager, command.order_id, need);
  }

  private async execute(
    manager: EntityManager,
    instrument: Instrument,
    fill: Fill,
    touched: string[],
    statsDelta: Map<string, MarketStats>,
  ): Promise<void> {
    const buyOrder = fill.takerSide === 'BUY' ? fill.takerOrderId : fill.makerOrderId;
    const sellOrder = fill.takerSide === 'BUY' ? fill.makerOrderId : fill.takerOrderId;
    touched.push(buyOrder, sellOrder);
    const price = BigInt(fill.price) * instrument.tickSize;
    const quantity = BigInt(fill.quantity) * instrument.lotSize;
    const cost = price * quantity;
    const fee = (cost * BigInt(this.config.TRADING_FEE_BPS) + 9_999n) / 10_000n;
    const tradeId = uuidv7();
    const executedAt = new Date();
    // One statement for the fill (the statement count, not its work, is what costs): the trade, both
    // orders' fills, and the balance moves. Buyer: cash (cost + fee) frozen -> pending out, shares
    // pending in. Seller: shares frozen -> pending out, cash pending in. Buyer and seller are never
    // the same account (self-trade prevention), so no row is changed twice.
    const buyerOut = cost + fee;
    const [row]: Array<{ buyer: string; seller: string; completed: string[] | null }> =
      await manager.query(
        `WITH acc AS (
           SELECT (SELECT account_id FROM orders WHERE order_id = $1) AS buyer,
                  (SELECT account_id FROM orders WHERE order_id = $2) AS seller),
         t AS (
           INSERT INTO trades (trade_id, symbol, currency, price_minor, quantity, buy_order_id,
                               sell_order_id, buy_account_id, sell_account_id, buyer_fee_minor, executed_at)
           SELECT $3::text, $4::text, $5::char(3), $6::bigint, $7::bigint, $1::text, $2::text,
                  acc.buyer, acc.seller, $8::bigint, $9::timestamptz FROM acc),
         f AS (
           UPDATE orders SET filled_quantity = filled_quantity + $7::bigint,
                  status = CASE WHEN filled_quantity + $7::bigint = quantity THEN 'FILLED' ELSE 'PARTIALLY_FILLED' END
            WHERE order_id IN ($1, $2) RETURNING order_id, status),
         r AS (
           UPDATE order_reservations
              SET remaining = remaining - CASE WHEN order_id = $1 THEN $10::bigint ELSE $7::bigint END,
                  updated_at = now()
            WHERE order_id IN ($1, $2)),
         bc AS (
           UPDATE cash_balances c SET frozen = c.frozen - $10::bigint, pending_out = c.pending_out + $10::bigint
             FROM acc WHERE c.account_id = acc.buyer AND c.currency = $5::char(3)),
         bh AS (
           INSERT INTO holdings (account_id, symbol, pending_in) SELECT acc.buyer, $4::text, $7::bigint FROM acc
           ON CONFLICT (account_id, symbol) DO UPDATE SET pending_in = holdings.pending_in + EXCLUDED.pending_in),
         sh AS (
           UPDATE holdings h SET frozen = h.frozen - $7::bigint, pending_out = h.pending_out + $7::bigint
             FROM acc WHERE h.account_id = acc.seller AND h.symbol = $4::text),
         sc AS (
           INSERT INTO cash_balances (account_id, currency, pending_in) SELECT acc.seller, $5::char(3), $11::bigint FROM acc
           ON CONFLICT (account_id, currency) DO UPDATE SET pending_in = cash_balances.pending_in + EXCLUDED.pending_in)
         SELECT acc.buyer, acc.seller,
                (SELECT array_agg(order_id ORDER BY order_id) FROM f WHERE status = 'FILLED') AS completed
           FROM acc`,
        [
          buyOrder,
          sellOrder,
          tradeId,
          instrument.symbol,
          instrument.currency,
          price.toString(),
          quantity.toString(),
          fee.toString(),
          executedAt,
          buyerOut.toString(),
          cost.toString(),
        ],
      );
    const accounts = { buyer: row.buyer, seller: row.seller };
    const completed = (row.completed ?? []).map((order_id) => ({ order_id }));
    for (const { order_id } of completed) await releaseReservation(manager, order_id);

    const data = {
      tradeId,
      symbol: instrument.symbol,
      price: formatMoney(money(instrument.currency, price)),
      quantity: quantity.toString(),
      currency: instrument.currency,
      buy: { orderId: buyOrder, accountId: accounts.buyer },
      sell: { orderId: sellOrder, accountId: accounts.seller },
      executedAt: executedAt.toISOString(),
      buyerFee: formatMoney(money(instrument.currency, fee)),
    };
    // One event per side, each in its order's stream: every order's trail is complete and in order.
    const prefix = this.config.KAFKA_TOPIC_PREFIX;
    await publishOrderEvent(manager, prefix, buyOrder, OrderExecuted, data, tradeId);
    await publishOrderEvent(manager, prefix, sellOrder, OrderExecuted, data, tradeId);
    this.pending.push({
      type: 'trade',
      symbol: instrument.symbol,
      tradeId,
      price,
      quantity,
      executedAt: data.executedAt,
    });
    const delta = statsDelta.get(instrument.symbol) ?? { last: null, volume: 0n, trades: 0 };
    statsDelta.set(instrument.symbol, {
      last: price,
      volume: delta.volume + quantity,
      trades: delta.trades + 1,
    });
  }

  private async cancelled(
    manager: EntityManager,
    instrument: Instrument,
    cancellation: Cancellation,
    touched: string[],
    by?: string,
    code?: string,
  ): Promise<void> {
    touched.push(cancellation.orderId);
    const quantity = BigInt(cancellation.quantity) * instrument.lotSize;
    await manager.query(`UPDATE orders SET status = 'CANCELLED' WHERE order_id = $1`, [
      cancellation.orderId,
    ]);
    await releaseReservation(manager, cancellation.orderId);
    await publishOrderEvent(
      manager,
      this.config.KAFKA_TOPIC_PREFIX,
      cancellation.orderId,
      OrderCancelled,
      {
        orderId: cancellation.orderId,
        cancelledQuantity: quantity.toString(),
        reason: {
          code: code ?? cancellation.reason,
          message: CANCEL_MESSAGES[cancellation.reason] + (by ? ` by ${by}` : ''),
        },
      },
    );
  }
}

const CANCEL_MESSAGES: Record<Cancellation['reason'], string> = {
  REQUESTED: 'cancelled on request',
  EXPIRED: 'expired at the end of the session',
  IOC_REMAINDER: 'immediate-or-cancel: the rest could not fill at once',
  FOK_NOT_FILLABLE: 'fill-or-kill: could not fill completely, nothing traded',
  MARKET_NO_LIQUIDITY: 'market order: no more liquidity on the other side',
  PROTECTION_PRICE: 'market order: the next price is beyond its protection price',
  SELF_TRADE: 'self-trade prevention: both sides have the same owner',
};
