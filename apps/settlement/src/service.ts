// How the settlement service is assembled: its context module, config, database migrations and default port.
import { InboxKafkaServer, MessagingTables1763769600000 } from '@finance/messaging';
import { ServiceDefinition } from '@finance/platform';
import { SagaDeferredAnswers1765238400000, SagaTables1764028800000 } from '@finance/saga';
import { TCC_INBOX_SERVER, TccTables1763942400000 } from '@finance/tcc';
import { ClearingQuota1764115200001 } from './clearing-quota/clearing-quota.migration';
import { SettlementConfig, settlementConfigSchema } from './config';
import { SettlementTables1765324800000 } from './ledger/settlement-tables.migration';
import { SettlementModule } from './settlement.module';

export const settlementService: ServiceDefinition<SettlementConfig> = {
  name: 'settlement',
  defaultPort: 3002,
  configSchema: settlementConfigSchema,
  module: SettlementModule,
  // TccTables: every TCC participant keeps its barrier (tcc_barrier) in its own database.
  migrations: [
    MessagingTables1763769600000,
    TccTables1763942400000,
    ClearingQuota1764115200001,
    SettlementTables1765324800000,
    SagaTables1764028800000,
    SagaDeferredAnswers1765238400000,
  ],
  transports: (app) => [app.get(InboxKafkaServer), app.get(TCC_INBOX_SERVER, { strict: false })],
};
