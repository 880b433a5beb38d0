// The embedded Wasm is exactly what `opa build -t wasm` makes of today's policy, and it decides
// like OPA itself evaluating the .rego (the stack's OPA, which serves libs/policies).
import { testStack } from '@finance/testing';
import { buildRiskPolicyWasm, sha256 } from '../../test/risk-policy-build';
import { RiskPolicyInput, SidecarRiskPolicy, WasmRiskPolicy } from './risk-policy';
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

const cases: Array<[string, RiskPolicyInput]> = [
  ['within limits', base],
  [
    'kill switch and restricted',
    {
      ...base,
      killSwitches: [{ scope: 'FIRM', reason: 'stop' }],
      limits: { account: { restrictedSymbols: ['AAPL'] }, firm: {} },
    },
  ],
  [
    'throttles and duplicate',
    {
      ...base,
      limits: {
        account: { ordersPerSecond: '2' },
        firm: { ordersPerMinute: '3', duplicateWindowSeconds: '1.5' },
      },
      throttle: { lastSecond: '2', lastMinute: '3' },
      duplicate: { ageMs: '1499' },
    },
  ],
  [
    'size, collar, position and quota',
    {
      ...base,
      order: { ...base.order, side: 'SELL', price: '142.49' },
      limits: {
        account: { maxOrderQuantity: '99', maxPosition: '150' },
        firm: { maxOrderValue: '14999.99', priceCollarPercent: '5', quota: '20000' },
      },
      position: { net: '-51', openBuy: '0', openSell: '0' },
      exposure: { gross: '5000.01' },
    },
  ],
  ['malformed', { ...base, throttle: { lastSecond: 'x', lastMinute: '0' } }],
];

describe('the risk policy compiled to Wasm', () => {
  it('is byte for byte what opa build makes of the current .rego', async () => {
    const wasm = await buildRiskPolicyWasm();
    expect(sha256(wasm)).toBe(RISK_POLICY_WASM.wasmSha256);
  });

  it('decides every case exactly as OPA evaluating the .rego does', async () => {
    const wasm = new WasmRiskPolicy();
    const opa = new SidecarRiskPolicy(testStack().opaUrl, 5_000);
    for (const [name, input] of cases) {
      const inProcess = await wasm.decide(input);
      expect({ name, decision: inProcess }).toEqual({ name, decision: await opa.decide(input) });
    }
    // The cases do reach every reason code.
    const codes = new Set<string>();
    for (const [, input] of cases)
      for (const v of (await wasm.decide(input)).violations) codes.add(v.code);
    expect([...codes].sort()).toEqual([
      'DUPLICATE_ORDER',
      'KILL_SWITCH_ACTIVE',
      'ORDER_QUANTITY_LIMIT',
      'ORDER_RATE_PER_MINUTE',
      'ORDER_RATE_PER_SECOND',
      'ORDER_VALUE_LIMIT',
      'POSITION_LIMIT',
      'PRICE_COLLAR',
      'RESTRICTED_SYMBOL',
      'RISK_INPUT_INVALID',
      'RISK_QUOTA_EXCEEDED',
    ]);
  });
});
