// Order placement end to end: trading, risk, settlement and compliance run as processes; orders go
// through the placement TCC over the real Kafka; balances, reservations and events are checked where
// they live.
import { KillSwitchChanged, topicName, TOPICS } from '@finance/contracts';
import { createEnvelope, createKafka } from '@finance/messaging';
import { createLogger } from '@finance/platform';
import {
  callService as call,
  invariantViolations,
  openEventStream,
  produceRecords,
  queryDatabase as query,
  RunningService,
  runTradingSession,
  settle,
  startSystemService,
  testStack,
  waitFor,
} from '@finance/testing';
import { randomUUID } from 'node:crypto';

type PlacementServices = Record<'trading' | 'risk' | 'settlement' | 'compliance', RunningService>;

const startPlacementService = (
  name: keyof PlacementServices,
  env: Record<string, string> = {},
  reuse?: RunningService,
) => startSystemService(name, { label: 'orders', env, reuse });

const services = {} as PlacementServices;
const run = randomUUID().slice(0, 8);

interface AccountView {
  cash: Array<{
    currency: string;
    available: string;
    frozen: string;
    pendingSettlementOut: string;
    pendingSettlementIn: string;
  }>;
  holdings: Array<{
    symbol: string;
    available: string;
    frozen: string;
    pendingSettlementOut: string;
    pendingSettlementIn: string;
  }>;
}

interface OrderView {
  orderId: string;
  status: string;
  filledQuantity: string;
  fills: Array<{ price: string; quantity: string }>;
  rejection: { branch: string | null; code: string; message: string } | null;
  globalTransactionId: string;
}

const account = (id: string) => `${id}-${run}`;

async function openFunded(id: string, owner: string, funds: { usd?: string; aapl?: string }) {
  const accountId = account(id);
  await call(services.trading, 'POST', '/trading/accounts', {
    as: 'order-service',
    body: { accountId, owner: `${owner}-${run}` },
    expect: [201],
  });
  if (funds.usd) {
    await call(services.trading, 'POST', `/trading/accounts/${accountId}/deposits`, {
      as: 'settlement-service',
      body: { requestId: `dep-usd-${accountId}`, currency: 'USD', amount: funds.usd },
      expect: [201],
    });
  }
  if (funds.aapl) {
    await call(services.trading, 'POST', `/trading/accounts/${accountId}/deposits`, {
      as: 'settlement-service',
      body: { requestId: `dep-aapl-${accountId}`, symbol: 'AAPL', quantity: funds.aapl },
      expect: [201],
    });
  }
  return accountId;
}

const balances = async (accountId: string) =>
  (
    await call<AccountView>(services.trading, 'GET', `/trading/accounts/${accountId}`, {
      as: 'order-service',
      expect: [200],
    })
  ).body;

const place = (body: Record<string, unknown>) =>
  call<OrderView>(services.trading, 'POST', '/trading/orders', { as: 'order-service', body });

const orderStatus = async (orderId: string) =>
  (
    await call<OrderView>(services.trading, 'GET', `/trading/orders/${orderId}`, {
      as: 'order-service',
      expect: [200],
    })
  ).body.status;

const reservations = (service: RunningService, table: string, orderId: string) =>
  query<{ state: string; amount_minor: string }>(
    service.databaseUrl,
    `SELECT state, amount_minor FROM ${table} WHERE order_id = $1`,
    [orderId],
  );

const tccState = async (gtid: string) =>
  (
    await query<{ state: string }>(
      services.trading.databaseUrl,
      `SELECT state FROM tcc_transactions WHERE gtid = $1`,
      [gtid],
    )
  )[0]?.state;

beforeAll(async () => {
  const tradingEnv = { TRADING_PLACEMENT_TIMEOUT_MS: '4000', TRADING_RESPONSE_TIMEOUT_MS: '15000' };
  [services.trading, services.risk, services.settlement, services.compliance] = await Promise.all([
    startPlacementService('trading', tradingEnv),
    startPlacementService('risk'),
    startPlacementService('settlement'),
    startPlacementService('compliance'),
  ]);
});

afterAll(async () => {
  await Promise.all(Object.values(services).map((s) => s?.process.stop()));
});

describe('order placement across trading, risk and settlement', () => {
  it('matches two crossing orders: fills in the response, frozen moved to pending settlement, reservations everywhere, events in order', async () => {
    const stream = await openEventStream(
      services.trading,
      '/trading/market/AAPL/stream',
      'order-service',
    );
    const buyer = await openFunded('buyer', 'alice', { usd: '100000.00' });
    const seller = await openFunded('seller', 'bob', { aapl: '1000' });

    const sell = await place({
      clientOrderId: 'sell-1',
      accountId: seller,
      symbol: 'AAPL',
      side: 'SELL',
      type: 'LIMIT',
      price: '150.00',
      quantity: '100',
      timeInForce: 'GTC',
    });
    expect(sell.status).toBe(201);
    expect(sell.body).toMatchObject({ status: 'NEW', filledQuantity: '0', fills: [] });

    const buy = await place({
      clientOrderId: 'buy-1',
      accountId: buyer,
      symbol: 'AAPL',
      side: 'BUY',
      type: 'LIMIT',
      price: '150.50',
      quantity: '60',
      timeInForce: 'GTC',
    });
    expect(buy.status).toBe(201);
    expect(buy.body).toMatchObject({ status: 'FILLED', filledQuantity: '60' });
    expect(buy.body.fills).toEqual([expect.objectContaining({ price: '150.00', quantity: '60' })]);

    // The market-data stream saw the resting offer, then the trade and the offer's new size.
    await waitFor(
      'the trade on the stream',
      async () => stream.events,
      (events) => events.some((e) => e.event === 'trade'),
    );
    stream.close();
    expect(stream.events.find((e) => e.event === 'trade')?.data).toMatchObject({
      symbol: 'AAPL',
      price: '150.00',
      quantity: '60',
    });
    await waitFor(
      'the book after the trade',
      async () => stream.events,
      (events) =>
        events.some(
          (e) =>
            e.event === 'quote' && (e.data.ask as { quantity?: string } | null)?.quantity === '40',
        ),
    );

    // Buyer: 9,030.00 was frozen at 150.50; 9,000.00 traded and is pending, the 30.00 improvement is back.
    expect((await balances(buyer)).cash).toEqual([
      {
        currency: 'USD',
        available: '91000.00',
        frozen: '0.00',
        pendingSettlementOut: '9000.00',
        pendingSettlementIn: '0.00',
      },
    ]);
    expect((await balances(buyer)).holdings).toEqual([
      {
        symbol: 'AAPL',
        available: '0',
        frozen: '0',
        pendingSettlementOut: '0',
        pendingSettlementIn: '60',
      },
    ]);
    const sellerView = await balances(seller);
    expect(sellerView.holdings).toEqual([
      {
        symbol: 'AAPL',
        available: '900',
        frozen: '40',
        pendingSettlementOut: '60',
        pendingSettlementIn: '0',
      },
    ]);
    expect(sellerView.cash).toEqual([
      {
        currency: 'USD',
        available: '0.00',
        frozen: '0.00',
        pendingSettlementOut: '0.00',
        pendingSettlementIn: '9000.00',
      },
    ]);

    // Risk and settlement hold a confirmed reservation for each order, of the order's value.
    for (const [order, value] of [
      [buy.body, '903000'],
      [sell.body, '1500000'],
    ] as const) {
      await waitFor(
        'placement finished',
        () => tccState(order.globalTransactionId),
        (s) => s === 'CONFIRMED',
      );
      expect(await reservations(services.risk, 'risk_reservations', order.orderId)).toEqual([
        { state: 'CONFIRMED', amount_minor: value },
      ]);
      expect(
        await reservations(services.settlement, 'clearing_reservations', order.orderId),
      ).toEqual([{ state: 'CONFIRMED', amount_minor: value }]);
      // Compliance passed the order under its beneficial owner (the orders-per-hour rule's user).
      expect(
        await query(
          services.compliance.databaseUrl,
          'SELECT state, owner FROM compliance_checks WHERE order_id = $1',
          [order.orderId],
        ),
      ).toEqual([
        { state: 'CONFIRMED', owner: order === buy.body ? `alice-${run}` : `bob-${run}` },
      ]);
    }

    // The lifecycle of each order is on Kafka, in order.
    const events = await readTradingEvents([buy.body.orderId, sell.body.orderId], 6);
    expect(events.get(sell.body.orderId)).toEqual([
      ['OrderCreated', 1],
      ['OrderAccepted', 2],
      ['OrderExecuted', 3],
    ]);
    expect(events.get(buy.body.orderId)).toEqual([
      ['OrderCreated', 1],
      ['OrderAccepted', 2],
      ['OrderExecuted', 3],
    ]);
  });

  it('answers REJECTED naming risk and its limit when the order is above the max order value, and leaves nothing held', async () => {
    const accountId = await openFunded('limited', 'carol', { usd: '50000.00' });
    await call(services.risk, 'PUT', `/risk/limits/${accountId}`, {
      as: 'risk-officer',
      body: { currency: 'USD', maxOrderValue: '5000.00', quota: '100000.00' },
      expect: [200],
    });
    const before = await balances(accountId);

    const order = await place({
      clientOrderId: 'too-big',
      accountId,
      symbol: 'AAPL',
      side: 'BUY',
      type: 'LIMIT',
      price: '100.00',
      quantity: '100',
    });
    expect(order.body.status).toBe('REJECTED');
    expect(order.body.rejection).toMatchObject({ branch: 'risk', code: 'ORDER_VALUE_LIMIT' });
    expect(order.body.rejection!.message).toContain('5000.00');

    await waitFor(
      'placement cancelled',
      () => tccState(order.body.globalTransactionId),
      (s) => s === 'CANCELLED',
    );
    expect(await balances(accountId)).toEqual(before);
    expect(await reservations(services.risk, 'risk_reservations', order.body.orderId)).toEqual([]);
    const clearing = await reservations(
      services.settlement,
      'clearing_reservations',
      order.body.orderId,
    );
    expect(clearing.every((r) => r.state === 'RELEASED')).toBe(true);

    // A retry with the same clientOrderId answers the first order; bad input names its field.
    const again = await place({
      clientOrderId: 'too-big',
      accountId,
      symbol: 'AAPL',
      side: 'BUY',
      type: 'LIMIT',
      price: '100.00',
      quantity: '100',
    });
    expect(again.status).toBe(200);
    expect(again.body.orderId).toBe(order.body.orderId);
    const invalid = await place({
      clientOrderId: 'x',
      accountId,
      symbol: 'AAPL',
      side: 'BUY',
      type: 'LIMIT',
      quantity: '1',
    });
    expect(invalid.status).toBe(400);
    expect(invalid.body).toMatchObject({ errors: [{ field: 'body.price' }] });
  });

  it('replaces a resting order within what it reserved, releasing the excess, and cancels it (then 409)', async () => {
    const accountId = await openFunded('replace', 'frank', { usd: '10000.00' });
    const order = await place({
      clientOrderId: 'to-replace',
      accountId,
      symbol: 'TSLA',
      side: 'BUY',
      type: 'LIMIT',
      price: '50.00',
      quantity: '10',
    });
    expect(order.body.status).toBe('NEW');
    const cash = async () => (await balances(accountId)).cash[0];
    expect(await cash()).toMatchObject({ available: '9500.00', frozen: '500.00' });
    const patch = (body: unknown) =>
      call<OrderView & { price: string }>(
        services.trading,
        'PATCH',
        `/trading/orders/${order.body.orderId}`,
        {
          as: 'order-service',
          body,
        },
      );

    const lower = await patch({ price: '40.00' });
    expect(lower.status).toBe(200);
    expect(lower.body).toMatchObject({ price: '40.00', status: 'NEW' });
    expect(await cash()).toMatchObject({ available: '9600.00', frozen: '400.00' });
    // More than the placement reserved in trading, risk and settlement needs a new order.
    const bigger = await patch({ quantity: '20' });
    expect(bigger.status).toBe(409);
    expect(bigger.body).toMatchObject({ errors: [{ field: 'body.quantity' }] });
    expect((await patch({ price: '60.00' })).status).toBe(409);
    expect((await patch({})).status).toBe(400);

    const cancelled = await call<OrderView>(
      services.trading,
      'DELETE',
      `/trading/orders/${order.body.orderId}`,
      {
        as: 'order-service',
      },
    );
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('CANCELLED');
    expect(await cash()).toMatchObject({ available: '10000.00', frozen: '0.00' });
    const again = await call(services.trading, 'DELETE', `/trading/orders/${order.body.orderId}`, {
      as: 'order-service',
    });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ orderStatus: 'CANCELLED' });
  });

  it('rejects an order after its deadline while settlement is down, and nothing stays frozen once settlement is back', async () => {
    const accountId = await openFunded('slow', 'dave', { usd: '10000.00' });
    await services.settlement.process.stop();
    const order = await place({
      clientOrderId: 'while-down',
      accountId,
      symbol: 'AAPL',
      side: 'BUY',
      type: 'LIMIT',
      price: '10.00',
      quantity: '10',
    });
    expect(order.body.status).toBe('REJECTED');
    expect(order.body.rejection).toMatchObject({ code: 'TIMEOUT' });

    services.settlement = await startPlacementService('settlement', {}, services.settlement);
    await waitFor(
      'placement cancelled',
      () => tccState(order.body.globalTransactionId),
      (s) => s === 'CANCELLED',
      90_000,
    );
    expect((await balances(accountId)).cash).toEqual([
      {
        currency: 'USD',
        available: '10000.00',
        frozen: '0.00',
        pendingSettlementOut: '0.00',
        pendingSettlementIn: '0.00',
      },
    ]);
    const clearing = await reservations(
      services.settlement,
      'clearing_reservations',
      order.body.orderId,
    );
    expect(clearing.every((r) => r.state === 'RELEASED')).toBe(true);
    expect(
      (await reservations(services.risk, 'risk_reservations', order.body.orderId)).every(
        (r) => r.state === 'RELEASED',
      ),
    ).toBe(true);
  });

  it('ends a placement interrupted by SIGKILL of trading either accepted everywhere or rejected everywhere, with the book rebuilt as it was', async () => {
    const accountId = await openFunded('crash', 'erin', { usd: '10000.00' });
    const resting = await place({
      clientOrderId: 'resting',
      accountId,
      symbol: 'MSFT',
      side: 'BUY',
      type: 'LIMIT',
      price: '20.00',
      quantity: '5',
    });
    expect(resting.body.status).toBe('NEW');
    const depth = async () =>
      (
        await call(services.trading, 'GET', '/trading/market/MSFT/depth', {
          as: 'order-service',
          expect: [200],
        })
      ).body;
    const bookBefore = await depth();

    const pending = place({
      clientOrderId: 'interrupted',
      accountId,
      symbol: 'MSFT',
      side: 'BUY',
      type: 'LIMIT',
      price: '21.00',
      quantity: '10',
    }).catch(() => undefined);
    await waitFor(
      'the placement to start',
      () =>
        query(
          services.trading.databaseUrl,
          `SELECT 1 FROM orders WHERE client_order_id = 'interrupted'`,
        ),
      (rows) => rows.length > 0,
      10_000,
    );
    services.trading.process.child.kill('SIGKILL');
    await pending;
    await services.trading.process.exited;
    services.trading = await startPlacementService('trading', {}, services.trading);

    const [row] = await query<{ order_id: string; gtid: string }>(
      services.trading.databaseUrl,
      `SELECT order_id, gtid FROM orders WHERE client_order_id = 'interrupted'`,
    );
    const final = await waitFor(
      'placement finished',
      () => tccState(row.gtid),
      (s) => s === 'CONFIRMED' || s === 'CANCELLED',
      90_000,
    );
    const [order] = await query<{ status: string }>(
      services.trading.databaseUrl,
      `SELECT status FROM orders WHERE order_id = $1`,
      [row.order_id],
    );
    const risk = await reservations(services.risk, 'risk_reservations', row.order_id);
    const clearing = await reservations(services.settlement, 'clearing_reservations', row.order_id);
    const funds = await query<{ state: string }>(
      services.trading.databaseUrl,
      `SELECT state FROM order_reservations WHERE order_id = $1`,
      [row.order_id],
    );
    if (final === 'CONFIRMED') {
      expect(order.status).toBe('NEW');
      for (const held of [risk, clearing, funds])
        expect(held.map((r) => r.state)).toEqual(['CONFIRMED']);
    } else {
      expect(order.status).toBe('REJECTED');
      for (const held of [risk, clearing, funds])
        expect(held.every((r) => r.state === 'RELEASED')).toBe(true);
    }

    // The book after the restart is the one before it, plus the interrupted order if it was accepted.
    await waitFor(
      'the book',
      depth,
      (book) => {
        const bids = (book as { bids: Array<{ price: string }> }).bids;
        return final === 'CANCELLED' || bids.some((b) => b.price === '21.00');
      },
      30_000,
    );
    const bookAfter = (await depth()) as { bids: Array<{ price: string }> };
    const withoutInterrupted = {
      ...bookAfter,
      bids: bookAfter.bids.filter((b) => b.price !== '21.00'),
    };
    expect(withoutInterrupted).toEqual(bookBefore);
  });
});

describe("risk's kill switch", () => {
  it('cancels every resting order of the symbol it covers, and only those; released, orders rest again', async () => {
    const accountId = await openFunded('killed', 'heidi', { usd: '10000.00' });
    const covered = await place({
      clientOrderId: 'sap-like',
      accountId,
      symbol: 'TSLA',
      side: 'BUY',
      type: 'LIMIT',
      price: '3.00',
      quantity: '10',
    });
    const other = await place({
      clientOrderId: 'msft',
      accountId,
      symbol: 'MSFT',
      side: 'BUY',
      type: 'LIMIT',
      price: '3.00',
      quantity: '10',
    });
    expect([covered.body.status, other.body.status]).toEqual(['NEW', 'NEW']);

    // What risk publishes when an officer engages the switch for one symbol.
    const stack = testStack();
    const kafka = createKafka({
      brokers: stack.kafkaBrokers,
      clientId: `e2e-ks-${run}`,
      logger: createLogger('e2e', 'warn'),
    });
    const envelope = createEnvelope(
      KillSwitchChanged,
      {
        engaged: true,
        scope: 'SYMBOL',
        symbol: 'TSLA',
        reason: 'halted in the e2e test',
        changedBy: 'risk-officer',
      },
      { producer: 'risk', aggregateId: 'TSLA', aggregateSequence: 1, correlationId: `ks-${run}` },
    );
    await produceRecords(kafka, topicName(TOPICS.riskEvents, stack.topicPrefix), [
      { key: 'TSLA', value: JSON.stringify(envelope) },
    ]);
    await waitFor(
      'the covered order to be cancelled',
      () => orderStatus(covered.body.orderId),
      (s) => s === 'CANCELLED',
      30_000,
    );
    expect(await orderStatus(other.body.orderId)).toBe('NEW');
    const [event] = await query<{
      payload: { data: { reason: { code: string; message: string } } };
    }>(
      services.trading.databaseUrl,
      `SELECT payload FROM outbox WHERE payload->>'type' = 'OrderCancelled' AND payload->'data'->>'orderId' = $1`,
      [covered.body.orderId],
    );
    expect(event.payload.data.reason.code).toBe('KILL_SWITCH');
    expect(event.payload.data.reason.message).toContain('halted in the e2e test');
    await call(services.trading, 'DELETE', `/trading/orders/${other.body.orderId}`, {
      as: 'order-service',
      expect: [200],
    });

    // Released, the symbol's orders rest again.
    const release = createEnvelope(
      KillSwitchChanged,
      {
        engaged: false,
        scope: 'SYMBOL',
        symbol: 'TSLA',
        reason: 'resumed',
        changedBy: 'risk-officer',
      },
      { producer: 'risk', aggregateId: 'TSLA', aggregateSequence: 2, correlationId: `ks-${run}` },
    );
    await produceRecords(kafka, topicName(TOPICS.riskEvents, stack.topicPrefix), [
      { key: 'TSLA', value: JSON.stringify(release) },
    ]);
    await waitFor(
      'the release to reach trading',
      async () =>
        (
          await query<{ engaged: boolean }>(
            services.trading.databaseUrl,
            `SELECT engaged FROM kill_switches WHERE scope = 'SYMBOL' AND target = 'TSLA'`,
          )
        )[0]?.engaged,
      (engaged) => engaged === false,
      30_000,
    );
    const after = await place({
      clientOrderId: 'after-release',
      accountId,
      symbol: 'TSLA',
      side: 'BUY',
      type: 'LIMIT',
      price: '3.00',
      quantity: '10',
    });
    expect(after.body.status).toBe('NEW');
    await call(services.trading, 'DELETE', `/trading/orders/${after.body.orderId}`, {
      as: 'order-service',
      expect: [200],
    });
  });
});

describe('the session close', () => {
  it('expires DAY orders booked before it, once, and leaves GTC orders resting', async () => {
    const accountId = await openFunded('day', 'grace', { usd: '1000.00' });
    const day = await place({
      clientOrderId: 'day',
      accountId,
      symbol: 'TSLA',
      side: 'BUY',
      type: 'LIMIT',
      price: '5.00',
      quantity: '10',
      timeInForce: 'DAY',
    });
    const gtc = await place({
      clientOrderId: 'gtc',
      accountId,
      symbol: 'TSLA',
      side: 'BUY',
      type: 'LIMIT',
      price: '5.01',
      quantity: '10',
      timeInForce: 'GTC',
    });
    expect([day.body.status, gtc.body.status]).toEqual(['NEW', 'NEW']);

    // Restart trading with a close a few seconds ahead; the books are rebuilt, then the close comes.
    const close = new Date(Date.now() + 8_000).toISOString().slice(11, 19);
    await services.trading.process.stop();
    services.trading = await startPlacementService(
      'trading',
      { TRADING_SESSION_CLOSE: close },
      services.trading,
    );
    await waitFor(
      'the DAY order to expire',
      () => orderStatus(day.body.orderId),
      (s) => s === 'CANCELLED',
      60_000,
    );
    expect(await orderStatus(gtc.body.orderId)).toBe('NEW');
    expect((await balances(accountId)).cash[0]).toMatchObject({
      available: '949.90',
      frozen: '50.10',
    });
    const [expired] = await query<{ payload: { data: { reason: { code: string } } } }>(
      services.trading.databaseUrl,
      `SELECT payload FROM outbox WHERE payload->>'type' = 'OrderCancelled' AND payload->'data'->>'orderId' = $1`,
      [day.body.orderId],
    );
    expect(expired.payload.data.reason.code).toBe('EXPIRED');
  });
});

describe('a randomized trading session', () => {
  it('keeps cash and shares conserved, nothing negative, every transaction finished (1,000 orders, 50 accounts)', async () => {
    const result = await runTradingSession(services.trading.process, {
      orders: 1_000,
      accounts: 50,
      concurrency: 16,
      seed: 20261122,
      tag: run,
    });
    expect(result.statuses.FILLED ?? 0).toBeGreaterThan(0);
    await settle(services.trading.databaseUrl, 120_000);
    expect(
      await invariantViolations({
        trading: services.trading.databaseUrl,
        risk: services.risk.databaseUrl,
        settlement: services.settlement.databaseUrl,
      }),
    ).toEqual([]);
    // Four branches per order, and compliance also audits every message of the session.
  }, 300_000);
});

/** Reads trading.events until `count` events of these orders arrived; answers type and sequence per order. */
async function readTradingEvents(
  orderIds: string[],
  count: number,
): Promise<Map<string, Array<[string, number]>>> {
  const stack = testStack();
  const kafka = createKafka({
    brokers: stack.kafkaBrokers,
    clientId: `e2e-${run}`,
    logger: createLogger('e2e', 'warn'),
  });
  const consumer = kafka.consumer({ groupId: `e2e-${randomUUID()}` });
  const seen = new Map<string, Array<[string, number]>>(orderIds.map((id) => [id, []]));
  let total = 0;
  await consumer.connect();
  try {
    await consumer.subscribe({
      topic: topicName(TOPICS.tradingEvents, stack.topicPrefix),
      fromBeginning: true,
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`only ${total} of ${count} events arrived`)),
        60_000,
      );
      void consumer.run({
        eachMessage: async ({ message }) => {
          const envelope = JSON.parse(message.value!.toString()) as {
            type: string;
            metadata: { aggregateId: string; aggregateSequence: number };
          };
          const list = seen.get(envelope.metadata.aggregateId);
          if (!list) return;
          list.push([envelope.type, envelope.metadata.aggregateSequence]);
          if (++total >= count) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
  return seen;
}
