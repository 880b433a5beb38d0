// The settlement bounded context: clearing quota, obligations, the double-entry ledger and settlement cycles.
import { AuthzModule } from '@finance/authz';
import { PLACEMENT_RESOURCES } from '@finance/contracts';
import { MessagingModule } from '@finance/messaging';
import { SERVICE_CONFIG } from '@finance/platform';
import {
  postTradeSaga,
  SAGA_PARTICIPANT,
  SagaOrchestratorModule,
  SagaParticipant,
  SagaParticipantModule,
} from '@finance/saga';
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
import {
  PostTradeCycleListener,
  PROCESS_SETTLEMENT,
  ProcessSettlementStep,
} from './post-trade/post-trade';
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
    SagaOrchestratorModule.forService({ service: 'settlement', definitions: [postTradeSaga] }),
    SagaParticipantModule.forService({
      steps: [
        { definition: postTradeSaga, step: PROCESS_SETTLEMENT, handlers: ProcessSettlementStep },
      ],
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
      inject: [DataSource, SERVICE_CONFIG, SAGA_PARTICIPANT],
      useFactory: (
        dataSource: DataSource,
        config: SettlementConfig,
        participant: SagaParticipant,
      ) => new SettlementCycles(dataSource, config, new PostTradeCycleListener(participant)),
    },
  ],
})
export class SettlementModule {}
