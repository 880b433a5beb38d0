// Tables of risk's pre-trade controls, positions and kill switch: every limit as one row per scope
// (firm or account), the orders risk reserved (throttles, duplicates, open exposure), trades seen once
// (positions, prices, breakers), the kill switch with its history, breaches and alerts. The limits an
// officer had set move from risk_limits, which keeps only what each placement reserved.
import { formatMoney, isCurrency, money } from '@finance/money';
import { MigrationInterface, QueryRunner } from 'typeorm';

export class RiskControls1764547200000 implements MigrationInterface {
  name = 'RiskControls1764547200000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE risk_limit_values (
        scope      text        NOT NULL CHECK (scope IN ('FIRM', 'ACCOUNT')),
        -- '' for the firm: a primary key cannot hold NULL.
        account_id text        NOT NULL,
        name       text        NOT NULL,
        -- '' for limits that are not money.
        currency   text        NOT NULL,
        value      jsonb       NOT NULL,
        set_by     text        NOT NULL,
        set_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (scope, account_id, name, currency),
        CHECK ((scope = 'FIRM') = (account_id = ''))
      )`);
    const set: Array<{
      account_id: string;
      currency: string;
      max_order_value_minor: string;
      quota_minor: string;
      limits_set_by: string;
      limits_set_at: Date;
    }> = await db.query(
      `SELECT account_id, currency, max_order_value_minor, quota_minor, limits_set_by, limits_set_at
       FROM risk_limits WHERE quota_minor IS NOT NULL`,
    );
    for (const row of set) {
      if (!isCurrency(row.currency)) continue;
      for (const [name, minor] of [
        ['maxOrderValue', row.max_order_value_minor],
        ['quota', row.quota_minor],
      ] as const) {
        await db.query(
          `INSERT INTO risk_limit_values (scope, account_id, name, currency, value, set_by, set_at)
           VALUES ('ACCOUNT', $1, $2, $3, to_jsonb($4::text), $5, $6)`,
          [
            row.account_id,
            name,
            row.currency,
            formatMoney(money(row.currency, BigInt(minor))),
            row.limits_set_by ?? 'unknown',
            row.limits_set_at ?? new Date(),
          ],
        );
      }
    }
    // What stays is usage: the value each placement reserved (risk_reservations), per currency.
    await db.query(`ALTER TABLE risk_limits
      DROP COLUMN max_order_value_minor, DROP COLUMN quota_minor,
      DROP COLUMN limits_set_by, DROP COLUMN limits_set_at`);

    // One row per account, locked by each Try so that an account's checks and reservations are
    // serial: throttle counts and exposure then include every order reserved before.
    await db.query(
      `CREATE TABLE risk_accounts (account_id text PRIMARY KEY, tries bigint NOT NULL DEFAULT 0)`,
    );

    await db.query(`
      CREATE TABLE risk_orders (
        order_id        text        PRIMARY KEY,
        gtid            text        NOT NULL,
        account_id      text        NOT NULL,
        symbol          text        NOT NULL,
        side            text        NOT NULL CHECK (side IN ('BUY', 'SELL')),
        order_type      text        NOT NULL CHECK (order_type IN ('LIMIT', 'MARKET')),
        price           text,
        currency        text        NOT NULL,
        quantity        bigint      NOT NULL CHECK (quantity > 0),
        filled_quantity bigint      NOT NULL DEFAULT 0 CHECK (filled_quantity >= 0),
        open_quantity   bigint      NOT NULL CHECK (open_quantity >= 0),
        notional_minor  bigint      NOT NULL CHECK (notional_minor > 0),
        -- The open quantity's share of the notional: what the order adds to the account's exposure.
        open_minor      bigint      NOT NULL CHECK (open_minor >= 0),
        -- OPEN until filled or cancelled (DONE); RELEASED when the placement was cancelled.
        state           text        NOT NULL CHECK (state IN ('OPEN', 'DONE', 'RELEASED')),
        placed_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at      timestamptz NOT NULL DEFAULT clock_timestamp()
      )`);
    await db.query(`CREATE INDEX risk_orders_recent ON risk_orders (account_id, placed_at)`);
    await db.query(
      `CREATE INDEX risk_orders_same ON risk_orders (account_id, symbol, placed_at) WHERE state <> 'RELEASED'`,
    );
    await db.query(
      `CREATE INDEX risk_orders_open ON risk_orders (account_id, currency, symbol) WHERE open_quantity > 0`,
    );

    // Each trade once, though both of its orders' OrderExecuted events arrive.
    await db.query(`
      CREATE TABLE risk_trades (
        trade_id       text        PRIMARY KEY,
        symbol         text        NOT NULL,
        currency       text        NOT NULL,
        price_minor    bigint      NOT NULL CHECK (price_minor > 0),
        quantity       bigint      NOT NULL CHECK (quantity > 0),
        notional_minor numeric     NOT NULL,
        buy_account    text        NOT NULL,
        sell_account   text        NOT NULL,
        buy_order      text        NOT NULL,
        sell_order     text        NOT NULL,
        executed_at    timestamptz NOT NULL,
        received_at    timestamptz NOT NULL DEFAULT clock_timestamp()
      )`);
    await db.query(`CREATE INDEX risk_trades_symbol ON risk_trades (symbol, executed_at)`);
    await db.query(`CREATE INDEX risk_trades_buyer ON risk_trades (buy_account, executed_at)`);
    await db.query(`CREATE INDEX risk_trades_seller ON risk_trades (sell_account, executed_at)`);
    await db.query(`CREATE INDEX risk_trades_time ON risk_trades (executed_at)`);

    await db.query(`
      CREATE TABLE risk_positions (
        account_id     text        NOT NULL,
        symbol         text        NOT NULL,
        currency       text        NOT NULL,
        -- Signed: negative is short.
        quantity       bigint      NOT NULL,
        -- Signed cost of the open quantity at average cost (negative for a short), minor units.
        cost_minor     bigint      NOT NULL,
        realized_minor bigint      NOT NULL DEFAULT 0,
        updated_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (account_id, symbol)
      )`);
    await db.query(`CREATE INDEX risk_positions_symbol ON risk_positions (symbol)`);

    // The reference price of each symbol: its latest trade by execution time.
    await db.query(`
      CREATE TABLE risk_symbol_prices (
        symbol      text        PRIMARY KEY,
        currency    text        NOT NULL,
        price_minor bigint      NOT NULL CHECK (price_minor > 0),
        trade_id    text        NOT NULL,
        executed_at timestamptz NOT NULL
      )`);

    await db.query(`
      CREATE TABLE risk_kill_switches (
        switch_id      bigserial   PRIMARY KEY,
        scope          text        NOT NULL CHECK (scope IN ('FIRM', 'ACCOUNT', 'SYMBOL')),
        account_id     text,
        symbol         text,
        target         text        NOT NULL,
        reason         text        NOT NULL,
        -- MANUAL, or the breaker that tripped it (LOSS_LIMIT, PRICE_BAND, REJECTION_BURST).
        source         text        NOT NULL,
        engaged_by     text        NOT NULL,
        engaged_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
        released_by    text,
        released_at    timestamptz,
        release_reason text,
        CHECK ((scope = 'ACCOUNT') = (account_id IS NOT NULL)),
        CHECK ((scope = 'SYMBOL') = (symbol IS NOT NULL)),
        CHECK ((released_at IS NULL) = (released_by IS NULL))
      )`);
    // At most one engaged switch per target: engaging twice is one switch.
    await db.query(
      `CREATE UNIQUE INDEX risk_kill_switches_engaged ON risk_kill_switches (target) WHERE released_at IS NULL`,
    );

    await db.query(`
      CREATE TABLE risk_limit_breaches (
        gtid       text        NOT NULL,
        branch_id  text        NOT NULL,
        order_id   text        NOT NULL,
        account_id text        NOT NULL,
        symbol     text        NOT NULL,
        code       text        NOT NULL,
        message    text        NOT NULL,
        violations jsonb       NOT NULL,
        order_data jsonb       NOT NULL,
        decided_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (gtid, branch_id)
      )`);
    await db.query(
      `CREATE INDEX risk_limit_breaches_account ON risk_limit_breaches (account_id, decided_at)`,
    );
    await db.query(`CREATE INDEX risk_limit_breaches_time ON risk_limit_breaches (decided_at)`);

    await db.query(`
      CREATE TABLE risk_alerts (
        alert_id   text        PRIMARY KEY,
        kind       text        NOT NULL,
        severity   text        NOT NULL,
        scope      text        NOT NULL,
        account_id text,
        symbol     text,
        message    text        NOT NULL,
        switch_id  bigint      REFERENCES risk_kill_switches,
        trade_ids  jsonb       NOT NULL DEFAULT '[]',
        raised_at  timestamptz NOT NULL DEFAULT clock_timestamp()
      )`);
    await db.query(`CREATE INDEX risk_alerts_account ON risk_alerts (kind, account_id, raised_at)`);

    // Aggregate sequences of risk's other events (kill switch per target, alerts).
    await db.query(`
      CREATE TABLE risk_event_sequences (
        aggregate_type text   NOT NULL,
        aggregate_id   text   NOT NULL,
        revision       bigint NOT NULL,
        PRIMARY KEY (aggregate_type, aggregate_id)
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    for (const table of [
      'risk_event_sequences',
      'risk_alerts',
      'risk_limit_breaches',
      'risk_kill_switches',
      'risk_symbol_prices',
      'risk_positions',
      'risk_trades',
      'risk_orders',
      'risk_accounts',
    ]) {
      await db.query(`DROP TABLE ${table}`);
    }
    await db.query(`ALTER TABLE risk_limits
      ADD COLUMN max_order_value_minor bigint, ADD COLUMN quota_minor bigint,
      ADD COLUMN limits_set_by text, ADD COLUMN limits_set_at timestamptz`);
    await db.query('DROP TABLE risk_limit_values');
  }
}
