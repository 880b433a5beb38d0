// The embedded Wasm policy: built from today's .rego (digest), and deciding like finance.risk does,
// including failing closed on input it cannot read.
import { policySourceSha256 } from '../../test/risk-policy-build';
import {
  RiskPolicyInput,
  RiskPolicyUnavailable,
  SidecarRiskPolicy,
  WasmRiskPolicy,
} from './risk-policy';
import { RISK_POLICY_WASM } from './risk-policy.wasm.generated';

const base: RiskPolicyInput = {
  order: {
    orderId: 'ord-1',
    accountId: 'ACC-1',
    symbol: 'AAPL',
    side: 'BUY',
    type: 'LIMIT',
    quantity: '100',
    price: '150.00',
    notional: { amount: '15000.00', currency: 'USD' },
  },
  limits: { account: {}, firm: { maxOrderValue: '1000000.00', quota: '5000000.00' } },
  killSwitches: [],
  exposure: { gross: '0.00' },
  position: { net: '0', openBuy: '0', openSell: '0' },
  throttle: { lastSecond: '0', lastMinute: '0' },
  referencePrice: '150.00',
};

describe('the embedded risk policy', () => {
  const policy = new WasmRiskPolicy();

  it('was built from the current libs/policies/risk (run `npx nx run risk:policy` after a change)', async () => {
    expect(RISK_POLICY_WASM.sourceSha256).toBe(await policySourceSha256());
  });

  it('allows an order within every limit', async () => {
    expect(await policy.decide(base)).toEqual({ allow: true, violations: [] });
  });

  it('refuses with the most fundamental violation named and every violation listed', async () => {
    const decision = await policy.decide({
      ...base,
      limits: {
        account: { maxOrderQuantity: '10' },
        firm: { restrictedSymbols: ['AAPL'], priceCollarPercent: '5' },
      },
      order: { ...base.order, price: '160.00', notional: { amount: '16000.00', currency: 'USD' } },
    });
    expect(decision).toMatchObject({
      allow: false,
      code: 'RESTRICTED_SYMBOL',
      message: 'AAPL is on the firm restricted list',
    });
    expect(decision.violations.map((v) => [v.code, v.scope])).toEqual([
      ['RESTRICTED_SYMBOL', 'FIRM'],
      ['ORDER_QUANTITY_LIMIT', 'ACCOUNT'],
      ['PRICE_COLLAR', 'FIRM'],
    ]);
  });

  it('compares amounts exactly where floating point would not', async () => {
    const at = (amount: string) =>
      policy.decide({
        ...base,
        order: { ...base.order, notional: { amount, currency: 'USD' } },
        limits: { account: { maxOrderValue: '9007199254740993.01' }, firm: {} },
      });
    expect((await at('9007199254740993.01')).allow).toBe(true);
    expect(await at('9007199254740993.02')).toMatchObject({ code: 'ORDER_VALUE_LIMIT' });
  });

  it('fails closed on input it cannot read', async () => {
    const broken = { ...base, exposure: {} } as unknown as RiskPolicyInput;
    expect(await policy.decide(broken)).toMatchObject({
      allow: false,
      code: 'RISK_INPUT_INVALID',
      message: 'exposure.gross must be a decimal string',
    });
  });

  it('refuses to load a module that is not the policy, so the service does not start with it', () => {
    expect(() => new WasmRiskPolicy(Buffer.from('0061736d01000000', 'hex'))).toThrow();
  });

  it('reports an OPA it cannot reach as unavailable, never as an allow', async () => {
    const unreachable = new SidecarRiskPolicy('http://127.0.0.1:1', 200);
    await expect(unreachable.decide(base)).rejects.toBeInstanceOf(RiskPolicyUnavailable);
  });
});
