// Tables of the risk-quota branch of order placement: limits and usage per account and currency,
// the reservation each Try made, and the revision counter of each account's limit events.
import { MigrationInterface, QueryRunner } from 'typeorm';

export class RiskQuota1764115200000 implements MigrationInterface {
  name = 'RiskQuota1764115200000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE risk_limits (
        account_id            text        NOT NULL,
        currency              text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
        -- NULL until a risk officer sets them: the configured defaults apply, and keep applying
        -- when the configuration changes (a Try creates the row only to count usage).
        max_order_value_minor bigint      CHECK (max_order_value_minor >= 0),
        quota_minor           bigint      CHECK (quota_minor >= 0),
        -- Value of the open orders. It may exceed quota_minor after an officer lowers the quota:
        -- open orders stay, new reservations are refused until usage is back under it, so the
        -- quota is enforced by the reserving UPDATE rather than by a CHECK.
        used_minor            bigint      NOT NULL DEFAULT 0 CHECK (used_minor >= 0),
        limits_set_by         text,
        limits_set_at         timestamptz,
        PRIMARY KEY (account_id, currency),
        CHECK ((max_order_value_minor IS NULL) = (quota_minor IS NULL))
      )`);
    await db.query(`
      CREATE TABLE risk_reservations (
        gtid         text        NOT NULL,
        branch_id    text        NOT NULL,
        order_id     text        NOT NULL,
        account_id   text        NOT NULL,
        currency     text        NOT NULL,
        amount_minor bigint      NOT NULL CHECK (amount_minor > 0),
        state        text        NOT NULL CHECK (state IN ('RESERVED', 'CONFIRMED', 'RELEASED')),
        created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (gtid, branch_id)
      )`);
    await db.query(
      `CREATE INDEX risk_reservations_open ON risk_reservations (account_id, created_at) WHERE state <> 'RELEASED'`,
    );
    // RiskLimitChanged events are keyed by account: their aggregate sequence comes from here.
    await db.query(`
      CREATE TABLE risk_limit_revisions (
        account_id text   PRIMARY KEY,
        revision   bigint NOT NULL
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE risk_limit_revisions');
    await db.query('DROP TABLE risk_reservations');
    await db.query('DROP TABLE risk_limits');
  }
}
