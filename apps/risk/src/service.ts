// How the risk service is assembled: its context module, config, database migrations and default port.
import { InboxKafkaServer, MessagingTables1763769600000 } from '@finance/messaging';
import { ServiceDefinition } from '@finance/platform';
import { TCC_INBOX_SERVER, TccTables1763942400000 } from '@finance/tcc';
import { RiskConfig, riskConfigSchema } from './config';
import { RiskModule } from './risk.module';
import { RiskControls1764547200000 } from './migrations/risk-controls.migration';
import { RiskQuota1764115200000 } from './risk-quota/risk-quota.migration';

export const riskService: ServiceDefinition<RiskConfig> = {
  name: 'risk',
  defaultPort: 3003,
  configSchema: riskConfigSchema,
  module: RiskModule,
  // TccTables: every TCC participant keeps its barrier (tcc_barrier) in its own database.
  migrations: [
    MessagingTables1763769600000,
    TccTables1763942400000,
    RiskQuota1764115200000,
    RiskControls1764547200000,
  ],
  transports: (app) => [app.get(InboxKafkaServer), app.get(TCC_INBOX_SERVER, { strict: false })],
};
