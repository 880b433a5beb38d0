// Runs retention now (the compliance officer, per the authorization policy) and answers what it did.
import { requestActor } from '@finance/platform';
import { Controller, HttpCode, Post, Req } from '@nestjs/common';
import { requestId } from '../audit/audit-requests';
import { AuditRetention, RetentionRun } from './audit-retention';

@Controller('compliance/retention')
export class RetentionController {
  constructor(private readonly retention: AuditRetention) {}

  @Post('run')
  @HttpCode(200)
  run(@Req() request: unknown): Promise<RetentionRun> {
    return this.retention.run(requestActor(request), requestId(request));
  }
}
