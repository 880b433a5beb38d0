// REST: run a settlement cycle (trading or a scheduler calls it), and read cycles, their reports
// (JSON or CSV), one account's part of a cycle, and the fails.
import { parseOrProblem as parse, ProblemException, requestActor, toCsv } from '@finance/platform';
import {
  Body,
  Controller,
  Get,
  HttpCode,
  Inject,
  Param,
  Post,
  Query,
  Req,
  Res,
} from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { DataSource } from 'typeorm';
import { z } from 'zod';
import { SETTLEMENT_CYCLES } from './cycles.tokens';
import { SettlementCycles } from './cycle';
import { cycleReport, fails, MOVEMENT_COLUMNS, TRADE_COLUMNS } from './reports';
import { registerSettlementMetrics } from './settlement.metrics';

const cycleId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 letters, digits, _ or -');
const accountId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be an account id');
const businessDate = z.iso.date({ message: 'must be a date, YYYY-MM-DD' });

const processBody = z.strictObject({
  cycleId: cycleId.optional(),
  businessDate: businessDate.optional(),
});
const reportQuery = z.strictObject({
  format: z.enum(['json', 'csv']).default('json'),
  part: z.enum(['trades', 'movements']).default('trades'),
  /** Trade lines: settled first, then failed, in execution order. */
  offset: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(100_000).default(10_000),
});
const failsQuery = z.strictObject({
  state: z.enum(['OPEN', 'FAILED']).optional(),
  accountId: accountId.optional(),
  format: z.enum(['json', 'csv']).default('json'),
});

const today = () => new Date().toISOString().slice(0, 10);

@Controller('settlement')
export class CyclesController {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(SETTLEMENT_CYCLES) private readonly cycles: SettlementCycles,
  ) {
    registerSettlementMetrics(dataSource);
  }

  /**
   * Runs a cycle for obligations due by `businessDate` (default today, UTC). 201 with its summary
   * when it ran; 200 with the stored one when `cycleId` names a cycle that already ran.
   */
  @Post('process')
  @HttpCode(201)
  async process(
    @Body() body: unknown,
    @Req() request: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const input = parse(processBody, body ?? {}, 'body');
    const date = input.businessDate ?? today();
    if (date > today()) {
      throw new ProblemException({
        status: 422,
        title: 'Business date in the future',
        detail: `businessDate ${date} is after today (${today()}): nothing can be due then yet`,
        errors: [{ field: 'businessDate', message: 'must not be after today' }],
      });
    }
    const outcome = await this.cycles.run({
      cycleId: input.cycleId,
      businessDate: date,
      requestedBy: requestActor(request),
    });
    if (!outcome.ran) reply.status(200);
    // The summary: a cycle can settle a hundred thousand trades; their lines are in the report.
    const {
      trades: _trades,
      movements: _movements,
      ...summary
    } = (await cycleReport(this.dataSource.manager, outcome.cycleId))!;
    return {
      ...summary,
      resumed: outcome.resumed,
      report: `/settlement/cycles/${outcome.cycleId}`,
    };
  }

  @Get('cycles')
  async list() {
    const rows: Array<Record<string, unknown>> = await this.dataSource.query(
      `SELECT cycle_id AS "cycleId", to_char(business_date, 'YYYY-MM-DD') AS "businessDate", state,
              requested_by AS "requestedBy", trades_settled AS "tradesSettled",
              trades_failed AS "tradesFailed", transfers, started_at AS "startedAt", posted_at AS "postedAt"
         FROM settlement_cycles ORDER BY sequence DESC LIMIT 500`,
    );
    return { cycles: rows };
  }

  @Get('cycles/:cycleId')
  async report(
    @Param('cycleId') id: string,
    @Query() query: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    return this.render(parse(cycleId, id, 'cycleId'), undefined, query, reply);
  }

  @Get('accounts/:accountId/cycles/:cycleId')
  async accountReport(
    @Param('accountId') account: string,
    @Param('cycleId') id: string,
    @Query() query: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    return this.render(
      parse(cycleId, id, 'cycleId'),
      parse(accountId, account, 'accountId'),
      query,
      reply,
    );
  }

  @Get('fails')
  async fails(@Query() query: unknown, @Res({ passthrough: true }) reply: FastifyReply) {
    const q = parse(failsQuery, query ?? {}, 'query');
    const lines = await fails(this.dataSource.manager, q);
    if (q.format === 'csv') {
      reply.header('content-type', 'text/csv; charset=utf-8');
      return toCsv(
        lines.length > 0 ? Object.keys(lines[0]) : ['tradeId'],
        lines as unknown as Array<Record<string, unknown>>,
      );
    }
    return { fails: lines };
  }

  private async render(
    id: string,
    account: string | undefined,
    query: unknown,
    reply: FastifyReply,
  ) {
    const q = parse(reportQuery, query ?? {}, 'query');
    const report = await cycleReport(this.dataSource.manager, id, account, {
      offset: q.offset,
      limit: q.limit,
    });
    if (!report) {
      throw new ProblemException({
        status: 404,
        title: 'No such cycle',
        detail: `no settlement cycle ${id}`,
        errors: [{ field: 'cycleId', message: 'no cycle has this id' }],
      });
    }
    if (q.format === 'csv') {
      reply.header('content-type', 'text/csv; charset=utf-8');
      return q.part === 'trades'
        ? toCsv(TRADE_COLUMNS, report.trades as unknown as Array<Record<string, unknown>>)
        : toCsv(MOVEMENT_COLUMNS, report.movements as unknown as Array<Record<string, unknown>>);
    }
    return {
      ...report,
      ...(account ? { accountId: account } : {}),
      offset: q.offset,
      limit: q.limit,
    };
  }
}
