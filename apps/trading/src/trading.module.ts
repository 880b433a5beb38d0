// The trading bounded context: accounts, orders, order books and the order-placement TCC coordinator.
import { MessagingModule } from '@finance/messaging';
import { Module } from '@nestjs/common';

@Module({ imports: [MessagingModule.forService()] })
export class TradingModule {}
