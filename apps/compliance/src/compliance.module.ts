// The compliance bounded context: the tamper-evident audit log, compliance rules and auditor reports.
import { AuthzModule } from '@finance/authz';
import { PLACEMENT_RESOURCES } from '@finance/contracts';
import { MessagingModule } from '@finance/messaging';
import { postTradeSaga, SagaParticipantModule } from '@finance/saga';
import { TccParticipantModule } from '@finance/tcc';
import { Module } from '@nestjs/common';
import { AlertsModule } from './alerts/alerts.module';
import { AuditLogModule } from './audit/audit-log.module';
import { COMPLIANCE_CHECK, PostTradeComplianceStep } from './post-trade/compliance-check.step';
import { RetentionModule } from './retention/retention.module';
import { ComplianceCheckBranch } from './pre-trade/compliance-check.branch';
import { PreTradeModule } from './pre-trade/pre-trade.module';
import { ReportsModule } from './reports/reports.module';

@Module({
  imports: [
    MessagingModule.forService(),
    AuthzModule.forService(),
    AuditLogModule,
    RetentionModule.register(),
    PreTradeModule,
    ReportsModule,
    AlertsModule,
    // The 4th branch of order placement; its commands are also audited by AuditEventsController.
    TccParticipantModule.forService({
      service: 'compliance',
      resources: { [PLACEMENT_RESOURCES.complianceCheck]: ComplianceCheckBranch },
      imports: [PreTradeModule],
    }),
    SagaParticipantModule.forService({
      steps: [
        { definition: postTradeSaga, step: COMPLIANCE_CHECK, handlers: PostTradeComplianceStep },
      ],
    }),
  ],
})
export class ComplianceModule {}
