// Auditor reports over the audit log.
import { Module } from '@nestjs/common';
import { AuditLogModule } from '../audit/audit-log.module';
import { ReportsController } from './reports.controller';

@Module({ imports: [AuditLogModule], controllers: [ReportsController] })
export class ReportsModule {}
