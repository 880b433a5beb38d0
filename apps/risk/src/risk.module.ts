// The risk bounded context: limits, pre-trade checks, positions and the kill switch.
import { AuthzModule } from '@finance/authz';
import { MessagingModule } from '@finance/messaging';
import { Module } from '@nestjs/common';
import { RiskQuotaModule } from './risk-quota/risk-quota.module';

@Module({ imports: [MessagingModule.forService(), AuthzModule.forService(), RiskQuotaModule] })
export class RiskModule {}
