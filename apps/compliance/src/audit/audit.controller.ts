// REST for auditors: signed checkpoints, inclusion and consistency proofs, the signing key, and any
// range of the log as verifiable JSON lines. Checking them needs no trust in this service: see the
// README's audit section and `npm run audit-verify`. Who may call is the authorization policy's business.
import {
  AuditLogStore,
  CheckpointDocument,
  ConsistencyProofDocument,
  InclusionProofDocument,
} from '@finance/audit-log';
import { toHex } from '@finance/merkle';
import {
  parseOrProblem as parse,
  ProblemException,
  requestActor,
  SERVICE_CONFIG,
} from '@finance/platform';
import { Controller, Get, Inject, Param, Post, Query, Req, StreamableFile } from '@nestjs/common';
import { Readable } from 'node:stream';
import type { ComplianceConfig } from '../config';
import { AuditCheckpoints } from './audit-checkpoints';
import {
  consistencyQuery,
  entriesQuery,
  inclusionQuery,
  notFound,
  outOfRange,
  publicKeyQuery,
  requestId,
  sizeParam,
} from './audit-requests';
import { AUDIT_SIGNER, AuditSigner } from './audit-signer';
import { LocalAudit } from './local-audit';

@Controller('compliance/audit')
export class AuditController {
  constructor(
    private readonly store: AuditLogStore,
    private readonly checkpoints: AuditCheckpoints,
    private readonly local: LocalAudit,
    @Inject(AUDIT_SIGNER) private readonly signer: AuditSigner,
    @Inject(SERVICE_CONFIG) private readonly config: Pick<ComplianceConfig, 'AUDIT_LOG_ORIGIN'>,
  ) {}

  @Get('checkpoints/latest')
  async latest(): Promise<CheckpointDocument> {
    const checkpoint = await this.store.latestCheckpoint();
    if (!checkpoint) throw notFound('checkpoint', 'no checkpoint has been signed yet');
    return checkpoint;
  }

  @Get('checkpoints/:size')
  async checkpoint(@Param('size') size: string): Promise<CheckpointDocument> {
    return this.signedCheckpoint(parse(sizeParam, size, 'size'), 'size');
  }

  /** Signs a checkpoint now; the request itself is recorded first, so the checkpoint covers it. */
  @Post('checkpoints')
  async sign(@Req() request: unknown): Promise<CheckpointDocument> {
    await this.local.record({
      type: 'AuditCheckpointRequested',
      actor: requestActor(request),
      aggregateId: this.config.AUDIT_LOG_ORIGIN,
      correlationId: requestId(request),
      details: {},
    });
    return (await this.checkpoints.create()).checkpoint;
  }

  @Get('public-key')
  async publicKey(@Query() query: unknown) {
    const keyId = parse(publicKeyQuery, query ?? {}, 'query').keyId ?? this.signer.keyId;
    const key = await this.store.publicKey(keyId);
    if (!key) throw notFound('query.keyId', `no signing key ${keyId}`);
    return {
      keyId,
      algorithm: 'Ed25519',
      publicKey: key.publicKey,
      current: keyId === this.signer.keyId,
    };
  }

  @Get('proof/inclusion')
  async inclusion(@Query() query: unknown): Promise<InclusionProofDocument> {
    const { entry, checkpoint: size } = parse(inclusionQuery, query ?? {}, 'query');
    const checkpoint = await this.signedCheckpoint(size, 'query.checkpoint');
    if (entry >= checkpoint.treeSize) {
      throw notFound(
        'query.entry',
        `entry ${entry} is not in the log of size ${checkpoint.treeSize}`,
      );
    }
    const [path, leafHash, stored] = await Promise.all([
      this.store.inclusionProof(entry, checkpoint.treeSize),
      this.store.leafHash(entry),
      this.store.entry(entry),
    ]);
    return {
      leafIndex: entry,
      treeSize: checkpoint.treeSize,
      leafHash: leafHash!,
      auditPath: path.map(toHex),
      entry: stored ? readEntry(entry, stored.leafText) : null,
      checkpoint,
    };
  }

  @Get('proof/consistency')
  async consistency(@Query() query: unknown): Promise<ConsistencyProofDocument> {
    const { from, to: size } = parse(consistencyQuery, query ?? {}, 'query');
    const to = await this.signedCheckpoint(size, 'query.to');
    if (from > to.treeSize) {
      throw outOfRange(
        'query.from',
        `must not be greater than the checkpoint's size ${to.treeSize}`,
      );
    }
    // The older size need not be stored here: an auditor's saved copy is what the proof is for.
    const [proof, older] = await Promise.all([
      this.store.consistencyProof(from, to.treeSize),
      from === 0 ? null : this.store.checkpoint(from),
    ]);
    return { fromSize: from, toSize: to.treeSize, proof: proof.map(toHex), from: older, to };
  }

  /** Entries [from, to) as JSON lines after a header that makes them checkable offline. */
  @Get('entries')
  async entries(@Query() query: unknown, @Req() request: unknown): Promise<StreamableFile> {
    const q = parse(entriesQuery, query ?? {}, 'query');
    const head = await this.store.head();
    let treeSize: number;
    if (q.checkpoint !== undefined) {
      treeSize = (await this.signedCheckpoint(q.checkpoint, 'query.checkpoint')).treeSize;
    } else {
      treeSize = q.to ?? head.treeSize;
    }
    const to = q.to ?? treeSize;
    const from = q.from ?? 0;
    if (to > head.treeSize) {
      throw outOfRange('query.to', `the log has ${head.treeSize} entries`);
    }
    if (to > treeSize) {
      throw outOfRange('query.to', `must not be greater than the checkpoint's size ${treeSize}`);
    }
    if (from > to) throw outOfRange('query.from', `must not be greater than ${to}`);
    await this.local.record({
      type: 'AuditLogExported',
      actor: requestActor(request),
      aggregateId: this.config.AUDIT_LOG_ORIGIN,
      correlationId: requestId(request),
      details: { from, to, treeSize },
    });
    const lines = this.store.exportLines({
      origin: this.config.AUDIT_LOG_ORIGIN,
      from,
      to,
      treeSize,
    });
    // The header first, so a tree that cannot be read answers a problem, not a cut-off stream.
    const header = await lines.next();
    const body = Readable.from(
      (async function* () {
        if (!header.done) yield header.value;
        yield* lines;
      })(),
    );
    return new StreamableFile(body, {
      type: 'application/x-ndjson; charset=utf-8',
      disposition: `attachment; filename="audit-${from}-${to}-of-${treeSize}.jsonl"`,
    });
  }

  private async signedCheckpoint(
    size: number | undefined,
    field: string,
  ): Promise<CheckpointDocument> {
    if (size === undefined) return this.latest();
    const checkpoint = await this.store.checkpoint(size);
    if (!checkpoint) throw notFound(field, `no signed checkpoint of size ${size}`);
    return checkpoint;
  }
}

function readEntry(index: number, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ProblemException({
      status: 500,
      title: 'audit entry unreadable',
      detail: `entry ${index} is not valid JSON: it was altered in the database`,
    });
  }
}
