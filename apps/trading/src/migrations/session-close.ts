// Each session close the matching engine has carried out (DAY orders expired), so a restart neither
// repeats one nor misses one.
import { MigrationInterface, QueryRunner } from 'typeorm';

export class SessionClose1764374400000 implements MigrationInterface {
  name = 'SessionClose1764374400000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE session_closes (
        closed_at  timestamptz PRIMARY KEY,
        expired    int         NOT NULL,
        done_at    timestamptz NOT NULL DEFAULT clock_timestamp()
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE session_closes');
  }
}
