// Retention of the audit log: the record of archived months (audit_archives), legal holds, the one
// function through which a month's partition may be detached and dropped, and an event trigger that
// refuses every other DROP or ALTER of the audit tables.
//
// The service's role owns the tables (it runs the migrations), and an owner may always DROP or ALTER
// what it owns: privileges cannot take that away. An event trigger can, but only a superuser may
// create one. So where the migration runs as a superuser (tests, `npm start`) it installs the guard
// itself; in production the cluster's bootstrap SQL installs the same guard as the superuser
// (AUDIT_DDL_GUARD_SQL, see the README). The guard lets a DROP or ALTER of an audit table through
// only while the transaction-local setting `audit.retention_drop` names that table, which only
// audit_drop_archived_partition() sets, after checking that the month was archived (a row in the
// append-only audit_archives matching its entries) and that no active legal hold covers an entry of
// it. Setting the flag by hand also needs such a row, which stays behind for auditors.
import { MigrationInterface, QueryRunner } from 'typeorm';

/** Entries covered by an active hold, for a table or partition of audit_entries aliased `e`. */
export const HOLD_COVERS_ENTRY = `
  (h.scope = 'ACCOUNT' AND (
     e.aggregate_id = h.subject_id
     OR (e.payload::jsonb -> 'data') ->> 'accountId' = h.subject_id
     OR (e.payload::jsonb -> 'data' -> 'buy') ->> 'accountId' = h.subject_id
     OR (e.payload::jsonb -> 'data' -> 'sell') ->> 'accountId' = h.subject_id))
  OR (h.scope = 'ORDER' AND (
     e.aggregate_id = h.subject_id
     OR e.correlation_id = h.subject_id
     OR (e.payload::jsonb -> 'data' -> 'buy') ->> 'orderId' = h.subject_id
     OR (e.payload::jsonb -> 'data' -> 'sell') ->> 'orderId' = h.subject_id))`;

/**
 * The guard, as a superuser runs it (idempotent). A dropped or altered relation named audit_% (or a
 * trigger on one) is refused unless `audit.retention_drop` names it.
 */
export const AUDIT_DDL_GUARD_SQL = `
  CREATE OR REPLACE FUNCTION audit_guard_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
  DECLARE
    allowed text := coalesce(current_setting('audit.retention_drop', true), '');
    item record;
  BEGIN
    IF TG_EVENT = 'sql_drop' THEN
      FOR item IN SELECT * FROM pg_event_trigger_dropped_objects() LOOP
        CONTINUE WHEN item.object_type NOT IN ('table', 'trigger')
                   OR item.object_identity NOT LIKE '%audit\\_%';
        -- Within audit_drop_archived_partition(): that month's table and its own triggers.
        CONTINUE WHEN allowed <> '' AND (item.object_type = 'trigger' OR item.object_name = allowed);
        RAISE EXCEPTION 'audit log is append-only: DROP % % refused', upper(item.object_type), item.object_identity
          USING ERRCODE = 'insufficient_privilege',
                HINT = 'archived months are dropped only by audit_drop_archived_partition()';
      END LOOP;
    ELSE
      FOR item IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
        IF item.command_tag = 'ALTER TABLE' AND item.object_identity LIKE '%audit\\_%'
           AND allowed = '' THEN
          RAISE EXCEPTION 'audit log is append-only: ALTER TABLE % refused', item.object_identity
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'archived months are detached only by audit_drop_archived_partition()';
        END IF;
      END LOOP;
    END IF;
  END $$;
  DROP EVENT TRIGGER IF EXISTS audit_guard_drop;
  DROP EVENT TRIGGER IF EXISTS audit_guard_alter;
  CREATE EVENT TRIGGER audit_guard_drop ON sql_drop EXECUTE FUNCTION audit_guard_ddl();
  CREATE EVENT TRIGGER audit_guard_alter ON ddl_command_end WHEN TAG IN ('ALTER TABLE')
    EXECUTE FUNCTION audit_guard_ddl();`;

export class AuditRetentionTables1764892800000 implements MigrationInterface {
  name = 'AuditRetentionTables1764892800000';

  async up(db: QueryRunner): Promise<void> {
    // One row per archived month: where its export lies and what it holds. Append-only.
    await db.query(`
      CREATE TABLE audit_archives (
        id              bigserial   PRIMARY KEY,
        partition_name  text        NOT NULL UNIQUE,
        range_start     timestamptz NOT NULL,
        range_end       timestamptz NOT NULL CHECK (range_end > range_start),
        entry_count     bigint      NOT NULL CHECK (entry_count >= 0),
        -- [first_leaf, last_leaf]; null for a month without entries.
        first_leaf      bigint,
        last_leaf       bigint      CHECK (last_leaf >= first_leaf),
        location        text        NOT NULL,
        -- SHA-256 of the export file, hex.
        checksum        text        NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),
        checkpoint_size bigint      NOT NULL REFERENCES audit_checkpoints (tree_size),
        archived_at     timestamptz NOT NULL
      )`);
    await db.query(`
      CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit_archives
      FOR EACH ROW EXECUTE FUNCTION audit_reject_change()`);
    await db.query(`
      CREATE TRIGGER audit_append_only_truncate BEFORE TRUNCATE ON audit_archives
      FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change()`);
    await db.query('REVOKE UPDATE, DELETE, TRUNCATE ON audit_archives FROM PUBLIC, CURRENT_USER');

    // Holds are released, never deleted: the row keeps who placed and who released it.
    await db.query(`
      CREATE TABLE audit_legal_holds (
        id          uuid        PRIMARY KEY,
        scope       text        NOT NULL CHECK (scope IN ('ACCOUNT', 'ORDER')),
        subject_id  text        NOT NULL CHECK (length(subject_id) BETWEEN 1 AND 128),
        reason      text        NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
        placed_by   text        NOT NULL,
        placed_at   timestamptz NOT NULL,
        released_by text,
        released_at timestamptz,
        CHECK ((released_by IS NULL) = (released_at IS NULL))
      )`);
    await db.query(
      `CREATE INDEX audit_legal_holds_active ON audit_legal_holds (scope, subject_id) WHERE released_at IS NULL`,
    );
    // Releasing is the only change: once, and nothing else on the row moves.
    await db.query(`
      CREATE FUNCTION audit_hold_release_only() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP <> 'UPDATE' OR OLD.released_at IS NOT NULL OR NEW.released_at IS NULL
           OR (NEW.id, NEW.scope, NEW.subject_id, NEW.reason, NEW.placed_by, NEW.placed_at)
              IS DISTINCT FROM (OLD.id, OLD.scope, OLD.subject_id, OLD.reason, OLD.placed_by, OLD.placed_at) THEN
          RAISE EXCEPTION 'legal holds are only ever released: % on audit_legal_holds refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
      END $$`);
    await db.query(`
      CREATE TRIGGER audit_hold_release_only BEFORE UPDATE OR DELETE ON audit_legal_holds
      FOR EACH ROW EXECUTE FUNCTION audit_hold_release_only()`);
    await db.query(`
      CREATE TRIGGER audit_append_only_truncate BEFORE TRUNCATE ON audit_legal_holds
      FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change()`);
    await db.query('REVOKE DELETE, TRUNCATE ON audit_legal_holds FROM PUBLIC, CURRENT_USER');

    // The only way a month leaves the database. Re-checks in the same transaction what the service
    // checked before archiving, so a hold placed meanwhile or a changed month still stops the drop.
    await db.query(`
      CREATE FUNCTION audit_drop_archived_partition(archive_id bigint) RETURNS text
      LANGUAGE plpgsql AS $$
      DECLARE
        a audit_archives%ROWTYPE;
        stats record;
        held uuid;
      BEGIN
        SELECT * INTO a FROM audit_archives WHERE id = archive_id;
        IF NOT FOUND THEN
          RAISE EXCEPTION 'no archive %', archive_id USING ERRCODE = 'no_data_found';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_inherits i
                         JOIN pg_class c ON c.oid = i.inhrelid
                        WHERE i.inhparent = 'audit_entries'::regclass AND c.relname = a.partition_name) THEN
          RAISE EXCEPTION '% is not a partition of audit_entries', a.partition_name;
        END IF;
        -- Blocks appends to the month while we look, then drop it.
        EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', a.partition_name);
        EXECUTE format('SELECT count(*) AS n, min(leaf_index) AS lo, max(leaf_index) AS hi FROM %I',
                       a.partition_name) INTO stats;
        IF stats.n <> a.entry_count OR stats.lo IS DISTINCT FROM a.first_leaf
           OR stats.hi IS DISTINCT FROM a.last_leaf THEN
          RAISE EXCEPTION '% holds entries [%, %] (%), the archive [%, %] (%): not dropping',
            a.partition_name, stats.lo, stats.hi, stats.n, a.first_leaf, a.last_leaf, a.entry_count;
        END IF;
        EXECUTE format('SELECT h.id FROM audit_legal_holds h WHERE h.released_at IS NULL
                          AND EXISTS (SELECT 1 FROM %I e WHERE ${HOLD_COVERS_ENTRY.replace(/'/g, "''")}) LIMIT 1',
                       a.partition_name) INTO held;
        IF held IS NOT NULL THEN
          RAISE EXCEPTION '% holds entries under legal hold %: not dropping', a.partition_name, held;
        END IF;
        PERFORM set_config('audit.retention_drop', a.partition_name, true);
        EXECUTE format('ALTER TABLE audit_entries DETACH PARTITION %I', a.partition_name);
        EXECUTE format('DROP TABLE %I', a.partition_name);
        PERFORM set_config('audit.retention_drop', '', true);
        RETURN a.partition_name;
      END $$`);

    const [{ superuser }]: Array<{ superuser: boolean }> = await db.query(
      'SELECT rolsuper AS superuser FROM pg_roles WHERE rolname = current_user',
    );
    if (superuser) await db.query(AUDIT_DDL_GUARD_SQL);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP EVENT TRIGGER IF EXISTS audit_guard_alter');
    await db.query('DROP EVENT TRIGGER IF EXISTS audit_guard_drop');
    await db.query('DROP FUNCTION IF EXISTS audit_guard_ddl()');
    await db.query('DROP FUNCTION audit_drop_archived_partition(bigint)');
    await db.query('DROP TABLE audit_legal_holds, audit_archives');
    await db.query('DROP FUNCTION audit_hold_release_only()');
  }
}
