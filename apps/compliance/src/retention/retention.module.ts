// Retention of the audit log and legal holds. The archive target and the clock are providers so a
// deployment can put S3 (Object Lock) behind ArchiveTarget and tests can move time.
import { ArchiveTarget, FilesystemArchiveTarget } from '@finance/audit-log';
import { SERVICE_CONFIG } from '@finance/platform';
import { DynamicModule, Module } from '@nestjs/common';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLogModule } from '../audit/audit-log.module';
import type { ComplianceConfig } from '../config';
import { LegalHolds } from '../legal-holds/legal-holds';
import { LegalHoldsController } from '../legal-holds/legal-holds.controller';
import { ARCHIVE_TARGET, AuditRetention, RETENTION_CLOCK, RetentionClock } from './audit-retention';
import { RetentionController } from './retention.controller';

@Module({})
export class RetentionModule {
  static register(
    overrides: { clock?: RetentionClock; archive?: ArchiveTarget } = {},
  ): DynamicModule {
    return {
      module: RetentionModule,
      imports: [AuditLogModule],
      controllers: [RetentionController, LegalHoldsController],
      providers: [
        {
          provide: ARCHIVE_TARGET,
          inject: [SERVICE_CONFIG],
          useFactory: (
            config: Pick<ComplianceConfig, 'AUDIT_ARCHIVE_DIR' | 'NODE_ENV'>,
          ): ArchiveTarget | null => {
            if (overrides.archive) return overrides.archive;
            if (config.AUDIT_ARCHIVE_DIR)
              return new FilesystemArchiveTarget(config.AUDIT_ARCHIVE_DIR);
            // Never a temporary directory in production: without a target, nothing is dropped.
            if (config.NODE_ENV === 'production') return null;
            return new FilesystemArchiveTarget(join(tmpdir(), 'finance-audit-archive'));
          },
        },
        { provide: RETENTION_CLOCK, useValue: overrides.clock ?? { now: () => new Date() } },
        AuditRetention,
        LegalHolds,
      ],
      exports: [AuditRetention, LegalHolds],
    };
  }
}
