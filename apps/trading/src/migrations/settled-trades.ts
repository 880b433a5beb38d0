// Trading's side of settlement: when each trade settled (or was unwound after failing to settle),
// the fee income that settled trades paid to the firm, per currency, and a sequence for each
// account's events.
import { MigrationInterface, QueryRunner } from 'typeorm';

export class SettledTrades1765411200000 implements MigrationInterface {
  name = 'SettledTrades1765411200000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      ALTER TABLE trades
        ADD COLUMN settled_at          timestamptz,
        ADD COLUMN settlement_cycle_id text,
        ADD COLUMN unwound_at          timestamptz,
        ADD CONSTRAINT trades_settled_or_unwound CHECK (settled_at IS NULL OR unwound_at IS NULL)`);
    await db.query(
      `CREATE INDEX trades_unsettled ON trades (executed_at) WHERE settled_at IS NULL AND unwound_at IS NULL`,
    );
    // Account events are numbered per account like order events (their aggregate sequence).
    await db.query(`ALTER TABLE accounts ADD COLUMN version integer NOT NULL DEFAULT 0`);
    await db.query(`
      CREATE TABLE fee_income (
        currency char(3) PRIMARY KEY,
        amount   bigint  NOT NULL DEFAULT 0 CHECK (amount >= 0)
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE fee_income');
    await db.query('ALTER TABLE accounts DROP COLUMN version');
    await db.query('DROP INDEX trades_unsettled');
    await db.query(`
      ALTER TABLE trades DROP CONSTRAINT trades_settled_or_unwound, DROP COLUMN settled_at,
        DROP COLUMN settlement_cycle_id, DROP COLUMN unwound_at`);
  }
}
