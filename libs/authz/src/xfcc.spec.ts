import { parseXfcc, principalFromXfcc, XfccSyntaxError } from './xfcc';

const me = 'spiffe://cluster.local/ns/finance/sa/trading-service';
const gateway = 'spiffe://cluster.local/ns/finance/sa/order-service';

describe('x-forwarded-client-cert', () => {
  it("parses Envoy's format: elements, pairs, quoted values with escapes", () => {
    const header =
      'By=spiffe://a/b;Hash=abc;Subject="/C=US/CN=Test, Inc.;x=\\"y\\"";URI=spiffe://c/d,' +
      'By=spiffe://e/f;URI=spiffe://g/h;DNS=example.com';
    expect(parseXfcc(header)).toEqual([
      [
        ['by', 'spiffe://a/b'],
        ['hash', 'abc'],
        ['subject', '/C=US/CN=Test, Inc.;x="y"'],
        ['uri', 'spiffe://c/d'],
      ],
      [
        ['by', 'spiffe://e/f'],
        ['uri', 'spiffe://g/h'],
        ['dns', 'example.com'],
      ],
    ]);
  });

  it('rejects malformed headers', () => {
    for (const bad of ['URI="unterminated', 'Hash', 'URI=a=b', '=x', 'URI="a"b']) {
      expect(() => parseXfcc(bad)).toThrow(XfccSyntaxError);
    }
  });

  it('names the caller from the element addressed to this workload', () => {
    expect(principalFromXfcc(`By=${me};Hash=1;URI=${gateway}`, me)).toBe(gateway);
    expect(principalFromXfcc(`by=${me};uri=${gateway}`, me)).toBe(gateway);
    // Only the last element is our sidecar's; earlier ones come from proxies further out.
    expect(principalFromXfcc(`By=${me};URI=spiffe://x/y,By=${me};URI=${gateway}`, me)).toBe(
      gateway,
    );
    expect(principalFromXfcc([`By=${me};URI=spiffe://x/y`, `By=${me};URI=${gateway}`], me)).toBe(
      gateway,
    );
  });

  it('names nobody when the element is not for us or not exactly one SPIFFE id', () => {
    const other = 'spiffe://cluster.local/ns/finance/sa/settlement-service';
    for (const header of [
      undefined,
      '',
      `URI=${gateway}`,
      `By=${other};URI=${gateway}`,
      `By=${me};URI=${gateway};URI=spiffe://x/y`,
      `By=${me};URI=https://example.com/x`,
      `By=${me};URI="spiffe://cluster.local/ns/finance/sa/a,b"`,
      `By=${me};DNS=order-service`,
      `By=${me};URI=${gateway},By=${other};URI=${gateway}`,
      `By=${me};URI="${gateway}`,
    ]) {
      expect(principalFromXfcc(header, me)).toBeUndefined();
    }
  });
});
