// The risk bounded context: limits, pre-trade checks, positions and P&L, the kill switch with its
// breakers, and reports.
import { AuthzModule } from '@finance/authz';
import { PLACEMENT_RESOURCES } from '@finance/contracts';
import { MessagingModule } from '@finance/messaging';
import { postTradeSaga, SagaParticipantModule } from '@finance/saga';
import { TccParticipantModule } from '@finance/tcc';
import { Module } from '@nestjs/common';
import { KillSwitchController } from './kill-switch/kill-switch.controller';
import { PositionsController } from './positions/positions.controller';
import { VALIDATE_RISK, ValidateRiskStep } from './post-trade/validate-risk.step';
import { TradingEventsController } from './positions/trading-events.controller';
import { ReportsController } from './reports/reports.controller';
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
    SagaParticipantModule.forService({
      steps: [{ definition: postTradeSaga, step: VALIDATE_RISK, handlers: ValidateRiskStep }],
    }),
  ],
  controllers: [
    TradingEventsController,
    PositionsController,
    KillSwitchController,
    ReportsController,
  ],
})
export class RiskModule {}
