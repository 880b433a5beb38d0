// The published RFC 6962 reference values (the Certificate Transparency test tree): a log whose
// hashes no other implementation reproduces proves nothing to an auditor with their own tools.
import { EMPTY_ROOT, leafHash, toHex } from './hashing';
import { consistencyProof, inclusionProof, NodeSource, rootAt } from './proofs';
import { decomposeRange, foldRange, NodeId, rootOfLeafHashes } from './tree';
import { verifyConsistency, verifyInclusion } from './verify';

const hex = (text: string) => Buffer.from(text, 'hex');

const LEAF_DATA = [
  '',
  '00',
  '10',
  '2021',
  '3031',
  '40414243',
  '5051525354555657',
  '606162636465666768696a6b6c6d6e6f',
].map(hex);
const LEAVES = LEAF_DATA.map((data) => leafHash(data));

// ROOTS[n] is the root of the first n leaves.
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

// [leaf index (0-based), tree size, audit path].
const INCLUSION: Array<[number, number, string[]]> = [
  [
    0,
    8,
    [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  ],
  [
    5,
    8,
    [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
  [2, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [
    1,
    5,
    [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  ],
];

// [old size, new size, consistency proof].
const CONSISTENCY: Array<[number, number, string[]]> = [
  [1, 1, []],
  [
    1,
    8,
    [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  ],
  [
    6,
    8,
    [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
  [
    2,
    5,
    [
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  ],
];

/** Subtree hashes straight from the leaves. */
const subtree = ({ level, index }: NodeId) =>
  rootOfLeafHashes(LEAVES.slice(index * 2 ** level, (index + 1) * 2 ** level));
const source: NodeSource = { nodes: async (ids) => ids.map(subtree) };

describe('RFC 6962 reference tree', () => {
  it('has the published root for every size from 0 to 8', async () => {
    expect(toHex(EMPTY_ROOT)).toBe(ROOTS[0]);
    for (let n = 0; n <= 8; n++) {
      expect(toHex(rootOfLeafHashes(LEAVES.slice(0, n)))).toBe(ROOTS[n]);
      expect(toHex(await rootAt(source, n))).toBe(ROOTS[n]);
      expect(toHex(foldRange(decomposeRange(0, n).map((id) => subtree(id))))).toBe(ROOTS[n]);
    }
  });

  it.each(INCLUSION)(
    'gives the published audit path of leaf %i in a tree of %i',
    async (index, size, path) => {
      const proof = await inclusionProof(source, index, size);
      expect(proof.map(toHex)).toEqual(path);
      expect(verifyInclusion(LEAVES[index], index, size, proof, hex(ROOTS[size]))).toBe(true);
      expect(verifyInclusion(LEAVES[index], index, size, proof, hex(ROOTS[size - 1]))).toBe(false);
    },
  );

  it.each(CONSISTENCY)(
    'gives the published consistency proof from %i to %i',
    async (m, n, path) => {
      const proof = await consistencyProof(source, m, n);
      expect(proof.map(toHex)).toEqual(path);
      expect(verifyConsistency(m, n, proof, hex(ROOTS[m]), hex(ROOTS[n]))).toBe(true);
      if (m !== n) {
        expect(verifyConsistency(m, n, proof, hex(ROOTS[m - 1]), hex(ROOTS[n]))).toBe(false);
      }
    },
  );
});
