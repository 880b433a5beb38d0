// The JSON documents the service serves and an auditor saves: checkpoints and proofs. The verifier
// reads them back with these schemas, so a file that was edited or truncated is refused plainly.
import type { SignedCheckpoint } from '@finance/merkle';
import { z } from 'zod';

const hashHex = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits');
const size = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const checkpointDocumentSchema = z.object({
  origin: z.string().min(1),
  treeSize: size,
  rootHash: hashHex,
  timestamp: z.string().min(1),
  keyId: z.string().min(1),
  signature: z.string().min(1),
  /** The signing key, for convenience; an auditor pins the key they trust instead. */
  publicKey: z.string().optional(),
});

export type CheckpointFile = z.infer<typeof checkpointDocumentSchema> & SignedCheckpoint;

export interface InclusionProofDocument {
  readonly leafIndex: number;
  readonly treeSize: number;
  /** As stored; the verifier recomputes it from the entry. */
  readonly leafHash: string;
  readonly auditPath: readonly string[];
  /** The entry (what its leaf hash covers), or null when retention has removed it. */
  readonly entry: unknown;
  readonly checkpoint: CheckpointFile;
}

export const inclusionProofDocumentSchema = z.object({
  leafIndex: size,
  treeSize: size,
  leafHash: hashHex,
  auditPath: z.array(hashHex),
  entry: z.unknown(),
  checkpoint: checkpointDocumentSchema,
});

export interface ConsistencyProofDocument {
  readonly fromSize: number;
  readonly toSize: number;
  readonly proof: readonly string[];
  readonly from: CheckpointFile | null;
  readonly to: CheckpointFile;
}

export const consistencyProofDocumentSchema = z.object({
  fromSize: size,
  toSize: size,
  proof: z.array(hashHex),
  from: checkpointDocumentSchema.nullable(),
  to: checkpointDocumentSchema,
});
