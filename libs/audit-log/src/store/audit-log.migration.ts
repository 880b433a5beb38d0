// Tables of the tamper-evident audit log. Entries are append-only and partitioned by month of
// appended_at, so retention can later detach or drop whole months; the Merkle tree (leaf hashes,
// stored subtrees, tree head) and the signed checkpoints are not partitioned and outlive them, so
// roots and proofs stay checkable after old payloads are archived.
//
// A trigger refuses UPDATE, DELETE and TRUNCATE for every role, and the privileges are revoked from
// PUBLIC and from the owner (the service's role). A superuser can still get past both (for example
// with SET session_replication_role = replica, which silences ordinary triggers): that is what
// signed checkpoints and the offline verifier are for, and what they detect.
import { MigrationInterface, QueryRunner } from 'typeorm';

/** Stored subtree levels are multiples of this (levels between are rehashed from at most 8 nodes). */
export const STORED_LEVEL_STEP = 4;

const APPEND_ONLY = ['audit_leaves', 'audit_tree_nodes', 'audit_checkpoints', 'audit_signing_keys'];

export class AuditLogTables1764288000000 implements MigrationInterface {
  name = 'AuditLogTables1764288000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE FUNCTION audit_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
          USING ERRCODE = 'insufficient_privilege',
                HINT = 'entries are never changed or removed; retention drops whole partitions';
      END $$`);

    // The single row every append locks, so leaf indexes follow commit order. The frontier (hashes
    // of the complete subtrees making up [0, tree_size)) lets an append hash without reading back.
    await db.query(`
      CREATE TABLE audit_tree_head (
        id         boolean     PRIMARY KEY DEFAULT true CHECK (id),
        tree_size  bigint      NOT NULL CHECK (tree_size >= 0),
        frontier   bytea[]     NOT NULL,
        updated_at timestamptz NOT NULL
      )`);
    await db.query(
      `INSERT INTO audit_tree_head (tree_size, frontier, updated_at) VALUES (0, '{}', clock_timestamp())`,
    );

    await db.query(`
      CREATE TABLE audit_entries (
        leaf_index     bigint      NOT NULL CHECK (leaf_index >= 0),
        appended_at    timestamptz NOT NULL,
        source         text        NOT NULL,
        event_id       uuid        NOT NULL,
        type           text        NOT NULL,
        producer       text        NOT NULL,
        aggregate_id   text        NOT NULL,
        correlation_id text        NOT NULL,
        trace_id       text,
        occurred_at    timestamptz NOT NULL,
        -- Canonical JSON, byte for byte what the leaf hash covers (jsonb would reorder it).
        payload        text        NOT NULL,
        leaf_hash      bytea       NOT NULL CHECK (octet_length(leaf_hash) = 32),
        -- A partitioned table's key must contain the partition column; audit_leaves keeps
        -- leaf_index and event_id unique across all months.
        PRIMARY KEY (leaf_index, appended_at)
      ) PARTITION BY RANGE (appended_at)`);

    // Level 0 of the tree and the log-wide uniqueness of leaf indexes and events.
    await db.query(`
      CREATE TABLE audit_leaves (
        leaf_index bigint PRIMARY KEY CHECK (leaf_index >= 0),
        event_id   uuid   NOT NULL UNIQUE,
        leaf_hash  bytea  NOT NULL CHECK (octet_length(leaf_hash) = 32)
      )`);

    // Complete subtrees at every ${STORED_LEVEL_STEP}th level: about n/15 rows, and any subtree
    // hash is at most 2^${STORED_LEVEL_STEP - 1} stored hashes away.
    await db.query(`
      CREATE TABLE audit_tree_nodes (
        level      smallint NOT NULL CHECK (level > 0 AND level % ${STORED_LEVEL_STEP} = 0),
        node_index bigint   NOT NULL CHECK (node_index >= 0),
        hash       bytea    NOT NULL CHECK (octet_length(hash) = 32),
        PRIMARY KEY (level, node_index)
      )`);

    await db.query(`
      CREATE TABLE audit_signing_keys (
        key_id        text        PRIMARY KEY,
        algorithm     text        NOT NULL CHECK (algorithm = 'Ed25519'),
        public_key    text        NOT NULL,
        first_used_at timestamptz NOT NULL DEFAULT clock_timestamp()
      )`);

    await db.query(`
      CREATE TABLE audit_checkpoints (
        tree_size  bigint      PRIMARY KEY CHECK (tree_size >= 0),
        sequence   bigint      NOT NULL UNIQUE CHECK (sequence > 0),
        origin     text        NOT NULL,
        root_hash  bytea       NOT NULL CHECK (octet_length(root_hash) = 32),
        -- The signed timestamp (millisecond precision, so it reads back exactly as signed).
        signed_at  timestamptz NOT NULL,
        key_id     text        NOT NULL REFERENCES audit_signing_keys,
        signature  bytea       NOT NULL
      )`);

    // Creates the month's partition of audit_entries if it is missing, with the same protection.
    await db.query(`
      CREATE FUNCTION audit_ensure_partition(at timestamptz) RETURNS text LANGUAGE plpgsql AS $$
      DECLARE
        month_start timestamp := date_trunc('month', at AT TIME ZONE 'UTC');
        partition_name text := 'audit_entries_' || to_char(month_start, '"y"YYYY"m"MM');
      BEGIN
        IF to_regclass(partition_name) IS NOT NULL THEN
          RETURN partition_name;
        END IF;
        -- Concurrent callers create it once; the lock ends with the caller's transaction.
        PERFORM pg_advisory_xact_lock(hashtext('audit_ensure_partition'));
        IF to_regclass(partition_name) IS NULL THEN
          EXECUTE format(
            'CREATE TABLE %I PARTITION OF audit_entries FOR VALUES FROM (%L) TO (%L)',
            partition_name, month_start AT TIME ZONE 'UTC',
            (month_start + interval '1 month') AT TIME ZONE 'UTC');
          -- Row triggers are inherited from audit_entries; TRUNCATE triggers are not.
          EXECUTE format(
            'CREATE TRIGGER audit_append_only_truncate BEFORE TRUNCATE ON %I
             FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change()', partition_name);
          EXECUTE format(
            'REVOKE UPDATE, DELETE, TRUNCATE ON %I FROM PUBLIC, CURRENT_USER', partition_name);
        END IF;
        RETURN partition_name;
      END $$`);

    await db.query(`
      CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit_entries
      FOR EACH ROW EXECUTE FUNCTION audit_reject_change()`);
    await db.query(`
      CREATE TRIGGER audit_append_only_truncate BEFORE TRUNCATE ON audit_entries
      FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change()`);
    for (const table of APPEND_ONLY) {
      await db.query(`
        CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON ${table}
        FOR EACH ROW EXECUTE FUNCTION audit_reject_change()`);
      await db.query(`
        CREATE TRIGGER audit_append_only_truncate BEFORE TRUNCATE ON ${table}
        FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change()`);
    }
    // The head moves forward (UPDATE) but never goes away.
    await db.query(`
      CREATE TRIGGER audit_append_only BEFORE DELETE ON audit_tree_head
      FOR EACH ROW EXECUTE FUNCTION audit_reject_change()`);
    await db.query(`
      CREATE TRIGGER audit_append_only_truncate BEFORE TRUNCATE ON audit_tree_head
      FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change()`);

    await db.query(
      `REVOKE UPDATE, DELETE, TRUNCATE ON audit_entries, ${APPEND_ONLY.join(', ')} FROM PUBLIC, CURRENT_USER`,
    );
    await db.query('REVOKE DELETE, TRUNCATE ON audit_tree_head FROM PUBLIC, CURRENT_USER');

    // This month and the next exist from the start; the service keeps creating them ahead.
    await db.query('SELECT audit_ensure_partition(clock_timestamp())');
    await db.query(`SELECT audit_ensure_partition(clock_timestamp() + interval '1 month')`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE audit_checkpoints, audit_signing_keys');
    await db.query('DROP TABLE audit_tree_nodes, audit_leaves, audit_entries, audit_tree_head');
    await db.query('DROP FUNCTION audit_ensure_partition(timestamptz)');
    await db.query('DROP FUNCTION audit_reject_change()');
  }
}
