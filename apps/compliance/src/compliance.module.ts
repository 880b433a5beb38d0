// The compliance bounded context: the tamper-evident audit log, compliance rules and auditor reports.
import { AuthzModule } from '@finance/authz';
import { MessagingModule } from '@finance/messaging';
import { Module } from '@nestjs/common';

@Module({ imports: [MessagingModule.forService(), AuthzModule.forService()] })
export class ComplianceModule {}
