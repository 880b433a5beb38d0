// What retention writes for one month before dropping it, and the check it runs on what it reads
// back. The bundle is three files under `<origin>/<partition>/<archived-at>/`:
//   entries.jsonl    the month's entries in the export format, against the checkpoint below
//   checkpoint.json  the signed checkpoint (with its public key) the export is checked against
//   manifest.json    range, count, leaf indexes, the files' SHA-256, written last
// so `npm run audit-verify -- entries.jsonl --checkpoint checkpoint.json` verifies it offline, and
// the check before the drop is that same verifier on the bytes as stored.
import { createHash, KeyObject } from 'node:crypto';
import { CheckpointDocument } from '../store/audit-log.store';
import { checkpointDocumentSchema } from '../documents';
import { verifyAudit, wantedFromExport } from '../verify/audit-verification';
import { verifyExportBytes } from '../verify/export-verifier';

export const ARCHIVE_FORMAT = 'finance-audit-archive/v1';

export const ARCHIVE_FILES = {
  entries: 'entries.jsonl',
  checkpoint: 'checkpoint.json',
  manifest: 'manifest.json',
} as const;

export interface ArchiveManifest {
  readonly format: typeof ARCHIVE_FORMAT;
  readonly origin: string;
  readonly partition: string;
  /** The month: [rangeStart, rangeEnd) of appended_at, UTC. */
  readonly rangeStart: string;
  readonly rangeEnd: string;
  readonly entryCount: number;
  /** Leaf indexes [firstLeaf, lastLeaf]; null for a month without entries. */
  readonly firstLeaf: number | null;
  readonly lastLeaf: number | null;
  readonly checkpointSize: number;
  readonly sha256: { readonly [file: string]: string };
  readonly archivedAt: string;
}

export interface ArchiveCheck {
  readonly ok: boolean;
  readonly problems: readonly string[];
}

export function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Checks a month's archive as read back: the bytes are the ones written, the checkpoint is the one
 * used and signed by the log's key, and the export holds exactly [from, to), every entry intact,
 * giving the checkpoint's root.
 */
export function checkArchive(read: {
  readonly entries: Buffer;
  readonly checkpoint: Buffer;
  readonly expected: {
    readonly entriesSha256: string;
    readonly checkpointSha256: string;
    readonly checkpoint: CheckpointDocument;
    readonly from: number;
    readonly to: number;
  };
  readonly publicKey: KeyObject;
}): ArchiveCheck {
  const { expected } = read;
  const problems: string[] = [];
  if (sha256Hex(read.entries) !== expected.entriesSha256) {
    problems.push(`${ARCHIVE_FILES.entries}: its SHA-256 differs from what was written`);
  }
  if (sha256Hex(read.checkpoint) !== expected.checkpointSha256) {
    problems.push(`${ARCHIVE_FILES.checkpoint}: its SHA-256 differs from what was written`);
  }
  let checkpoint;
  try {
    checkpoint = checkpointDocumentSchema.parse(JSON.parse(read.checkpoint.toString('utf8')));
  } catch (error) {
    problems.push(
      `${ARCHIVE_FILES.checkpoint}: unreadable (${(error as Error).message.split('\n')[0]})`,
    );
    return { ok: false, problems };
  }
  if (
    checkpoint.treeSize !== expected.checkpoint.treeSize ||
    checkpoint.rootHash !== expected.checkpoint.rootHash
  ) {
    problems.push(
      `${ARCHIVE_FILES.checkpoint}: not the checkpoint of size ${expected.checkpoint.treeSize}`,
    );
  }
  const request = { checkpoint, publicKey: read.publicKey };
  let exported;
  try {
    exported = verifyExportBytes(read.entries, wantedFromExport(request));
  } catch (error) {
    problems.push(`${ARCHIVE_FILES.entries}: ${(error as Error).message}`);
    return { ok: false, problems };
  }
  const { header } = exported;
  if (header.from !== expected.from || header.to !== expected.to) {
    problems.push(
      `${ARCHIVE_FILES.entries}: holds [${header.from}, ${header.to}), not [${expected.from}, ${expected.to})`,
    );
  }
  if (exported.archived.length > 0 || exported.entries !== expected.to - expected.from) {
    problems.push(
      `${ARCHIVE_FILES.entries}: ${exported.entries} entries, expected ${expected.to - expected.from}`,
    );
  }
  const report = verifyAudit({ ...request, export: exported });
  for (const check of report.checks) if (!check.ok) problems.push(check.message);
  return { ok: problems.length === 0, problems };
}
