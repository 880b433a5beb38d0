// Trading's own tables: instruments, accounts with cash and holdings (available / frozen / pending
// settlement), idempotent transfers, orders, the funds reserved by each placement branch, and trades.
// Amounts are bigint minor units next to their currency; quantities are whole shares.
import { MigrationInterface, QueryRunner } from 'typeorm';

export class TradingTables1764201600000 implements MigrationInterface {
  name = 'TradingTables1764201600000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE instruments (
        symbol          text    PRIMARY KEY,
        currency        char(3) NOT NULL,
        tick_size_minor bigint  NOT NULL CHECK (tick_size_minor > 0),
        lot_size        bigint  NOT NULL CHECK (lot_size > 0),
        active          boolean NOT NULL DEFAULT true
      )`);
    // Reference data for development and tests; production loads its own list.
    await db.query(`
      INSERT INTO instruments (symbol, currency, tick_size_minor, lot_size) VALUES
        ('AAPL', 'USD', 1, 1), ('MSFT', 'USD', 1, 1), ('TSLA', 'USD', 1, 1),
        ('SAP', 'EUR', 1, 1), ('VOD', 'GBP', 1, 1), ('7203', 'JPY', 1, 100)`);
    await db.query(`
      CREATE TABLE accounts (
        account_id text        PRIMARY KEY,
        owner      text        NOT NULL,
        created_by text        NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    // pending_out: committed by executed trades, leaves at settlement; pending_in: arrives then.
    for (const [table, key] of [
      ['cash_balances', 'currency char(3)'],
      ['holdings', 'symbol text'],
    ]) {
      await db.query(`
        CREATE TABLE ${table} (
          account_id  text   NOT NULL REFERENCES accounts,
          ${key}      NOT NULL,
          available   bigint NOT NULL DEFAULT 0 CHECK (available >= 0),
          frozen      bigint NOT NULL DEFAULT 0 CHECK (frozen >= 0),
          pending_out bigint NOT NULL DEFAULT 0 CHECK (pending_out >= 0),
          pending_in  bigint NOT NULL DEFAULT 0 CHECK (pending_in >= 0),
          PRIMARY KEY (account_id, ${key.split(' ')[0]})
        )`);
    }
    await db.query(`
      CREATE TABLE account_transfers (
        account_id text        NOT NULL REFERENCES accounts,
        request_id text        NOT NULL,
        direction  text        NOT NULL CHECK (direction IN ('DEPOSIT', 'WITHDRAWAL')),
        asset_kind text        NOT NULL CHECK (asset_kind IN ('CASH', 'SECURITY')),
        asset      text        NOT NULL,
        amount     bigint      NOT NULL CHECK (amount > 0),
        created_by text        NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (account_id, request_id)
      )`);
    await db.query(`
      CREATE TABLE orders (
        order_id          text        PRIMARY KEY,
        account_id        text        NOT NULL REFERENCES accounts,
        client_order_id   text        NOT NULL,
        symbol            text        NOT NULL REFERENCES instruments,
        side              text        NOT NULL CHECK (side IN ('BUY', 'SELL')),
        order_type        text        NOT NULL CHECK (order_type IN ('LIMIT', 'MARKET')),
        time_in_force     text        NOT NULL CHECK (time_in_force IN ('GTC', 'IOC', 'FOK', 'DAY')),
        currency          char(3)     NOT NULL,
        price_minor       bigint      CHECK (price_minor > 0),
        protection_minor  bigint      CHECK (protection_minor > 0),
        quantity          bigint      NOT NULL CHECK (quantity > 0),
        filled_quantity   bigint      NOT NULL DEFAULT 0,
        notional_minor    bigint      NOT NULL,
        fees_minor        bigint      NOT NULL,
        status            text        NOT NULL,
        gtid              text        NOT NULL UNIQUE,
        reject_branch     text,
        reject_code       text,
        reject_message    text,
        -- Set when the matching engine has taken the order; its place in the book's time priority.
        booked_at         timestamptz,
        priority          bigint,
        -- Number of events published for the order (their aggregate sequence).
        version           int         NOT NULL DEFAULT 0,
        created_by        text        NOT NULL,
        created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
        UNIQUE (account_id, client_order_id),
        CHECK (filled_quantity >= 0 AND filled_quantity <= quantity)
      )`);
    await db.query(`CREATE INDEX orders_by_account ON orders (account_id, created_at DESC)`);
    await db.query(
      `CREATE INDEX orders_resting ON orders (symbol, priority) WHERE status IN ('NEW', 'PARTIALLY_FILLED') AND booked_at IS NOT NULL`,
    );
    // What the funds branch of each placement froze, and what of it is still frozen.
    await db.query(`
      CREATE TABLE order_reservations (
        order_id   text        PRIMARY KEY REFERENCES orders,
        gtid       text        NOT NULL,
        account_id text        NOT NULL,
        asset_kind text        NOT NULL CHECK (asset_kind IN ('CASH', 'SECURITY')),
        asset      text        NOT NULL,
        reserved   bigint      NOT NULL CHECK (reserved > 0),
        remaining  bigint      NOT NULL CHECK (remaining >= 0),
        state      text        NOT NULL CHECK (state IN ('RESERVED', 'CONFIRMED', 'RELEASED')),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    // Work for the matching engine, in the order it must happen: accepted orders and cancel requests.
    await db.query(`
      CREATE TABLE matching_commands (
        sequence     bigserial   PRIMARY KEY,
        kind         text        NOT NULL CHECK (kind IN ('NEW', 'CANCEL')),
        order_id     text        NOT NULL REFERENCES orders,
        requested_by text        NOT NULL,
        created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
        done_at      timestamptz
      )`);
    await db.query(
      `CREATE INDEX matching_commands_open ON matching_commands (sequence) WHERE done_at IS NULL`,
    );
    await db.query(
      `CREATE UNIQUE INDEX matching_commands_one_cancel ON matching_commands (order_id) WHERE kind = 'CANCEL'`,
    );
    await db.query(`
      CREATE TABLE trades (
        trade_id        text        PRIMARY KEY,
        sequence        bigserial   NOT NULL UNIQUE,
        symbol          text        NOT NULL,
        currency        char(3)     NOT NULL,
        price_minor     bigint      NOT NULL CHECK (price_minor > 0),
        quantity        bigint      NOT NULL CHECK (quantity > 0),
        buy_order_id    text        NOT NULL REFERENCES orders,
        sell_order_id   text        NOT NULL REFERENCES orders,
        buy_account_id  text        NOT NULL,
        sell_account_id text        NOT NULL,
        buyer_fee_minor bigint      NOT NULL DEFAULT 0,
        executed_at     timestamptz NOT NULL
      )`);
    await db.query(`CREATE INDEX trades_by_symbol ON trades (symbol, sequence)`);
    await db.query(`CREATE INDEX trades_by_buy_order ON trades (buy_order_id)`);
    await db.query(`CREATE INDEX trades_by_sell_order ON trades (sell_order_id)`);
  }

  async down(db: QueryRunner): Promise<void> {
    for (const table of [
      'trades',
      'matching_commands',
      'order_reservations',
      'orders',
      'account_transfers',
      'holdings',
      'cash_balances',
      'accounts',
      'instruments',
    ]) {
      await db.query(`DROP TABLE ${table}`);
    }
  }
}
