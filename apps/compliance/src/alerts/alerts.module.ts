// Post-trade surveillance and the alerts it raises, with their review workflow and REST.
import { Module } from '@nestjs/common';
import { AuditLogModule } from '../audit/audit-log.module';
import { PreTradeModule } from '../pre-trade/pre-trade.module';
import { AlertsController } from './alerts.controller';
import { ComplianceAlerts } from './compliance-alerts';
import { Surveillance } from './surveillance';

@Module({
  imports: [AuditLogModule, PreTradeModule],
  controllers: [AlertsController],
  providers: [ComplianceAlerts, Surveillance],
  exports: [ComplianceAlerts, Surveillance],
})
export class AlertsModule {}
