// The compliance bounded context: the tamper-evident audit log, compliance rules and auditor reports.
import { Module } from '@nestjs/common';

@Module({})
export class ComplianceModule {}
