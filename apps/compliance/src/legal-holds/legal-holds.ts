// Legal holds: what they are, how they are stored, and the API shape. A hold on an account covers
// every entry naming that account (as aggregate, or accountId / buy.accountId / sell.accountId in the
// event's data); a hold on an order covers entries with that aggregate or correlation id (or that
// order on either side of an execution). Retention keeps any month holding a covered entry. Holds
// are released, never deleted, and every change is recorded in the audit log in its transaction.
import { uuidv7 } from '@finance/contracts';
import { ProblemException } from '@finance/platform';
import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { z } from 'zod';
import { LocalAudit } from '../audit/local-audit';

export const HOLD_SCOPES = ['ACCOUNT', 'ORDER'] as const;
export type HoldScope = (typeof HOLD_SCOPES)[number];

export const placeHoldBody = z.strictObject({
  scope: z.enum(HOLD_SCOPES),
  /** The account's or order's id. */
  id: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9._:@-]+$/, 'letters, digits, ".", "_", ":", "@" and "-"'),
  reason: z.string().trim().min(1).max(1000),
});

export const listHoldsQuery = z.strictObject({
  active: z.enum(['true', 'false']).optional(),
});

export const holdIdParam = z.string().uuid('must be a hold id (UUID)');

export type LegalHold = {
  readonly id: string;
  readonly scope: HoldScope;
  readonly subjectId: string;
  readonly reason: string;
  readonly placedBy: string;
  readonly placedAt: string;
  readonly releasedBy: string | null;
  readonly releasedAt: string | null;
  readonly active: boolean;
};

interface HoldRow {
  id: string;
  scope: HoldScope;
  subject_id: string;
  reason: string;
  placed_by: string;
  placed_at: Date;
  released_by: string | null;
  released_at: Date | null;
}

const COLUMNS =
  'id::text AS id, scope, subject_id, reason, placed_by, placed_at, released_by, released_at';

function hold(row: HoldRow): LegalHold {
  return {
    id: row.id,
    scope: row.scope,
    subjectId: row.subject_id,
    reason: row.reason,
    placedBy: row.placed_by,
    placedAt: row.placed_at.toISOString(),
    releasedBy: row.released_by,
    releasedAt: row.released_at?.toISOString() ?? null,
    active: row.released_at === null,
  };
}

@Injectable()
export class LegalHolds {
  constructor(
    private readonly dataSource: DataSource,
    private readonly audit: LocalAudit,
  ) {}

  async place(
    input: z.infer<typeof placeHoldBody>,
    actor: string,
    correlationId?: string,
  ): Promise<LegalHold> {
    return this.dataSource.transaction(async (manager) => {
      const [row]: HoldRow[] = await manager.query(
        `INSERT INTO audit_legal_holds (id, scope, subject_id, reason, placed_by, placed_at)
         VALUES ($1, $2, $3, $4, $5, clock_timestamp()) RETURNING ${COLUMNS}`,
        [uuidv7(), input.scope, input.id, input.reason, actor],
      );
      const placed = hold(row);
      await this.audit.recordIn(manager, {
        type: 'LegalHoldPlaced',
        actor,
        aggregateId: placed.id,
        correlationId,
        details: {
          holdId: placed.id,
          scope: placed.scope,
          subjectId: placed.subjectId,
          reason: placed.reason,
        },
      });
      return placed;
    });
  }

  async release(id: string, actor: string, correlationId?: string): Promise<LegalHold> {
    return this.dataSource.transaction(async (manager) => {
      const [current]: HoldRow[] = await manager.query(
        `SELECT ${COLUMNS} FROM audit_legal_holds WHERE id = $1 FOR UPDATE`,
        [id],
      );
      if (!current) {
        throw new ProblemException({
          status: 404,
          title: 'not found',
          detail: `path.id: no legal hold ${id}`,
          errors: [{ field: 'path.id', message: `no legal hold ${id}` }],
        });
      }
      if (current.released_at !== null) {
        throw new ProblemException({
          status: 409,
          title: 'legal hold already released',
          detail: `legal hold ${id} was released by ${current.released_by} at ${current.released_at.toISOString()}`,
        });
      }
      // TypeORM answers an UPDATE with [rows, affected count].
      const [[row]]: [HoldRow[], number] = await manager.query(
        `UPDATE audit_legal_holds SET released_by = $2, released_at = clock_timestamp()
          WHERE id = $1 RETURNING ${COLUMNS}`,
        [id, actor],
      );
      const released = hold(row);
      await this.audit.recordIn(manager, {
        type: 'LegalHoldReleased',
        actor,
        aggregateId: released.id,
        correlationId,
        details: { holdId: released.id, scope: released.scope, subjectId: released.subjectId },
      });
      return released;
    });
  }

  async list(active?: boolean): Promise<LegalHold[]> {
    const rows: HoldRow[] = await this.dataSource.query(
      `SELECT ${COLUMNS} FROM audit_legal_holds
        WHERE $1::boolean IS NULL OR (released_at IS NULL) = $1::boolean
        ORDER BY placed_at, id`,
      [active ?? null],
    );
    return rows.map(hold);
  }
}
