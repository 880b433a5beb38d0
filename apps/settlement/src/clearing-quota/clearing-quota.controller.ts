// REST: an account's clearing-quota usage, the firm's in the same currencies, and the account's open
// reservations. Read-only: the quotas come from configuration until settlement has a writer.
import { Controller, Get, Inject, Param } from '@nestjs/common';
import { parseOrProblem as parse, SERVICE_CONFIG } from '@finance/platform';
import { DataSource } from 'typeorm';
import { accountIdParam, ClearingQuotaConfig, readClearingQuota } from './clearing-quota';

@Controller('settlement/clearing-quota')
export class ClearingQuotaController {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(SERVICE_CONFIG) private readonly config: ClearingQuotaConfig,
  ) {}

  @Get(':accountId')
  get(@Param('accountId') accountId: string) {
    return readClearingQuota(
      this.dataSource,
      this.config,
      parse(accountIdParam, accountId, 'accountId'),
    );
  }
}
