// Trading's events risk consumes, on the inbox transport: each in the consumer's transaction.
import { MessageOf, OrderCancelled, OrderExecuted, OrderReplaced } from '@finance/contracts';
import { INBOX_KAFKA_TRANSPORT, InboxRpcContext } from '@finance/messaging';
import { SERVICE_CONFIG } from '@finance/platform';
import { Controller, Inject } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { applyTrade, closeOrder, replaceOrder, TradesConfig } from './trades';

@Controller()
export class TradingEventsController {
  constructor(@Inject(SERVICE_CONFIG) private readonly config: TradesConfig) {}

  @EventPattern(OrderExecuted.type, INBOX_KAFKA_TRANSPORT)
  async executed(
    @Payload() message: MessageOf<typeof OrderExecuted>,
    @Ctx() ctx: InboxRpcContext,
  ): Promise<void> {
    await applyTrade(ctx.manager, this.config, message.data, message.metadata.eventId);
  }

  @EventPattern(OrderCancelled.type, INBOX_KAFKA_TRANSPORT)
  async cancelled(
    @Payload() message: MessageOf<typeof OrderCancelled>,
    @Ctx() ctx: InboxRpcContext,
  ): Promise<void> {
    await closeOrder(ctx.manager, message.data);
  }

  @EventPattern(OrderReplaced.type, INBOX_KAFKA_TRANSPORT)
  async replaced(
    @Payload() message: MessageOf<typeof OrderReplaced>,
    @Ctx() ctx: InboxRpcContext,
  ): Promise<void> {
    await replaceOrder(ctx.manager, message.data);
  }
}
