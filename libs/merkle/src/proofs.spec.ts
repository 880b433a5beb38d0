// Proofs against a naive recomputation of RFC 6962's definition: every inclusion proof verifies for
// every (index, size), every consistency proof for every (m, n), and a changed leaf breaks them.
import fc from 'fast-check';
import { EMPTY_ROOT, leafHash, nodeHash } from './hashing';
import {
  consistencyProof,
  consistencyRanges,
  inclusionProof,
  inclusionRanges,
  NodeSource,
  rootAt,
} from './proofs';
import { CompactRange, decomposeRange, NodeId, splitPoint } from './tree';
import { verifyConsistency, verifyInclusion } from './verify';

/** MTH(D[n]) exactly as RFC 6962 §2.1 defines it. */
function naiveRoot(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return EMPTY_ROOT;
  if (leaves.length === 1) return leaves[0];
  const k = splitPoint(leaves.length);
  return nodeHash(naiveRoot(leaves.slice(0, k)), naiveRoot(leaves.slice(k)));
}

const leavesOf = (n: number, salt = 0) =>
  Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`entry ${i} ${salt}`)));

function memorySource(leaves: readonly Uint8Array[]): NodeSource & { reads: number } {
  const source = {
    reads: 0,
    nodes: async (ids: readonly NodeId[]) => {
      source.reads += ids.length;
      return ids.map(({ level, index }) => {
        const begin = index * 2 ** level;
        const end = begin + 2 ** level;
        if (end > leaves.length) throw new Error(`subtree ${level}/${index} is outside the tree`);
        return naiveRoot(leaves.slice(begin, end));
      });
    },
  };
  return source;
}

function flipped(hash: Uint8Array): Uint8Array {
  const copy = Buffer.from(hash);
  copy[0] ^= 0x01;
  return copy;
}

describe('inclusion proofs', () => {
  it('verify for every leaf of every tree of up to 70 leaves, and not for another leaf or position', async () => {
    const all = leavesOf(70);
    for (let size = 1; size <= all.length; size++) {
      const leaves = all.slice(0, size);
      const root = naiveRoot(leaves);
      const source = memorySource(leaves);
      for (let index = 0; index < size; index++) {
        const proof = await inclusionProof(source, index, size);
        expect(verifyInclusion(leaves[index], index, size, proof, root)).toBe(true);
        expect(verifyInclusion(flipped(leaves[index]), index, size, proof, root)).toBe(false);
        if (size > 1) {
          const other = (index + 1) % size;
          expect(verifyInclusion(leaves[other], index, size, proof, root)).toBe(false);
          expect(verifyInclusion(leaves[index], other, size, proof, root)).toBe(false);
        }
        expect(verifyInclusion(leaves[index], index, size, [...proof, root], root)).toBe(false);
      }
    }
  });

  it('break when any leaf of the tree changes or any proof hash is altered', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3000 }).chain((size) =>
          fc.tuple(
            fc.constant(size),
            fc.nat(size - 1),
            fc.nat(size - 1),
            fc.nat(64), // which proof element to alter
          ),
        ),
        async ([size, index, changed, element]) => {
          const leaves = leavesOf(size, size);
          const root = naiveRoot(leaves);
          const proof = await inclusionProof(memorySource(leaves), index, size);
          expect(verifyInclusion(leaves[index], index, size, proof, root)).toBe(true);
          // Another log where one leaf differs: the old proof no longer fits its root.
          const tampered = [...leaves];
          tampered[changed] = flipped(leaves[changed]);
          expect(verifyInclusion(leaves[index], index, size, proof, naiveRoot(tampered))).toBe(
            false,
          );
          if (proof.length > 0) {
            const altered = [...proof];
            altered[element % proof.length] = flipped(altered[element % proof.length]);
            expect(verifyInclusion(leaves[index], index, size, altered, root)).toBe(false);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('reads O(log n) subtrees', async () => {
    const leaves = leavesOf(5000);
    const source = memorySource(leaves);
    await inclusionProof(source, 2345, 5000);
    expect(source.reads).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(5000)));
  });

  it('cover every other leaf exactly once, also for indexes past 2^32', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 ** 50 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (size, at) => {
          const index = Math.min(size - 1, Math.floor(at * size));
          const ranges = [...inclusionRanges(index, size)].sort((a, b) => a[0] - b[0]);
          let next = 0;
          for (const [begin, end] of ranges) {
            if (begin === index + 1 && next === index) next = index + 1;
            expect(begin).toBe(next);
            next = end;
          }
          if (next === index) next = index + 1;
          expect(next).toBe(size);
          expect(ranges.length).toBeLessThanOrEqual(Math.ceil(Math.log2(size)));
        },
      ),
    );
  });
});

describe('consistency proofs', () => {
  it('verify for every pair of sizes up to 48, and not against another old root', async () => {
    const all = leavesOf(48);
    const roots = Array.from({ length: all.length + 1 }, (_, n) => naiveRoot(all.slice(0, n)));
    const source = memorySource(all);
    for (let n = 0; n <= all.length; n++) {
      for (let m = 0; m <= n; m++) {
        const proof = await consistencyProof(source, m, n);
        expect(verifyConsistency(m, n, proof, roots[m], roots[n])).toBe(true);
        if (m > 0 && m < n) {
          expect(verifyConsistency(m, n, proof, flipped(roots[m]), roots[n])).toBe(false);
          expect(verifyConsistency(m, n, proof, roots[m], flipped(roots[n]))).toBe(false);
          expect(verifyConsistency(m - 1, n, proof, roots[m - 1], roots[n])).toBe(false);
          expect(verifyConsistency(m, n, [], roots[m], roots[n])).toBe(false);
        }
      }
    }
    expect(verifyConsistency(3, 2, [], roots[3], roots[2])).toBe(false);
  });

  it('fail when an entry of the old tree was changed or removed afterwards', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 2, max: 2000 })
          .chain((n) =>
            fc
              .tuple(fc.integer({ min: 1, max: n - 1 }), fc.constant(n))
              .chain(([m, size]) => fc.tuple(fc.constant(m), fc.constant(size), fc.nat(m - 1))),
          ),
        async ([m, n, victim]) => {
          const leaves = leavesOf(n, n);
          const oldRoot = naiveRoot(leaves.slice(0, m));
          // The log rewritten after the old checkpoint: one old entry changed, or removed.
          const changed = [...leaves];
          changed[victim] = flipped(leaves[victim]);
          const removed = leaves.filter((_, i) => i !== victim);
          for (const rewritten of [changed, removed]) {
            const size = rewritten.length;
            const proof = await consistencyProof(memorySource(rewritten), m, size);
            expect(verifyConsistency(m, size, proof, oldRoot, naiveRoot(rewritten))).toBe(false);
          }
          const honest = await consistencyProof(memorySource(leaves), m, n);
          expect(verifyConsistency(m, n, honest, oldRoot, naiveRoot(leaves))).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('has at most log2(n) + 1 hashes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 ** 50 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (n, at) => {
          const m = Math.max(1, Math.floor(at * n));
          expect(consistencyRanges(m, n).length).toBeLessThanOrEqual(Math.ceil(Math.log2(n)) + 1);
        },
      ),
    );
  });
});

describe('large trees', () => {
  // Every leaf the same: subtree hashes depend on the level only, so trees of 2^45 leaves are cheap.
  const leaf = leafHash(Buffer.from('same'));
  const levels = [leaf];
  for (let l = 1; l <= 53; l++) levels.push(nodeHash(levels[l - 1], levels[l - 1]));
  const uniform: NodeSource = { nodes: async (ids) => ids.map((id) => levels[id.level]) };

  it('proves inclusion and consistency past 2^32 leaves', async () => {
    for (const [index, size] of [
      [2 ** 33 + 5, 2 ** 45 - 3],
      [2 ** 44, 2 ** 44 + 1],
      [0, 2 ** 40 + 2 ** 33 + 7],
    ]) {
      const root = await rootAt(uniform, size);
      const proof = await inclusionProof(uniform, index, size);
      expect(verifyInclusion(leaf, index, size, proof, root)).toBe(true);
      expect(verifyInclusion(leaf, index, size, proof, await rootAt(uniform, size - 1))).toBe(
        false,
      );
      const older = index + 1;
      const consistency = await consistencyProof(uniform, older, size);
      expect(verifyConsistency(older, size, consistency, await rootAt(uniform, older), root)).toBe(
        true,
      );
    }
  });
});

describe('compact range', () => {
  it('has the naive root at every size and reports exactly the subtrees each append completes', () => {
    const leaves = leavesOf(300);
    const range = new CompactRange();
    const completed = new Map<string, Uint8Array>();
    for (const [i, leaf] of leaves.entries()) {
      range.appendLeaf(leaf, (id, hash) => completed.set(`${id.level}/${id.index}`, hash));
      expect(Buffer.from(range.root())).toEqual(Buffer.from(naiveRoot(leaves.slice(0, i + 1))));
    }
    // 300 leaves complete 150 + 75 + 37 + 18 + 9 + 4 + 2 + 1 subtrees above the leaves.
    expect(completed.size).toBe(296);
    for (const [key, hash] of completed) {
      const [level, index] = key.split('/').map(Number);
      const expected = naiveRoot(leaves.slice(index * 2 ** level, (index + 1) * 2 ** level));
      expect(Buffer.from(hash)).toEqual(Buffer.from(expected));
    }
  });

  it('restores from its frontier and goes on as if never stopped', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 500 }), fc.integer({ min: 0, max: 500 }), (a, b) => {
        const leaves = leavesOf(a + b);
        const first = new CompactRange();
        leaves.slice(0, a).forEach((leaf) => first.appendLeaf(leaf));
        const restored = new CompactRange(first.size, first.frontier);
        leaves.slice(a).forEach((leaf) => restored.appendLeaf(leaf));
        expect(Buffer.from(restored.root())).toEqual(Buffer.from(naiveRoot(leaves)));
      }),
      { numRuns: 50 },
    );
  });

  it('joins a left part, a run of leaves and a right part given as subtrees', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 400 }), fc.nat(), fc.nat(), (size, x, y) => {
        const leaves = leavesOf(size, 7);
        const [from, to] = [x % (size + 1), y % (size + 1)].sort((p, q) => p - q);
        const subtree = ({ level, index }: NodeId) =>
          naiveRoot(leaves.slice(index * 2 ** level, (index + 1) * 2 ** level));
        const range = new CompactRange();
        for (const id of decomposeRange(0, from)) range.appendNode(id.level, subtree(id));
        for (const leaf of leaves.slice(from, to)) range.appendLeaf(leaf);
        for (const id of decomposeRange(to, size)) range.appendNode(id.level, subtree(id));
        expect(range.size).toBe(size);
        expect(Buffer.from(range.root())).toEqual(Buffer.from(naiveRoot(leaves)));
      }),
      { numRuns: 200 },
    );
  });

  it('refuses a subtree that is not aligned to the end of the range', () => {
    const range = new CompactRange();
    range.appendLeaf(leafHash(Buffer.from('a')));
    expect(() => range.appendNode(1, EMPTY_ROOT)).toThrow(/cannot start at leaf 1/);
    expect(() => new CompactRange(3, [EMPTY_ROOT])).toThrow(/has 2 hashes, got 1/);
  });
});
