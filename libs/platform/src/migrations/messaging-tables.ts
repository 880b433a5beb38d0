// Outbox and inbox tables every service owns: events leave with the state change that caused
// them (outbox) and a redelivered message is recognised (inbox).
import { MigrationInterface, QueryRunner } from 'typeorm';

export class MessagingTables1763769600000 implements MigrationInterface {
  name = 'MessagingTables1763769600000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE outbox (
        position     bigserial PRIMARY KEY,
        event_id     uuid        NOT NULL UNIQUE,
        topic        text        NOT NULL,
        message_key  text        NOT NULL,
        payload      jsonb       NOT NULL,
        headers      jsonb       NOT NULL DEFAULT '{}'::jsonb,
        created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
        published_at timestamptz
      )`);
    await db.query(
      `CREATE INDEX outbox_unpublished ON outbox (position) WHERE published_at IS NULL`,
    );
    await db.query(`
      CREATE TABLE inbox (
        consumer     text        NOT NULL,
        event_id     uuid        NOT NULL,
        topic        text        NOT NULL,
        partition    integer     NOT NULL,
        "offset"     bigint      NOT NULL,
        handled_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (consumer, event_id)
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE inbox');
    await db.query('DROP TABLE outbox');
  }
}
