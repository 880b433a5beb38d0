// How the settlement service is assembled: its context module, database migrations and default port.
import { MessagingTables1763769600000 } from '@finance/messaging';
import { ServiceDefinition } from '@finance/platform';
import { SettlementModule } from './settlement.module';

export const settlementService: ServiceDefinition = {
  name: 'settlement',
  defaultPort: 3002,
  module: SettlementModule,
  migrations: [MessagingTables1763769600000],
};
