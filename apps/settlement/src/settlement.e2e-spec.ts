// Settlement end to end: the four services as processes over the real Kafka, PostgreSQL and OPA. A
// day of matched trades is settled by one cycle; every trade settles exactly once, the ledger
// balances and reconciliation against trading finds nothing; the same cycle again posts nothing.
import {
  callService as call,
  invariantViolations,
  privateTopicPrefix,
  queryDatabase as query,
  RunningService,
  runTradingSession,
  settle,
  startSystemService,
  waitFor,
} from '@finance/testing';
import { randomUUID } from 'node:crypto';

type Services = Record<'trading' | 'risk' | 'settlement' | 'compliance', RunningService>;
const services = {} as Services;
const run = randomUUID().slice(0, 8);
const today = () => new Date().toISOString().slice(0, 10);

interface CycleReport {
  cycleId: string;
  state: string;
  tradesSettled: number;
  tradesFailed: number;
  trades: Array<{ tradeId: string; outcome: string; disposition: string; failCode: string | null }>;
  movements: Array<{ party: string; assetKind: string; asset: string; net: string }>;
}

interface Reconciliation {
  positionsCompared: number;
  tradesInFlight: number;
  differences: Array<Record<string, string>>;
}

const count = async (url: string, sql: string, params: unknown[] = []) =>
  Number((await query<{ n: string }>(url, sql, params))[0].n);

beforeAll(async () => {
  // Topics of its own: a 20,000-trade cycle's events stay out of other test files' way.
  const prefix = { KAFKA_TOPIC_PREFIX: await privateTopicPrefix(`settle-${run}`) };
  services.trading = await startSystemService('trading', {
    label: 'settle',
    env: { ...prefix, TRADING_PLACEMENT_TIMEOUT_MS: '8000', TRADING_RESPONSE_TIMEOUT_MS: '15000' },
  });
  [services.risk, services.settlement, services.compliance] = await Promise.all([
    startSystemService('risk', {
      label: 'settle',
      env: { ...prefix, RISK_PRICE_BAND_PERCENT: '0' },
    }),
    startSystemService('settlement', {
      label: 'settle',
      env: {
        ...prefix,
        SETTLEMENT_PERIOD: 'T+0',
        SETTLEMENT_MAX_FAILED_CYCLES: '2',
        TRADING_URL: `https://127.0.0.1:${services.trading.port}`,
      },
    }),
    startSystemService('compliance', { label: 'settle', env: prefix }),
  ]);
});

afterAll(async () => {
  await Promise.all(Object.values(services).map((s) => s?.process.stop()));
});

describe('settlement of a trading day', () => {
  it('settles every trade exactly once in one cycle: balanced ledger, clean reconciliation, nothing posted twice', async () => {
    const session = await runTradingSession(services.trading.process, {
      orders: 150,
      accounts: 8,
      concurrency: 8,
      seed: 7,
      tag: run,
    });
    expect(session.statuses.FILLED ?? 0).toBeGreaterThan(0);
    await settle(services.trading.databaseUrl);
    const trades = await count(services.trading.databaseUrl, 'SELECT count(*) AS n FROM trades');
    expect(trades).toBeGreaterThan(10);
    // Settlement has an obligation for each trade, and the ledger every deposit.
    await waitFor(
      'an obligation for every trade',
      async () =>
        (await count(
          services.settlement.databaseUrl,
          'SELECT count(*) AS n FROM settlement_obligations',
        )) === trades,
      (ok) => ok,
      60_000,
    );
    const deposits = await count(
      services.trading.databaseUrl,
      'SELECT count(*) AS n FROM account_transfers',
    );
    await waitFor(
      'every deposit in the ledger',
      async () =>
        (await count(
          services.settlement.databaseUrl,
          `SELECT count(*) AS n FROM ledger_transfers WHERE transfer_id LIKE 'deposit/%'`,
        )) === deposits,
      (ok) => ok,
      60_000,
    );

    const cycleId = `day-${run}`;
    const { status, body: report } = await call<CycleReport>(
      services.settlement,
      'POST',
      '/settlement/process',
      { as: 'trading-service', body: { cycleId, businessDate: today() }, expect: [201] },
    );
    expect(status).toBe(201);
    expect(report).toMatchObject({
      cycleId,
      state: 'POSTED',
      tradesSettled: trades,
      tradesFailed: 0,
    });

    // Trading applies every settlement: nothing stays pending, one OrderSettled per order and trade.
    await waitFor(
      'every trade settled in trading',
      async () =>
        (await count(
          services.trading.databaseUrl,
          'SELECT count(*) AS n FROM trades WHERE settled_at IS NULL',
        )) === 0,
      (ok) => ok,
      60_000,
    );
    const perTrade = await query<{ trade: string; n: string }>(
      services.trading.databaseUrl,
      `SELECT payload->'data'->>'tradeId' AS trade, count(*) AS n FROM outbox
        WHERE payload->>'type' = 'OrderSettled' GROUP BY 1`,
    );
    expect(perTrade).toHaveLength(trades);
    expect(perTrade.every((r) => Number(r.n) === 2)).toBe(true);
    expect(
      await count(
        services.settlement.databaseUrl,
        `SELECT count(DISTINCT payload->'data'->>'tradeId') AS n FROM outbox WHERE payload->>'type' = 'TradeSettled'`,
      ),
    ).toBe(trades);
    expect(
      await count(
        services.settlement.databaseUrl,
        `SELECT count(*) AS n FROM outbox WHERE payload->>'type' = 'TradeSettled'`,
      ),
    ).toBe(trades);
    const pending = await query<{ pending: string }>(
      services.trading.databaseUrl,
      `SELECT (SELECT coalesce(sum(pending_out + pending_in), 0) FROM cash_balances)
            + (SELECT coalesce(sum(pending_out + pending_in), 0) FROM holdings) AS pending`,
    );
    expect(pending[0].pending).toBe('0');

    // The ledger balances: debits equal credits for every asset.
    const trial = await call<{ assets: Array<{ asset: string; balanced: boolean }> }>(
      services.settlement,
      'GET',
      '/settlement/ledger/trial-balance',
      { as: 'compliance-service', expect: [200] },
    );
    expect(trial.body.assets.length).toBeGreaterThanOrEqual(3);
    expect(trial.body.assets.filter((a) => !a.balanced)).toEqual([]);

    // Reconciliation against trading: no difference at all.
    await waitFor(
      "trading's confirmations",
      async () =>
        (await count(
          services.settlement.databaseUrl,
          `SELECT count(*) AS n FROM settlement_obligations WHERE trading_settled_at IS NULL`,
        )) === 0,
      (ok) => ok,
      60_000,
    );
    const reconciliation = await call<Reconciliation>(
      services.settlement,
      'GET',
      `/settlement/reconciliation?date=${today()}`,
      { as: 'compliance-service', expect: [200] },
    );
    expect(reconciliation.body.differences).toEqual([]);
    expect(reconciliation.body.positionsCompared).toBeGreaterThanOrEqual(8 * 3);
    expect(await invariantViolations({ ...urls() })).toEqual([]);
    // Settled trades no longer hold clearing quota: what is left is open orders' unfilled parts.
    const [clearing] = await query<{ unsettled: string; used: string; open_held: string }>(
      services.settlement.databaseUrl,
      `SELECT (SELECT coalesce(sum(unsettled_minor), 0) FROM clearing_reservations) AS unsettled,
              (SELECT coalesce(sum(used_minor), 0) FROM clearing_quota) AS used,
              (SELECT coalesce(sum(held_minor), 0) FROM clearing_reservations WHERE open) AS open_held`,
    );
    expect(clearing.unsettled).toBe('0');
    expect(clearing.used).toBe(clearing.open_held);

    // The same cycle again: 200 with the same report, and not one more transfer.
    const transfers = await count(
      services.settlement.databaseUrl,
      'SELECT count(*) AS n FROM ledger_transfers',
    );
    const again = await call<CycleReport>(services.settlement, 'POST', '/settlement/process', {
      as: 'trading-service',
      body: { cycleId, businessDate: today() },
      expect: [200],
    });
    expect(again.body.tradesSettled).toBe(trades);
    expect(
      await count(services.settlement.databaseUrl, 'SELECT count(*) AS n FROM ledger_transfers'),
    ).toBe(transfers);

    // Every trade's post-trade saga ran to the end: booked, validated, settled, checked.
    await waitFor(
      'every post-trade saga completed',
      async () =>
        await query<{ status: string; n: string }>(
          services.settlement.databaseUrl,
          `SELECT status, count(*) AS n FROM saga_instances GROUP BY status`,
        ),
      (rows) => rows.length === 1 && rows[0].status === 'COMPLETED' && Number(rows[0].n) === trades,
      90_000,
    );

    // The report as CSV: a header and one line per trade.
    const csv = await services.settlement.process.request(
      `/settlement/cycles/${cycleId}?format=csv`,
      { method: 'GET', as: 'compliance-service' },
    );
    expect(csv.status).toBe(200);
    expect(csv.body.trim().split('\r\n')).toHaveLength(trades + 1);
  });

  it('reports a fail, carries it over and settles it once the shares arrive; unwinds one that keeps failing', async () => {
    const open = async (id: string, deposit: Record<string, string>) => {
      const accountId = `${id}-${run}`;
      await call(services.trading, 'POST', '/trading/accounts', {
        as: 'order-service',
        body: { accountId, owner: `owner-${accountId}` },
        expect: [201],
      });
      await call(services.trading, 'POST', `/trading/accounts/${accountId}/deposits`, {
        as: 'settlement-service',
        body: { requestId: `dep-${accountId}`, ...deposit },
        expect: [201],
      });
      await waitFor(
        `the deposit of ${accountId} in the ledger`,
        () =>
          count(
            services.settlement.databaseUrl,
            `SELECT count(*) AS n FROM ledger_transfers WHERE transfer_id = $1`,
            [`deposit/${accountId}/dep-${accountId}`],
          ),
        (n) => n === 1,
      );
      return accountId;
    };
    const buyer = await open('FB', { currency: 'USD', amount: '10000.00' });
    const late = await open('FL', { symbol: 'TSLA', quantity: '100' });
    const never = await open('FN', { symbol: 'TSLA', quantity: '50' });
    // The custodian reports both share deposits never arrived: the operator reverses them.
    for (const seller of [late, never]) {
      await call(services.settlement, 'POST', '/settlement/admin/ledger/reversals', {
        as: 'risk-officer',
        body: { transferId: `deposit/${seller}/dep-${seller}`, reason: 'custodian: not received' },
        expect: [201],
      });
    }
    const trade = async (seller: string, quantity: string) => {
      await call(services.trading, 'POST', '/trading/orders', {
        as: 'order-service',
        body: {
          clientOrderId: `s-${seller}`,
          accountId: seller,
          symbol: 'TSLA',
          side: 'SELL',
          type: 'LIMIT',
          price: '20.00',
          quantity,
          timeInForce: 'GTC',
        },
        expect: [201],
      });
      const bought = await call<{ status: string; fills: Array<{ tradeId?: string }> }>(
        services.trading,
        'POST',
        '/trading/orders',
        {
          as: 'order-service',
          body: {
            clientOrderId: `b-${seller}`,
            accountId: buyer,
            symbol: 'TSLA',
            side: 'BUY',
            type: 'LIMIT',
            price: '20.00',
            quantity,
            timeInForce: 'IOC',
          },
          expect: [201],
        },
      );
      expect(bought.body.status).toBe('FILLED');
      const [row] = await query<{ trade_id: string }>(
        services.trading.databaseUrl,
        `SELECT trade_id FROM trades WHERE sell_account_id = $1`,
        [seller],
      );
      await waitFor(
        'its obligation',
        () =>
          count(
            services.settlement.databaseUrl,
            `SELECT count(*) AS n FROM settlement_obligations WHERE trade_id = $1`,
            [row.trade_id],
          ),
        (n) => n === 1,
      );
      return row.trade_id;
    };
    const lateTrade = await trade(late, '100');
    const neverTrade = await trade(never, '50');

    const cycle = async (cycleId: string) => {
      await call(services.settlement, 'POST', '/settlement/process', {
        as: 'trading-service',
        body: { cycleId, businessDate: today() },
        expect: [201],
      });
      return (
        await call<CycleReport>(services.settlement, 'GET', `/settlement/cycles/${cycleId}`, {
          as: 'compliance-service',
          expect: [200],
        })
      ).body;
    };
    const first = await cycle(`f1-${run}`);
    const outcome = (report: CycleReport, tradeId: string) =>
      report.trades.find((t) => t.tradeId === tradeId);
    expect(outcome(first, lateTrade)).toMatchObject({
      outcome: 'FAILED',
      disposition: 'CARRIED_OVER',
      failCode: 'INSUFFICIENT_SECURITIES',
    });
    expect(outcome(first, neverTrade)).toMatchObject({
      outcome: 'FAILED',
      disposition: 'CARRIED_OVER',
    });
    const fails = await call<{
      fails: Array<{ tradeId: string; failedCycles: number; ageDays: number }>;
    }>(services.settlement, 'GET', `/settlement/fails?accountId=${late}`, {
      as: 'compliance-service',
      expect: [200],
    });
    expect(fails.body.fails).toEqual([
      expect.objectContaining({ tradeId: lateTrade, failedCycles: 1, ageDays: 0 }),
    ]);

    // The late shares arrive at the custodian.
    await call(services.settlement, 'POST', '/settlement/admin/ledger/movements', {
      as: 'risk-officer',
      body: {
        movementId: `arrived-${late}`,
        accountId: late,
        direction: 'RECEIVED',
        assetKind: 'SECURITY',
        asset: 'TSLA',
        amount: '100',
        reason: 'custodian: delivered late',
      },
      expect: [201],
    });
    const second = await cycle(`f2-${run}`);
    expect(outcome(second, lateTrade)).toMatchObject({ outcome: 'SETTLED' });
    expect(outcome(second, neverTrade)).toMatchObject({
      outcome: 'FAILED',
      disposition: 'UNWOUND',
      failedCycles: 2,
    });
    const accountReport = await call<CycleReport>(
      services.settlement,
      'GET',
      `/settlement/accounts/${never}/cycles/f2-${run}`,
      { as: 'compliance-service', expect: [200] },
    );
    expect(accountReport.body.trades).toEqual([
      expect.objectContaining({ tradeId: neverTrade, disposition: 'UNWOUND' }),
    ]);

    // The unwound trade's saga compensates: trading gives the buyer's cash and the seller's shares back.
    const sagaOf = (tradeId: string) =>
      query<{ status: string }>(
        services.settlement.databaseUrl,
        `SELECT status FROM saga_instances WHERE saga_id = $1`,
        [`post-trade-${tradeId}`],
      );
    await waitFor(
      'the unwound trade compensated',
      () => sagaOf(neverTrade),
      (r) => r[0]?.status === 'COMPENSATED',
      90_000,
    );
    await waitFor(
      'the settled trade completed',
      () => sagaOf(lateTrade),
      (r) => r[0]?.status === 'COMPLETED',
      90_000,
    );
    const [unwound] = await query<{ unwound_at: Date | null; settled_at: Date | null }>(
      services.trading.databaseUrl,
      `SELECT unwound_at, settled_at FROM trades WHERE trade_id = $1`,
      [neverTrade],
    );
    expect(unwound.unwound_at).not.toBeNull();
    expect(unwound.settled_at).toBeNull();
    const holdings = await query<{ available: string; pending_out: string }>(
      services.trading.databaseUrl,
      `SELECT available, pending_out FROM holdings WHERE account_id = $1 AND symbol = 'TSLA'`,
      [never],
    );
    expect(holdings).toEqual([{ available: '50', pending_out: '0' }]);
    expect(
      await count(
        services.trading.databaseUrl,
        `SELECT count(*) AS n FROM outbox WHERE payload->>'type' = 'OrderTradeUnwound' AND payload->'data'->>'tradeId' = $1`,
        [neverTrade],
      ),
    ).toBe(2);
    expect(await invariantViolations(urls())).toEqual([]);

    // Operators see it in the metrics too.
    const metrics = await services.settlement.process.request('/metrics', {
      method: 'GET',
      as: 'compliance-service',
    });
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/^settlement_trades_unwound\{[^}]*\} [1-9]\d*$/m);
    expect(metrics.body).toMatch(/^settlement_last_cycle\{[^}]*field="trades_settled"[^}]*\} 1$/m);
    expect(metrics.body).toMatch(/^settlement_cycles_interrupted\{[^}]*\} 0$/m);

    // What is left is the custody break itself: the never-delivered shares, and nothing else.
    await waitFor(
      "trading's confirmations",
      () =>
        count(
          services.settlement.databaseUrl,
          `SELECT count(*) AS n FROM settlement_obligations WHERE state = 'SETTLED' AND trading_settled_at IS NULL`,
        ),
      (n) => n === 0,
    );
    const reconciliation = await call<Reconciliation>(
      services.settlement,
      'GET',
      '/settlement/reconciliation',
      { as: 'compliance-service', expect: [200] },
    );
    expect(reconciliation.body.differences).toEqual([
      {
        party: never,
        assetKind: 'SECURITY',
        asset: 'TSLA',
        ledger: '0',
        trading: '50',
        difference: '50',
      },
    ]);
  });

  it('finishes a cycle whose settlement was SIGKILLed while posting, after a restart, posting each trade once', async () => {
    // Many small obligations between the day's accounts (which hold cash and shares in the ledger),
    // so the posting phase lasts long enough to be interrupted.
    const parties = (
      await query<{ party: string }>(
        services.settlement.databaseUrl,
        `SELECT party FROM ledger_accounts WHERE kind = 'CLIENT' AND asset = 'AAPL' AND party LIKE $1
          ORDER BY party`,
        [`R${run}-%`],
      )
    ).map((r) => r.party);
    expect(parties.length).toBeGreaterThanOrEqual(4);
    const n = 20_000;
    const ids = Array.from({ length: n }, () => randomUUID());
    await query(
      services.settlement.databaseUrl,
      `INSERT INTO settlement_obligations (trade_id, symbol, currency, price_minor, quantity, value_minor,
         buyer_fee_minor, buy_account_id, sell_account_id, buy_order_id, sell_order_id, executed_at,
         settlement_date, state)
       SELECT id, 'AAPL', 'USD', 100 + i % 7, 1, 100 + i % 7, 0, ($2::text[])[1 + (i % cardinality($2::text[]))],
              ($2::text[])[1 + ((i + 1) % cardinality($2::text[]))], 'b-' || id, 's-' || id, now(), $3::date, 'OPEN'
         FROM unnest($1::text[]) WITH ORDINALITY AS t(id, i)`,
      [ids, parties, today()],
    );
    const cycleId = `killed-${run}`;
    const interrupted = services.settlement.process
      .request('/settlement/process', {
        method: 'POST',
        as: 'trading-service',
        body: { cycleId, businessDate: today() },
        timeoutMs: 120_000,
      })
      .catch(() => undefined);
    await waitFor(
      'the cycle netted (posting under way)',
      () =>
        query<{ state: string }>(
          services.settlement.databaseUrl,
          `SELECT state FROM settlement_cycles WHERE cycle_id = $1`,
          [cycleId],
        ),
      (rows) => rows.length === 1,
      60_000,
    );
    services.settlement.process.child.kill('SIGKILL');
    await interrupted;
    await services.settlement.process.exited;
    // A statement the killed process had sent can still commit: wait for its sessions to end.
    await waitFor(
      "the killed process's sessions gone",
      () =>
        count(
          services.settlement.databaseUrl,
          `SELECT count(*) AS n FROM pg_stat_activity
            WHERE datname = current_database() AND application_name = 'settlement-service'`,
        ),
      (left) => left === 0,
    );
    const [atKill] = await query<{ state: string }>(
      services.settlement.databaseUrl,
      `SELECT state FROM settlement_cycles WHERE cycle_id = $1`,
      [cycleId],
    );
    expect(atKill.state).toBe('NETTED');

    services.settlement = await startSystemService('settlement', { reuse: services.settlement });
    const again = await call<CycleReport & { resumed?: string[] }>(
      services.settlement,
      'POST',
      '/settlement/process',
      { as: 'trading-service', body: { cycleId, businessDate: today() }, expect: [200] },
    );
    expect(again.body).toMatchObject({ cycleId, state: 'POSTED', tradesSettled: n });
    expect(again.body.resumed).toEqual([cycleId]);
    expect(
      await count(
        services.settlement.databaseUrl,
        `SELECT count(*) AS n FROM settlement_obligations WHERE trade_id = ANY($1) AND state = 'SETTLED'`,
        [ids],
      ),
    ).toBe(n);
    expect(
      await count(
        services.settlement.databaseUrl,
        `SELECT count(*) AS n FROM outbox WHERE payload->>'type' = 'TradeSettled' AND payload->'data'->>'cycleId' = $1`,
        [cycleId],
      ),
    ).toBe(n);
    // Every pending transfer of the cycle posted exactly once, and the ledger balances.
    const [transfers] = await query<{ pending: string; posted: string }>(
      services.settlement.databaseUrl,
      `SELECT count(*) FILTER (WHERE kind = 'PENDING') AS pending,
              count(*) FILTER (WHERE kind = 'POST_PENDING') AS posted
         FROM ledger_transfers WHERE reference = $1 OR pending_id LIKE $2`,
      [cycleId, `${cycleId}/%`],
    );
    expect(Number(transfers.pending)).toBeGreaterThan(0);
    expect(transfers.posted).toBe(transfers.pending);
    const unbalanced = await query(
      services.settlement.databaseUrl,
      `SELECT asset FROM ledger_accounts GROUP BY asset_kind, asset
        HAVING sum(debits_posted) <> sum(credits_posted) OR sum(debits_pending) <> sum(credits_pending)`,
    );
    expect(unbalanced).toEqual([]);
  });

  it('refuses a malformed cycle request with the field named, and changes nothing', async () => {
    const before = await count(
      services.settlement.databaseUrl,
      'SELECT count(*) AS n FROM settlement_cycles',
    );
    const bad = await call<{ errors: Array<{ field: string }> }>(
      services.settlement,
      'POST',
      '/settlement/process',
      { as: 'trading-service', body: { businessDate: '2026-13-45' }, expect: [400] },
    );
    expect(bad.body.errors[0].field).toContain('businessDate');
    await call(services.settlement, 'POST', '/settlement/process', {
      as: 'order-service',
      body: {},
      expect: [403],
    });
    expect(
      await count(services.settlement.databaseUrl, 'SELECT count(*) AS n FROM settlement_cycles'),
    ).toBe(before);
  });
});

function urls() {
  return {
    trading: services.trading.databaseUrl,
    risk: services.risk.databaseUrl,
    settlement: services.settlement.databaseUrl,
  };
}
