// The limits API over HTTP (firm-wide and per account) (Nest on Fastify, in process, real database): what a risk officer sets
// and reads, the RiskLimitChanged events that record it, and 400s that name the field and change nothing.
import { SYSTEM_CATALOG } from '@finance/contracts';
import {
  createLogger,
  openDatabase,
  ProblemDetailsFilter,
  SERVICE_CONFIG,
} from '@finance/platform';
import { createTestDatabase } from '@finance/testing';
import { DynamicModule, Global, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { DataSource } from 'typeorm';
import { riskService } from '../service';
import { RiskQuotaModule } from '../risk-quota/risk-quota.module';

const OFFICER = 'spiffe://cluster.local/ns/finance/sa/risk-officer';
const config = {
  RISK_DEFAULT_MAX_ORDER_VALUE: '1000000',
  RISK_DEFAULT_QUOTA: '5000000',
  KAFKA_TOPIC_PREFIX: 't-limits.',
  OPA_URL: 'http://127.0.0.1:1',
  OPA_TIMEOUT_MS: 100,
};

// What the service root provides to feature modules (database and config), and nothing else.
@Global()
@Module({})
class TestRoot {
  static register(db: DataSource): DynamicModule {
    return {
      module: TestRoot,
      imports: [RiskQuotaModule],
      providers: [
        { provide: DataSource, useValue: db },
        { provide: SERVICE_CONFIG, useValue: config },
      ],
      exports: [DataSource, SERVICE_CONFIG],
    };
  }
}

describe('risk limits API', () => {
  let db: DataSource;
  let app: NestFastifyApplication;

  beforeAll(async () => {
    const { url } = await createTestDatabase('risk_limits_api');
    db = await openDatabase({
      url,
      applicationName: 'risk-limits-test',
      poolSize: 4,
      migrations: riskService.migrations,
    });
    app = await NestFactory.create<NestFastifyApplication>(
      TestRoot.register(db),
      new FastifyAdapter(),
      { logger: false },
    );
    app.useGlobalFilters(new ProblemDetailsFilter(createLogger('risk', 'silent')));
    // Stands in for the authorization guard, which puts the verified caller on the request.
    app
      .getHttpAdapter()
      .getInstance()
      .addHook('onRequest', async (request) => {
        (request as { principal?: string }).principal = OFFICER;
      });
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
  });
  afterAll(async () => {
    await app?.close();
    await db?.destroy();
  });

  const call = (method: 'GET' | 'PUT', url: string, payload?: unknown) =>
    app
      .getHttpAdapter()
      .getInstance()
      .inject({
        method,
        url,
        ...(payload === undefined ? {} : { payload: payload as object }),
        headers: { 'x-request-id': 'req-1' },
      });

  async function limitEvents(aggregateId: string) {
    const rows: Array<{ topic: string; message_key: string; payload: unknown }> = await db.query(
      `SELECT topic, message_key, payload FROM outbox WHERE payload->>'type' = 'RiskLimitChanged'
       AND message_key = $1 ORDER BY position`,
      [aggregateId],
    );
    return rows.map((row) => {
      const decoded = SYSTEM_CATALOG.decode(row.payload);
      if (decoded.status !== 'ok') throw new Error(`undecodable event: ${decoded.status}`);
      return {
        topic: row.topic,
        data: decoded.message.data,
        sequence: decoded.message.metadata.aggregateSequence,
        correlationId: decoded.message.metadata.correlationId,
      };
    });
  }

  it('sets firm-wide limits that every account without its own gets, and records each change', async () => {
    const put = await call('PUT', '/risk/limits', {
      maxOrderQuantity: '5000',
      restrictedSymbols: ['XYZ', 'ABC', 'XYZ'],
      currency: 'USD',
      lossLimit: '25000',
    });
    expect(put.statusCode).toBe(200);
    expect(put.json()).toMatchObject({
      scope: 'FIRM',
      own: [
        { limit: 'lossLimit', currency: 'USD', value: '25000.00', setBy: OFFICER },
        { limit: 'maxOrderQuantity', value: '5000', setBy: OFFICER },
        { limit: 'restrictedSymbols', value: ['ABC', 'XYZ'] },
      ],
      defaults: { maxOrderValue: '1000000', quota: '5000000' },
    });
    expect((await limitEvents('*')).map((e) => e.data)).toEqual([
      { scope: 'FIRM', limit: 'loss-limit:USD', value: '25000.00', changedBy: OFFICER },
      { scope: 'FIRM', limit: 'max-order-quantity', value: '5000', changedBy: OFFICER },
      { scope: 'FIRM', limit: 'restricted-symbols', value: ['ABC', 'XYZ'], changedBy: OFFICER },
    ]);
    expect((await call('GET', '/risk/limits')).json().own).toHaveLength(3);
  });

  it("sets an account's limits over the firm's, shows where each comes from, and unsets with null", async () => {
    const put = await call('PUT', '/risk/limits/ACC-1', {
      currency: 'USD',
      maxOrderValue: '250000',
      quota: '750000.5',
      maxOrderQuantity: '100',
      restrictedSymbols: ['TSLA'],
      priceCollarPercent: '2.5',
    });
    expect(put.statusCode).toBe(200);
    const events = await limitEvents('ACC-1');
    expect(
      events.map((e) => {
        const data = e.data as { limit: string; value: unknown };
        return [data.limit, data.value, e.sequence];
      }),
    ).toEqual([
      ['max-order-value:USD', '250000.00', 1],
      ['risk-quota:USD', '750000.50', 2],
      ['max-order-quantity', '100', 3],
      ['price-collar-percent', '2.5', 4],
      ['restricted-symbols', ['TSLA'], 5],
    ]);
    expect(events[0]).toMatchObject({ topic: 't-limits.risk.events', correlationId: 'req-1' });

    const get = await call('GET', '/risk/limits/ACC-1');
    expect(get.json().inForce).toEqual(
      expect.arrayContaining([
        { limit: 'maxOrderQuantity', value: '100', source: 'ACCOUNT' },
        { limit: 'lossLimit', currency: 'USD', value: '25000.00', source: 'FIRM' },
        { limit: 'restrictedSymbols', value: ['ABC', 'TSLA', 'XYZ'], source: 'ACCOUNT' },
        { limit: 'maxOrderValue', currency: 'USD', value: '250000.00', source: 'ACCOUNT' },
      ]),
    );
    expect(get.json().reservations).toEqual([]);

    await call('PUT', '/risk/limits/ACC-1', { maxOrderQuantity: null });
    const after = await call('GET', '/risk/limits/ACC-1');
    expect(after.json().inForce).toContainEqual({
      limit: 'maxOrderQuantity',
      value: '5000',
      source: 'FIRM',
    });
    expect((await limitEvents('ACC-1')).at(-1)?.data).toEqual({
      scope: 'ACCOUNT',
      accountId: 'ACC-1',
      limit: 'max-order-quantity',
      value: [],
      unset: true,
      changedBy: OFFICER,
    });
  });

  it('answers 400 problem details naming the field, and changes nothing', async () => {
    const cases: Array<[unknown, string]> = [
      [{ currency: 'USD', maxOrderValue: '100.005' }, 'body.maxOrderValue'],
      [{ quota: '1' }, 'body.currency'],
      [{ currency: 'USD' }, 'body.currency'],
      [{ priceCollarPercent: '101' }, 'body.priceCollarPercent'],
      [{ duplicateWindowSeconds: '7200' }, 'body.duplicateWindowSeconds'],
      [{ ordersPerSecond: '-1' }, 'body.ordersPerSecond'],
      [{ restrictedSymbols: ['aapl'] }, 'body.restrictedSymbols.0'],
      [{ maxPosition: 10 }, 'body.maxPosition'],
      [{ unknown: '1' }, 'body'],
      [{}, 'body'],
      [['USD', '1', '1'], 'body'],
    ];
    for (const [body, field] of cases) {
      const put = await call('PUT', '/risk/limits/ACC-2', body);
      expect({ body, status: put.statusCode }).toEqual({ body, status: 400 });
      expect(put.headers['content-type']).toContain('application/problem+json');
      expect(put.json().errors[0].field).toBe(field);
    }
    const badId = await call('PUT', '/risk/limits/bad%20id', { maxPosition: '1' });
    expect(badId.json().errors[0].field).toBe('accountId');
    expect((await call('GET', '/risk/limits/ACC-2')).json().own).toEqual([]);
    expect(await limitEvents('ACC-2')).toEqual([]);
  });
});
