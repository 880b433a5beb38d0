// Tables of the TCC engine: global transactions and their branches (coordinator side), the
// participant barrier, and a log of every message and state change for operators.
import { MigrationInterface, QueryRunner } from 'typeorm';

export class TccTables1763942400000 implements MigrationInterface {
  name = 'TccTables1763942400000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE tcc_transactions (
        gtid           text        PRIMARY KEY,
        kind           text        NOT NULL,
        state          text        NOT NULL CHECK (state IN ('TRYING', 'CONFIRMING', 'CANCELLING', 'CONFIRMED', 'CANCELLED')),
        correlation_id text        NOT NULL,
        deadline       timestamptz NOT NULL,
        failure        jsonb,
        created_at     timestamptz NOT NULL,
        updated_at     timestamptz NOT NULL,
        finished_at    timestamptz
      )`);
    await db.query(
      `CREATE INDEX tcc_transactions_trying ON tcc_transactions (deadline) WHERE state = 'TRYING'`,
    );
    await db.query(
      `CREATE INDEX tcc_transactions_open ON tcc_transactions (state, created_at) WHERE finished_at IS NULL`,
    );
    await db.query(
      `CREATE INDEX tcc_transactions_finished ON tcc_transactions (finished_at) WHERE finished_at IS NOT NULL`,
    );
    await db.query(`
      CREATE TABLE tcc_branches (
        gtid            text        NOT NULL REFERENCES tcc_transactions (gtid) ON DELETE CASCADE,
        branch_id       text        NOT NULL,
        participant     text        NOT NULL,
        resource        text        NOT NULL,
        payload         jsonb       NOT NULL,
        try_status      text        NOT NULL DEFAULT 'PENDING' CHECK (try_status IN ('PENDING', 'SUCCEEDED', 'FAILED')),
        -- Confirm or cancel of this branch acknowledged by the participant.
        settled         boolean     NOT NULL DEFAULT false,
        attempts        integer     NOT NULL DEFAULT 1,
        next_attempt_at timestamptz NOT NULL,
        last_error      text,
        PRIMARY KEY (gtid, branch_id)
      )`);
    await db.query(
      `CREATE INDEX tcc_branches_due ON tcc_branches (next_attempt_at) WHERE NOT settled`,
    );
    await db.query(`
      CREATE TABLE tcc_log (
        id        bigserial   PRIMARY KEY,
        gtid      text        NOT NULL,
        branch_id text,
        kind      text        NOT NULL,
        detail    jsonb       NOT NULL DEFAULT '{}'::jsonb,
        at        timestamptz NOT NULL DEFAULT clock_timestamp()
      )`);
    await db.query(`CREATE INDEX tcc_log_gtid ON tcc_log (gtid, id)`);
    await db.query(`
      CREATE TABLE tcc_barrier (
        gtid       text        NOT NULL,
        branch_id  text        NOT NULL,
        phase      text        NOT NULL CHECK (phase IN ('TRY', 'CONFIRM', 'CANCEL')),
        -- BLOCKED: a Cancel got here first, so a later Try must be refused (anti-hanging).
        outcome    text        NOT NULL CHECK (outcome IN ('SUCCEEDED', 'FAILED', 'BLOCKED')),
        reason     jsonb,
        payload    jsonb,
        created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (gtid, branch_id, phase)
      )`);
    await db.query(`CREATE INDEX tcc_barrier_created ON tcc_barrier (created_at)`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE tcc_barrier');
    await db.query('DROP TABLE tcc_log');
    await db.query('DROP TABLE tcc_branches');
    await db.query('DROP TABLE tcc_transactions');
  }
}
