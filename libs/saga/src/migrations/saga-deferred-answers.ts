// Deferred step answers: a participant's EXECUTE can take effect and answer later, so the barrier
// holds it as PENDING with what the eventual reply needs (the newest attempt seen, the command's
// event id, sequence and correlation, and the participant that answers).
import { MigrationInterface, QueryRunner } from 'typeorm';

export class SagaDeferredAnswers1765238400000 implements MigrationInterface {
  name = 'SagaDeferredAnswers1765238400000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`ALTER TABLE saga_barrier DROP CONSTRAINT saga_barrier_outcome_check`);
    await db.query(`
      ALTER TABLE saga_barrier ADD CONSTRAINT saga_barrier_outcome_check
        CHECK (outcome IN ('SUCCEEDED', 'FAILED', 'PENDING'))`);
    // answered_at: when a pending step got its answer (null: answered when the row was written).
    await db.query(`
      ALTER TABLE saga_barrier
        ADD COLUMN participant        text,
        ADD COLUMN attempt            integer CHECK (attempt >= 1),
        ADD COLUMN aggregate_sequence integer,
        ADD COLUMN correlation_id     text,
        ADD COLUMN command_id         uuid,
        ADD COLUMN answered_at        timestamptz`);
    await db.query(`
      ALTER TABLE saga_barrier ADD CONSTRAINT saga_barrier_pending_command
        CHECK (outcome <> 'PENDING' OR (action = 'EXECUTE' AND participant IS NOT NULL
               AND attempt IS NOT NULL AND aggregate_sequence IS NOT NULL
               AND correlation_id IS NOT NULL AND command_id IS NOT NULL))`);
  }

  async down(db: QueryRunner): Promise<void> {
    // A pending row dropped would let a repeated EXECUTE run its step a second time.
    const [{ n }] = (await db.query(
      `SELECT count(*)::int AS n FROM saga_barrier WHERE outcome = 'PENDING'`,
    )) as Array<{ n: number }>;
    if (n > 0) {
      throw new Error(`${n} saga steps are still pending: answer them before reverting`);
    }
    await db.query(`ALTER TABLE saga_barrier DROP CONSTRAINT saga_barrier_pending_command`);
    await db.query(`
      ALTER TABLE saga_barrier
        DROP COLUMN participant,
        DROP COLUMN attempt,
        DROP COLUMN aggregate_sequence,
        DROP COLUMN correlation_id,
        DROP COLUMN command_id,
        DROP COLUMN answered_at`);
    await db.query(`ALTER TABLE saga_barrier DROP CONSTRAINT saga_barrier_outcome_check`);
    await db.query(`
      ALTER TABLE saga_barrier ADD CONSTRAINT saga_barrier_outcome_check
        CHECK (outcome IN ('SUCCEEDED', 'FAILED'))`);
  }
}
