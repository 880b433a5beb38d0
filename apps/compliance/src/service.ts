// How the compliance service is assembled: its context module, config, database migrations, default
// port, and the inbox transport on which it consumes every topic for the audit log.
import { AuditLogTables1764288000000, AuditRetentionTables1764892800000 } from '@finance/audit-log';
import { InboxKafkaServer, MessagingTables1763769600000 } from '@finance/messaging';
import { ServiceDefinition } from '@finance/platform';
import { SagaDeferredAnswers1765238400000, SagaTables1764028800000 } from '@finance/saga';
import { TCC_INBOX_SERVER, TccTables1763942400000 } from '@finance/tcc';
import { ComplianceAlerts1765065600000 } from './alerts/compliance-alerts.migration';
import { ComplianceModule } from './compliance.module';
import { ComplianceConfig, complianceConfigSchema } from './config';
import { ComplianceChecks1764460800000 } from './pre-trade/compliance-check.migration';

export const complianceService: ServiceDefinition<ComplianceConfig> = {
  name: 'compliance',
  defaultPort: 3004,
  configSchema: complianceConfigSchema,
  module: ComplianceModule,
  migrations: [
    MessagingTables1763769600000,
    TccTables1763942400000,
    AuditLogTables1764288000000,
    ComplianceChecks1764460800000,
    AuditRetentionTables1764892800000,
    ComplianceAlerts1765065600000,
    SagaTables1764028800000,
    SagaDeferredAnswers1765238400000,
  ],
  transports: (app) => [app.get(InboxKafkaServer), app.get(TCC_INBOX_SERVER, { strict: false })],
};
