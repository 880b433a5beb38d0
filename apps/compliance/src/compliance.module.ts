// The compliance bounded context: the tamper-evident audit log, compliance rules and auditor reports.
import { MessagingModule } from '@finance/messaging';
import { Module } from '@nestjs/common';

@Module({ imports: [MessagingModule.forService()] })
export class ComplianceModule {}
