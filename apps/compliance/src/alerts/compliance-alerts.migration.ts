// Surveillance alerts and their review: one row per finding of finance.compliance alerts, raised once
// (the dedupe key), then OPEN → UNDER_REVIEW → CLOSED; the audit log holds every transition.
import { MigrationInterface, QueryRunner } from 'typeorm';

export class ComplianceAlerts1765065600000 implements MigrationInterface {
  name = 'ComplianceAlerts1765065600000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE compliance_alerts (
        id                uuid        PRIMARY KEY,
        rule              text        NOT NULL,
        severity          text        NOT NULL CHECK (severity IN ('high', 'medium', 'low')),
        message           text        NOT NULL,
        -- {owner, symbol, orderIds, tradeIds} as the policy named them (ids sorted).
        subjects          jsonb       NOT NULL,
        -- sha256 of the rule and the sorted subjects: the same finding is raised once.
        dedupe_key        text        NOT NULL UNIQUE,
        state             text        NOT NULL DEFAULT 'OPEN'
                                      CHECK (state IN ('OPEN', 'UNDER_REVIEW', 'CLOSED')),
        raised_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
        reviewer          text,
        review_started_at timestamptz,
        closed_by         text,
        closed_at         timestamptz,
        close_note        text,
        CHECK ((state = 'OPEN') = (reviewer IS NULL)),
        CHECK ((state = 'CLOSED') = (closed_at IS NOT NULL AND close_note IS NOT NULL))
      )`);
    await db.query('CREATE INDEX compliance_alerts_state ON compliance_alerts (state, id)');
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE compliance_alerts');
  }
}
