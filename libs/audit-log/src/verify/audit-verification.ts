// What an auditor's verification concludes from what they saved: signed checkpoints (the newest
// and older ones), an export, and proofs the service served. Pure: the CLI reads the files and
// prints the checks; tests call this directly.
import {
  canonicalJson,
  EMPTY_ROOT,
  equalHashes,
  leafHash,
  parseHash,
  publicKeyFromPem,
  SignedCheckpoint,
  toHex,
  verifyCheckpoint,
  verifyConsistency,
  verifyInclusion,
} from '@finance/merkle';
import type { KeyObject } from 'node:crypto';
import type { ConsistencyProofDocument, InclusionProofDocument } from '../documents';
import type { ExportVerification } from './export-verifier';

export interface SavedCheckpoint extends SignedCheckpoint {
  /** The key the service said it signed with; used only when no key is pinned. */
  readonly publicKey?: string;
}

export interface VerificationInput {
  /** The checkpoint the export and proofs are checked against (normally the newest). */
  readonly checkpoint: SavedCheckpoint;
  /** Older checkpoints the auditor saved before. */
  readonly previous?: readonly SavedCheckpoint[];
  /** The key the auditor trusts; without it each checkpoint's own key is used, with a warning. */
  readonly publicKey?: KeyObject | null;
  readonly export?: ExportVerification | null;
  readonly inclusion?: readonly InclusionProofDocument[];
  readonly consistency?: readonly ConsistencyProofDocument[];
}

export interface Check {
  readonly ok: boolean;
  readonly message: string;
  /** A note, not a failure. */
  readonly warning?: boolean;
}

export interface VerificationReport {
  readonly ok: boolean;
  readonly checks: readonly Check[];
  /** The first entry found altered or missing, when one can be named. */
  readonly firstBadEntry: number | null;
  /** Where the first bad entry must lie when it cannot be named exactly: [from, to). */
  readonly firstBadWithin: readonly [number, number] | null;
}

/** The sizes whose roots the export should compute, and the leaves it should keep, for `verify`. */
export function wantedFromExport(input: Omit<VerificationInput, 'export'>): {
  rootsAt: number[];
  leavesAt: number[];
} {
  return {
    rootsAt: [input.checkpoint, ...(input.previous ?? [])].map((c) => c.treeSize),
    leavesAt: (input.inclusion ?? []).map((p) => p.leafIndex),
  };
}

export function verifyAudit(input: VerificationInput): VerificationReport {
  const checks: Check[] = [];
  const pass = (message: string) => checks.push({ ok: true, message });
  const fail = (message: string) => checks.push({ ok: false, message });
  const warn = (message: string) => checks.push({ ok: true, warning: true, message });
  let firstBadEntry: number | null = null;
  const badEntry = (index: number) => {
    firstBadEntry = firstBadEntry === null ? index : Math.min(firstBadEntry, index);
  };

  const saved = [input.checkpoint, ...(input.previous ?? [])].sort(
    (a, b) => a.treeSize - b.treeSize,
  );
  const bySize = new Map(saved.map((c) => [c.treeSize, c]));

  // 1. Every saved checkpoint is signed by the log's key, and all are of one log.
  for (const checkpoint of saved) {
    const label = `checkpoint of size ${checkpoint.treeSize} (${checkpoint.timestamp})`;
    let key = input.publicKey ?? null;
    if (!key && checkpoint.publicKey) {
      try {
        key = publicKeyFromPem(checkpoint.publicKey);
        warn(`${label}: checked with the key inside the file; pin the log's key with --public-key`);
      } catch (error) {
        fail(`${label}: its public key is unreadable (${(error as Error).message})`);
        continue;
      }
    }
    if (!key) {
      fail(`${label}: no public key to check its signature with (use --public-key)`);
      continue;
    }
    const verdict = verifyCheckpoint(checkpoint, key);
    if (verdict.valid) pass(`${label}: signature valid (key ${checkpoint.keyId})`);
    else fail(`${label}: signature invalid: ${verdict.reason}`);
  }
  const origins = new Set(saved.map((c) => c.origin));
  if (origins.size > 1) fail(`the checkpoints are of different logs: ${[...origins].join(', ')}`);

  // 2. The export: entries intact and in order, and the roots they give match the checkpoints.
  const exported = input.export ?? null;
  const matched: number[] = [];
  const mismatched: number[] = [];
  if (exported) {
    const { header } = exported;
    const what = `export of entries [${header.from}, ${header.to})`;
    if (header.origin !== input.checkpoint.origin) {
      fail(`${what} is of log '${header.origin}', not '${input.checkpoint.origin}'`);
    }
    if (exported.problemCount === 0) {
      pass(`${what}: ${exported.entries} entries, each matches its recorded leaf hash`);
    } else {
      for (const problem of exported.problems) fail(problem.problem);
      if (exported.problemCount > exported.problems.length) {
        fail(`… and ${exported.problemCount - exported.problems.length} more problems`);
      }
      badEntry(exported.firstBad!.index);
    }
    for (const range of exported.archived) {
      warn(
        `entries [${range.from}, ${range.to}) were archived by retention to ${range.location}: ` +
          'here they count by their subtree hashes; verify the archive with its own files',
      );
    }
    for (const checkpoint of saved) {
      const root = exported.rootsAt.get(checkpoint.treeSize);
      if (!root) {
        if (checkpoint === input.checkpoint && exported.problemCount === 0) {
          fail(
            `${what} cannot be checked against the checkpoint of size ${checkpoint.treeSize}: ` +
              `its header is for a tree of ${header.treeSize}`,
          );
        }
        continue;
      }
      if (equalHashes(root, parseHash(checkpoint.rootHash))) {
        matched.push(checkpoint.treeSize);
        pass(`the root of the first ${checkpoint.treeSize} entries matches the signed checkpoint`);
      } else {
        mismatched.push(checkpoint.treeSize);
        fail(
          `the root of the first ${checkpoint.treeSize} entries is ${toHex(root)}, ` +
            `the signed checkpoint says ${checkpoint.rootHash}`,
        );
      }
    }
  }

  // 3. Consistency proofs between saved checkpoints, checked with the saved roots.
  const linked = new Set<number>();
  for (const doc of input.consistency ?? []) {
    const older = doc.fromSize === 0 ? null : bySize.get(doc.fromSize);
    const newer = bySize.get(doc.toSize);
    const what = `consistency proof from size ${doc.fromSize} to ${doc.toSize}`;
    if ((doc.fromSize !== 0 && !older) || !newer) {
      fail(
        `${what}: no saved checkpoint of size ${!newer ? doc.toSize : doc.fromSize} to check it with`,
      );
      continue;
    }
    const oldRoot = older ? parseHash(older.rootHash) : EMPTY_ROOT;
    const ok = verifyConsistency(
      doc.fromSize,
      doc.toSize,
      doc.proof.map(parseHash),
      oldRoot,
      parseHash(newer.rootHash),
    );
    if (ok) {
      pass(`${what}: the log of size ${doc.toSize} extends the one you saved at ${doc.fromSize}`);
      linked.add(doc.fromSize);
    } else {
      fail(
        `${what} does not verify: the log was rewritten after the checkpoint of size ${doc.fromSize} ` +
          `(an entry before ${doc.fromSize} was changed or removed)`,
      );
      mismatched.push(doc.fromSize);
    }
  }
  for (const checkpoint of input.previous ?? []) {
    const size = checkpoint.treeSize;
    if (!linked.has(size) && !matched.includes(size) && !mismatched.includes(size)) {
      fail(
        `the checkpoint of size ${size} was not compared: give an export covering it or a ` +
          `--consistency proof from ${size} to ${input.checkpoint.treeSize}`,
      );
    }
  }

  // 4. Inclusion proofs, with the leaf hash recomputed from the entry, never taken on trust.
  for (const doc of input.inclusion ?? []) {
    const what = `inclusion of entry ${doc.leafIndex} in the log of size ${doc.treeSize}`;
    const checkpoint = bySize.get(doc.treeSize);
    if (!checkpoint) {
      fail(`${what}: no saved checkpoint of size ${doc.treeSize} to check it with`);
      continue;
    }
    const fromExport = exported?.leafHashes.get(doc.leafIndex);
    let leaf: Uint8Array;
    if (fromExport) leaf = fromExport;
    else if (doc.entry !== null && doc.entry !== undefined) {
      leaf = leafHash(Buffer.from(canonicalJson(doc.entry), 'utf8'));
    } else {
      warn(`${what}: no entry to recompute its leaf hash from; using the recorded hash`);
      leaf = parseHash(doc.leafHash);
    }
    const ok = verifyInclusion(
      leaf,
      doc.leafIndex,
      doc.treeSize,
      doc.auditPath.map(parseHash),
      parseHash(checkpoint.rootHash),
    );
    if (ok) pass(`${what}: verified`);
    else {
      fail(
        `${what} does not verify: the entry is not what the signed log holds at ${doc.leafIndex}`,
      );
      badEntry(doc.leafIndex);
    }
  }

  // Where the first bad entry lies when no entry names itself: between the last checkpoint that
  // still matches and the first that does not.
  let firstBadWithin: [number, number] | null = null;
  if (firstBadEntry === null && mismatched.length > 0) {
    const firstMismatch = Math.min(...mismatched);
    const lastMatch = Math.max(
      exported?.header.from ?? 0,
      ...matched.filter((s) => s < firstMismatch),
    );
    firstBadWithin = [lastMatch, firstMismatch];
    fail(
      `every entry matches its recorded leaf hash, so the recorded hashes were rewritten too: ` +
        `the first bad entry is in [${lastMatch}, ${firstMismatch})`,
    );
  }

  return { ok: checks.every((c) => c.ok), checks, firstBadEntry, firstBadWithin };
}
