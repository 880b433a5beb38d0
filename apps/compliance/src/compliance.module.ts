// The compliance bounded context: the tamper-evident audit log, compliance rules and auditor reports.
import { AuthzModule } from '@finance/authz';
import { MessagingModule } from '@finance/messaging';
import { Module } from '@nestjs/common';
import { AuditLogModule } from './audit/audit-log.module';
import { RetentionModule } from './retention/retention.module';

@Module({
  imports: [
    MessagingModule.forService(),
    AuthzModule.forService(),
    AuditLogModule,
    RetentionModule.register(),
  ],
})
export class ComplianceModule {}
