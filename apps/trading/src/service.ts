// How the trading service is assembled: its context module, database migrations and default port.
import { MessagingTables1763769600000 } from '@finance/messaging';
import { ServiceDefinition } from '@finance/platform';
import { TradingModule } from './trading.module';

export const tradingService: ServiceDefinition = {
  name: 'trading',
  defaultPort: 3001,
  module: TradingModule,
  migrations: [MessagingTables1763769600000],
};
