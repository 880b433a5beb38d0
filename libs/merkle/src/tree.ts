// The shape of an RFC 6962 tree of any size, as complete aligned subtrees, and the compact range
// (the hashes of the subtrees that make up [0, size)), which appends a leaf in O(log n) memory and
// names every subtree an append completes, so a store can keep them and answer proofs from them.
//
// Sizes and indexes are JS numbers: exact up to 2^53 leaves, and the arithmetic below never uses
// 32-bit bitwise operators for that reason.
import { EMPTY_ROOT, nodeHash } from './hashing';

/** The complete subtree of 2^level leaves starting at leaf index·2^level. Level 0 is a leaf. */
export interface NodeId {
  readonly level: number;
  readonly index: number;
}

/** A range of leaves [begin, end). */
export type LeafRange = readonly [begin: number, end: number];

export function assertSize(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${what} must be a non-negative safe integer, got ${value}`);
  }
}

/** The largest power of two strictly below n (n ≥ 2): where RFC 6962 splits a tree of n leaves. */
export function splitPoint(n: number): number {
  if (n < 2) throw new RangeError(`a tree of ${n} leaves has no split`);
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * The complete aligned subtrees covering [begin, end), left to right, each as large as alignment
 * allows. For every range RFC 6962's recursion produces, its hash is the right fold of these.
 */
export function decomposeRange(begin: number, end: number): NodeId[] {
  assertSize(begin, 'begin');
  assertSize(end, 'end');
  if (begin > end) throw new RangeError(`range [${begin}, ${end}) is reversed`);
  const nodes: NodeId[] = [];
  let position = begin;
  while (position < end) {
    let size = 1;
    let level = 0;
    while (position % (size * 2) === 0 && position + size * 2 <= end) {
      size *= 2;
      level += 1;
    }
    nodes.push({ level, index: position / size });
    position += size;
  }
  return nodes;
}

/** MTH of a range from the hashes of its decomposition (in `decomposeRange` order). */
export function foldRange(hashes: readonly Uint8Array[]): Uint8Array {
  if (hashes.length === 0) return EMPTY_ROOT;
  let hash = hashes[hashes.length - 1];
  for (let i = hashes.length - 2; i >= 0; i--) hash = nodeHash(hashes[i], hash);
  return hash;
}

/** Levels of the compact range of [0, size): the set bits of size, highest first. */
export function frontierLevels(size: number): number[] {
  assertSize(size, 'size');
  const levels: number[] = [];
  let rest = size;
  for (let level = 0; rest > 0; level++) {
    if (rest % 2 === 1) levels.unshift(level);
    rest = Math.floor(rest / 2);
  }
  return levels;
}

export type OnCompleted = (node: NodeId, hash: Uint8Array) => void;

/**
 * The hashes of the maximal complete subtrees of [0, size): enough to compute the root and to keep
 * appending. `append` reports each subtree (level ≥ 1) the new leaf completes.
 */
export class CompactRange {
  private readonly levels: number[];
  private readonly hashes: Uint8Array[];
  private end: number;

  constructor(size = 0, hashes: readonly Uint8Array[] = []) {
    const levels = frontierLevels(size);
    if (levels.length !== hashes.length) {
      throw new RangeError(
        `a compact range of size ${size} has ${levels.length} hashes, got ${hashes.length}`,
      );
    }
    this.levels = levels;
    this.hashes = [...hashes];
    this.end = size;
  }

  get size(): number {
    return this.end;
  }

  /** The subtree hashes, largest (leftmost) first; with `size` they restore the range. */
  get frontier(): readonly Uint8Array[] {
    return this.hashes;
  }

  appendLeaf(leafHash: Uint8Array, onCompleted?: OnCompleted): void {
    this.appendNode(0, leafHash, onCompleted);
  }

  /**
   * Appends a complete subtree of 2^level leaves at the end, which must be aligned to it (every
   * subtree already in the range is at least as large).
   */
  appendNode(level: number, hash: Uint8Array, onCompleted?: OnCompleted): void {
    const width = 2 ** level;
    if (this.end % width !== 0) {
      throw new RangeError(`a subtree of level ${level} cannot start at leaf ${this.end}`);
    }
    const end = this.end + width;
    let current = hash;
    let currentLevel = level;
    while (this.levels.length > 0 && this.levels[this.levels.length - 1] === currentLevel) {
      this.levels.pop();
      current = nodeHash(this.hashes.pop()!, current);
      currentLevel += 1;
      onCompleted?.({ level: currentLevel, index: end / 2 ** currentLevel - 1 }, current);
    }
    this.levels.push(currentLevel);
    this.hashes.push(current);
    this.end = end;
  }

  /** MTH of [0, size). */
  root(): Uint8Array {
    return foldRange(this.hashes);
  }

  clone(): CompactRange {
    return new CompactRange(this.end, this.hashes);
  }
}

/** MTH of a list of leaf hashes. */
export function rootOfLeafHashes(leafHashes: readonly Uint8Array[]): Uint8Array {
  const range = new CompactRange();
  for (const leaf of leafHashes) range.appendLeaf(leaf);
  return range.root();
}
