// Signed checkpoints of the audit log: on a timer whenever the log has grown, and on demand. Each is
// signed over the root the proofs are served from, stored, and published as AuditCheckpointSigned in
// the same transaction, so outsiders hold copies the service cannot take back.
import {
  AuditLogStore,
  AuditTreeError,
  CheckpointDocument,
  registerAuditMetrics,
} from '@finance/audit-log';
import { AuditCheckpointSigned, SYSTEM_CATALOG } from '@finance/contracts';
import { equalHashes, signCheckpoint, toHex } from '@finance/merkle';
import { createEnvelope, enqueueOutbox, routeMessage } from '@finance/messaging';
import { SERVICE_CONFIG, SERVICE_LOGGER } from '@finance/platform';
import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import type { ComplianceConfig } from '../config';
import { AUDIT_SIGNER, AuditSigner } from './audit-signer';

export type AuditCheckpointsConfig = Pick<
  ComplianceConfig,
  'AUDIT_CHECKPOINT_INTERVAL_MS' | 'AUDIT_LOG_ORIGIN' | 'KAFKA_TOPIC_PREFIX'
>;

// Our own checkpoint events come back through the consumer: they alone are no reason to sign again.
const SELF_TYPES = [AuditCheckpointSigned.type];
const PARTITION_CHECK_MS = 60 * 60 * 1000;

@Injectable()
export class AuditCheckpoints implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private partitionsCheckedAt = 0;

  constructor(
    private readonly store: AuditLogStore,
    private readonly dataSource: DataSource,
    @Inject(AUDIT_SIGNER) private readonly signer: AuditSigner,
    @Inject(SERVICE_CONFIG) private readonly config: AuditCheckpointsConfig,
    @Inject(SERVICE_LOGGER) private readonly logger: Logger,
  ) {
    registerAuditMetrics(dataSource, { selfTypes: SELF_TYPES });
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.store.registerKey(this.signer.keyId, this.signer.publicKeyPem);
    await this.ensurePartitions();
    this.timer = setInterval(() => {
      this.running ??= this.tick().finally(() => (this.running = undefined));
    }, this.config.AUDIT_CHECKPOINT_INTERVAL_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** Signs a checkpoint of the log as it is now; returns the existing one if none is needed. */
  async create(): Promise<{ checkpoint: CheckpointDocument; created: boolean }> {
    const origin = this.config.AUDIT_LOG_ORIGIN;
    return this.dataSource.transaction(async (manager) => {
      await this.store.lockCheckpoints(manager);
      const head = await this.store.head(manager);
      const existing = await this.store.checkpoint(head.treeSize, manager);
      if (existing) return { checkpoint: existing, created: false };
      // Sign only a root the stored subtrees reproduce: proofs are served from them.
      const stored = await this.store.rootAt(head.treeSize, manager);
      if (!equalHashes(stored, head.root)) {
        throw new AuditTreeError(
          `the tree head and the stored subtrees disagree at size ${head.treeSize}; not signing`,
        );
      }
      const signed = signCheckpoint(
        {
          origin,
          treeSize: head.treeSize,
          rootHash: toHex(head.root),
          timestamp: new Date().toISOString(),
        },
        this.signer.privateKey,
      );
      const checkpoint = await this.store.saveCheckpoint(manager, signed);
      if (!checkpoint) throw new Error(`checkpoint of size ${head.treeSize} appeared meanwhile`);
      const event = createEnvelope(
        AuditCheckpointSigned,
        {
          treeSize: signed.treeSize,
          rootHash: signed.rootHash,
          signature: signed.signature,
          keyId: signed.keyId,
          timestamp: signed.timestamp,
          origin,
        },
        {
          producer: 'compliance',
          aggregateId: origin,
          aggregateSequence: checkpoint.sequence,
          correlationId: `checkpoint-${signed.treeSize}`,
        },
      );
      await enqueueOutbox(manager, [
        routeMessage(SYSTEM_CATALOG, event, this.config.KAFKA_TOPIC_PREFIX),
      ]);
      return { checkpoint, created: true };
    });
  }

  /** A checkpoint if the log grew since the last one by more than our own checkpoint events. */
  async checkpointIfGrown(): Promise<CheckpointDocument | null> {
    const latest = await this.store.latestCheckpoint();
    const grew = latest
      ? await this.store.grewSince(latest.treeSize, SELF_TYPES)
      : (await this.store.head()).treeSize > 0;
    if (!grew) return null;
    const { checkpoint, created } = await this.create();
    if (created) {
      this.logger.info(
        { treeSize: checkpoint.treeSize, rootHash: checkpoint.rootHash, keyId: checkpoint.keyId },
        'audit checkpoint signed',
      );
    }
    return checkpoint;
  }

  private async tick(): Promise<void> {
    try {
      if (Date.now() - this.partitionsCheckedAt > PARTITION_CHECK_MS) await this.ensurePartitions();
      await this.checkpointIfGrown();
    } catch (error) {
      this.logger.error({ err: error }, 'audit checkpoint failed; retrying on the next tick');
    }
  }

  // This month and the next two exist before any append needs them.
  private async ensurePartitions(): Promise<void> {
    await this.store.ensurePartitions(new Date(), 2);
    this.partitionsCheckedAt = Date.now();
  }
}
