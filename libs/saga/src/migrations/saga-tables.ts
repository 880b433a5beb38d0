// Tables of the saga library: instances and their attempt log (orchestrator side) and the barrier
// (participant side). Every service that orchestrates or takes part in a saga runs this migration.
import { MigrationInterface, QueryRunner } from 'typeorm';

export class SagaTables1764028800000 implements MigrationInterface {
  name = 'SagaTables1764028800000';

  async up(db: QueryRunner): Promise<void> {
    // state holds the whole pure state; the other columns repeat what queries filter on.
    await db.query(`
      CREATE TABLE saga_instances (
        saga_id        text        PRIMARY KEY,
        saga           text        NOT NULL,
        status         text        NOT NULL CHECK (status IN
                         ('RUNNING', 'COMPENSATING', 'COMPLETED', 'COMPENSATED', 'PARKED', 'RESOLVED')),
        current_step   text,
        correlation_id text        NOT NULL,
        state          jsonb       NOT NULL,
        reason         jsonb,
        version        integer     NOT NULL,
        due_at         timestamptz,
        created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
        updated_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
        finished_at    timestamptz
      )`);
    // The ticker reads only sagas with something due, oldest first.
    await db.query(
      `CREATE INDEX saga_instances_due ON saga_instances (due_at) WHERE due_at IS NOT NULL`,
    );
    await db.query(`CREATE INDEX saga_instances_status ON saga_instances (status, updated_at)`);
    await db.query(
      `CREATE INDEX saga_instances_finished ON saga_instances (finished_at) WHERE finished_at IS NOT NULL`,
    );
    // One row per command sent, completed by its reply or its timeout: what an operator reads.
    await db.query(`
      CREATE TABLE saga_attempts (
        saga_id      text        NOT NULL REFERENCES saga_instances (saga_id) ON DELETE CASCADE,
        step         text        NOT NULL,
        action       text        NOT NULL CHECK (action IN ('EXECUTE', 'COMPENSATE')),
        attempt      integer     NOT NULL CHECK (attempt >= 1),
        participant  text        NOT NULL,
        command_id   uuid        NOT NULL,
        requested_at timestamptz NOT NULL,
        deadline_at  timestamptz NOT NULL,
        outcome      text        CHECK (outcome IN ('SUCCEEDED', 'FAILED', 'TIMED_OUT', 'SUPERSEDED')),
        reason       jsonb,
        result       jsonb,
        reply_id     uuid,
        settled_at   timestamptz,
        late_reply   jsonb,
        PRIMARY KEY (saga_id, step, action, attempt)
      )`);
    // The participant's first answer per (saga, step, action); the key makes replays cheap.
    await db.query(`
      CREATE TABLE saga_barrier (
        saga_id     text        NOT NULL,
        step        text        NOT NULL,
        action      text        NOT NULL CHECK (action IN ('EXECUTE', 'COMPENSATE')),
        saga        text        NOT NULL,
        outcome     text        NOT NULL CHECK (outcome IN ('SUCCEEDED', 'FAILED')),
        reason      jsonb,
        result      jsonb,
        created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
        PRIMARY KEY (saga_id, step, action)
      )`);
    await db.query(`CREATE INDEX saga_barrier_created ON saga_barrier (created_at)`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE saga_barrier');
    await db.query('DROP TABLE saga_attempts');
    await db.query('DROP TABLE saga_instances');
  }
}
