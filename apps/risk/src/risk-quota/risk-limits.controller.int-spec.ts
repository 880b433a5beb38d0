// The limits API over HTTP (Nest on Fastify, in process, real database): what a risk officer sets
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
import { RiskQuotaModule } from './risk-quota.module';

const OFFICER = 'spiffe://cluster.local/ns/finance/sa/risk-officer';
const config = {
  RISK_DEFAULT_MAX_ORDER_VALUE: '1000000',
  RISK_DEFAULT_QUOTA: '5000000',
  KAFKA_TOPIC_PREFIX: 't-limits.',
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

  async function limitEvents(accountId: string) {
    const rows: Array<{ topic: string; message_key: string; payload: unknown }> = await db.query(
      `SELECT topic, message_key, payload FROM outbox WHERE payload->>'type' = 'RiskLimitChanged'
       AND message_key = $1 ORDER BY position`,
      [accountId],
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

  it('sets limits, records who changed what, and shows them with usage', async () => {
    const put = await call('PUT', '/risk/limits/ACC-1', {
      currency: 'USD',
      maxOrderValue: '250000',
      quota: '750000.5',
    });
    expect(put.statusCode).toBe(200);
    expect(put.json()).toMatchObject({
      accountId: 'ACC-1',
      currency: 'USD',
      maxOrderValue: '250000.00',
      quota: '750000.50',
      used: '0.00',
      available: '750000.50',
      source: 'ACCOUNT',
      setBy: OFFICER,
    });
    expect(await limitEvents('ACC-1')).toEqual([
      {
        topic: 't-limits.risk.events',
        data: {
          scope: 'ACCOUNT',
          accountId: 'ACC-1',
          limit: 'max-order-value:USD',
          value: '250000.00',
          changedBy: OFFICER,
        },
        sequence: 1,
        correlationId: 'req-1',
      },
      expect.objectContaining({
        data: expect.objectContaining({ limit: 'risk-quota:USD', value: '750000.50' }),
        sequence: 2,
      }),
    ]);

    // A second change continues the account's event sequence.
    await call('PUT', '/risk/limits/ACC-1', {
      currency: 'JPY',
      maxOrderValue: '100',
      quota: '100',
    });
    expect((await limitEvents('ACC-1')).map((e) => e.sequence)).toEqual([1, 2, 3, 4]);

    const get = await call('GET', '/risk/limits/ACC-1');
    expect(get.statusCode).toBe(200);
    expect(get.json()).toMatchObject({
      accountId: 'ACC-1',
      limits: [
        { currency: 'JPY', maxOrderValue: '100', quota: '100', source: 'ACCOUNT' },
        { currency: 'USD', maxOrderValue: '250000.00', quota: '750000.50', used: '0.00' },
      ],
      defaults: { maxOrderValue: '1000000', quota: '5000000' },
      reservations: [],
    });
  });

  it('shows only the defaults for an account nobody has set or used', async () => {
    const get = await call('GET', '/risk/limits/ACC-NEW');
    expect(get.json()).toMatchObject({
      accountId: 'ACC-NEW',
      limits: [],
      defaults: { maxOrderValue: '1000000', quota: '5000000' },
    });
  });

  it('answers 400 problem details naming the field, and changes nothing', async () => {
    const put = await call('PUT', '/risk/limits/ACC-2', {
      currency: 'USD',
      maxOrderValue: '100.005',
      quota: '100',
    });
    expect(put.statusCode).toBe(400);
    expect(put.headers['content-type']).toContain('application/problem+json');
    expect(put.json()).toMatchObject({
      status: 400,
      errors: [{ field: 'body.maxOrderValue', message: "USD has 2 decimal places, got '100.005'" }],
    });
    const missing = await call('PUT', '/risk/limits/ACC-2', { currency: 'USD', quota: '1' });
    expect(missing.json().errors).toEqual([
      expect.objectContaining({ field: 'body.maxOrderValue' }),
    ]);
    const notAnObject = await call('PUT', '/risk/limits/ACC-2', ['USD', '1', '1']);
    expect(notAnObject.statusCode).toBe(400);
    expect(notAnObject.json().errors[0].field).toBe('body');

    expect((await call('GET', '/risk/limits/ACC-2')).json().limits).toEqual([]);
    expect(await limitEvents('ACC-2')).toEqual([]);
  });
});
