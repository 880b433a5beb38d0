// The risk-quota branch of order placement and the limits API behind it. RiskQuotaBranch is exported
// for the TCC participant that the service registers for resource `risk-quota`.
import { Module } from '@nestjs/common';
import { RiskLimitsController } from './risk-limits.controller';
import { RiskQuotaBranch } from './risk-quota.branch';

@Module({
  controllers: [RiskLimitsController],
  providers: [RiskQuotaBranch],
  exports: [RiskQuotaBranch],
})
export class RiskQuotaModule {}
