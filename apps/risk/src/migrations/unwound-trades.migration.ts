// A trade that could not settle and was unwound leaves the positions: risk remembers when.
import { MigrationInterface, QueryRunner } from 'typeorm';

export class UnwoundTrades1765497600000 implements MigrationInterface {
  name = 'UnwoundTrades1765497600000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`ALTER TABLE risk_trades ADD COLUMN unwound_at timestamptz`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`ALTER TABLE risk_trades DROP COLUMN unwound_at`);
  }
}
