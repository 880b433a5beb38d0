// Inclusion (audit path) and consistency proofs of RFC 6962 §2.1.1–2.1.2, computed over any store of
// complete subtree hashes. A proof is a list of range hashes; each range decomposes into at most
// 2·log2(n) complete subtrees, so a store that keeps them answers a proof in O(log n) lookups, all
// requested in one call.
import { EMPTY_ROOT } from './hashing';
import { assertSize, decomposeRange, foldRange, LeafRange, NodeId, splitPoint } from './tree';

/** Where proofs read subtree hashes from (a database of stored subtrees, or memory). */
export interface NodeSource {
  /** The hash of each complete subtree, in the order asked; every one lies inside the tree. */
  nodes(ids: readonly NodeId[]): Promise<readonly Uint8Array[]>;
}

/** The ranges whose hashes form the audit path of leaf `index` in a tree of `size`, leaf first. */
export function inclusionRanges(index: number, size: number): LeafRange[] {
  assertSize(index, 'index');
  assertSize(size, 'size');
  if (index >= size) throw new RangeError(`leaf ${index} is not in a tree of ${size} leaves`);
  const ranges: LeafRange[] = [];
  let begin = 0;
  let end = size;
  while (end - begin > 1) {
    const k = splitPoint(end - begin);
    if (index < begin + k) {
      ranges.push([begin + k, end]);
      end = begin + k;
    } else {
      ranges.push([begin, begin + k]);
      begin += k;
    }
  }
  return ranges.reverse();
}

/** The ranges whose hashes prove the tree of `oldSize` is a prefix of the tree of `newSize`. */
export function consistencyRanges(oldSize: number, newSize: number): LeafRange[] {
  assertSize(oldSize, 'oldSize');
  assertSize(newSize, 'newSize');
  if (oldSize > newSize) throw new RangeError(`a tree of ${newSize} cannot extend ${oldSize}`);
  // Every tree extends the empty one, and a tree is consistent with itself: nothing to prove.
  if (oldSize === 0 || oldSize === newSize) return [];
  const ranges: LeafRange[] = [];
  let begin = 0;
  let end = newSize;
  // RFC 6962 SUBPROOF's flag b: false once the old tree's root is no longer a node of this subtree.
  let oldRootIsHere = true;
  while (oldSize !== end) {
    const k = splitPoint(end - begin);
    if (oldSize - begin <= k) {
      ranges.push([begin + k, end]);
      end = begin + k;
    } else {
      ranges.push([begin, begin + k]);
      begin += k;
      oldRootIsHere = false;
    }
  }
  if (!oldRootIsHere) ranges.push([begin, end]);
  return ranges.reverse();
}

/** The hashes of `ranges`, reading each needed subtree from `source` once, in one call. */
export async function rangeHashes(
  source: NodeSource,
  ranges: readonly LeafRange[],
): Promise<Uint8Array[]> {
  const plans = ranges.map(([begin, end]) => decomposeRange(begin, end));
  const unique = new Map<string, NodeId>();
  for (const plan of plans) for (const id of plan) unique.set(`${id.level}:${id.index}`, id);
  const ids = [...unique.values()];
  const hashes = ids.length > 0 ? await source.nodes(ids) : [];
  if (hashes.length !== ids.length) {
    throw new Error(`node source answered ${hashes.length} hashes for ${ids.length} subtrees`);
  }
  const byKey = new Map(ids.map((id, i) => [`${id.level}:${id.index}`, hashes[i]]));
  return plans.map((plan) => foldRange(plan.map((id) => byKey.get(`${id.level}:${id.index}`)!)));
}

export async function inclusionProof(
  source: NodeSource,
  index: number,
  size: number,
): Promise<Uint8Array[]> {
  return rangeHashes(source, inclusionRanges(index, size));
}

export async function consistencyProof(
  source: NodeSource,
  oldSize: number,
  newSize: number,
): Promise<Uint8Array[]> {
  return rangeHashes(source, consistencyRanges(oldSize, newSize));
}

/** MTH of the first `size` leaves. */
export async function rootAt(source: NodeSource, size: number): Promise<Uint8Array> {
  assertSize(size, 'size');
  if (size === 0) return EMPTY_ROOT;
  const [root] = await rangeHashes(source, [[0, size]]);
  return root;
}
