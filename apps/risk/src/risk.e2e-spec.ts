// Risk end to end: trading, risk and settlement as processes, orders placed through the placement
// TCC over the real Kafka. Each limit refuses an order with its own reason code and leaves nothing
// reserved; a limit lowered intraday applies to the next order; the kill switch on a symbol refuses
// new orders and gets its resting orders cancelled within a second, until it is released.
import { waitFor } from '@finance/testing';
import { randomUUID } from 'node:crypto';
import {
  callService as call,
  queryDatabase as query,
  RunningService,
  startSystemService,
} from '@finance/testing';

const startService = (name: 'trading' | 'risk' | 'settlement', env: Record<string, string> = {}) =>
  startSystemService(name, { label: 'risk_e2e', env });

const run = randomUUID().slice(0, 8);
const services = {} as Record<'trading' | 'risk' | 'settlement', RunningService>;

interface OrderView {
  orderId: string;
  status: string;
  rejection: { branch: string | null; code: string; message: string } | null;
  globalTransactionId: string;
}

beforeAll(async () => {
  [services.trading, services.risk, services.settlement] = await Promise.all([
    startService('trading', {
      TRADING_PLACEMENT_TIMEOUT_MS: '8000',
      TRADING_RESPONSE_TIMEOUT_MS: '15000',
      // These tests are about risk's branch; compliance's is covered by its own e2e.
      TRADING_COMPLIANCE_CHECK: 'off',
    }),
    startService('risk'),
    startService('settlement'),
  ]);
});

afterAll(async () => {
  await Promise.all(Object.values(services).map((s) => s?.process.stop()));
});

let clientOrders = 0;
const place = async (accountId: string, order: Record<string, unknown>) =>
  (
    await call<OrderView>(services.trading, 'POST', '/trading/orders', {
      as: 'order-service',
      body: {
        clientOrderId: `c-${run}-${++clientOrders}`,
        accountId,
        type: 'LIMIT',
        timeInForce: 'GTC',
        ...order,
      },
      expect: [200, 201],
    })
  ).body;

async function openFunded(name: string): Promise<string> {
  const accountId = `${name}-${run}`;
  await call(services.trading, 'POST', '/trading/accounts', {
    as: 'order-service',
    body: { accountId, owner: `owner-${accountId}` },
    expect: [201],
  });
  for (const body of [
    { requestId: `usd-${accountId}`, currency: 'USD', amount: '1000000.00' },
    { requestId: `aapl-${accountId}`, symbol: 'AAPL', quantity: '1000' },
  ]) {
    await call(services.trading, 'POST', `/trading/accounts/${accountId}/deposits`, {
      as: 'settlement-service',
      body,
      expect: [201],
    });
  }
  return accountId;
}

const setLimits = (accountId: string, body: Record<string, unknown>) =>
  call(services.risk, 'PUT', `/risk/limits/${accountId}`, {
    as: 'risk-officer',
    body,
    expect: [200],
  });

const status = async (orderId: string) =>
  (
    await call<OrderView>(services.trading, 'GET', `/trading/orders/${orderId}`, {
      as: 'order-service',
      expect: [200],
    })
  ).body.status;

/** Nothing of the order is held in risk, and the placement's TCC is finished as cancelled. */
async function nothingReserved(order: OrderView) {
  await waitFor(
    'the placement to be cancelled',
    async () =>
      (
        await query<{ state: string }>(
          services.trading.databaseUrl,
          'SELECT state FROM tcc_transactions WHERE gtid = $1',
          [order.globalTransactionId],
        )
      )[0]?.state,
    (s) => s === 'CANCELLED',
  );
  expect(
    await query(services.risk.databaseUrl, 'SELECT 1 FROM risk_reservations WHERE order_id = $1', [
      order.orderId,
    ]),
  ).toEqual([]);
  const held = await query<{ state: string }>(
    services.trading.databaseUrl,
    'SELECT state FROM order_reservations WHERE order_id = $1',
    [order.orderId],
  );
  expect(held.every((r) => r.state === 'RELEASED')).toBe(true);
}

describe('pre-trade limits', () => {
  it('refuses an order breaking each limit with that limit’s code, leaving nothing reserved', async () => {
    // A trade at 100.00 gives AAPL its reference price.
    const seller = await openFunded('ref-seller');
    const buyer = await openFunded('ref-buyer');
    await place(seller, { symbol: 'AAPL', side: 'SELL', price: '100.00', quantity: '1' });
    expect(
      (await place(buyer, { symbol: 'AAPL', side: 'BUY', price: '100.00', quantity: '1' })).status,
    ).toBe('FILLED');
    await waitFor(
      'risk to see the trade',
      () =>
        query<{ price_minor: string }>(
          services.risk.databaseUrl,
          `SELECT price_minor FROM risk_symbol_prices WHERE symbol = 'AAPL'`,
        ),
      (rows) => rows[0]?.price_minor === '10000',
    );

    const cases: Array<[string, Record<string, unknown>, Record<string, unknown>]> = [
      ['RESTRICTED_SYMBOL', { restrictedSymbols: ['MSFT'] }, { symbol: 'MSFT', price: '10.00' }],
      ['ORDER_QUANTITY_LIMIT', { maxOrderQuantity: '10' }, { quantity: '11' }],
      ['ORDER_VALUE_LIMIT', { currency: 'USD', maxOrderValue: '500' }, { quantity: '6' }],
      ['PRICE_COLLAR', { priceCollarPercent: '5' }, { price: '105.01' }],
      ['POSITION_LIMIT', { maxPosition: '5' }, { quantity: '6' }],
      ['RISK_QUOTA_EXCEEDED', { currency: 'USD', quota: '300' }, { quantity: '4' }],
      ['ORDER_RATE_PER_MINUTE', { ordersPerMinute: '0' }, {}],
    ];
    for (const [code, limits, order] of cases) {
      const accountId = await openFunded(`lim-${code.toLowerCase().replace(/_/g, '-')}`);
      await setLimits(accountId, limits);
      const refused = await place(accountId, {
        symbol: 'AAPL',
        side: 'BUY',
        price: '99.00',
        quantity: '1',
        ...order,
      });
      expect({ code, status: refused.status, rejection: refused.rejection }).toEqual({
        code,
        status: 'REJECTED',
        rejection: expect.objectContaining({ branch: 'risk', code }),
      });
      await nothingReserved(refused);
    }

    // Duplicate: the same order again within the window; throttle: two in the same second.
    const dup = await openFunded('lim-dup');
    await setLimits(dup, { duplicateWindowSeconds: '30' });
    const first = await place(dup, { symbol: 'AAPL', side: 'BUY', price: '90.00', quantity: '1' });
    expect(first.status).toBe('NEW');
    const again = await place(dup, { symbol: 'AAPL', side: 'BUY', price: '90.00', quantity: '1' });
    expect(again.rejection).toMatchObject({ branch: 'risk', code: 'DUPLICATE_ORDER' });
    await nothingReserved(again);

    const fast = await openFunded('lim-rate');
    await setLimits(fast, { ordersPerSecond: '1' });
    const both = await Promise.all(
      ['89.00', '88.00'].map((price) =>
        place(fast, { symbol: 'AAPL', side: 'BUY', price, quantity: '1' }),
      ),
    );
    expect(both.map((o) => o.rejection?.code ?? o.status).sort()).toEqual([
      'NEW',
      'ORDER_RATE_PER_SECOND',
    ]);

    // The breaches report lists every refusal with its code.
    const report = await call<{ rows: Array<{ code: string }> }>(
      services.risk,
      'GET',
      `/risk/reports/limit-breaches?accountId=${dup}`,
      { as: 'risk-officer', expect: [200] },
    );
    expect(report.body.rows.map((r) => r.code)).toEqual(['DUPLICATE_ORDER']);
  });

  it('applies a limit lowered intraday to the next order', async () => {
    const accountId = await openFunded('lowered');
    await setLimits(accountId, { currency: 'USD', maxOrderValue: '1000' });
    const before = await place(accountId, {
      symbol: 'AAPL',
      side: 'BUY',
      price: '80.00',
      quantity: '5',
    });
    expect(before.status).toBe('NEW');
    await setLimits(accountId, { currency: 'USD', maxOrderValue: '399.99' });
    const after = await place(accountId, {
      symbol: 'AAPL',
      side: 'BUY',
      price: '80.00',
      quantity: '5',
    });
    expect(after.rejection).toMatchObject({
      branch: 'risk',
      code: 'ORDER_VALUE_LIMIT',
      message: `order value 400.00 USD exceeds the max order value 399.99 USD of account ${accountId}`,
    });
  });
});

describe('the kill switch', () => {
  it('on a symbol refuses new orders and gets its resting orders cancelled within a second; release lets orders through', async () => {
    const accountId = await openFunded('ks');
    const covered = await place(accountId, {
      symbol: 'TSLA',
      side: 'BUY',
      price: '3.00',
      quantity: '10',
    });
    const other = await place(accountId, {
      symbol: 'MSFT',
      side: 'BUY',
      price: '3.00',
      quantity: '10',
    });
    expect([covered.status, other.status]).toEqual(['NEW', 'NEW']);

    const engagedAt = Date.now();
    const engaged = await call(services.risk, 'POST', '/risk/kill-switch', {
      as: 'risk-officer',
      body: { scope: 'SYMBOL', symbol: 'TSLA', reason: `halted by the e2e test ${run}` },
      expect: [201],
    });
    expect(engaged.body).toMatchObject({ scope: 'SYMBOL', symbol: 'TSLA', engaged: true });

    const refused = await place(accountId, {
      symbol: 'TSLA',
      side: 'BUY',
      price: '3.01',
      quantity: '10',
    });
    expect(refused.rejection).toMatchObject({ branch: 'risk', code: 'KILL_SWITCH_ACTIVE' });

    await waitFor(
      'the resting TSLA order to be cancelled',
      () => status(covered.orderId),
      (s) => s === 'CANCELLED',
      10_000,
    );
    const cancelledWithin = Date.now() - engagedAt;
    expect(cancelledWithin).toBeLessThanOrEqual(1_000);
    expect(await status(other.orderId)).toBe('NEW');

    // Engaging again changes nothing; the state and history show one switch.
    await call(services.risk, 'POST', '/risk/kill-switch', {
      as: 'risk-officer',
      body: { scope: 'SYMBOL', symbol: 'TSLA', reason: 'again' },
      expect: [200],
    });
    const state = await call<{ engaged: Array<{ symbol?: string }> }>(
      services.risk,
      'GET',
      '/risk/kill-switch',
      { as: 'risk-officer', expect: [200] },
    );
    expect(state.body.engaged.filter((s) => s.symbol === 'TSLA')).toHaveLength(1);

    await call(services.risk, 'POST', '/risk/kill-switch/release', {
      as: 'risk-officer',
      body: { scope: 'SYMBOL', symbol: 'TSLA', reason: 'news out' },
      expect: [200],
    });
    const through = await place(accountId, {
      symbol: 'TSLA',
      side: 'BUY',
      price: '3.02',
      quantity: '10',
    });
    expect(through.status).toBe('NEW');
    const notEngaged = await call(services.risk, 'POST', '/risk/kill-switch/release', {
      as: 'risk-officer',
      body: { scope: 'SYMBOL', symbol: 'TSLA' },
    });
    expect(notEngaged.status).toBe(409);

    const history = await services.risk.process.request(
      '/risk/reports/kill-switch-history?format=csv',
      { method: 'GET', as: 'risk-officer' },
    );
    expect(history.status).toBe(200);
    expect(history.body).toContain(`halted by the e2e test ${run}`);
  });
});
