// TCC over the real Kafka with the coordinator and the participants in their own processes, killed
// at the worst moments; and an operator finishing a transaction that got stuck.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ALL_TOPICS, topicName, TOPICS } from '@finance/contracts';
import { ensureTopics } from '@finance/local-stack';
import { createLogger, openDatabase } from '@finance/platform';
import { createTestDatabase, launchNodeScript, ScriptProcess, testStack } from '@finance/testing';
import { NestFactory } from '@nestjs/core';
import { Kafka, logLevel } from 'kafkajs';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { Registry } from 'prom-client';
import type { DataSource } from 'typeorm';
import { reservations, TEST_MIGRATIONS } from '../test/chaos-bus';
import { TccAdminModule } from './admin/tcc-admin';
import { BranchSpec, TccCoordinator, TccCoordinatorOptions } from './coordinator/coordinator';

const NODE = 'libs/tcc/test/tcc-node.ts';
const BRANCHES: BranchSpec[] = [
  { branchId: 'funds', participant: 'trading', resource: 'quota', payload: {} },
  { branchId: 'risk', participant: 'risk', resource: 'quota', payload: {} },
  { branchId: 'clearing', participant: 'settlement', resource: 'quota', payload: {} },
];

describe('TCC across processes and Kafka', () => {
  let run = 0;
  let coordinatorDb: DataSource;
  let participantDb: DataSource;
  let coordinatorUrl: string;
  let participantUrl: string;
  let prefix: string;
  let coordinator: TccCoordinator; // the test's handle on the coordinator's tables (begin, outcome)
  const nodes: ScriptProcess[] = [];

  beforeEach(async () => {
    const stack = testStack();
    prefix = `${stack.topicPrefix}tcc${run++}.`;
    await ensureTopics(
      stack.kafkaBrokers,
      // Every topic, as the stack provisions them: the relay stops at a row whose topic is missing.
      ALL_TOPICS.map((t) => ({ name: topicName(t, prefix), partitions: 3 })),
    );
    ({ url: coordinatorUrl } = await createTestDatabase('tcc_coordinator'));
    ({ url: participantUrl } = await createTestDatabase('tcc_participants'));
    const open = (url: string) =>
      openDatabase({ url, applicationName: 'tcc-test', poolSize: 4, migrations: TEST_MIGRATIONS });
    [coordinatorDb, participantDb] = await Promise.all([
      open(coordinatorUrl),
      open(participantUrl),
    ]);
    coordinator = testCoordinator();
  });

  // The test's own coordinator on the coordinator's tables; it never ticks, the node's does.
  const testCoordinator = (options: Partial<TccCoordinatorOptions> = {}) =>
    new TccCoordinator({
      dataSource: coordinatorDb,
      service: 'trading',
      logger: createLogger('tcc-test', 'silent'),
      topicPrefix: prefix,
      registry: new Registry(),
      retryInitialMs: 600_000,
      ...options,
    });

  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.stop('SIGTERM')));
    await Promise.all([coordinatorDb?.destroy(), participantDb?.destroy()]);
  });

  async function node(role: 'coordinator' | 'participants', extra: Record<string, string> = {}) {
    const process = launchNodeScript(NODE, {
      env: {
        ROLE: role,
        DATABASE_URL: role === 'coordinator' ? coordinatorUrl : participantUrl,
        KAFKA_BROKERS: testStack().kafkaBrokers.join(','),
        TOPIC_PREFIX: prefix,
        GROUP: `${prefix}${role}`,
        ...extra,
      },
    });
    nodes.push(process);
    const deadline = Date.now() + 60_000;
    while (
      !process.output().includes('ready') &&
      process.child.exitCode === null &&
      Date.now() < deadline
    ) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return process;
  }

  const marker = () => join(mkdtempSync(join(tmpdir(), 'tcc-kill-')), 'killed');
  const begin = (timeoutMs = 60_000) =>
    coordinator.begin({
      kind: 'place-order',
      branches: BRANCHES,
      timeoutMs,
      correlationId: 'order-x',
    });

  async function expectConfirmedOnce(gtid: string) {
    expect(await coordinator.awaitOutcome(gtid, 60_000)).toEqual({ state: 'CONFIRMED', gtid });
    const rows = await reservations(participantDb, gtid);
    expect(rows.map((r) => [r.branch_id, r.status, r.tries, r.confirms, r.cancels])).toEqual([
      ['clearing', 'CONFIRMED', 1, 1, 0],
      ['funds', 'CONFIRMED', 1, 1, 0],
      ['risk', 'CONFIRMED', 1, 1, 0],
    ]);
  }

  it('finishes when the coordinator is SIGKILLed between "all tried" and "confirm sent"', async () => {
    await node('participants');
    const first = await node('coordinator', { KILL_WHEN: 'confirming', MARKER_FILE: marker() });
    const gtid = await begin();
    expect((await first.exited).signal).toBe('SIGKILL');
    // The decision was durable before anything went out.
    expect(await coordinator.outcome(gtid)).toEqual({
      state: 'PENDING',
      gtid,
      current: 'CONFIRMING',
    });
    await node('coordinator');
    await expectConfirmedOnce(gtid);
  });

  it('finishes when a participant is SIGKILLed inside its Try', async () => {
    await node('coordinator');
    const first = await node('participants', { KILL_WHEN: 'try:risk', MARKER_FILE: marker() });
    const gtid = await begin();
    expect((await first.exited).signal).toBe('SIGKILL');
    await node('participants');
    await expectConfirmedOnce(gtid);
  });

  it('finishes batched transactions with the participants SIGKILLed inside a Try and the coordinator before its confirms', async () => {
    const batching = testCoordinator({ batchCommands: true });
    const participants = await node('participants', {
      KILL_WHEN: 'try:risk',
      MARKER_FILE: marker(),
    });
    const first = await node('coordinator', {
      BATCH_COMMANDS: '1',
      KILL_WHEN: 'confirming',
      MARKER_FILE: marker(),
    });
    // Begun in one turn of the event loop: one group, with one Try batch per participant.
    const gtids = await Promise.all(
      Array.from({ length: 6 }, () =>
        batching.begin({
          kind: 'place-order',
          branches: BRANCHES,
          timeoutMs: 60_000,
          correlationId: 'order-x',
        }),
      ),
    );
    expect((await participants.exited).signal).toBe('SIGKILL');
    await node('participants');
    expect((await first.exited).signal).toBe('SIGKILL');
    await node('coordinator', { BATCH_COMMANDS: '1' });
    for (const gtid of gtids) await expectConfirmedOnce(gtid);
    const [{ batches }] = await coordinatorDb.query(
      `SELECT count(*)::int AS batches FROM outbox WHERE payload->>'type' = 'TccCommandBatch'`,
    );
    expect(batches).toBeGreaterThanOrEqual(3);
  });

  it('lets an operator see a transaction stuck on a participant that is down, and retry it to the end', async () => {
    await node('coordinator', { RETRY_INITIAL_MS: '600000' }); // no automatic resend during the test
    const gtid = await begin(600_000);
    const app = await NestFactory.create<NestFastifyApplication>(
      TccAdminModule.register({ basePath: 'trading/admin/tcc', coordinator }),
      new FastifyAdapter(),
      { logger: false },
    );
    await app.init();
    const http = app.getHttpAdapter().getInstance();
    try {
      // Wait until the Tries have left the outbox: they are now on Kafka with nobody to read them.
      const until = Date.now() + 30_000;
      while (Date.now() < until) {
        const [{ n }] = await coordinatorDb.query(
          'SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL',
        );
        if (n === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const listed = await http.inject({
        method: 'GET',
        url: '/trading/admin/tcc/transactions?state=TRYING',
      });
      expect(listed.statusCode).toBe(200);
      const stuck = listed.json().transactions.find((t: { gtid: string }) => t.gtid === gtid);
      expect(stuck).toMatchObject({
        state: 'TRYING',
        branches: expect.arrayContaining([expect.objectContaining({ tryStatus: 'PENDING' })]),
      });

      const bad = await http.inject({
        method: 'GET',
        url: '/trading/admin/tcc/transactions?olderThanSeconds=-1',
      });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().errors[0].field).toBe('query.olderThanSeconds');

      // The original Tries are gone (as if retention had expired) when the participant comes back.
      const admin = new Kafka({
        brokers: testStack().kafkaBrokers,
        logLevel: logLevel.NOTHING,
      }).admin();
      await admin.connect();
      const commands = topicName(TOPICS.tccCommands, prefix);
      const offsets = await admin.fetchTopicOffsets(commands);
      await admin.deleteTopicRecords({
        topic: commands,
        partitions: offsets.map((o) => ({ partition: o.partition, offset: o.high })),
      });
      await admin.disconnect();
      await node('participants');
      expect((await coordinator.outcome(gtid)).state).toBe('PENDING');
      const retried = await http.inject({
        method: 'POST',
        url: `/trading/admin/tcc/transactions/${gtid}/retry`,
        payload: { note: 'risk was down' },
      });
      expect(retried.statusCode).toBe(200);
      await expectConfirmedOnce(gtid);

      const detail = await http.inject({
        method: 'GET',
        url: `/trading/admin/tcc/transactions/${gtid}`,
      });
      expect(detail.json().history.map((h: { kind: string }) => h.kind)).toEqual(
        expect.arrayContaining(['BEGIN', 'OPERATOR', 'RESENT', 'REPLY', 'STATE']),
      );
      const [{ n: actions }] = await coordinatorDb.query(
        `SELECT count(*)::int AS n FROM outbox WHERE payload->>'type' = 'OperatorActionRecorded'
            AND payload->'data'->>'action' = 'retry' AND payload->'data'->'target'->>'id' = $1`,
        [gtid],
      );
      expect(actions).toBe(1);
      const missing = await http.inject({
        method: 'POST',
        url: '/trading/admin/tcc/transactions/nope/cancel',
      });
      expect(missing.statusCode).toBe(404);
      const done = await http.inject({
        method: 'POST',
        url: `/trading/admin/tcc/transactions/${gtid}/cancel`,
      });
      expect(done.statusCode).toBe(409);
    } finally {
      await app.close();
    }
  });
});
