// REST for auditors: the trade blotter, one order's trail across every service, alerts and their
// reviews, limit breaches and kill switches, authorization denials. JSON or CSV, paged, each page cut
// at a signed checkpoint of the audit log (in the body for JSON, in x-audit-checkpoint-* headers for
// CSV) so its rows can be proven and the checkpoint checked with npm run audit-verify. Every pull is
// itself an audit entry, recorded before the checkpoint is taken, so the checkpoint covers it.
import { AuditLogStore, CheckpointDocument } from '@finance/audit-log';
import { parseOrProblem as parse, requestActor } from '@finance/platform';
import { Controller, Get, Param, Query, Req, Res, StreamableFile } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import { z } from 'zod';
import { AuditCheckpoints } from '../audit/audit-checkpoints';
import { notFound, requestId } from '../audit/audit-requests';
import { LocalAudit } from '../audit/local-audit';
import {
  Cursor,
  decodeCursor,
  encodeCursor,
  negotiateFormat,
  pageHeaders,
  renderPage,
  ReportPage,
  ReportRow,
} from './report-format';
import {
  BLOTTER_COLUMNS,
  blotterPage,
  ENTRY_COLUMNS,
  ENTRY_REPORTS,
  entryPage,
  PageWindow,
} from './report-queries';

const timestamp = z.iso.datetime({ offset: true });

const reportQuery = z
  .strictObject({
    from: timestamp.optional(),
    to: timestamp.optional(),
    cursor: z.string().min(1).max(200).optional(),
    limit: z.coerce.number().int().min(1).max(5_000).default(500),
    format: z.enum(['json', 'csv']).optional(),
  })
  .refine((q) => !q.from || !q.to || Date.parse(q.from) <= Date.parse(q.to), {
    path: ['from'],
    message: 'must not be after to',
  });

const orderIdParam = z.string().min(1).max(128);

interface Reply {
  header(name: string, value: string): unknown;
}

@Controller('compliance/reports')
export class ReportsController {
  constructor(
    private readonly dataSource: DataSource,
    private readonly store: AuditLogStore,
    private readonly checkpoints: AuditCheckpoints,
    private readonly local: LocalAudit,
  ) {}

  /** Trades executed in [from, to), one row each. */
  @Get('blotter')
  blotter(
    @Query() query: unknown,
    @Req() request: unknown,
    @Res({ passthrough: true }) reply: Reply,
  ) {
    return this.serve('trade-blotter', query, request, reply, {}, BLOTTER_COLUMNS, blotterPage);
  }

  @Get('orders/:orderId/trail')
  trail(
    @Param('orderId') orderId: string,
    @Query() query: unknown,
    @Req() request: unknown,
    @Res({ passthrough: true }) reply: Reply,
  ) {
    const id = parse(orderIdParam, orderId, 'orderId');
    const filter = ENTRY_REPORTS.trail(id);
    return this.serve(
      'order-trail',
      query,
      request,
      reply,
      { orderId: id },
      ENTRY_COLUMNS,
      (db, w) => entryPage(db, filter, w),
    );
  }

  @Get('alerts')
  alerts(
    @Query() query: unknown,
    @Req() request: unknown,
    @Res({ passthrough: true }) reply: Reply,
  ) {
    return this.serve('alerts', query, request, reply, {}, ENTRY_COLUMNS, (db, w) =>
      entryPage(db, ENTRY_REPORTS.alerts(), w),
    );
  }

  @Get('limit-breaches')
  limitBreaches(
    @Query() query: unknown,
    @Req() request: unknown,
    @Res({ passthrough: true }) reply: Reply,
  ) {
    return this.serve('limit-breaches', query, request, reply, {}, ENTRY_COLUMNS, (db, w) =>
      entryPage(db, ENTRY_REPORTS.limitBreaches(), w),
    );
  }

  @Get('authorization-denials')
  authorizationDenials(
    @Query() query: unknown,
    @Req() request: unknown,
    @Res({ passthrough: true }) reply: Reply,
  ) {
    return this.serve('authorization-denials', query, request, reply, {}, ENTRY_COLUMNS, (db, w) =>
      entryPage(db, ENTRY_REPORTS.authorizationDenials(), w),
    );
  }

  private async serve(
    report: string,
    rawQuery: unknown,
    request: unknown,
    reply: Reply,
    extra: Record<string, string>,
    columns: readonly string[],
    fetchPage: (db: EntityManager, window: PageWindow) => Promise<ReportRow[]>,
  ): Promise<StreamableFile> {
    const q = parse(reportQuery, rawQuery ?? {}, 'query');
    const cursor: Cursor | undefined = q.cursor ? decodeCursor(q.cursor) : undefined;
    const parameters = { ...extra, from: q.from ?? null, to: q.to ?? null };
    await this.local.record({
      type: 'ComplianceReportPulled',
      actor: requestActor(request),
      aggregateId: `report:${report}`,
      ...(requestId(request) ? { correlationId: requestId(request)! } : {}),
      details: { report, parameters, cursor: q.cursor ?? null, limit: q.limit },
    });
    const checkpoint = await this.checkpointFor(cursor);
    const window: PageWindow = {
      treeSize: checkpoint.treeSize,
      after: cursor?.after ?? -1,
      limit: q.limit,
      ...(q.from ? { from: q.from } : {}),
      ...(q.to ? { to: q.to } : {}),
    };
    const fetched = await fetchPage(this.dataSource.manager, window);
    const rows = fetched.slice(0, q.limit);
    const last = rows[rows.length - 1];
    const page: ReportPage = {
      report,
      parameters,
      checkpoint,
      columns,
      rows,
      nextCursor:
        fetched.length > q.limit && last
          ? encodeCursor({ treeSize: checkpoint.treeSize, after: Number(last['leafIndex']) })
          : null,
    };
    const format = negotiateFormat(
      q.format,
      (request as { headers?: Record<string, unknown> }).headers?.['accept'],
    );
    for (const [name, value] of Object.entries(pageHeaders(page))) reply.header(name, value);
    return new StreamableFile(renderPage(page, format), {
      type: format === 'csv' ? 'text/csv; charset=utf-8' : 'application/json; charset=utf-8',
      ...(format === 'csv'
        ? { disposition: `attachment; filename="${report}-${checkpoint.treeSize}.csv"` }
        : {}),
    });
  }

  // A first page is cut at a checkpoint signed now (or the existing one of this size); later pages
  // at the cursor's, so one pull reads one consistent log.
  private async checkpointFor(cursor: Cursor | undefined): Promise<CheckpointDocument> {
    if (!cursor) return (await this.checkpoints.create()).checkpoint;
    const checkpoint = await this.store.checkpoint(cursor.treeSize);
    if (!checkpoint)
      throw notFound('query.cursor', `no signed checkpoint of size ${cursor.treeSize}`);
    return checkpoint;
  }
}
