// REST for compliance alerts (the compliance officer, per the authorization policy): list, read, start
// a review, close with a note. Bad input answers 400 naming the field; a wrong state 409.
import { parseOrProblem as parse, requestActor } from '@finance/platform';
import { Body, Controller, Get, HttpCode, Param, Post, Query, Req } from '@nestjs/common';
import { requestId } from '../audit/audit-requests';
import {
  alertIdParam,
  closeAlertBody,
  ComplianceAlert,
  ComplianceAlerts,
  listAlertsQuery,
} from './compliance-alerts';

@Controller('compliance/alerts')
export class AlertsController {
  constructor(private readonly alerts: ComplianceAlerts) {}

  @Get()
  list(@Query() query: unknown): Promise<{ alerts: ComplianceAlert[]; nextCursor: string | null }> {
    return this.alerts.list(parse(listAlertsQuery, query ?? {}, 'query'));
  }

  @Get(':id')
  get(@Param('id') id: string): Promise<ComplianceAlert> {
    return this.alerts.get(parse(alertIdParam, id, 'path.id'));
  }

  @Post(':id/review')
  @HttpCode(200)
  review(@Param('id') id: string, @Req() request: unknown): Promise<ComplianceAlert> {
    return this.alerts.startReview(
      parse(alertIdParam, id, 'path.id'),
      requestActor(request),
      requestId(request),
    );
  }

  @Post(':id/close')
  @HttpCode(200)
  close(
    @Param('id') id: string,
    @Body() body: unknown,
    @Req() request: unknown,
  ): Promise<ComplianceAlert> {
    const alertId = parse(alertIdParam, id, 'path.id');
    const { note } = parse(closeAlertBody, body ?? {}, 'body');
    return this.alerts.close(alertId, note, requestActor(request), requestId(request));
  }
}
