// The kill switches risk has engaged, as trading last heard of them: an order whose placement is
// decided while one covers it is cancelled at once instead of reaching the book.
import { MigrationInterface, QueryRunner } from 'typeorm';

export class KillSwitches1765152000000 implements MigrationInterface {
  name = 'KillSwitches1765152000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE kill_switches (
        scope      text        NOT NULL CHECK (scope IN ('FIRM', 'ACCOUNT', 'SYMBOL')),
        -- '' for the firm, else the account id or the symbol.
        target     text        NOT NULL,
        engaged    boolean     NOT NULL,
        reason     text        NOT NULL,
        changed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (scope, target)
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE kill_switches');
  }
}
