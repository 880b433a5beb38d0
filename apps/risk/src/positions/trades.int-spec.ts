// Trading's fills as risk consumes them (each trade once, whichever of its two events comes first),
// on a real database: positions and P&L after a scripted sequence equal the values worked out by
// hand below, and the breakers and the large-trade rule fire on the trades that cross them.
import { OrderExecuted, MessageOf } from '@finance/contracts';
import { openDatabase } from '@finance/platform';
import { createTestDatabase } from '@finance/testing';
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { riskService } from '../service';
import { accountPositions, exposure, exposureAt } from './positions.view';
import { applyTrade } from './trades';

const config = {
  KAFKA_TOPIC_PREFIX: '',
  RISK_PRICE_BAND_PERCENT: '5',
  RISK_PRICE_BAND_WINDOW_SECONDS: 60,
  RISK_LARGE_TRADE_NOTIONAL: '1000000',
  RISK_LARGE_TRADE_COUNT: 3,
  RISK_LARGE_TRADE_WINDOW_SECONDS: 10,
};

type Trade = MessageOf<typeof OrderExecuted>['data'];

describe('positions and P&L from fills', () => {
  let db: DataSource;
  const t0 = Date.parse('2026-03-02T14:30:00Z');
  let n = 0;

  beforeAll(async () => {
    const { url } = await createTestDatabase('risk_trades');
    db = await openDatabase({
      url,
      applicationName: 'risk-trades-test',
      poolSize: 4,
      migrations: riskService.migrations,
    });
  });
  afterAll(() => db?.destroy());

  function trade(
    symbol: string,
    buyer: string,
    seller: string,
    quantity: string,
    price: string,
    atSeconds: number,
  ): Trade {
    n += 1;
    return {
      tradeId: `T-${symbol}-${n}`,
      symbol,
      price,
      quantity,
      currency: 'USD',
      buy: { orderId: `B-${n}`, accountId: buyer },
      sell: { orderId: `S-${n}`, accountId: seller },
      executedAt: new Date(t0 + atSeconds * 1000).toISOString(),
    };
  }

  const apply = (t: Trade) => db.transaction((m) => applyTrade(m, config, t, randomUUID()));

  it('matches the hand-computed positions, average costs and P&L after a scripted sequence', async () => {
    const script = [
      trade('ACME', 'ALICE', 'BOB', '100', '10.00', 0), //   ALICE +100 @ 10.00
      trade('ACME', 'ALICE', 'BOB', '50', '10.40', 1), //    ALICE +50 @ 10.40 → 150, cost 1,520.00
      trade('ACME', 'CAROL', 'ALICE', '120', '10.20', 2), // ALICE −120: closes 120 of 150 at cost 1,216.00
      trade('ACME', 'CAROL', 'ALICE', '50', '10.10', 3), //  ALICE −50: closes 30 (cost 304.00), short 20
    ];
    for (const t of script) expect(await apply(t)).toBe('applied');
    // The trade's other OrderExecuted arrives: nothing happens twice.
    expect(await apply(script[1])).toBe('seen');

    // ALICE: realized 120 × 10.20 − 1,216.00 = 8.00, then 30 × 10.10 − 304.00 = −1.00 → 7.00.
    // Short 20 at 10.10 (cost −202.00); last price 10.10 → unrealized 0.00.
    // BOB: short 150 at an average of 1,520.00 / 150; unrealized −150 × 10.10 + 1,520.00 = 5.00.
    // CAROL: long 170, cost 120 × 10.20 + 50 × 10.10 = 1,729.00; unrealized 1,717.00 − 1,729.00 = −12.00.
    expect((await accountPositions(db, 'ALICE')).positions).toEqual([
      {
        symbol: 'ACME',
        currency: 'USD',
        quantity: '-20',
        averageCost: '10.10',
        costBasis: '-202.00',
        lastPrice: '10.10',
        lastTradeAt: '2026-03-02T14:30:03.000Z',
        marketValue: '-202.00',
        realizedPnl: '7.00',
        unrealizedPnl: '0.00',
      },
    ]);
    expect((await accountPositions(db, 'BOB')).positions[0]).toMatchObject({
      quantity: '-150',
      averageCost: '10.133333',
      costBasis: '-1520.00',
      realizedPnl: '0.00',
      unrealizedPnl: '5.00',
    });
    expect((await accountPositions(db, 'CAROL')).positions[0]).toMatchObject({
      quantity: '170',
      averageCost: '10.170588',
      costBasis: '1729.00',
      unrealizedPnl: '-12.00',
    });

    // Gross and net exposure: each account, and the firm (long 1,717.00; short 202.00 + 1,515.00).
    expect((await exposure(db, 'CAROL')).exposure).toEqual([
      {
        currency: 'USD',
        gross: '1717.00',
        net: '1717.00',
        long: '1717.00',
        short: '0.00',
        openOrders: '0.00',
        realizedPnl: '0.00',
        unrealizedPnl: '-12.00',
      },
    ]);
    const firm = await exposure(db);
    expect('firm' in firm && firm.firm).toEqual([
      {
        currency: 'USD',
        gross: '3434.00',
        net: '0.00',
        long: '1717.00',
        short: '1717.00',
        openOrders: '0.00',
        realizedPnl: '7.00',
        unrealizedPnl: '-7.00',
      },
    ]);
    // At a point in time: after the first two trades only, at the last price then (10.40).
    expect(await exposureAt(db, new Date(t0 + 1500))).toEqual([
      expect.objectContaining({ accountId: 'ALICE', quantity: '150', marketValue: '1560.00' }),
      expect.objectContaining({ accountId: 'BOB', quantity: '-150', grossExposure: '1560.00' }),
    ]);
  });

  it('halts a symbol that trades beyond the band of its window, once, with an alert', async () => {
    await apply(trade('BAND', 'X1', 'X2', '1', '100.00', 0));
    await apply(trade('BAND', 'X1', 'X2', '1', '105.00', 10)); // exactly +5%: no breach
    const jump = trade('BAND', 'X1', 'X2', '1', '105.01', 20);
    await apply(jump);
    await apply(trade('BAND', 'X1', 'X2', '1', '111.00', 21));
    const switches: Array<{ source: string; reason: string }> = await db.query(
      `SELECT source, reason FROM risk_kill_switches WHERE target = 'SYMBOL:BAND'`,
    );
    expect(switches).toEqual([
      {
        source: 'PRICE_BAND',
        reason: `BAND traded at 105.01 USD (trade ${jump.tradeId}), more than 5% above 100.00 USD within 60 s`,
      },
    ]);
    const alerts: Array<{ kind: string; trade_ids: string[] }> = await db.query(
      `SELECT kind, trade_ids FROM risk_alerts WHERE symbol = 'BAND'`,
    );
    expect(alerts).toEqual([{ kind: 'PRICE_BAND', trade_ids: [jump.tradeId] }]);
  });

  it('stops an account whose loss passes its limit', async () => {
    await db.query(
      `INSERT INTO risk_limit_values (scope, account_id, name, currency, value, set_by)
       VALUES ('ACCOUNT', 'LOSER', 'lossLimit', 'USD', '"50.00"', 'risk-officer')`,
    );
    await apply(trade('DROP', 'LOSER', 'Y1', '100', '20.00', 0));
    await apply(trade('DROP', 'Y2', 'Y1', '1', '19.50', 1)); // LOSER at −50.00: the limit, not past it
    expect(
      await db.query(`SELECT 1 FROM risk_kill_switches WHERE target = 'ACCOUNT:LOSER'`),
    ).toEqual([]);
    await apply(trade('DROP', 'Y2', 'Y1', '1', '19.49', 2)); // −51.00
    const [ks]: Array<{ source: string; reason: string }> = await db.query(
      `SELECT source, reason FROM risk_kill_switches WHERE target = 'ACCOUNT:LOSER' AND released_at IS NULL`,
    );
    expect(ks).toEqual({
      source: 'LOSS_LIMIT',
      reason: 'account LOSER is at a P&L of -51.00 USD, beyond its loss limit of 50.00 USD',
    });
  });

  it('raises a large-trade alert at the third trade above 1,000,000 within 10 s, and not after 10 s', async () => {
    await apply(trade('BIG', 'WHALE', 'Z1', '10000', '100.01', 0)); // 1,000,100.00
    await apply(trade('BIG', 'WHALE', 'Z2', '10000', '100.00', 1)); // exactly 1,000,000: not above
    await apply(trade('BIG', 'Z3', 'WHALE', '10000', '100.02', 5));
    expect(await db.query(`SELECT 1 FROM risk_alerts WHERE account_id = 'WHALE'`)).toEqual([]);
    const third = trade('BIG', 'WHALE', 'Z4', '10000', '100.03', 9);
    await apply(third);
    const alerts: Array<{ kind: string; severity: string; message: string; trade_ids: string[] }> =
      await db.query(
        `SELECT kind, severity, message, trade_ids FROM risk_alerts WHERE account_id = 'WHALE'`,
      );
    expect(alerts).toEqual([
      {
        kind: 'LARGE_TRADES',
        severity: 'MEDIUM',
        message: 'account WHALE made 3 trades above 1000000 USD within 10 s',
        trade_ids: [`T-BIG-${n - 3}`, `T-BIG-${n - 1}`, third.tradeId],
      },
    ]);
    // An alert does not halt the account.
    expect(
      await db.query(`SELECT 1 FROM risk_kill_switches WHERE target = 'ACCOUNT:WHALE'`),
    ).toEqual([]);
  });
});
