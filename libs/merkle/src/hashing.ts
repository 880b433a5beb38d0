// RFC 6962 §2.1 hashing with SHA-256. Leaves and interior nodes get different prefixes (0x00, 0x01)
// so an interior node can never be presented as a leaf (the second-preimage attack on plain trees).
import { hash } from 'node:crypto';

export const HASH_SIZE = 32;

/** Root of the empty tree: SHA-256 of the empty string. */
export const EMPTY_ROOT: Uint8Array = hash('sha256', Buffer.alloc(0), 'buffer');

const LEAF_PREFIX = Buffer.from([0x00]);
// One scratch buffer for every interior node: hashing is synchronous, so nothing can interleave.
const scratch = Buffer.alloc(1 + 2 * HASH_SIZE);
scratch[0] = 0x01;

/** H(0x00 ‖ data). */
export function leafHash(data: Uint8Array): Uint8Array {
  return hash('sha256', Buffer.concat([LEAF_PREFIX, data]), 'buffer');
}

/** H(0x01 ‖ left ‖ right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  if (left.length !== HASH_SIZE || right.length !== HASH_SIZE) {
    throw new RangeError(`a node hash takes two ${HASH_SIZE}-byte hashes`);
  }
  scratch.set(left, 1);
  scratch.set(right, 1 + HASH_SIZE);
  return hash('sha256', scratch, 'buffer');
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** A 32-byte hash from lower-case or upper-case hex, or base64; throws on anything else. */
export function parseHash(text: string): Uint8Array {
  const bytes = /^[0-9a-fA-F]{64}$/.test(text)
    ? Buffer.from(text, 'hex')
    : /^[A-Za-z0-9+/]{43}=$/.test(text)
      ? Buffer.from(text, 'base64')
      : undefined;
  if (!bytes || bytes.length !== HASH_SIZE) {
    throw new RangeError(`not a SHA-256 hash (64 hex digits or base64): '${text.slice(0, 80)}'`);
  }
  return bytes;
}

export function equalHashes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
