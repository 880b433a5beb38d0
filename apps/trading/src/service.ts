// How the trading service is assembled: its context module, configuration, database migrations,
// default port and the inbox transport that runs its Kafka handlers.
import { InboxKafkaServer, MessagingTables1763769600000 } from '@finance/messaging';
import { ServiceDefinition } from '@finance/platform';
import { SagaDeferredAnswers1765238400000, SagaTables1764028800000 } from '@finance/saga';
import { TCC_INBOX_SERVER, TccTables1763942400000 } from '@finance/tcc';
import { TradingConfig, tradingConfigSchema } from './config';
import { KillSwitches1765152000000 } from './migrations/kill-switches';
import { OrderReplace1764288000000 } from './migrations/order-replace';
import { SessionClose1764374400000 } from './migrations/session-close';
import { SettledTrades1765411200000 } from './migrations/settled-trades';
import { TradingTables1764201600000 } from './migrations/trading-tables';
import { TradingModule } from './trading.module';

export const tradingService: ServiceDefinition<TradingConfig> = {
  name: 'trading',
  defaultPort: 3001,
  module: TradingModule,
  configSchema: tradingConfigSchema,
  migrations: [
    MessagingTables1763769600000,
    TccTables1763942400000,
    TradingTables1764201600000,
    OrderReplace1764288000000,
    SessionClose1764374400000,
    KillSwitches1765152000000,
    SettledTrades1765411200000,
    SagaTables1764028800000,
    SagaDeferredAnswers1765238400000,
  ],
  transports: (app) => [app.get(InboxKafkaServer), app.get(TCC_INBOX_SERVER, { strict: false })],
};
