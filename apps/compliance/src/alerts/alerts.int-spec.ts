// Surveillance and the alert review workflow on real PostgreSQL and the run's OPA (libs/policies): a
// wash trade fed into the audit log becomes one OPEN alert (once, however often surveillance runs),
// published through the outbox and audited; a reviewer takes it under review and closes it with a
// note, each step audited; wrong states answer 409, bad input 400, an unknown alert 404.
import { AuditLogStore, inputFromEnvelope } from '@finance/audit-log';
import {
  AccountOpened,
  MessageDefinition,
  OrderCreated,
  OrderExecuted,
  utcNowMicros,
} from '@finance/contracts';
import { createEnvelope } from '@finance/messaging';
import {
  createLogger,
  openDatabase,
  ProblemDetailsFilter,
  SERVICE_CONFIG,
  SERVICE_LOGGER,
} from '@finance/platform';
import { createTestDatabase, testStack } from '@finance/testing';
import { DynamicModule, Global, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { DataSource } from 'typeorm';
import type { z } from 'zod';
import { AuditLogModule } from '../audit/audit-log.module';
import { CompliancePolicy } from '../pre-trade/compliance-policy';
import { complianceService } from '../service';
import { AlertsModule } from './alerts.module';
import { ComplianceAlert, ComplianceAlerts } from './compliance-alerts';
import { Surveillance } from './surveillance';

const OFFICER = 'spiffe://cluster.local/ns/finance/sa/compliance-officer';
const logger = createLogger('compliance-alerts-test', process.env.TEST_LOG_LEVEL ?? 'silent');

@Global()
@Module({})
class TestRoot {
  static register(db: DataSource, config: Record<string, unknown>): DynamicModule {
    return {
      module: TestRoot,
      imports: [AuditLogModule, AlertsModule],
      providers: [
        { provide: DataSource, useValue: db },
        { provide: SERVICE_CONFIG, useValue: config },
        { provide: SERVICE_LOGGER, useValue: logger },
      ],
      exports: [DataSource, SERVICE_CONFIG, SERVICE_LOGGER],
    };
  }
}

describe('compliance alerts', () => {
  const stack = testStack();
  let db: DataSource;
  let app: NestFastifyApplication;
  let surveillance: Surveillance;
  let offset = 0;

  const call = (method: 'GET' | 'POST', url: string, payload?: unknown) =>
    app
      .getHttpAdapter()
      .getInstance()
      .inject({
        method,
        url,
        payload: payload as never,
        headers: { 'x-request-id': 'req-alerts' },
      });

  /** Appends trading's events to the audit log as the consumer would. */
  async function consumed<D extends MessageDefinition>(
    definition: D,
    aggregateId: string,
    data: z.input<D['schema']>,
  ): Promise<void> {
    const envelope = createEnvelope(definition, data, {
      producer: 'trading',
      aggregateId,
      aggregateSequence: 1,
      correlationId: aggregateId,
    });
    await app.get(AuditLogStore).appendNow([
      inputFromEnvelope(envelope, {
        topic: 'test.trading',
        partition: 0,
        offset: String(offset++),
      }),
    ]);
  }

  const auditedOf = async (type: string, aggregateId: string) =>
    (
      await db.query(
        `SELECT producer, payload::jsonb AS payload FROM audit_entries
          WHERE type = $1 AND aggregate_id = $2 ORDER BY leaf_index`,
        [type, aggregateId],
      )
    ).map((r: { producer: string; payload: Record<string, unknown> }) => r);

  beforeAll(async () => {
    const { url } = await createTestDatabase('compliance_alerts');
    db = await openDatabase({
      url,
      applicationName: 'compliance-alerts-test',
      poolSize: 8,
      migrations: complianceService.migrations,
    });
    const config = {
      OPA_URL: stack.opaUrl,
      OPA_TIMEOUT_MS: 5_000,
      KAFKA_TOPIC_PREFIX: stack.topicPrefix,
      AUDIT_CHECKPOINT_INTERVAL_MS: 3_600_000,
      AUDIT_LOG_ORIGIN: 'test/compliance-alerts',
      COMPLIANCE_SURVEILLANCE_INTERVAL_MS: 3_600_000,
      COMPLIANCE_SURVEILLANCE_WINDOW_MINUTES: 60,
    };
    app = await NestFactory.create<NestFastifyApplication>(
      TestRoot.register(db, config),
      new FastifyAdapter(),
      { logger: false },
    );
    app.useGlobalFilters(new ProblemDetailsFilter(logger));
    // Stands in for the authorization guard, which puts the verified caller on the request.
    app
      .getHttpAdapter()
      .getInstance()
      .addHook('onRequest', async (request) => {
        (request as { principal?: string }).principal = OFFICER;
      });
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
    surveillance = app.get(Surveillance);
  });
  afterAll(async () => {
    await app?.close();
    await db?.destroy();
  });

  it('raises one alert for a wash trade, published and audited, however often surveillance runs', async () => {
    // Two accounts of one beneficial owner trade with each other; a third owner trades fairly.
    await consumed(AccountOpened, 'ACC-W1', {
      accountId: 'ACC-W1',
      owner: 'owner-w',
      openedBy: 'ops',
    });
    await consumed(AccountOpened, 'ACC-W2', {
      accountId: 'ACC-W2',
      owner: 'owner-w',
      openedBy: 'ops',
    });
    await consumed(AccountOpened, 'ACC-X', {
      accountId: 'ACC-X',
      owner: 'owner-x',
      openedBy: 'ops',
    });
    const order = (orderId: string, accountId: string, side: 'BUY' | 'SELL') =>
      consumed(OrderCreated, orderId, {
        orderId,
        accountId,
        clientOrderId: `c-${orderId}`,
        symbol: 'ACME',
        side,
        orderType: 'LIMIT',
        price: '10.00',
        quantity: '100',
        timeInForce: 'DAY',
        currency: 'USD',
      });
    await order('O-BUY', 'ACC-W1', 'BUY');
    await order('O-SELL', 'ACC-W2', 'SELL');
    await order('O-FAIR', 'ACC-X', 'BUY');
    const executed = {
      tradeId: 'T-WASH',
      symbol: 'ACME',
      price: '10.00',
      quantity: '100',
      currency: 'USD',
      buy: { orderId: 'O-BUY', accountId: 'ACC-W1' },
      sell: { orderId: 'O-SELL', accountId: 'ACC-W2' },
      executedAt: utcNowMicros(),
    };
    // Trading publishes the execution on each order's stream: one trade.
    await consumed(OrderExecuted, 'O-BUY', executed);
    await consumed(OrderExecuted, 'O-SELL', executed);

    const first = await surveillance.runOnce();
    expect(first).toMatchObject({ trades: 1, orders: 3 });
    expect(first.raised).toHaveLength(1);
    const [alert] = first.raised;
    expect(alert).toMatchObject({
      rule: 'wash-trade',
      severity: 'high',
      state: 'OPEN',
      subjects: { owner: 'owner-w', symbol: 'ACME', tradeIds: ['T-WASH'] },
    });

    const again = await surveillance.runOnce();
    expect(again.raised).toEqual([]);
    expect(again.findings).toBeGreaterThanOrEqual(1);
    const listed = await call('GET', '/compliance/alerts?state=OPEN');
    expect(listed.statusCode).toBe(200);
    expect(listed.json<{ alerts: ComplianceAlert[] }>().alerts.map((a) => a.id)).toEqual([
      alert.id,
    ]);

    const outbox: Array<{ type: string }> = await db.query(
      `SELECT payload::jsonb ->> 'type' AS type FROM outbox
        WHERE payload::jsonb -> 'data' ->> 'alertId' = $1`,
      [alert.id],
    );
    expect(outbox).toEqual([{ type: 'ComplianceAlertRaised' }]);
    const audited = await auditedOf('ComplianceAlertRaised', alert.id);
    expect(audited).toHaveLength(1);
    expect(audited[0]).toMatchObject({
      producer: 'compliance',
      payload: { data: { alertId: alert.id, rule: 'wash-trade', owner: 'owner-w' } },
    });
  });

  it('takes an alert from open through review to closed with a note, auditing each step', async () => {
    const { alerts } = (await call('GET', '/compliance/alerts?state=OPEN')).json<{
      alerts: ComplianceAlert[];
    }>();
    const id = alerts[0]!.id;

    const early = await call('POST', `/compliance/alerts/${id}/close`, { note: 'nothing to see' });
    expect(early.statusCode).toBe(409);
    expect(early.json()).toMatchObject({ status: 409, state: 'OPEN' });
    expect(early.json().detail).toContain('OPEN');

    const review = await call('POST', `/compliance/alerts/${id}/review`);
    expect(review.statusCode).toBe(200);
    expect(review.json()).toMatchObject({ state: 'UNDER_REVIEW', reviewer: OFFICER });

    const twice = await call('POST', `/compliance/alerts/${id}/review`);
    expect(twice.statusCode).toBe(409);
    expect(twice.json()).toMatchObject({ state: 'UNDER_REVIEW' });

    for (const body of [
      {},
      { note: '' },
      { note: '   ' },
      { note: 'x'.repeat(2001) },
      { note: 7 },
    ]) {
      const bad = await call('POST', `/compliance/alerts/${id}/close`, body);
      const fields = bad.json().errors.map((e: { field: string }) => e.field);
      expect({ body, status: bad.statusCode, fields }).toEqual({
        body,
        status: 400,
        fields: ['body.note'],
      });
    }
    const extra = await call('POST', `/compliance/alerts/${id}/close`, { note: 'ok', extra: 1 });
    expect(extra.statusCode).toBe(400);
    expect(extra.json().detail).toContain('extra');

    const closed = await call('POST', `/compliance/alerts/${id}/close`, {
      note: 'Both accounts belong to a family trust; reported to the desk head.',
    });
    expect(closed.statusCode).toBe(200);
    expect(closed.json()).toMatchObject({
      state: 'CLOSED',
      reviewer: OFFICER,
      closedBy: OFFICER,
      closeNote: 'Both accounts belong to a family trust; reported to the desk head.',
    });
    expect((await call('GET', `/compliance/alerts/${id}`)).json()).toMatchObject({
      state: 'CLOSED',
    });
    expect(
      (await call('POST', `/compliance/alerts/${id}/close`, { note: 'again' })).statusCode,
    ).toBe(409);

    expect(await auditedOf('ComplianceAlertReviewStarted', id)).toEqual([
      {
        producer: 'compliance',
        payload: expect.objectContaining({ actor: OFFICER, from: 'OPEN', to: 'UNDER_REVIEW' }),
      },
    ]);
    expect(await auditedOf('ComplianceAlertClosed', id)).toEqual([
      {
        producer: 'compliance',
        payload: expect.objectContaining({
          actor: OFFICER,
          from: 'UNDER_REVIEW',
          to: 'CLOSED',
          note: 'Both accounts belong to a family trust; reported to the desk head.',
        }),
      },
    ]);
  });

  it('answers 404 for an unknown alert and 400 naming the field for bad input', async () => {
    const unknown = await call(
      'POST',
      '/compliance/alerts/0190a000-0000-7000-8000-000000000000/review',
    );
    expect(unknown.statusCode).toBe(404);
    const badId = await call('GET', '/compliance/alerts/not-an-id');
    expect(badId.statusCode).toBe(400);
    expect(badId.json().errors[0].field).toBe('path.id');
    const badState = await call('GET', '/compliance/alerts?state=DONE');
    expect(badState.statusCode).toBe(400);
    expect(badState.json().errors[0].field).toBe('query.state');
  });

  it('fails a run when OPA is down, so the next interval retries', async () => {
    const down = new Surveillance(
      db,
      app.get(ComplianceAlerts),
      new CompliancePolicy('http://127.0.0.1:9', 500),
      {
        COMPLIANCE_SURVEILLANCE_INTERVAL_MS: 3_600_000,
        COMPLIANCE_SURVEILLANCE_WINDOW_MINUTES: 60,
      },
      logger,
    );
    await expect(down.runOnce()).rejects.toThrow(/OPA/);
  });
});
