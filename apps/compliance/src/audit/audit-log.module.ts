// The tamper-evident audit log of the compliance service: the consumer of every topic, signed
// checkpoints, the auditor API, and LocalAudit for compliance's own actions (exported for reports).
import { AuditLogStore } from '@finance/audit-log';
import { SERVICE_CONFIG, SERVICE_LOGGER } from '@finance/platform';
import { Module } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import type { ComplianceConfig } from '../config';
import { AuditCheckpoints } from './audit-checkpoints';
import { AuditEventsController } from './audit-events.controller';
import { AUDIT_SIGNER, loadAuditSigner } from './audit-signer';
import { AuditController } from './audit.controller';
import { LocalAudit } from './local-audit';

@Module({
  controllers: [AuditEventsController, AuditController],
  providers: [
    {
      provide: AuditLogStore,
      inject: [DataSource],
      useFactory: (dataSource: DataSource) => new AuditLogStore(dataSource),
    },
    {
      provide: AUDIT_SIGNER,
      inject: [SERVICE_CONFIG, SERVICE_LOGGER],
      useFactory: (config: ComplianceConfig, logger: Logger) =>
        loadAuditSigner(config, logger.child({ component: 'audit-log' })),
    },
    AuditCheckpoints,
    LocalAudit,
  ],
  exports: [AuditLogStore, LocalAudit, AuditCheckpoints],
})
export class AuditLogModule {}
