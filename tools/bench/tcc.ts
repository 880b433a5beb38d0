// Global transactions per second for a 3-branch TCC with barriers over the real pipeline:
// coordinator outbox → Kafka → participants (barrier + one row update each) → replies → confirms.
import { ALL_TOPICS, SYSTEM_CATALOG, topicName, TOPICS } from '@finance/contracts';
import { ensureTopics } from '@finance/local-stack';
import {
  createKafka,
  InboxConsumer,
  MessagingTables1763769600000,
  OutboxRelay,
} from '@finance/messaging';
import { createLogger, openDatabase } from '@finance/platform';
import {
  BranchHandlers,
  TccCoordinator,
  TccParticipant,
  TccTables1763942400000,
} from '@finance/tcc';
import { Registry } from 'prom-client';
import type { DataSource } from 'typeorm';
import { provisionBench } from './support';
import { formatSummary, summarize } from './stats';

const SERVICES = ['trading', 'risk', 'settlement'] as const;

// One real row update per phase on an account row, as a funds or quota reservation would do. Each
// participant has its own table, as each service has its own database.
function quota(table: string): BranchHandlers {
  return {
    async try(ctx, payload) {
      await ctx.manager.query(`UPDATE ${table} SET reserved = reserved + 1 WHERE account = $1`, [
        payload.account,
      ]);
    },
    async confirm(ctx, payload) {
      await ctx.manager.query(
        `UPDATE ${table} SET reserved = reserved - 1, used = used + 1 WHERE account = $1`,
        [payload.account],
      );
    },
    async cancel(ctx, payload) {
      await ctx.manager.query(`UPDATE ${table} SET reserved = reserved - 1 WHERE account = $1`, [
        payload.account,
      ]);
    },
    // The one row each phase locks: runs apply their branches in account order.
    lockKey: (payload) => String(payload.account),
  };
}

export async function tccBenchmark(flags: Record<string, string>): Promise<void> {
  const total = Number(flags.transactions ?? 5_000);
  const concurrency = Number(flags.concurrency ?? 300);
  // Fewer accounts means more transactions touching the same rows at once.
  const ACCOUNTS = Number(flags.accounts ?? 1_000);
  // Messages per participant transaction: larger runs commit less often but hold row locks longer.
  const runSize = Number(flags['run-size'] ?? 200);
  // The consumers call the coordinator and participants once per message instead of once per run.
  const perMessage = flags['per-message'] !== undefined;
  process.stdout.write(
    `tcc: ${total.toLocaleString('en-US')} global transactions, 3 branches, ${concurrency} in flight\n`,
  );

  await provisionBench(['coordinator', 'participants'], async ({ urls, kafkaBrokers, prefix }) => {
    const logger = createLogger('bench', process.env.BENCH_LOG_LEVEL ?? 'warn');
    const registry = new Registry();
    const migrations = [MessagingTables1763769600000, TccTables1763942400000];
    const [coordinatorDb, participantDb]: DataSource[] = await Promise.all(
      urls.map((url) =>
        openDatabase({
          url,
          applicationName: 'bench-tcc',
          poolSize: Number(flags.pool ?? 12),
          migrations,
        }),
      ),
    );
    if (flags['async-commit'] !== undefined) {
      // Diagnosis only: shows how much of the cost is waiting for WAL flushes. Not a production setting.
      for (const url of urls) {
        const name = new URL(url).pathname.slice(1);
        await coordinatorDb.query(`ALTER DATABASE "${name}" SET synchronous_commit = off`);
      }
      await Promise.all(
        [coordinatorDb, participantDb].map((db) => db.destroy().then(() => db.initialize())),
      );
      process.stdout.write('synchronous_commit = off (diagnosis)\n');
    }
    const poll = flags['no-notify'] !== undefined;
    if (poll) {
      for (const db of [coordinatorDb, participantDb])
        await db.query('DROP TRIGGER outbox_inserted ON outbox');
      process.stdout.write('outbox NOTIFY trigger dropped: relays poll every 10 ms\n');
    }
    for (const service of SERVICES) {
      await participantDb.query(
        `CREATE TABLE bench_quota_${service} (account int PRIMARY KEY, reserved int NOT NULL DEFAULT 0, used int NOT NULL DEFAULT 0);
         INSERT INTO bench_quota_${service} (account) SELECT generate_series(1, ${ACCOUNTS})`,
      );
    }
    await ensureTopics(
      kafkaBrokers,
      ALL_TOPICS.map((t) => ({ name: topicName(t, prefix), partitions: t.partitions })),
    );
    const kafka = createKafka({ brokers: kafkaBrokers, clientId: 'bench-tcc', logger });

    const coordinator = new TccCoordinator({
      dataSource: coordinatorDb,
      service: 'trading',
      logger,
      topicPrefix: prefix,
      registry,
    });
    const nodes = SERVICES.map(
      (service) =>
        new TccParticipant({
          service,
          resources: { quota: quota(`bench_quota_${service}`) },
          topicPrefix: prefix,
        }),
    );
    const relays = [coordinatorDb, participantDb].map(
      (dataSource) =>
        new OutboxRelay({
          dataSource,
          kafka,
          logger,
          registry,
          batchSize: 2_000,
          ...(poll ? { pollIntervalMs: 10 } : {}),
        }),
    );
    const consumers = [
      new InboxConsumer({
        name: `${prefix}coordinator`,
        kafka,
        dataSource: coordinatorDb,
        logger,
        topics: [topicName(TOPICS.tccReplies, prefix)],
        catalog: SYSTEM_CATALOG,
        partitionsConsumedConcurrently: 10,
        handle: (message, ctx) => coordinator.onReply(message, ctx.manager),
        ...(perMessage
          ? {}
          : { handleRun: (entries) => coordinator.onReplies(entries, entries[0].ctx.manager) }),
      }),
      new InboxConsumer({
        name: `${prefix}participants`,
        kafka,
        dataSource: participantDb,
        logger,
        topics: [topicName(TOPICS.tccCommands, prefix)],
        catalog: SYSTEM_CATALOG,
        maxTransactionSize: runSize,
        partitionsConsumedConcurrently: 10,
        handle: async (message, ctx) => {
          for (const node of nodes) await node.handle(message, ctx.manager);
        },
        ...(perMessage
          ? {}
          : {
              handleRun: async (entries) => {
                for (const node of nodes) await node.handleRun(entries, entries[0].ctx.manager);
              },
            }),
      }),
    ];
    await coordinator.start();
    relays.forEach((r) => r.start());
    await Promise.all(consumers.map((c) => c.start()));

    try {
      // Warm up: new topics elect leaders and consumers join before anything is measured.
      for (let w = 0; w < 20; w++) {
        const gtid = await coordinator.begin({
          kind: 'warm-up',
          timeoutMs: 60_000,
          correlationId: `warm-up-${w}`,
          branches: (['trading', 'risk', 'settlement'] as const).map((participant) => ({
            branchId: participant,
            participant,
            resource: 'quota',
            payload: { account: 1 },
          })),
        });
        await coordinator.awaitOutcome(gtid, 60_000);
      }
      const resentBefore =
        (await registry.getSingleMetric('tcc_commands_resent_total')!.get()).values[0]?.value ?? 0;
      let next = 0;
      let confirmed = 0;
      const latencies: number[] = [];
      const started = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < total) {
            const n = next++;
            const t0 = performance.now();
            const gtid = await coordinator.begin({
              kind: 'bench',
              timeoutMs: 60_000,
              correlationId: `bench-${n}`,
              branches: (['trading', 'risk', 'settlement'] as const).map((participant) => ({
                branchId: participant,
                participant,
                resource: 'quota',
                payload: { account: 1 + ((n * 7 + participant.length) % ACCOUNTS) },
              })),
            });
            const outcome = await coordinator.awaitOutcome(gtid, 120_000);
            if (outcome.state === 'CONFIRMED') confirmed++;
            latencies.push(performance.now() - t0);
          }
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      process.stdout.write(
        `${formatSummary('3-branch TCC, begin → CONFIRMED', summarize(total, seconds, latencies)).replace('events/s', 'tx/s')}\n`,
      );
      const [{ reserved, used }] = await participantDb.query(
        `SELECT sum(reserved)::int AS reserved, sum(used)::int AS used
           FROM (${SERVICES.map((s) => `SELECT reserved, used FROM bench_quota_${s}`).join(' UNION ALL ')}) q`,
      );
      const resent =
        ((await registry.getSingleMetric('tcc_commands_resent_total')!.get()).values[0]?.value ??
          0) - resentBefore;
      process.stdout.write(
        `confirmed ${confirmed}/${total}; quota used ${used} (expected ${confirmed * 3 + 20 * 3} with the warm-up), ` +
          `still reserved ${reserved}; commands re-sent ${resent}\n`,
      );
    } finally {
      await Promise.all(consumers.map((c) => c.stop()));
      await Promise.all(relays.map((r) => r.stop()));
      await coordinator.stop();
      await Promise.all([coordinatorDb.destroy(), participantDb.destroy()]);
    }
  });
}
