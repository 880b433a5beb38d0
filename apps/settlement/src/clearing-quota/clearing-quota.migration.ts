// Tables of the clearing-quota branch of order placement: usage against the firm-wide and the
// per-account clearing quota, and the reservation each Try made.
import { MigrationInterface, QueryRunner } from 'typeorm';

export class ClearingQuota1764115200001 implements MigrationInterface {
  name = 'ClearingQuota1764115200001';

  async up(db: QueryRunner): Promise<void> {
    // quota_minor NULL: the configured quota applies (and follows the configuration). Nothing sets
    // it yet; the column is where a future writer will. Usage may exceed a quota lowered later, so
    // the quota is enforced by the reserving UPDATE rather than by a CHECK.
    await db.query(`
      CREATE TABLE clearing_firm_quota (
        currency    text   PRIMARY KEY CHECK (currency ~ '^[A-Z]{3}$'),
        quota_minor bigint CHECK (quota_minor >= 0),
        used_minor  bigint NOT NULL DEFAULT 0 CHECK (used_minor >= 0)
      )`);
    await db.query(`
      CREATE TABLE clearing_quota (
        account_id  text   NOT NULL,
        currency    text   NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
        quota_minor bigint CHECK (quota_minor >= 0),
        used_minor  bigint NOT NULL DEFAULT 0 CHECK (used_minor >= 0),
        PRIMARY KEY (account_id, currency)
      )`);
    await db.query(`
      CREATE TABLE clearing_reservations (
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
      `CREATE INDEX clearing_reservations_open ON clearing_reservations (account_id, created_at) WHERE state <> 'RELEASED'`,
    );
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE clearing_reservations');
    await db.query('DROP TABLE clearing_quota');
    await db.query('DROP TABLE clearing_firm_quota');
  }
}
