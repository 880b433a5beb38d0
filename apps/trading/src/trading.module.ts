// The trading bounded context: accounts, orders, order books and the order-placement TCC coordinator
// (trading is also the placement's funds participant).
import { AuthzModule } from '@finance/authz';
import { PLACEMENT_RESOURCES } from '@finance/contracts';
import { MessagingModule } from '@finance/messaging';
import { postTradeSaga, SagaParticipantModule } from '@finance/saga';
import { TccCoordinatorModule, TccParticipantModule } from '@finance/tcc';
import { Module } from '@nestjs/common';
import { AccountsController } from './accounts/accounts.controller';
import { AccountsService } from './accounts/accounts.service';
import { DocsController } from './docs/docs.controller';
import { KillSwitchController } from './kill-switch/kill-switch.controller';
import { MarketController } from './market/market.controller';
import { MatchingEngine } from './matching/matching-engine';
import { OrderFundsBranch } from './orders/order-funds.branch';
import { OrderNotifications } from './orders/order-notifications';
import { OrdersController } from './orders/orders.controller';
import { OrdersService } from './orders/orders.service';
import { PlacementDecisions } from './orders/placement-decisions';
import { BalancesController } from './settlement/balances.controller';
import { CREATE_ORDER, CreateOrderStep } from './settlement/create-order.step';
import { SettlementEventsController } from './settlement/settlement-events.controller';

@Module({
  providers: [OrderFundsBranch, PlacementDecisions],
  exports: [OrderFundsBranch, PlacementDecisions],
})
class PlacementParticipantsModule {}

@Module({
  imports: [
    MessagingModule.forService(),
    AuthzModule.forService(),
    TccCoordinatorModule.forService({
      service: 'trading',
      decisions: PlacementDecisions,
      imports: [PlacementParticipantsModule],
    }),
    TccParticipantModule.forService({
      service: 'trading',
      resources: { [PLACEMENT_RESOURCES.funds]: OrderFundsBranch },
      imports: [PlacementParticipantsModule],
    }),
    SagaParticipantModule.forService({
      steps: [{ definition: postTradeSaga, step: CREATE_ORDER, handlers: CreateOrderStep }],
    }),
  ],
  controllers: [
    AccountsController,
    OrdersController,
    MarketController,
    DocsController,
    KillSwitchController,
    SettlementEventsController,
    BalancesController,
  ],
  providers: [AccountsService, OrdersService, MatchingEngine, OrderNotifications],
})
export class TradingModule {}
