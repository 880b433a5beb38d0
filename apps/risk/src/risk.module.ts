// The risk bounded context: limits, pre-trade checks, positions and the kill switch.
import { AuthzModule } from '@finance/authz';
import { PLACEMENT_RESOURCES } from '@finance/contracts';
import { MessagingModule } from '@finance/messaging';
import { TccParticipantModule } from '@finance/tcc';
import { Module } from '@nestjs/common';
import { RiskQuotaBranch } from './risk-quota/risk-quota.branch';
import { RiskQuotaModule } from './risk-quota/risk-quota.module';

@Module({
  imports: [
    MessagingModule.forService(),
    AuthzModule.forService(),
    RiskQuotaModule,
    TccParticipantModule.forService({
      service: 'risk',
      resources: { [PLACEMENT_RESOURCES.riskQuota]: RiskQuotaBranch },
      imports: [RiskQuotaModule],
    }),
  ],
})
export class RiskModule {}
