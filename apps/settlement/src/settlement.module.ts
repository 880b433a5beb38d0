// The settlement bounded context: clearing quota, obligations, the double-entry ledger and settlement cycles.
import { MessagingModule } from '@finance/messaging';
import { Module } from '@nestjs/common';

@Module({ imports: [MessagingModule.forService()] })
export class SettlementModule {}
