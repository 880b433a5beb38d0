// REST for risk officers: an account's limits, usage and open reservations, and setting its limits.
// Who may call is the authorization policy's business (risk-officer writes, compliance reads).
import { Body, Controller, Get, Inject, Param, Put, Req } from '@nestjs/common';
import { parseOrProblem as parse, requestActor, SERVICE_CONFIG } from '@finance/platform';
import { DataSource } from 'typeorm';
import {
  accountIdParam,
  limitsBody,
  readAccountLimits,
  RiskLimitsConfig,
  setAccountLimits,
} from './risk-limits';

@Controller('risk/limits')
export class RiskLimitsController {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(SERVICE_CONFIG) private readonly config: RiskLimitsConfig,
  ) {}

  @Get(':accountId')
  get(@Param('accountId') accountId: string) {
    return readAccountLimits(
      this.dataSource,
      this.config,
      parse(accountIdParam, accountId, 'accountId'),
    );
  }

  @Put(':accountId')
  put(@Param('accountId') accountId: string, @Body() body: unknown, @Req() request: unknown) {
    return setAccountLimits(this.dataSource, this.config, {
      accountId: parse(accountIdParam, accountId, 'accountId'),
      limits: parse(limitsBody, body ?? {}, 'body'),
      changedBy: requestActor(request),
      correlationId: requestId(request),
    });
  }
}

/** The caller's x-request-id, so the RiskLimitChanged events lead back to the request's logs. */
function requestId(request: unknown): string | undefined {
  const header = (request as { headers?: Record<string, unknown> }).headers?.['x-request-id'];
  return typeof header === 'string' && header.length > 0 && header.length <= 128
    ? header
    : undefined;
}
