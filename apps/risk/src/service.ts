// How the risk service is assembled: its context module, database migrations and default port.
import { MessagingTables1763769600000 } from '@finance/messaging';
import { ServiceDefinition } from '@finance/platform';
import { RiskModule } from './risk.module';

export const riskService: ServiceDefinition = {
  name: 'risk',
  defaultPort: 3003,
  module: RiskModule,
  migrations: [MessagingTables1763769600000],
};
