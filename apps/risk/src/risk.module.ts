// The risk bounded context: limits, pre-trade checks, positions and the kill switch.
import { Module } from '@nestjs/common';

@Module({})
export class RiskModule {}
