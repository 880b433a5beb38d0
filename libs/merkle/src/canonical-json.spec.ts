// Canonical JSON gives one byte string per value, so re-parsing and re-serialising changes nothing.
import fc from 'fast-check';
import { canonicalJson } from './canonical-json';

describe('canonicalJson', () => {
  it('sorts keys, drops whitespace and undefined members, keeps array order', () => {
    expect(canonicalJson({ b: [3, { z: 1, a: null }], a: 'x', é: true, B: undefined })).toBe(
      '{"a":"x","b":[3,{"a":null,"z":1}],"é":true}',
    );
    expect(canonicalJson({ n: 1e21, m: -0, s: 'line\nbreak "q"' })).toBe(
      '{"m":0,"n":1e+21,"s":"line\\nbreak \\"q\\""}',
    );
  });

  it('is stable under a parse and serialise round trip', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = canonicalJson(value);
        expect(canonicalJson(JSON.parse(text))).toBe(text);
      }),
    );
  });

  it('refuses values JSON cannot carry, naming where', () => {
    expect(() => canonicalJson({ a: [1, Number.NaN] })).toThrow('$.a[1]: NaN has no JSON form');
    expect(() => canonicalJson({ at: new Date(0) })).toThrow(
      '$.at: a Date has no canonical JSON form',
    );
    expect(() => canonicalJson({ amount: 10n })).toThrow('$.amount: a bigint');
  });
});
