// The trading bounded context: accounts, orders, order books and the order-placement TCC coordinator.
import { AuthzModule } from '@finance/authz';
import { MessagingModule } from '@finance/messaging';
import { Module } from '@nestjs/common';

@Module({ imports: [MessagingModule.forService(), AuthzModule.forService()] })
export class TradingModule {}
