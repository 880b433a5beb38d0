// Compliance alerts: raising surveillance findings once each (table, outbox event and audit entry in
// one transaction), reading them, and the review workflow OPEN → UNDER_REVIEW → CLOSED with a note.
// Every transition is appended to the audit log in its transaction (ComplianceAlertReviewStarted,
// ComplianceAlertClosed: what the alerts report reads).
import { AuditLogStore, LOCAL_SOURCE, traceIdOf } from '@finance/audit-log';
import { ComplianceAlertRaised, SYSTEM_CATALOG, uuidv7 } from '@finance/contracts';
import type { JsonValue } from '@finance/merkle';
import { createEnvelope, enqueueOutbox, routeMessage } from '@finance/messaging';
import { ProblemException, SERVICE_CONFIG } from '@finance/platform';
import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';
import { z } from 'zod';
import { LocalAudit } from '../audit/local-audit';
import type { ComplianceConfig } from '../config';
import type { SurveillanceAlert } from '../pre-trade/compliance-policy';

export const ALERT_STATES = ['OPEN', 'UNDER_REVIEW', 'CLOSED'] as const;
export type AlertState = (typeof ALERT_STATES)[number];

export const alertIdParam = z.string().uuid('must be an alert id (UUID)');

export const listAlertsQuery = z.strictObject({
  state: z.enum(ALERT_STATES).optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
  /** nextCursor of the previous page: alerts after it, in the order they were raised. */
  cursor: z.string().uuid('must be the nextCursor of a previous page').optional(),
});

export const closeAlertBody = z.strictObject({
  note: z.string().trim().min(1, 'must not be empty').max(2000, 'at most 2000 characters'),
});

export interface AlertSubjects {
  readonly owner: string | null;
  readonly symbol: string | null;
  readonly orderIds: string[];
  readonly tradeIds: string[];
}

export interface ComplianceAlert {
  readonly id: string;
  readonly rule: string;
  readonly severity: 'high' | 'medium' | 'low';
  readonly message: string;
  readonly subjects: AlertSubjects;
  readonly state: AlertState;
  readonly raisedAt: string;
  readonly reviewer: string | null;
  readonly reviewStartedAt: string | null;
  readonly closedBy: string | null;
  readonly closedAt: string | null;
  readonly closeNote: string | null;
}

interface AlertRow {
  id: string;
  rule: string;
  severity: ComplianceAlert['severity'];
  message: string;
  subjects: AlertSubjects;
  state: AlertState;
  raised_at: Date;
  reviewer: string | null;
  review_started_at: Date | null;
  closed_by: string | null;
  closed_at: Date | null;
  close_note: string | null;
}

const COLUMNS = `id::text AS id, rule, severity, message, subjects, state, raised_at, reviewer,
  review_started_at, closed_by, closed_at, close_note`;

function alertOf(row: AlertRow): ComplianceAlert {
  return {
    id: row.id,
    rule: row.rule,
    severity: row.severity,
    message: row.message,
    subjects: row.subjects,
    state: row.state,
    raisedAt: row.raised_at.toISOString(),
    reviewer: row.reviewer,
    reviewStartedAt: row.review_started_at?.toISOString() ?? null,
    closedBy: row.closed_by,
    closedAt: row.closed_at?.toISOString() ?? null,
    closeNote: row.close_note,
  };
}

/** The subjects with sorted ids, and the key that makes the same finding one alert. */
export function normalise(alert: SurveillanceAlert): {
  subjects: AlertSubjects;
  dedupeKey: string;
} {
  const subjects: AlertSubjects = {
    owner: alert.subjects.owner ?? null,
    symbol: alert.subjects.symbol ?? null,
    orderIds: [...new Set(alert.subjects.orderIds)].sort(),
    tradeIds: [...new Set(alert.subjects.tradeIds)].sort(),
  };
  const dedupeKey = createHash('sha256')
    .update(
      JSON.stringify([
        alert.rule,
        subjects.owner,
        subjects.symbol,
        subjects.orderIds,
        subjects.tradeIds,
      ]),
    )
    .digest('hex');
  return { subjects, dedupeKey };
}

@Injectable()
export class ComplianceAlerts {
  constructor(
    private readonly dataSource: DataSource,
    private readonly store: AuditLogStore,
    private readonly audit: LocalAudit,
    @Inject(SERVICE_CONFIG) private readonly config: Pick<ComplianceConfig, 'KAFKA_TOPIC_PREFIX'>,
  ) {}

  /**
   * Inserts the findings not raised before; each new one is published (ComplianceAlertRaised via the
   * outbox) and appended to the audit log in the same transaction. Returns the new alerts.
   */
  async raise(
    findings: readonly SurveillanceAlert[],
    correlationId: string,
  ): Promise<ComplianceAlert[]> {
    if (findings.length === 0) return [];
    return this.dataSource.transaction(async (manager) => {
      const raised: ComplianceAlert[] = [];
      for (const finding of findings) {
        const { subjects, dedupeKey } = normalise(finding);
        const rows: AlertRow[] = await manager.query(
          `INSERT INTO compliance_alerts (id, rule, severity, message, subjects, dedupe_key)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6)
           ON CONFLICT (dedupe_key) DO NOTHING RETURNING ${COLUMNS}`,
          [
            uuidv7(),
            finding.rule,
            finding.severity,
            finding.message,
            JSON.stringify(subjects),
            dedupeKey,
          ],
        );
        if (rows.length === 0) continue;
        const alert = alertOf(rows[0]!);
        await this.publish(manager, alert, correlationId);
        raised.push(alert);
      }
      return raised;
    });
  }

  async list(
    query: z.infer<typeof listAlertsQuery>,
  ): Promise<{ alerts: ComplianceAlert[]; nextCursor: string | null }> {
    const limit = query.limit ?? 100;
    const rows: AlertRow[] = await this.dataSource.query(
      `SELECT ${COLUMNS} FROM compliance_alerts
        WHERE ($1::text IS NULL OR state = $1) AND ($2::uuid IS NULL OR id > $2::uuid)
        ORDER BY id LIMIT $3`,
      [query.state ?? null, query.cursor ?? null, limit + 1],
    );
    const page = rows.slice(0, limit).map(alertOf);
    return { alerts: page, nextCursor: rows.length > limit ? page[page.length - 1]!.id : null };
  }

  async get(id: string): Promise<ComplianceAlert> {
    const [row]: AlertRow[] = await this.dataSource.query(
      `SELECT ${COLUMNS} FROM compliance_alerts WHERE id = $1`,
      [id],
    );
    if (!row) throw notFound(id);
    return alertOf(row);
  }

  /** OPEN → UNDER_REVIEW; the caller becomes the reviewer. */
  async startReview(id: string, actor: string, correlationId?: string): Promise<ComplianceAlert> {
    return this.transition(id, 'OPEN', async (manager) => {
      const [[row]]: [AlertRow[], number] = await manager.query(
        `UPDATE compliance_alerts
            SET state = 'UNDER_REVIEW', reviewer = $2, review_started_at = clock_timestamp()
          WHERE id = $1 RETURNING ${COLUMNS}`,
        [id, actor],
      );
      const alert = alertOf(row!);
      await this.audit.recordIn(manager, {
        type: 'ComplianceAlertReviewStarted',
        actor,
        aggregateId: id,
        correlationId,
        details: {
          alertId: id,
          rule: alert.rule,
          from: 'OPEN',
          to: 'UNDER_REVIEW',
          reviewer: actor,
        },
      });
      return alert;
    });
  }

  /** UNDER_REVIEW → CLOSED with the reviewer's note. */
  async close(
    id: string,
    note: string,
    actor: string,
    correlationId?: string,
  ): Promise<ComplianceAlert> {
    return this.transition(id, 'UNDER_REVIEW', async (manager) => {
      const [[row]]: [AlertRow[], number] = await manager.query(
        `UPDATE compliance_alerts
            SET state = 'CLOSED', closed_by = $2, closed_at = clock_timestamp(), close_note = $3
          WHERE id = $1 RETURNING ${COLUMNS}`,
        [id, actor, note],
      );
      const alert = alertOf(row!);
      await this.audit.recordIn(manager, {
        type: 'ComplianceAlertClosed',
        actor,
        aggregateId: id,
        correlationId,
        details: {
          alertId: id,
          rule: alert.rule,
          from: 'UNDER_REVIEW',
          to: 'CLOSED',
          reviewer: alert.reviewer,
          note,
        },
      });
      return alert;
    });
  }

  private async transition(
    id: string,
    from: AlertState,
    apply: (manager: EntityManager) => Promise<ComplianceAlert>,
  ): Promise<ComplianceAlert> {
    return this.dataSource.transaction(async (manager) => {
      const [current]: Array<{ state: AlertState }> = await manager.query(
        'SELECT state FROM compliance_alerts WHERE id = $1 FOR UPDATE',
        [id],
      );
      if (!current) throw notFound(id);
      if (current.state !== from) {
        throw new ProblemException({
          status: 409,
          title: 'alert is in another state',
          detail: `alert ${id} is ${current.state}; this needs ${from}`,
          state: current.state,
        });
      }
      return apply(manager);
    });
  }

  // The event goes out through the outbox and into the log now, under its own event id: when it comes
  // back through the consumer, the appender sees that id and does not log it twice.
  private async publish(
    manager: EntityManager,
    alert: ComplianceAlert,
    correlationId: string,
  ): Promise<void> {
    const event = createEnvelope(
      ComplianceAlertRaised,
      {
        alertId: alert.id,
        rule: alert.rule,
        severity: alert.severity,
        message: alert.message,
        owner: alert.subjects.owner,
        symbol: alert.subjects.symbol,
        orderIds: alert.subjects.orderIds,
        tradeIds: alert.subjects.tradeIds,
        raisedAt: alert.raisedAt,
      },
      { producer: 'compliance', aggregateId: alert.id, aggregateSequence: 1, correlationId },
    );
    await enqueueOutbox(manager, [
      routeMessage(SYSTEM_CATALOG, event, this.config.KAFKA_TOPIC_PREFIX),
    ]);
    const { metadata } = event;
    await this.store.append(manager, [
      {
        source: LOCAL_SOURCE,
        eventId: metadata.eventId,
        type: event.type,
        producer: metadata.producer,
        aggregateId: metadata.aggregateId,
        correlationId: metadata.correlationId,
        traceId: traceIdOf(metadata.traceparent),
        occurredAt: metadata.occurredAt,
        payload: JSON.parse(JSON.stringify(event)) as JsonValue,
      },
    ]);
  }
}

function notFound(id: string): ProblemException {
  return new ProblemException({
    status: 404,
    title: 'not found',
    detail: `path.id: no alert ${id}`,
    errors: [{ field: 'path.id', message: `no alert ${id}` }],
  });
}
