// How the compliance service is assembled: its context module, database migrations and default port.
import { MessagingTables1763769600000 } from '@finance/messaging';
import { ServiceDefinition } from '@finance/platform';
import { ComplianceModule } from './compliance.module';

export const complianceService: ServiceDefinition = {
  name: 'compliance',
  defaultPort: 3004,
  module: ComplianceModule,
  migrations: [MessagingTables1763769600000],
};
