// The settlement bounded context: clearing quota, obligations, the double-entry ledger and settlement cycles.
import { AuthzModule } from '@finance/authz';
import { MessagingModule } from '@finance/messaging';
import { Module } from '@nestjs/common';
import { ClearingQuotaModule } from './clearing-quota/clearing-quota.module';

@Module({
  imports: [MessagingModule.forService(), AuthzModule.forService(), ClearingQuotaModule],
})
export class SettlementModule {}
