// Tables of the event store: the append-only event log, one row per stream (its version, the lock
// writers serialise on), the latest snapshot per stream and the checkpoint of each projection.
import { MigrationInterface, QueryRunner } from 'typeorm';

export class EventStoreTables1763856000000 implements MigrationInterface {
  name = 'EventStoreTables1763856000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE streams (
        stream_id      text   PRIMARY KEY,
        aggregate_type text   NOT NULL,
        version        bigint NOT NULL CHECK (version >= 1)
      )`);
    // transaction_id records which transaction wrote the row: readers of the whole log order by it
    // so an event committed late is never behind a checkpoint that has already moved past it.
    await db.query(`
      CREATE TABLE events (
        global_position bigserial   PRIMARY KEY,
        transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
        stream_id       text        NOT NULL,
        stream_version  bigint      NOT NULL CHECK (stream_version >= 1),
        event_id        uuid        NOT NULL,
        type            text        NOT NULL,
        version         integer     NOT NULL,
        data            jsonb       NOT NULL,
        metadata        jsonb       NOT NULL,
        recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
        CONSTRAINT events_event_id_key UNIQUE (event_id),
        CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
      )`);
    await db.query(`CREATE INDEX events_read_all ON events (transaction_id, global_position)`);
    // The log is a record of what happened: corrections are new events, never edits.
    await db.query(`
      CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'events are append-only: % is not allowed', TG_OP
          USING ERRCODE = 'restrict_violation';
      END $$`);
    await db.query(`
      CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
      FOR EACH STATEMENT EXECUTE FUNCTION events_append_only()`);
    await db.query(`
      CREATE TABLE snapshots (
        stream_id      text        PRIMARY KEY,
        stream_version bigint      NOT NULL,
        state          jsonb       NOT NULL,
        state_version  integer     NOT NULL,
        taken_at       timestamptz NOT NULL DEFAULT clock_timestamp()
      )`);
    await db.query(`
      CREATE TABLE projection_checkpoints (
        name            text        PRIMARY KEY,
        transaction_id  xid8        NOT NULL DEFAULT '0',
        global_position bigint      NOT NULL DEFAULT 0,
        updated_at      timestamptz NOT NULL DEFAULT clock_timestamp()
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE projection_checkpoints');
    await db.query('DROP TABLE snapshots');
    await db.query('DROP TABLE events');
    await db.query('DROP FUNCTION events_append_only()');
    await db.query('DROP TABLE streams');
  }
}
