// Settlement's events trading consumes, on the inbox transport: each in the consumer's transaction.
import { MessageOf, TradeSettled } from '@finance/contracts';
import { INBOX_KAFKA_TRANSPORT, InboxRpcContext } from '@finance/messaging';
import { SERVICE_CONFIG } from '@finance/platform';
import { Controller, Inject } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import type { TradingConfig } from '../config';
import { settleTrade } from './settled-trades';

@Controller()
export class SettlementEventsController {
  constructor(@Inject(SERVICE_CONFIG) private readonly config: TradingConfig) {}

  @EventPattern(TradeSettled.type, INBOX_KAFKA_TRANSPORT)
  async settled(
    @Payload() message: MessageOf<typeof TradeSettled>,
    @Ctx() ctx: InboxRpcContext,
  ): Promise<void> {
    await settleTrade(ctx.manager, this.config.KAFKA_TOPIC_PREFIX, message.data);
  }
}
