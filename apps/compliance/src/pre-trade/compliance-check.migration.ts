// The compliance-check branch's table: one row per pre-trade check that passed, which is also what the
// orders-per-owner-per-hour rule counts.
import { MigrationInterface, QueryRunner } from 'typeorm';

export class ComplianceChecks1764460800000 implements MigrationInterface {
  name = 'ComplianceChecks1764460800000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE compliance_checks (
        gtid            text        NOT NULL,
        branch_id       text        NOT NULL,
        order_id        text        NOT NULL,
        account_id      text        NOT NULL,
        -- The beneficial owner (or the account when trading sent none): the rule's "user".
        owner           text        NOT NULL,
        symbol          text        NOT NULL,
        side            text        NOT NULL CHECK (side IN ('BUY', 'SELL')),
        notional_amount numeric     NOT NULL CHECK (notional_amount >= 0),
        currency        text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
        -- ACCEPTED by the Try, then CONFIRMED (placed) or RELEASED (another branch refused).
        state           text        NOT NULL CHECK (state IN ('ACCEPTED', 'CONFIRMED', 'RELEASED')),
        checked_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (gtid, branch_id)
      )`);
    await db.query(
      'CREATE INDEX compliance_checks_owner_time ON compliance_checks (owner, checked_at)',
    );
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE compliance_checks');
  }
}
