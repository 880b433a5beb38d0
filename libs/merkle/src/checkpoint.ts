// Signed checkpoints: "the log had treeSize entries with this root at this time", signed with Ed25519.
// What is signed is a fixed prefix and the canonical JSON of the four fields, so any verifier can
// rebuild the exact bytes from the checkpoint's JSON.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  KeyObject,
  sign as signBytes,
  verify as verifyBytes,
} from 'node:crypto';
import { canonicalJson } from './canonical-json';
import { parseHash, toHex } from './hashing';

// Domain separation: these bytes can never be mistaken for another signed message of ours.
const SIGNED_PREFIX = 'finance-audit-checkpoint/v1\n';
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;

export interface Checkpoint {
  /** Which log this is (several logs may share a key). */
  readonly origin: string;
  readonly treeSize: number;
  /** MTH of the first treeSize entries, lower-case hex. */
  readonly rootHash: string;
  /** When it was signed, UTC ISO 8601. */
  readonly timestamp: string;
}

export interface SignedCheckpoint extends Checkpoint {
  /** `keyIdOf` the signing key. */
  readonly keyId: string;
  /** Ed25519 signature of `checkpointBody`, base64. */
  readonly signature: string;
}

/** The exact bytes that are signed. */
export function checkpointBody(checkpoint: Checkpoint): Buffer {
  const { origin, treeSize, rootHash, timestamp } = checkpoint;
  if (!origin) throw new RangeError('checkpoint origin is empty');
  if (!Number.isSafeInteger(treeSize) || treeSize < 0) {
    throw new RangeError(`checkpoint treeSize must be a non-negative integer, got ${treeSize}`);
  }
  if (!TIMESTAMP.test(timestamp)) throw new RangeError(`checkpoint timestamp '${timestamp}'`);
  const root = toHex(parseHash(rootHash));
  return Buffer.from(
    SIGNED_PREFIX + canonicalJson({ origin, rootHash: root, timestamp, treeSize }),
    'utf8',
  );
}

/** Short, stable name of a public key: the first 8 bytes of SHA-256 of its SPKI DER, hex. */
export function keyIdOf(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 16);
}

export function signCheckpoint(checkpoint: Checkpoint, privateKey: KeyObject): SignedCheckpoint {
  assertEd25519(privateKey, 'private');
  return {
    origin: checkpoint.origin,
    treeSize: checkpoint.treeSize,
    rootHash: toHex(parseHash(checkpoint.rootHash)),
    timestamp: checkpoint.timestamp,
    keyId: keyIdOf(privateKey),
    signature: signBytes(null, checkpointBody(checkpoint), privateKey).toString('base64'),
  };
}

export type CheckpointVerdict = { valid: true } | { valid: false; reason: string };

/** Checks the signature and that it was made by this key; never throws on bad input. */
export function verifyCheckpoint(
  checkpoint: SignedCheckpoint,
  publicKey: KeyObject,
): CheckpointVerdict {
  try {
    assertEd25519(publicKey, 'public');
    const keyId = keyIdOf(publicKey);
    if (checkpoint.keyId !== keyId) {
      return {
        valid: false,
        reason: `signed by key ${checkpoint.keyId}, not by the given key ${keyId}`,
      };
    }
    const signature = Buffer.from(checkpoint.signature, 'base64');
    return verifyBytes(null, checkpointBody(checkpoint), publicKey, signature)
      ? { valid: true }
      : { valid: false, reason: 'the signature does not match the checkpoint' };
  } catch (error) {
    return { valid: false, reason: error instanceof Error ? error.message : String(error) };
  }
}

export function publicKeyFromPem(pem: string): KeyObject {
  const key = createPublicKey(pem);
  assertEd25519(key, 'public');
  return key;
}

export function privateKeyFromPem(pem: string): KeyObject {
  const key = createPrivateKey(pem);
  assertEd25519(key, 'private');
  return key;
}

export function publicKeyPem(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  return publicKey.export({ type: 'spki', format: 'pem' }).toString();
}

function assertEd25519(key: KeyObject, type: 'public' | 'private'): void {
  if (key.type !== type || key.asymmetricKeyType !== 'ed25519') {
    throw new TypeError(
      `expected an Ed25519 ${type} key, got a ${key.asymmetricKeyType ?? key.type} ${key.type} key`,
    );
  }
}
