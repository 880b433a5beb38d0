// Tables every service owns for messaging: the outbox (events leave with the state change that
// caused them), the inbox (a redelivered message is recognised) and parked messages (a version this
// build cannot read yet, kept for replay after an upgrade).
import { MigrationInterface, QueryRunner } from 'typeorm';

export class MessagingTables1763769600000 implements MigrationInterface {
  name = 'MessagingTables1763769600000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE outbox (
        position     bigserial   PRIMARY KEY,
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
    // Every published row leaves a dead entry in that index: vacuum early, not at 20% churn.
    await db.query(`
      ALTER TABLE outbox SET (
        autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000,
        autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 10000
      )`);
    // Wakes the relay when a transaction that wrote to the outbox commits (once per statement).
    await db.query(`
      CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('outbox', '');
        RETURN NULL;
      END $$`);
    await db.query(`
      CREATE TRIGGER outbox_inserted AFTER INSERT ON outbox
      FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()`);
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
    await db.query(`
      CREATE TABLE parked_messages (
        id           bigserial   PRIMARY KEY,
        consumer     text        NOT NULL,
        topic        text        NOT NULL,
        partition    integer     NOT NULL,
        "offset"     bigint      NOT NULL,
        event_id     uuid,
        type         text        NOT NULL,
        version      integer     NOT NULL,
        payload      jsonb       NOT NULL,
        reason       text        NOT NULL,
        parked_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
        replayed_at  timestamptz
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE parked_messages');
    await db.query('DROP TABLE inbox');
    await db.query('DROP TABLE outbox');
    await db.query('DROP FUNCTION outbox_notify()');
  }
}
