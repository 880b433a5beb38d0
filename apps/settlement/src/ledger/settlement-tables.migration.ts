// Settlement's own tables: the double-entry ledger (accounts per party and asset, immutable
// transfers), the obligations executed trades create, settlement cycles with what each settled and
// failed, and what an order's clearing reservation still holds as its trades settle.
// Amounts are bigint minor units (cash) or whole shares (securities) next to their asset.
import { MigrationInterface, QueryRunner } from 'typeorm';

export class SettlementTables1765324800000 implements MigrationInterface {
  name = 'SettlementTables1765324800000';

  async up(db: QueryRunner): Promise<void> {
    // A ledger account's balance is credits - debits. Accounts that must never go short (a client's
    // cash or shares, the firm's fee income) say so, and PostgreSQL refuses any posting or pending
    // transfer that would take them below zero, whatever the code does.
    await db.query(`
      CREATE TABLE ledger_accounts (
        ledger_account_id bigserial PRIMARY KEY,
        party             text    NOT NULL,
        asset             text    NOT NULL,
        asset_kind        text    NOT NULL CHECK (asset_kind IN ('CASH', 'SECURITY')),
        kind              text    NOT NULL CHECK (kind IN ('CLIENT', 'CCP', 'FEES', 'EXTERNAL')),
        debits_pending    bigint  NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
        debits_posted     bigint  NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
        credits_pending   bigint  NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
        credits_posted    bigint  NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
        debits_must_not_exceed_credits boolean NOT NULL,
        created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
        UNIQUE (kind, party, asset_kind, asset),
        CONSTRAINT ledger_accounts_no_overdraft CHECK (
          NOT debits_must_not_exceed_credits OR debits_posted + debits_pending <= credits_posted)
      )`);
    // Transfers are never changed or removed: a pending one is closed by a POST_PENDING or
    // VOID_PENDING transfer of its own, a mistake by a reversing transfer.
    await db.query(`
      CREATE TABLE ledger_transfers (
        transfer_id       text        PRIMARY KEY,
        sequence          bigserial   NOT NULL UNIQUE,
        debit_account_id  bigint      NOT NULL REFERENCES ledger_accounts,
        credit_account_id bigint      NOT NULL REFERENCES ledger_accounts,
        asset             text        NOT NULL,
        amount            bigint      NOT NULL CHECK (amount > 0),
        kind              text        NOT NULL CHECK (kind IN ('POSTED', 'PENDING', 'POST_PENDING', 'VOID_PENDING')),
        pending_id        text        REFERENCES ledger_transfers (transfer_id),
        reverses_id       text        REFERENCES ledger_transfers (transfer_id),
        code              text        NOT NULL,
        reference         text,
        created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
        CHECK (debit_account_id <> credit_account_id),
        CHECK ((kind IN ('POST_PENDING', 'VOID_PENDING')) = (pending_id IS NOT NULL))
      )`);
    // A pending transfer is closed at most once, and a transfer is reversed at most once.
    await db.query(
      `CREATE UNIQUE INDEX ledger_transfers_one_close ON ledger_transfers (pending_id) WHERE pending_id IS NOT NULL`,
    );
    await db.query(
      `CREATE UNIQUE INDEX ledger_transfers_one_reversal ON ledger_transfers (reverses_id) WHERE reverses_id IS NOT NULL`,
    );
    await db.query(`CREATE INDEX ledger_transfers_debit ON ledger_transfers (debit_account_id)`);
    await db.query(`CREATE INDEX ledger_transfers_credit ON ledger_transfers (credit_account_id)`);
    await db.query(`
      CREATE FUNCTION ledger_transfers_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'ledger transfers are immutable: correct a transfer with a reversing one'
          USING ERRCODE = 'insufficient_privilege';
      END $$`);
    await db.query(`
      CREATE TRIGGER ledger_transfers_no_update BEFORE UPDATE OR DELETE ON ledger_transfers
      FOR EACH ROW EXECUTE FUNCTION ledger_transfers_immutable()`);
    await db.query(`
      CREATE TRIGGER ledger_transfers_no_truncate BEFORE TRUNCATE ON ledger_transfers
      FOR EACH STATEMENT EXECUTE FUNCTION ledger_transfers_immutable()`);

    // One obligation per executed trade: the buyer owes cash (value + fee) and receives shares, the
    // seller owes shares and receives the value.
    await db.query(`
      CREATE TABLE settlement_obligations (
        trade_id          text        PRIMARY KEY,
        symbol            text        NOT NULL,
        currency          char(3)     NOT NULL,
        price_minor       bigint      NOT NULL CHECK (price_minor > 0),
        quantity          bigint      NOT NULL CHECK (quantity > 0),
        value_minor       bigint      NOT NULL CHECK (value_minor > 0),
        buyer_fee_minor   bigint      NOT NULL CHECK (buyer_fee_minor >= 0),
        buy_account_id    text        NOT NULL,
        sell_account_id   text        NOT NULL,
        buy_order_id      text        NOT NULL,
        sell_order_id     text        NOT NULL,
        executed_at       timestamptz NOT NULL,
        settlement_date   date        NOT NULL,
        state             text        NOT NULL CHECK (state IN ('OPEN', 'SETTLED', 'FAILED')),
        failed_cycles     integer     NOT NULL DEFAULT 0,
        first_failed_at   timestamptz,
        last_fail_code    text,
        last_fail_message text,
        settled_cycle_id  text,
        closed_at         timestamptz,
        saga_id           text,
        -- Number of events published for the trade (their aggregate sequence).
        version           integer     NOT NULL DEFAULT 0,
        -- When trading confirmed it applied the settlement (its first OrderSettled for the trade).
        trading_settled_at timestamptz,
        created_at        timestamptz NOT NULL DEFAULT clock_timestamp()
      )`);
    await db.query(
      `CREATE INDEX settlement_obligations_due ON settlement_obligations (settlement_date, executed_at) WHERE state = 'OPEN'`,
    );
    await db.query(
      `CREATE INDEX settlement_obligations_accounts ON settlement_obligations (buy_account_id, sell_account_id)`,
    );

    // A cycle nets what is due, reserves the net movements as pending transfers (phase NETTED), then
    // posts them (POSTED). A cycle interrupted after netting is finished by the next request.
    await db.query(`
      CREATE TABLE settlement_cycles (
        cycle_id        text        PRIMARY KEY,
        sequence        bigserial   NOT NULL UNIQUE,
        business_date   date        NOT NULL,
        state           text        NOT NULL CHECK (state IN ('NETTED', 'POSTED')),
        requested_by    text        NOT NULL,
        trades_settled  integer     NOT NULL DEFAULT 0,
        trades_failed   integer     NOT NULL DEFAULT 0,
        transfers       integer     NOT NULL DEFAULT 0,
        started_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
        netted_at       timestamptz,
        posted_at       timestamptz
      )`);
    await db.query(`
      CREATE TABLE settlement_cycle_trades (
        cycle_id     text    NOT NULL REFERENCES settlement_cycles,
        trade_id     text    NOT NULL REFERENCES settlement_obligations,
        outcome      text    NOT NULL CHECK (outcome IN ('SETTLED', 'FAILED')),
        fail_code    text,
        fail_message text,
        failed_cycles integer NOT NULL DEFAULT 0,
        -- For a fail: CARRIED_OVER to the next cycle, or UNWOUND (its last allowed cycle).
        disposition  text    NOT NULL CHECK (disposition IN ('SETTLED', 'CARRIED_OVER', 'UNWOUND')),
        PRIMARY KEY (cycle_id, trade_id)
      )`);
    await db.query(
      `CREATE UNIQUE INDEX settlement_cycle_trades_settled_once ON settlement_cycle_trades (trade_id) WHERE outcome = 'SETTLED'`,
    );
    // Net movement of each party and asset in a cycle (positive: the party receives).
    await db.query(`
      CREATE TABLE settlement_cycle_movements (
        cycle_id   text   NOT NULL REFERENCES settlement_cycles,
        party      text   NOT NULL,
        asset      text   NOT NULL,
        asset_kind text   NOT NULL,
        net        bigint NOT NULL,
        transfer_id text  REFERENCES ledger_transfers,
        PRIMARY KEY (cycle_id, party, asset)
      )`);

    // What each order's clearing reservation still holds: the open part of the order at its
    // reserved price, plus the value of its trades that have not settled yet.
    await db.query(`
      ALTER TABLE clearing_reservations
        ADD COLUMN quantity        bigint CHECK (quantity > 0),
        ADD COLUMN filled_quantity bigint NOT NULL DEFAULT 0,
        ADD COLUMN open            boolean NOT NULL DEFAULT true,
        ADD COLUMN unsettled_minor bigint NOT NULL DEFAULT 0 CHECK (unsettled_minor >= 0),
        ADD COLUMN held_minor      bigint`);
    await db.query(
      `UPDATE clearing_reservations SET held_minor = CASE WHEN state = 'RELEASED' THEN 0 ELSE amount_minor END`,
    );
    await db.query(
      `ALTER TABLE clearing_reservations ALTER COLUMN held_minor SET NOT NULL, ADD CHECK (held_minor >= 0)`,
    );
    await db.query(
      `CREATE INDEX clearing_reservations_order ON clearing_reservations (order_id) WHERE state <> 'RELEASED'`,
    );
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP INDEX clearing_reservations_order');
    await db.query(`
      ALTER TABLE clearing_reservations DROP COLUMN quantity, DROP COLUMN filled_quantity,
        DROP COLUMN open, DROP COLUMN unsettled_minor, DROP COLUMN held_minor`);
    for (const table of [
      'settlement_cycle_movements',
      'settlement_cycle_trades',
      'settlement_cycles',
      'settlement_obligations',
    ]) {
      await db.query(`DROP TABLE ${table}`);
    }
    await db.query('DROP TRIGGER ledger_transfers_no_truncate ON ledger_transfers');
    await db.query('DROP TRIGGER ledger_transfers_no_update ON ledger_transfers');
    await db.query('DROP TABLE ledger_transfers');
    await db.query('DROP FUNCTION ledger_transfers_immutable()');
    await db.query('DROP TABLE ledger_accounts');
  }
}
