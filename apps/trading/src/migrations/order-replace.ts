// Cancel/replace goes through the matching engine's queue like a cancel, with the new price and
// total quantity on the command.
import { MigrationInterface, QueryRunner } from 'typeorm';

export class OrderReplace1764288000000 implements MigrationInterface {
  name = 'OrderReplace1764288000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`ALTER TABLE matching_commands DROP CONSTRAINT matching_commands_kind_check`);
    await db.query(
      `ALTER TABLE matching_commands ADD CONSTRAINT matching_commands_kind_check CHECK (kind IN ('NEW', 'CANCEL', 'REPLACE'))`,
    );
    await db.query(
      `ALTER TABLE matching_commands ADD COLUMN price_minor bigint, ADD COLUMN quantity bigint`,
    );
    await db.query(`
      ALTER TABLE matching_commands ADD CONSTRAINT matching_commands_replace_fields
        CHECK (kind <> 'REPLACE' OR (price_minor > 0 AND quantity > 0))`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DELETE FROM matching_commands WHERE kind = 'REPLACE'`);
    await db.query(
      `ALTER TABLE matching_commands DROP CONSTRAINT matching_commands_replace_fields`,
    );
    await db.query(`ALTER TABLE matching_commands DROP COLUMN price_minor, DROP COLUMN quantity`);
    await db.query(`ALTER TABLE matching_commands DROP CONSTRAINT matching_commands_kind_check`);
    await db.query(
      `ALTER TABLE matching_commands ADD CONSTRAINT matching_commands_kind_check CHECK (kind IN ('NEW', 'CANCEL'))`,
    );
  }
}
