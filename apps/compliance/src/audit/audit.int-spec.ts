// The compliance audit log in process (Nest on Fastify, real PostgreSQL and Kafka): every consumed
// event recorded once, checkpoints signed and published, and what the API serves checked by the
// auditors' CLI, which names the entry a superuser changed behind the service's back.
import { AuditLogStore } from '@finance/audit-log';
import {
  ALL_MESSAGES,
  AuthorizationDenied,
  Envelope,
  RiskLimitChanged,
  SYSTEM_CATALOG,
  topicName,
} from '@finance/contracts';
import { publicKeyFromPem, verifyCheckpoint } from '@finance/merkle';
import {
  createEnvelope,
  createKafka,
  HandledInfo,
  InboxKafkaServer,
  kafkaHeaders,
  routeMessage,
} from '@finance/messaging';
import {
  createLogger,
  openDatabase,
  ProblemDetailsFilter,
  SERVICE_CONFIG,
  SERVICE_LOGGER,
} from '@finance/platform';
import {
  createTestDatabase,
  privateTopicPrefix,
  produceRecords,
  repoRoot,
  testStack,
  waitFor,
} from '@finance/testing';
import { DynamicModule, Global, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { auditVerify } from '../cli/audit-verify';
import { complianceService } from '../service';
import { AuditLogModule } from './audit-log.module';

/** `npm run audit-verify -- <args>`, as its own process. */
function runCommand(...args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['-r', '@swc-node/register', 'apps/compliance/src/cli/audit-verify.ts', ...args],
      {
        cwd: repoRoot(),
        env: { ...process.env, SWC_NODE_PROJECT: join(repoRoot(), 'tsconfig.json') },
      },
      (error, stdout) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout }),
    );
  });
}

const AUDITOR = 'spiffe://cluster.local/ns/finance/sa/auditor';
const logger = createLogger('compliance-audit-test', process.env.TEST_LOG_LEVEL ?? 'silent');

@Global()
@Module({})
class TestRoot {
  static register(db: DataSource, config: Record<string, unknown>): DynamicModule {
    return {
      module: TestRoot,
      imports: [AuditLogModule],
      providers: [
        { provide: DataSource, useValue: db },
        { provide: SERVICE_CONFIG, useValue: config },
        { provide: SERVICE_LOGGER, useValue: logger },
      ],
      exports: [DataSource, SERVICE_CONFIG, SERVICE_LOGGER],
    };
  }
}

describe('compliance audit log', () => {
  const stack = testStack();
  const origin = 'test/compliance-audit';
  let db: DataSource;
  let url: string;
  let app: NestFastifyApplication;
  let kafka: Kafka;
  let server: InboxKafkaServer;
  let dir: string;
  const handled: HandledInfo[] = [];
  // Topics of its own: the log must grow only by what this test sends, whatever other files do.
  let prefix = '';
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');

  beforeAll(async () => {
    prefix = await privateTopicPrefix(`audit-${Date.now().toString(36)}`);
    dir = await mkdtemp(join(tmpdir(), 'audit-int-'));
    const keyFile = join(dir, 'signing.pem');
    await writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), {
      mode: 0o600,
    });
    ({ url } = await createTestDatabase('compliance_audit'));
    db = await openDatabase({
      url,
      applicationName: 'compliance-audit-test',
      poolSize: 8,
      migrations: complianceService.migrations,
    });
    const config = {
      AUDIT_SIGNING_KEY_FILE: keyFile,
      AUDIT_CHECKPOINT_INTERVAL_MS: 300,
      AUDIT_LOG_ORIGIN: origin,
      KAFKA_TOPIC_PREFIX: prefix,
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
        (request as { principal?: string }).principal = AUDITOR;
      });
    kafka = createKafka({ brokers: stack.kafkaBrokers, clientId: 'compliance-audit', logger });
    server = new InboxKafkaServer({
      name: `${prefix}compliance-audit-${Date.now().toString(36)}`,
      kafka,
      dataSource: db,
      logger,
      topicPrefix: prefix,
    });
    server.on('handled', (info) => handled.push(info));
    app.connectMicroservice({ strategy: server }, { inheritAppConfig: true });
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
    await app.startAllMicroservices();
  });
  afterAll(async () => {
    await app?.close();
    await db?.destroy();
  });

  const call = (method: 'GET' | 'POST', path: string) =>
    app
      .getHttpAdapter()
      .getInstance()
      .inject({ method, url: path, headers: { 'x-request-id': 'req-7' } });

  async function get<T>(path: string): Promise<T> {
    const response = await call('GET', path);
    expect(response.statusCode).toBe(200);
    return response.json<T>();
  }

  async function publish(envelopes: Envelope[]): Promise<void> {
    for (const envelope of envelopes) {
      const { topic, key } = routeMessage(SYSTEM_CATALOG, envelope, prefix);
      await produceRecords(kafka, topic, [
        { key, value: JSON.stringify(envelope), headers: kafkaHeaders(envelope) },
      ]);
    }
  }

  const limitChanged = (accountId: string, sequence: number) =>
    createEnvelope(
      RiskLimitChanged,
      {
        scope: 'ACCOUNT',
        accountId,
        limit: 'risk-quota:USD',
        value: '100.00',
        changedBy: 'officer',
      },
      {
        producer: 'risk',
        aggregateId: accountId,
        aggregateSequence: sequence,
        correlationId: 'c-1',
      },
    );

  async function entriesOf(eventId: string) {
    const rows: Array<{ leaf_index: string; source: string; type: string; payload: string }> =
      await db.query(
        'SELECT leaf_index, source, type, payload FROM audit_entries WHERE event_id = $1',
        [eventId],
      );
    return rows;
  }

  it('consumes every topic of the system: one handler for each message type', () => {
    const topics = new Set(ALL_MESSAGES.map((m) => topicName(m.topic, prefix)));
    expect(new Set(server.subscribedTopics())).toEqual(topics);
    expect(topics.size).toBeGreaterThanOrEqual(9);
  });

  it('records each consumed event exactly once, even when Kafka delivers it again', async () => {
    const limit = limitChanged('ACC-AUDIT', 1);
    const denied = createEnvelope(
      AuthorizationDenied,
      {
        service: 'trading',
        principal: 'spiffe://cluster.local/ns/finance/sa/auditor',
        method: 'POST',
        path: '/trading/orders',
        reason: 'denied by policy',
        status: 403,
      },
      { producer: 'trading', aggregateId: 'trading', aggregateSequence: 1, correlationId: 'r-1' },
    );
    await publish([limit, denied, limit]);
    await waitFor(
      'both copies of the limit event handled',
      async () => handled.filter((h) => h.eventId === limit.metadata.eventId).map((h) => h.outcome),
      (outcomes) => outcomes.length === 2,
    );
    // The same event again later, now that the first copy is long committed.
    await publish([limit]);
    await waitFor(
      'the third copy handled',
      async () => handled.filter((h) => h.eventId === limit.metadata.eventId).length,
      (n) => n === 3,
    );
    const rows = await entriesOf(limit.metadata.eventId);
    expect(rows).toHaveLength(1);
    expect(rows[0].source).toMatch(
      new RegExp(`^${prefix.replace(/\./g, '\\.')}risk\\.events/\\d+/\\d+$`),
    );
    expect(JSON.parse(rows[0].payload)).toEqual(JSON.parse(JSON.stringify(limit)));
    const deniedRows = await entriesOf(denied.metadata.eventId);
    expect(deniedRows).toMatchObject([{ type: 'AuthorizationDenied' }]);
    expect(deniedRows[0].source).toContain('operations.events/');
  });

  it('signs a checkpoint once the log has grown, stores it and publishes AuditCheckpointSigned', async () => {
    const store = app.get(AuditLogStore);
    const { treeSize } = await store.head();
    const checkpoint = await waitFor(
      'a checkpoint of the grown log',
      () => store.latestCheckpoint(),
      (c) => c !== null && c.treeSize >= treeSize,
    );
    expect(verifyCheckpoint(checkpoint!, publicKey)).toEqual({ valid: true });
    const events: Array<{ topic: string; payload: unknown }> = await db.query(
      `SELECT topic, payload FROM outbox WHERE payload->>'type' = 'AuditCheckpointSigned'
        AND (payload->'data'->>'treeSize')::bigint = $1`,
      [checkpoint!.treeSize],
    );
    expect(events).toHaveLength(1);
    expect(events[0].topic).toBe(`${prefix}compliance.events`);
    const decoded = SYSTEM_CATALOG.decode(events[0].payload);
    expect(decoded.status).toBe('ok');
    if (decoded.status !== 'ok') return;
    expect(decoded.message.data).toEqual({
      treeSize: checkpoint!.treeSize,
      rootHash: checkpoint!.rootHash,
      signature: checkpoint!.signature,
      keyId: checkpoint!.keyId,
      timestamp: checkpoint!.timestamp,
      origin,
    });
    // With the log unchanged, the next ticks sign nothing new.
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect((await store.latestCheckpoint())!.treeSize).toBe(checkpoint!.treeSize);
  });

  it('signs on demand after recording who asked', async () => {
    const response = await call('POST', '/compliance/audit/checkpoints');
    expect(response.statusCode).toBe(201);
    const checkpoint = response.json<{ treeSize: number; origin: string; keyId: string }>();
    const store = app.get(AuditLogStore);
    expect(checkpoint.treeSize).toBeGreaterThanOrEqual((await store.head()).treeSize - 1);
    const [request] = await store.entries(checkpoint.treeSize - 1, checkpoint.treeSize);
    expect(request.record).toMatchObject({
      type: 'AuditCheckpointRequested',
      source: 'local',
      producer: 'compliance',
      correlationId: 'req-7',
    });
    expect(JSON.parse(request.payloadText)).toEqual({
      type: 'AuditCheckpointRequested',
      actor: AUDITOR,
    });
    expect(await get(`/compliance/audit/checkpoints/${checkpoint.treeSize}`)).toEqual(checkpoint);
    expect(await get('/compliance/audit/public-key')).toEqual({
      keyId: checkpoint.keyId,
      algorithm: 'Ed25519',
      publicKey: expect.stringContaining('BEGIN PUBLIC KEY'),
      current: true,
    });
  });

  it('serves proofs and exports that the CLI verifies, and the CLI names an entry changed in the database', async () => {
    await publish([limitChanged('ACC-CLI', 1), limitChanged('ACC-CLI', 2)]);
    const older = (await call('POST', '/compliance/audit/checkpoints')).json<{
      treeSize: number;
    }>();
    await publish([limitChanged('ACC-CLI', 3)]);
    const eventsIn = await waitFor(
      'the third ACC-CLI event',
      async () =>
        (await db.query(
          `SELECT count(*)::int AS n FROM audit_entries WHERE aggregate_id = 'ACC-CLI'`,
        )) as Array<{ n: number }>,
      ([row]) => row.n === 3,
    );
    expect(eventsIn[0].n).toBe(3);
    const latest = (await call('POST', '/compliance/audit/checkpoints')).json<{
      treeSize: number;
    }>();
    const size = latest.treeSize;

    const save = async (name: string, body: string) => {
      await writeFile(join(dir, name), body);
      return join(dir, name);
    };
    const checkpointFile = await save(
      'cp.json',
      (await call('GET', '/compliance/audit/checkpoints/latest')).body,
    );
    const olderFile = await save(
      'older.json',
      (await call('GET', `/compliance/audit/checkpoints/${older.treeSize}`)).body,
    );
    const key = await get<{ publicKey: string }>('/compliance/audit/public-key');
    const keyFile = await save('key.pem', key.publicKey);
    expect(publicKeyFromPem(key.publicKey).equals(publicKey)).toBe(true);
    const exported = await call('GET', `/compliance/audit/entries?checkpoint=${size}`);
    expect(exported.statusCode).toBe(200);
    expect(exported.headers['content-type']).toBe('application/x-ndjson; charset=utf-8');
    expect(exported.body.trimEnd().split('\n')).toHaveLength(size + 1);
    const exportFile = await save('export.jsonl', exported.body);
    const inclusionFile = await save(
      'inclusion.json',
      (
        await call(
          'GET',
          `/compliance/audit/proof/inclusion?entry=${older.treeSize - 1}&checkpoint=${size}`,
        )
      ).body,
    );
    const consistencyFile = await save(
      'consistency.json',
      (await call('GET', `/compliance/audit/proof/consistency?from=${older.treeSize}&to=${size}`))
        .body,
    );
    const partial = await save(
      'partial.jsonl',
      (
        await call(
          'GET',
          `/compliance/audit/entries?from=1&to=${older.treeSize}&checkpoint=${size}`,
        )
      ).body,
    );

    const run = async (...argv: string[]) => {
      const lines: string[] = [];
      const code = await auditVerify(argv, (line) => lines.push(line));
      return { code, lines };
    };
    const all = [
      exportFile,
      '--checkpoint',
      checkpointFile,
      '--public-key',
      keyFile,
      '--previous',
      olderFile,
      '--inclusion',
      inclusionFile,
      '--consistency',
      consistencyFile,
    ];
    const verified = await run(...all);
    expect(verified.lines.filter((l) => !l.startsWith('✓'))).toEqual([
      `VERIFIED: the log of ${size} entries matches the signed checkpoint`,
    ]);
    expect(verified.code).toBe(0);
    expect(verified.lines).toEqual(
      expect.arrayContaining([
        `✓ inclusion of entry ${older.treeSize - 1} in the log of size ${size}: verified`,
        `✓ consistency proof from size ${older.treeSize} to ${size}: the log of size ${size} extends the one you saved at ${older.treeSize}`,
        `✓ the root of the first ${older.treeSize} entries matches the signed checkpoint`,
      ]),
    );
    expect((await run(partial, '--checkpoint', checkpointFile, '--public-key', keyFile)).code).toBe(
      0,
    );

    // A superuser changes an entry behind the service's back; the next export gives it away.
    const victim = 2;
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      await client.query('SET session_replication_role = replica');
      await client.query(
        `UPDATE audit_entries SET correlation_id = 'rewritten' WHERE leaf_index = $1`,
        [victim],
      );
    } finally {
      await client.end();
    }
    const tamperedFile = await save(
      'tampered.jsonl',
      (await call('GET', `/compliance/audit/entries?checkpoint=${size}`)).body,
    );
    // The real command, as an auditor runs it.
    const cli = await runCommand(
      tamperedFile,
      '--checkpoint',
      checkpointFile,
      '--public-key',
      keyFile,
    );
    expect(cli.code).toBe(1);
    expect(cli.stdout).toContain(
      `✗ entry ${victim}: its content does not match its recorded leaf hash`,
    );
    expect(cli.stdout.trimEnd().split('\n').at(-1)).toBe(
      `TAMPERED: the first bad entry is ${victim}`,
    );
    // Checked against the older checkpoint alone, it is the same entry.
    const stale = await run(tamperedFile, '--checkpoint', olderFile, '--public-key', keyFile);
    expect(stale).toMatchObject({
      code: 1,
      lines: expect.arrayContaining([`TAMPERED: the first bad entry is ${victim}`]),
    });
  });

  it('answers 400 naming the parameter, and 404 for what does not exist', async () => {
    const problem = async (path: string, status: number) => {
      const response = await call('GET', path);
      expect(response.statusCode).toBe(status);
      expect(response.headers['content-type']).toContain('application/problem+json');
      return response.json<{ errors: Array<{ field: string; message: string }> }>().errors;
    };
    const { treeSize } = await app.get(AuditLogStore).head();
    expect(await problem('/compliance/audit/checkpoints/abc', 400)).toEqual([
      { field: 'size', message: 'must be a whole number from 0' },
    ]);
    expect(await problem('/compliance/audit/checkpoints/1.5', 400)).toMatchObject([
      { field: 'size' },
    ]);
    expect(await problem('/compliance/audit/checkpoints/999999', 404)).toEqual([
      { field: 'size', message: 'no signed checkpoint of size 999999' },
    ]);
    expect(await problem('/compliance/audit/proof/inclusion', 400)).toMatchObject([
      { field: 'query.entry' },
    ]);
    expect(await problem('/compliance/audit/proof/inclusion?entry=-1', 400)).toMatchObject([
      { field: 'query.entry' },
    ]);
    expect(
      await problem('/compliance/audit/proof/inclusion?entry=0&checkpoint=999999', 404),
    ).toEqual([{ field: 'query.checkpoint', message: 'no signed checkpoint of size 999999' }]);
    const latest = await get<{ treeSize: number }>('/compliance/audit/checkpoints/latest');
    expect(
      await problem(`/compliance/audit/proof/inclusion?entry=${latest.treeSize}`, 404),
    ).toEqual([
      {
        field: 'query.entry',
        message: `entry ${latest.treeSize} is not in the log of size ${latest.treeSize}`,
      },
    ]);
    expect(await problem('/compliance/audit/proof/consistency?from=5&to=3', 400)).toEqual([
      { field: 'query.from', message: 'must not be greater than to' },
    ]);
    expect(
      await problem(`/compliance/audit/proof/consistency?from=${latest.treeSize + 1}`, 400),
    ).toMatchObject([{ field: 'query.from' }]);
    expect(await problem(`/compliance/audit/entries?to=${treeSize + 1000}`, 400)).toEqual([
      { field: 'query.to', message: expect.stringMatching(/^the log has \d+ entries$/) },
    ]);
    expect(await problem('/compliance/audit/entries?from=2&to=1', 400)).toMatchObject([
      { field: 'query.from' },
    ]);
    expect(await problem('/compliance/audit/entries?limit=5', 400)).toMatchObject([
      { field: 'query' },
    ]);
    expect(await problem('/compliance/audit/public-key?keyId=0123456789abcdef', 404)).toEqual([
      { field: 'query.keyId', message: 'no signing key 0123456789abcdef' },
    ]);
  });
});
