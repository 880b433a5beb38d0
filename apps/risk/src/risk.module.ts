// The risk bounded context: limits, pre-trade checks, positions and the kill switch.
import { MessagingModule } from '@finance/messaging';
import { Module } from '@nestjs/common';

@Module({ imports: [MessagingModule.forService()] })
export class RiskModule {}
