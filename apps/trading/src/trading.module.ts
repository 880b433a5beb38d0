// The trading bounded context: accounts, orders, order books and the order-placement TCC coordinator.
import { Module } from '@nestjs/common';

@Module({})
export class TradingModule {}
