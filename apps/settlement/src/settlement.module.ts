// The settlement bounded context: clearing quota, obligations, the double-entry ledger and settlement cycles.
import { AuthzModule } from '@finance/authz';
import { PLACEMENT_RESOURCES } from '@finance/contracts';
import { MessagingModule } from '@finance/messaging';
import { SERVICE_CONFIG } from '@finance/platform';
import { TccParticipantModule } from '@finance/tcc';
import { Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { ClearingQuotaBranch } from './clearing-quota/clearing-quota.branch';
import { ClearingQuotaModule } from './clearing-quota/clearing-quota.module';
import type { SettlementConfig } from './config';
import { SettlementCycles } from './cycles/cycle';
import { CyclesController } from './cycles/cycles.controller';
import { SETTLEMENT_CYCLES } from './cycles/cycles.tokens';
import { LedgerController } from './ledger/ledger.controller';
import { TradingEventsController } from './obligations/trading-events.controller';
import { ReconciliationController } from './reconciliation/reconciliation.controller';

@Module({
  imports: [
    MessagingModule.forService(),
    AuthzModule.forService(),
    ClearingQuotaModule,
    TccParticipantModule.forService({
      service: 'settlement',
      resources: { [PLACEMENT_RESOURCES.clearingQuota]: ClearingQuotaBranch },
      imports: [ClearingQuotaModule],
    }),
  ],
  controllers: [
    TradingEventsController,
    CyclesController,
    LedgerController,
    ReconciliationController,
  ],
  providers: [
    {
      provide: SETTLEMENT_CYCLES,
      inject: [DataSource, SERVICE_CONFIG],
      useFactory: (dataSource: DataSource, config: SettlementConfig) =>
        new SettlementCycles(dataSource, config),
    },
  ],
})
export class SettlementModule {}
