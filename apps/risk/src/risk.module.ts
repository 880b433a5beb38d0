// The risk bounded context: limits, pre-trade checks, positions and the kill switch.
import { AuthzModule } from '@finance/authz';
import { MessagingModule } from '@finance/messaging';
import { Module } from '@nestjs/common';

@Module({ imports: [MessagingModule.forService(), AuthzModule.forService()] })
export class RiskModule {}
