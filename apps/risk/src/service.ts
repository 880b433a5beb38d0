// How the risk service is assembled: its context module, config, database migrations and default port.
import { InboxKafkaServer, MessagingTables1763769600000 } from '@finance/messaging';
import { ServiceDefinition } from '@finance/platform';
import { SagaDeferredAnswers1765238400000, SagaTables1764028800000 } from '@finance/saga';
import { TCC_INBOX_SERVER, TccTables1763942400000 } from '@finance/tcc';
import { RiskConfig, riskConfigSchema } from './config';
import { RiskModule } from './risk.module';
import { RiskControls1764547200000 } from './migrations/risk-controls.migration';
import { RiskQuota1764115200000 } from './risk-quota/risk-quota.migration';
import { UnwoundTrades1765497600000 } from './migrations/unwound-trades.migration';

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
    UnwoundTrades1765497600000,
    SagaTables1764028800000,
    SagaDeferredAnswers1765238400000,
  ],
  transports: (app) => [app.get(InboxKafkaServer), app.get(TCC_INBOX_SERVER, { strict: false })],
};
