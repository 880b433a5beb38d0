// The clearing-quota branch of order placement and its read API. ClearingQuotaBranch is exported for
// the TCC participant that the service registers for resource `clearing-quota`.
import { Module } from '@nestjs/common';
import { ClearingQuotaBranch } from './clearing-quota.branch';
import { ClearingQuotaController } from './clearing-quota.controller';

@Module({
  controllers: [ClearingQuotaController],
  providers: [ClearingQuotaBranch],
  exports: [ClearingQuotaBranch],
})
export class ClearingQuotaModule {}
