// GET /settlement/clearing-quota/:accountId over HTTP (Nest on Fastify, in process, real database):
// what an operator or compliance sees of an account's clearing quota after an order reserved some.
import { PLACEMENT_RESOURCES, TccTry } from '@finance/contracts';
import { createEnvelope } from '@finance/messaging';
import {
  createLogger,
  openDatabase,
  ProblemDetailsFilter,
  SERVICE_CONFIG,
} from '@finance/platform';
import { TccParticipant } from '@finance/tcc';
import { createTestDatabase } from '@finance/testing';
import { DynamicModule, Global, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { DataSource } from 'typeorm';
import { settlementService } from '../service';
import { ClearingQuotaBranch } from './clearing-quota.branch';
import { ClearingQuotaModule } from './clearing-quota.module';

const config = {
  SETTLEMENT_DEFAULT_CLEARING_QUOTA: '10000000',
  SETTLEMENT_FIRM_CLEARING_QUOTA: '1000000000',
};

// What the service root provides to feature modules (database and config), and nothing else.
@Global()
@Module({})
class TestRoot {
  static register(db: DataSource): DynamicModule {
    return {
      module: TestRoot,
      imports: [ClearingQuotaModule],
      providers: [
        { provide: DataSource, useValue: db },
        { provide: SERVICE_CONFIG, useValue: config },
      ],
      exports: [DataSource, SERVICE_CONFIG],
    };
  }
}

describe('clearing quota API', () => {
  let db: DataSource;
  let app: NestFastifyApplication;

  beforeAll(async () => {
    const { url } = await createTestDatabase('clearing_quota_api');
    db = await openDatabase({
      url,
      applicationName: 'clearing-quota-api-test',
      poolSize: 4,
      migrations: settlementService.migrations,
    });
    app = await NestFactory.create<NestFastifyApplication>(
      TestRoot.register(db),
      new FastifyAdapter(),
      { logger: false },
    );
    app.useGlobalFilters(new ProblemDetailsFilter(createLogger('settlement', 'silent')));
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
  });
  afterAll(async () => {
    await app?.close();
    await db?.destroy();
  });

  const get = (url: string) => app.getHttpAdapter().getInstance().inject({ method: 'GET', url });

  it("shows the account's and the firm's usage and the open reservation", async () => {
    // The branch comes from the module, as the service's participant will get it.
    const participant = new TccParticipant({
      service: 'settlement',
      resources: { [PLACEMENT_RESOURCES.clearingQuota]: app.get(ClearingQuotaBranch) },
    });
    const gtid = 'gtx-api-1';
    const command = createEnvelope(
      TccTry,
      {
        globalTransactionId: gtid,
        branchId: 'clearing',
        participant: 'settlement',
        resource: PLACEMENT_RESOURCES.clearingQuota,
        deadline: new Date(Date.now() + 60_000).toISOString(),
        payload: {
          orderId: 'ord-1',
          accountId: 'ACC-1',
          symbol: 'ACME',
          side: 'BUY',
          orderType: 'LIMIT',
          timeInForce: 'DAY',
          quantity: '10',
          price: '12.50',
          notional: { amount: '125.00', currency: 'USD' },
          fees: { amount: '0.10', currency: 'USD' },
        },
      },
      { producer: 'trading', aggregateId: gtid, aggregateSequence: 1, correlationId: gtid },
    );
    expect(await db.transaction((m) => participant.handle(command, m))).toBe('executed');

    const response = await get('/settlement/clearing-quota/ACC-1');
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      accountId: 'ACC-1',
      account: [
        {
          currency: 'USD',
          quota: '10000000.00',
          used: '125.00',
          available: '9999875.00',
          source: 'DEFAULT',
        },
      ],
      firm: [
        {
          currency: 'USD',
          quota: '1000000000.00',
          used: '125.00',
          available: '999999875.00',
          source: 'DEFAULT',
        },
      ],
      defaults: expect.objectContaining({ accountQuota: '10000000', firmQuota: '1000000000' }),
      reservations: [
        expect.objectContaining({
          gtid,
          branchId: 'clearing',
          orderId: 'ord-1',
          currency: 'USD',
          amount: '125.00',
          state: 'RESERVED',
        }),
      ],
    });
  });

  it('shows the defaults for an account that has reserved nothing', async () => {
    const response = await get('/settlement/clearing-quota/ACC-NONE');
    expect(response.json()).toMatchObject({ account: [], firm: [], reservations: [] });
  });
});
