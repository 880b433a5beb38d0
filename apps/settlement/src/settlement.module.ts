// The settlement bounded context: clearing quota, obligations, the double-entry ledger and settlement cycles.
import { AuthzModule } from '@finance/authz';
import { MessagingModule } from '@finance/messaging';
import { Module } from '@nestjs/common';

@Module({ imports: [MessagingModule.forService(), AuthzModule.forService()] })
export class SettlementModule {}
