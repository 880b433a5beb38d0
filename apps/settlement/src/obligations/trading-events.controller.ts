// Trading's events settlement consumes, on the inbox transport: each in the consumer's transaction.
import {
  FundsDeposited,
  FundsWithdrawn,
  MessageOf,
  OrderCancelled,
  OrderExecuted,
  OrderReplaced,
  OrderSettled,
  SecuritiesDeposited,
  SecuritiesWithdrawn,
} from '@finance/contracts';
import { INBOX_KAFKA_TRANSPORT, InboxRpcContext } from '@finance/messaging';
import { SERVICE_CONFIG } from '@finance/platform';
import { SAGA_ORCHESTRATOR, SagaOrchestrator } from '@finance/saga';
import { Controller, Inject } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { startPostTrade } from '../post-trade/post-trade';
import { confirmSettledInTrading } from '../reconciliation/reconciliation';
import {
  closeOrder,
  ObligationsConfig,
  recordMovement,
  recordObligation,
  replaceOrder,
} from './obligations';

@Controller()
export class TradingEventsController {
  constructor(
    @Inject(SERVICE_CONFIG) private readonly config: ObligationsConfig,
    @Inject(SAGA_ORCHESTRATOR) private readonly sagas: SagaOrchestrator,
  ) {}

  @EventPattern(OrderExecuted.type, INBOX_KAFKA_TRANSPORT)
  async executed(
    @Payload() message: MessageOf<typeof OrderExecuted>,
    @Ctx() ctx: InboxRpcContext,
  ): Promise<void> {
    if ((await recordObligation(ctx.manager, this.config, message.data)) === 'recorded') {
      await startPostTrade(this.sagas, ctx.manager, message.data);
    }
  }

  @EventPattern(OrderCancelled.type, INBOX_KAFKA_TRANSPORT)
  async cancelled(
    @Payload() message: MessageOf<typeof OrderCancelled>,
    @Ctx() ctx: InboxRpcContext,
  ): Promise<void> {
    await closeOrder(ctx.manager, message.data.orderId);
  }

  @EventPattern(OrderReplaced.type, INBOX_KAFKA_TRANSPORT)
  async replaced(
    @Payload() message: MessageOf<typeof OrderReplaced>,
    @Ctx() ctx: InboxRpcContext,
  ): Promise<void> {
    await replaceOrder(ctx.manager, message.data);
  }

  /** Trading applied a settled trade: reconciliation stops allowing for it as in flight. */
  @EventPattern(OrderSettled.type, INBOX_KAFKA_TRANSPORT)
  async settledInTrading(
    @Payload() message: MessageOf<typeof OrderSettled>,
    @Ctx() ctx: InboxRpcContext,
  ): Promise<void> {
    await confirmSettledInTrading(ctx.manager, message.data.tradeId, message.data.settledAt);
  }

  @EventPattern(
    [FundsDeposited.type, FundsWithdrawn.type, SecuritiesDeposited.type, SecuritiesWithdrawn.type],
    INBOX_KAFKA_TRANSPORT,
  )
  async moved(
    @Payload()
    message:
      | MessageOf<typeof FundsDeposited>
      | MessageOf<typeof FundsWithdrawn>
      | MessageOf<typeof SecuritiesDeposited>
      | MessageOf<typeof SecuritiesWithdrawn>,
    @Ctx() ctx: InboxRpcContext,
  ): Promise<void> {
    await recordMovement(ctx.manager, message);
  }
}
