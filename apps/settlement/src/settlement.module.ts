// The settlement bounded context: clearing quota, obligations, the double-entry ledger and settlement cycles.
import { AuthzModule } from '@finance/authz';
import { PLACEMENT_RESOURCES } from '@finance/contracts';
import { MessagingModule } from '@finance/messaging';
import { TccParticipantModule } from '@finance/tcc';
import { Module } from '@nestjs/common';
import { ClearingQuotaBranch } from './clearing-quota/clearing-quota.branch';
import { ClearingQuotaModule } from './clearing-quota/clearing-quota.module';

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
})
export class SettlementModule {}
