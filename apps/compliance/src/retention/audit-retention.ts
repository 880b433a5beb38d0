// Retention of the audit log: months of audit_entries entirely older than AUDIT_RETENTION_DAYS leave
// the database, on a timer and on demand. A month holding an entry under an active legal hold stays.
// Any other is exported with the latest signed checkpoint to the archive target, read back and
// checked with the auditors' verifier, recorded in audit_archives and only then detached and dropped
// (by audit_drop_archived_partition, which re-checks count, leaves and holds). Leaves, subtrees and
// checkpoints stay, so proofs for everything keep working. Each run is itself an audit entry.
import {
  ARCHIVE_FILES,
  ARCHIVE_FORMAT,
  ArchiveManifest,
  ArchiveTarget,
  AuditLogStore,
  checkArchive,
  CheckpointDocument,
  HOLD_COVERS_ENTRY,
} from '@finance/audit-log';
import { uuidv7 } from '@finance/contracts';
import { publicKeyFromPem } from '@finance/merkle';
import { ProblemException, SERVICE_CONFIG, SERVICE_LOGGER } from '@finance/platform';
import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { AuditCheckpoints } from '../audit/audit-checkpoints';
import { LocalAudit } from '../audit/local-audit';
import type { ComplianceConfig } from '../config';

export const ARCHIVE_TARGET = Symbol('ARCHIVE_TARGET');
export const RETENTION_CLOCK = Symbol('RETENTION_CLOCK');

/** The time retention measures age against; tests move it. */
export interface RetentionClock {
  now(): Date;
}

export type RetentionConfig = Pick<
  ComplianceConfig,
  'AUDIT_RETENTION_DAYS' | 'AUDIT_RETENTION_INTERVAL_MS' | 'AUDIT_LOG_ORIGIN'
>;

export type ArchivedPartition = {
  readonly partition: string;
  readonly archiveId: string;
  readonly rangeStart: string;
  readonly rangeEnd: string;
  readonly entryCount: number;
  readonly firstLeaf: number | null;
  readonly lastLeaf: number | null;
  readonly location: string;
  readonly checksum: string;
};

export type KeptPartition = {
  readonly partition: string;
  readonly reason: 'LEGAL_HOLD';
  readonly holds: string[];
};

export type FailedPartition = {
  readonly partition: string;
  readonly problems: string[];
};

export type RetentionRun = {
  readonly runId: string;
  readonly actor: string;
  readonly now: string;
  readonly retentionDays: number;
  /** Months ending at or before this are due. */
  readonly cutoff: string;
  readonly checkpointSize: number;
  readonly archived: ArchivedPartition[];
  readonly kept: KeptPartition[];
  readonly failed: FailedPartition[];
  /** Leaf index of the run's own audit entry. */
  readonly auditEntry: number;
};

const PARTITION_NAME = /^audit_entries_y(\d{4})m(\d{2})$/;
const DAY_MS = 86_400_000;

interface Month {
  readonly name: string;
  readonly start: Date;
  readonly end: Date;
}

@Injectable()
export class AuditRetention implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer?: NodeJS.Timeout;
  // Runs one after another, whether from the timer or a request.
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: AuditLogStore,
    private readonly dataSource: DataSource,
    private readonly checkpoints: AuditCheckpoints,
    private readonly audit: LocalAudit,
    @Inject(ARCHIVE_TARGET) private readonly target: ArchiveTarget | null,
    @Inject(RETENTION_CLOCK) private readonly clock: RetentionClock,
    @Inject(SERVICE_CONFIG) private readonly config: RetentionConfig,
    @Inject(SERVICE_LOGGER) private readonly logger: Logger,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.target) {
      this.logger.warn(
        'AUDIT_ARCHIVE_DIR is not set: audit retention is off, nothing is archived or dropped',
      );
      return;
    }
    this.timer = setInterval(() => {
      this.run('compliance/retention-timer').catch((error: unknown) =>
        this.logger.error({ err: error }, 'audit retention failed; retrying on the next tick'),
      );
    }, this.config.AUDIT_RETENTION_INTERVAL_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.queue.catch(() => undefined);
  }

  run(actor: string, correlationId?: string): Promise<RetentionRun> {
    const next = this.queue.then(() => this.runOnce(actor, correlationId));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private get archive(): ArchiveTarget {
    if (this.target) return this.target;
    throw new ProblemException({
      status: 503,
      title: 'retention is off',
      detail: 'no archive target is configured (AUDIT_ARCHIVE_DIR); nothing is dropped without one',
    });
  }

  private async runOnce(actor: string, correlationId?: string): Promise<RetentionRun> {
    void this.archive; // refuses before anything is done when there is no target
    const now = this.clock.now();
    const cutoff = new Date(now.getTime() - this.config.AUDIT_RETENTION_DAYS * DAY_MS);
    // Everything due lies below the head, so one checkpoint covers every month of this run.
    const { checkpoint } = await this.checkpoints.create();
    const archived: ArchivedPartition[] = [];
    const kept: KeptPartition[] = [];
    const failed: FailedPartition[] = [];
    const runId = uuidv7();
    for (const month of await this.months()) {
      if (month.end.getTime() > cutoff.getTime()) continue;
      try {
        const holds = await this.holdsCovering(month.name);
        if (holds.length > 0) {
          kept.push({ partition: month.name, reason: 'LEGAL_HOLD', holds });
          continue;
        }
        const outcome = await this.archiveAndDrop(month, checkpoint, now, runId);
        if ('problems' in outcome) failed.push(outcome);
        else archived.push(outcome);
      } catch (error) {
        failed.push({ partition: month.name, problems: [(error as Error).message] });
      }
    }
    const auditEntry = await this.audit.record({
      type: 'AuditRetentionRun',
      actor,
      aggregateId: this.config.AUDIT_LOG_ORIGIN,
      correlationId,
      details: {
        runId,
        now: now.toISOString(),
        retentionDays: this.config.AUDIT_RETENTION_DAYS,
        cutoff: cutoff.toISOString(),
        checkpointSize: checkpoint.treeSize,
        archived,
        kept,
        failed,
      },
    });
    const run: RetentionRun = {
      runId,
      actor,
      now: now.toISOString(),
      retentionDays: this.config.AUDIT_RETENTION_DAYS,
      cutoff: cutoff.toISOString(),
      checkpointSize: checkpoint.treeSize,
      archived,
      kept,
      failed,
      auditEntry,
    };
    const level = failed.length > 0 ? 'error' : 'info';
    this.logger[level](
      { runId, archived: archived.map((a) => a.partition), kept, failed },
      'audit retention run',
    );
    return run;
  }

  /** The monthly partitions of audit_entries, oldest first. */
  private async months(): Promise<Month[]> {
    const rows: Array<{ name: string }> = await this.dataSource.query(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'audit_entries'::regclass ORDER BY c.relname`,
    );
    return rows.flatMap(({ name }) => {
      const match = PARTITION_NAME.exec(name);
      if (!match) return [];
      const [year, month] = [Number(match[1]), Number(match[2])];
      return [
        {
          name,
          start: new Date(Date.UTC(year, month - 1, 1)),
          end: new Date(Date.UTC(year, month, 1)),
        },
      ];
    });
  }

  private async holdsCovering(partition: string): Promise<string[]> {
    const rows: Array<{ id: string }> = await this.dataSource.query(
      `SELECT h.id::text AS id FROM audit_legal_holds h
        WHERE h.released_at IS NULL
          AND EXISTS (SELECT 1 FROM "${partition}" e WHERE ${HOLD_COVERS_ENTRY})
        ORDER BY h.id`,
    );
    return rows.map((row) => row.id);
  }

  private async archiveAndDrop(
    month: Month,
    checkpoint: CheckpointDocument,
    now: Date,
    runId: string,
  ): Promise<ArchivedPartition | FailedPartition> {
    const [stats]: Array<{ n: string; lo: string | null; hi: string | null }> =
      await this.dataSource.query(
        `SELECT count(*)::text AS n, min(leaf_index)::text AS lo, max(leaf_index)::text AS hi
           FROM "${month.name}"`,
      );
    const count = Number(stats.n);
    const firstLeaf = stats.lo === null ? null : Number(stats.lo);
    const lastLeaf = stats.hi === null ? null : Number(stats.hi);
    // A month's entries are one run of leaves (appends are serialised and stamped in order); if
    // not, its export could not stand for it.
    if (firstLeaf !== null && lastLeaf !== null && lastLeaf - firstLeaf + 1 !== count) {
      return {
        partition: month.name,
        problems: [`holds ${count} entries but leaves ${firstLeaf} to ${lastLeaf}: not one range`],
      };
    }
    if (lastLeaf !== null && lastLeaf >= checkpoint.treeSize) {
      return {
        partition: month.name,
        problems: [`entry ${lastLeaf} is not covered by checkpoint ${checkpoint.treeSize}`],
      };
    }
    const from = firstLeaf ?? 0;
    const to = lastLeaf === null ? 0 : lastLeaf + 1;

    let entries = '';
    for await (const chunk of this.store.exportLines({
      origin: checkpoint.origin,
      from,
      to,
      treeSize: checkpoint.treeSize,
    })) {
      entries += chunk;
    }
    const checkpointFile = `${JSON.stringify(checkpoint, null, 2)}\n`;
    const prefix = `${month.name}/${now.toISOString().replace(/[:]/g, '-')}-${runId.slice(-12)}`;
    const entriesObject = await this.archive.put(
      `${prefix}/${ARCHIVE_FILES.entries}`,
      Buffer.from(entries),
    );
    const checkpointObject = await this.archive.put(
      `${prefix}/${ARCHIVE_FILES.checkpoint}`,
      Buffer.from(checkpointFile),
    );
    const manifest: ArchiveManifest = {
      format: ARCHIVE_FORMAT,
      origin: checkpoint.origin,
      partition: month.name,
      rangeStart: month.start.toISOString(),
      rangeEnd: month.end.toISOString(),
      entryCount: count,
      firstLeaf,
      lastLeaf,
      checkpointSize: checkpoint.treeSize,
      sha256: {
        [ARCHIVE_FILES.entries]: entriesObject.sha256,
        [ARCHIVE_FILES.checkpoint]: checkpointObject.sha256,
      },
      archivedAt: now.toISOString(),
    };
    await this.archive.put(
      `${prefix}/${ARCHIVE_FILES.manifest}`,
      Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`),
    );

    // Read back what is stored now and check it as an auditor would, before anything is dropped.
    const check = checkArchive({
      entries: await this.archive.get(entriesObject.key),
      checkpoint: await this.archive.get(checkpointObject.key),
      expected: {
        entriesSha256: entriesObject.sha256,
        checkpointSha256: checkpointObject.sha256,
        checkpoint,
        from,
        to,
      },
      publicKey: publicKeyFromPem(checkpoint.publicKey),
    });
    if (!check.ok) {
      return {
        partition: month.name,
        problems: [
          `the archive at ${this.archive.locate(prefix)} does not verify; not dropping`,
          ...check.problems,
        ],
      };
    }

    const location = this.archive.locate(prefix);
    const archiveId = await this.dataSource.transaction(async (manager) => {
      const [row]: Array<{ id: string }> = await manager.query(
        `INSERT INTO audit_archives (partition_name, range_start, range_end, entry_count, first_leaf,
           last_leaf, location, checksum, checkpoint_size, archived_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id::text AS id`,
        [
          month.name,
          month.start.toISOString(),
          month.end.toISOString(),
          count,
          firstLeaf,
          lastLeaf,
          location,
          entriesObject.sha256,
          checkpoint.treeSize,
          now.toISOString(),
        ],
      );
      await manager.query('SELECT audit_drop_archived_partition($1)', [row.id]);
      return row.id;
    });
    return {
      partition: month.name,
      archiveId,
      rangeStart: month.start.toISOString(),
      rangeEnd: month.end.toISOString(),
      entryCount: count,
      firstLeaf,
      lastLeaf,
      location,
      checksum: entriesObject.sha256,
    };
  }
}
