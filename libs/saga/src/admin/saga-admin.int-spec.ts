// The saga operator API over HTTP: listing, inspecting, retrying, resolving, and clear 4xx answers.
import { createLogger, openDatabase, ProblemDetailsFilter } from '@finance/platform';
import { MessagingTables1763769600000 } from '@finance/messaging';
import { createTestDatabase } from '@finance/testing';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import type { DataSource } from 'typeorm';
import { postTrade } from '../../test/post-trade';
import { SagaTables1764028800000 } from '../migrations/saga-tables';
import { SagaDeferredAnswers1765238400000 } from '../migrations/saga-deferred-answers';
import { SagaOrchestrator } from '../orchestrator/saga-orchestrator';
import { SagaAdminModule } from './saga-admin';

describe('saga operator API', () => {
  let db: DataSource;
  let app: NestFastifyApplication;
  let orchestrator: SagaOrchestrator;

  beforeAll(async () => {
    const { url } = await createTestDatabase('saga_admin');
    db = await openDatabase({
      url,
      applicationName: 'saga-admin-test',
      poolSize: 4,
      migrations: [
        MessagingTables1763769600000,
        SagaTables1764028800000,
        SagaDeferredAnswers1765238400000,
      ],
    });
    orchestrator = new SagaOrchestrator({
      dataSource: db,
      service: 'trading',
      definitions: [postTrade],
      logger: createLogger('saga-admin-test', 'silent'),
    });
    app = await NestFactory.create<NestFastifyApplication>(
      SagaAdminModule.register({ basePath: 'trading/admin/saga', orchestrator }),
      new FastifyAdapter(),
      { logger: false },
    );
    // As in a service: errors leave as problem details.
    app.useGlobalFilters(new ProblemDetailsFilter(createLogger('saga-admin-test', 'silent')));
    await app.init();
  });
  afterAll(async () => {
    await app?.close();
    await db?.destroy();
  });

  const http = () => app.getHttpAdapter().getInstance();

  it('lists and shows a running saga, retries it as an audited action, and refuses what its state forbids', async () => {
    const { sagaId } = await orchestrator.start(
      'post-trade',
      { orderId: 'o-1' },
      { correlationId: 'o-1' },
    );

    const listed = await http().inject({
      method: 'GET',
      url: '/trading/admin/saga/sagas?state=RUNNING',
    });
    expect(listed.statusCode).toBe(200);
    expect(listed.json().sagas.map((s: { sagaId: string }) => s.sagaId)).toContain(sagaId);

    const shown = await http().inject({
      method: 'GET',
      url: `/trading/admin/saga/sagas/${sagaId}`,
    });
    expect(shown.statusCode).toBe(200);
    expect(shown.json()).toMatchObject({ sagaId });

    const retried = await http().inject({
      method: 'POST',
      url: `/trading/admin/saga/sagas/${sagaId}/retry`,
      payload: {},
    });
    expect(retried.statusCode).toBe(200);
    const [{ n }] = await db.query(
      `SELECT count(*)::int AS n FROM outbox WHERE payload->>'type' = 'OperatorActionRecorded'
          AND payload->'data'->'target'->>'id' = $1`,
      [sagaId],
    );
    expect(n).toBe(1);

    const resolveRunning = await http().inject({
      method: 'POST',
      url: `/trading/admin/saga/sagas/${sagaId}/resolve`,
      payload: { note: 'nothing to resolve' },
    });
    expect(resolveRunning.statusCode).toBe(409);
    expect(resolveRunning.headers['content-type']).toContain('application/problem+json');
  });

  it('answers 400 naming the field, and 404 for an unknown saga', async () => {
    const badState = await http().inject({
      method: 'GET',
      url: '/trading/admin/saga/sagas?state=STUCK',
    });
    expect(badState.statusCode).toBe(400);
    expect(badState.json().errors[0].field).toBe('query.state');
    const noNote = await http().inject({
      method: 'POST',
      url: '/trading/admin/saga/sagas/x/resolve',
      payload: {},
    });
    expect(noNote.statusCode).toBe(400);
    expect(noNote.json().errors[0].field).toBe('body.note');
    expect(
      (await http().inject({ method: 'GET', url: '/trading/admin/saga/sagas/nope' })).statusCode,
    ).toBe(404);
    const retryMissing = await http().inject({
      method: 'POST',
      url: '/trading/admin/saga/sagas/nope/retry',
    });
    expect(retryMissing.statusCode).toBe(404);
  });
});
