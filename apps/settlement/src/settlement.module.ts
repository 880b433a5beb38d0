// The settlement bounded context: clearing quota, obligations, the double-entry ledger and settlement cycles.
import { Module } from '@nestjs/common';

@Module({})
export class SettlementModule {}
