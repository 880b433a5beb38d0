// Risk reports for officers and compliance, as JSON or CSV (?format=csv): limit breaches (refused
// orders with every rule they broke), the kill switch's history, exposures at a point in time, and
// the alerts the breakers and the large-trade rule raised.
import { parseOrProblem as parse, toCsv } from '@finance/platform';
import { Controller, Get, Param, Query, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { DataSource } from 'typeorm';
import { z } from 'zod';
import { SwitchRow, switchView } from '../kill-switch/kill-switch';
import { exposureAt } from '../positions/positions.view';

const timestamp = z.iso.datetime({
  offset: true,
  message: 'must be an ISO 8601 time, e.g. 2026-01-31T16:00:00Z',
});
const period = z.strictObject({
  from: timestamp.optional(),
  to: timestamp.optional(),
  accountId: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be an account id')
    .optional(),
  format: z.enum(['json', 'csv']).default('json'),
  limit: z.coerce.number().int().min(1).max(100_000).default(10_000),
});
const pointInTime = z.strictObject({
  at: timestamp.optional(),
  format: z.enum(['json', 'csv']).default('json'),
});
const reportName = z.enum(['limit-breaches', 'kill-switch-history', 'exposures', 'alerts']);

@Controller('risk')
export class ReportsController {
  constructor(private readonly dataSource: DataSource) {}

  @Get('alerts')
  async alerts(@Query() query: unknown) {
    const q = parse(period, query ?? {}, 'query');
    return { alerts: await this.alertRows(q) };
  }

  @Get('reports/:report')
  async report(
    @Param('report') name: string,
    @Query() query: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const report = parse(reportName, name, 'report');
    let columns: string[];
    let rows: Array<Record<string, unknown>>;
    let format: 'json' | 'csv';
    let meta: Record<string, unknown>;
    if (report === 'exposures') {
      const q = parse(pointInTime, query ?? {}, 'query');
      const at = q.at ? new Date(q.at) : new Date();
      format = q.format;
      meta = { at: at.toISOString() };
      columns = [
        'accountId',
        'symbol',
        'currency',
        'quantity',
        'price',
        'marketValue',
        'grossExposure',
      ];
      rows = await exposureAt(this.dataSource, at);
    } else {
      const q = parse(period, query ?? {}, 'query');
      format = q.format;
      meta = { from: q.from ?? null, to: q.to ?? null, accountId: q.accountId ?? null };
      if (report === 'limit-breaches') {
        columns = [
          'decidedAt',
          'accountId',
          'orderId',
          'symbol',
          'code',
          'message',
          'violations',
          'order',
        ];
        rows = await this.breaches(q);
      } else if (report === 'kill-switch-history') {
        columns = [
          'switchId',
          'scope',
          'accountId',
          'symbol',
          'engaged',
          'reason',
          'source',
          'engagedBy',
          'engagedAt',
          'releasedBy',
          'releasedAt',
          'releaseReason',
        ];
        rows = await this.switches(q);
      } else {
        columns = [
          'raisedAt',
          'alertId',
          'kind',
          'severity',
          'scope',
          'accountId',
          'symbol',
          'message',
          'switchId',
          'tradeIds',
        ];
        rows = await this.alertRows(q);
      }
    }
    if (format === 'csv') {
      reply.header('content-type', 'text/csv; charset=utf-8');
      reply.header('content-disposition', `attachment; filename="risk-${report}.csv"`);
      return toCsv(columns, rows);
    }
    return { report, ...meta, count: rows.length, rows };
  }

  private async breaches(q: z.output<typeof period>) {
    const rows: Array<{
      decided_at: Date;
      account_id: string;
      order_id: string;
      symbol: string;
      code: string;
      message: string;
      violations: unknown;
      order_data: unknown;
    }> = await this.dataSource.query(
      `SELECT decided_at, account_id, order_id, symbol, code, message, violations, order_data
       FROM risk_limit_breaches
       WHERE decided_at >= coalesce($1::timestamptz, '-infinity') AND decided_at < coalesce($2::timestamptz, 'infinity')
         AND ($3::text IS NULL OR account_id = $3)
       ORDER BY decided_at, gtid LIMIT $4`,
      [q.from ?? null, q.to ?? null, q.accountId ?? null, q.limit],
    );
    return rows.map((r) => ({
      decidedAt: r.decided_at.toISOString(),
      accountId: r.account_id,
      orderId: r.order_id,
      symbol: r.symbol,
      code: r.code,
      message: r.message,
      violations: r.violations,
      order: r.order_data,
    }));
  }

  /** Switches engaged or released within the period (an engaged one reaches up to now). */
  private async switches(q: z.output<typeof period>) {
    const rows: SwitchRow[] = await this.dataSource.query(
      `SELECT * FROM risk_kill_switches
       WHERE engaged_at < coalesce($2::timestamptz, 'infinity')
         AND coalesce(released_at, 'infinity') >= coalesce($1::timestamptz, '-infinity')
         AND ($3::text IS NULL OR account_id = $3)
       ORDER BY engaged_at, switch_id LIMIT $4`,
      [q.from ?? null, q.to ?? null, q.accountId ?? null, q.limit],
    );
    return rows.map((r) => ({ ...switchView(r) }) as Record<string, unknown>);
  }

  private async alertRows(q: z.output<typeof period>) {
    const rows: Array<{
      alert_id: string;
      kind: string;
      severity: string;
      scope: string;
      account_id: string | null;
      symbol: string | null;
      message: string;
      switch_id: string | null;
      trade_ids: string[];
      raised_at: Date;
    }> = await this.dataSource.query(
      `SELECT * FROM risk_alerts
       WHERE raised_at >= coalesce($1::timestamptz, '-infinity') AND raised_at < coalesce($2::timestamptz, 'infinity')
         AND ($3::text IS NULL OR account_id = $3)
       ORDER BY raised_at, alert_id LIMIT $4`,
      [q.from ?? null, q.to ?? null, q.accountId ?? null, q.limit],
    );
    return rows.map((r) => ({
      raisedAt: r.raised_at.toISOString(),
      alertId: r.alert_id,
      kind: r.kind,
      severity: r.severity,
      scope: r.scope,
      accountId: r.account_id,
      symbol: r.symbol,
      message: r.message,
      switchId: r.switch_id === null ? null : String(r.switch_id),
      tradeIds: r.trade_ids,
    }));
  }
}
