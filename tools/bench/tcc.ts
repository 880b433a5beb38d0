// Global transactions per second for a 3-branch TCC with barriers over the real pipeline:
// coordinator outbox → Kafka → participants (barrier + one row update each) → replies → confirms.
// As in a deployment, the participants run in a process of their own (`--one-process` keeps them
// in the coordinator's), with their own database, relay and consumer group.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ALL_TOPICS, SYSTEM_CATALOG, topicName, TOPICS } from '@finance/contracts';
import { ensureTopics } from '@finance/local-stack';
import {
  createKafka,
  InboxConsumer,
  MessagingTables1763769600000,
  OutboxRelay,
} from '@finance/messaging';
import { createLogger, Logger, openDatabase } from '@finance/platform';
import { repoRoot } from '@finance/testing';
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
function quota(table: string, perBranch: boolean): BranchHandlers {
  const handlers: BranchHandlers = {
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
    // A whole run in one statement: the accounts' rows are locked in account order first (the
    // count makes the planner lock them all before it updates any), then each gets its net change.
    async applyMany(manager, effects) {
      await manager.query(
        `WITH e AS (
           SELECT account, sum(CASE phase WHEN 'TRY' THEN 1 ELSE -1 END)::int AS reserve,
                  count(*) FILTER (WHERE phase = 'CONFIRM')::int AS use
             FROM unnest($1::int[], $2::text[]) AS e(account, phase) GROUP BY account),
         locked AS MATERIALIZED (
           SELECT q.account FROM ${table} q JOIN e USING (account) ORDER BY q.account FOR UPDATE OF q)
         UPDATE ${table} q SET reserved = q.reserved + e.reserve, used = q.used + e.use
           FROM e WHERE q.account = e.account AND (SELECT count(*) FROM locked) >= 0`,
        [effects.map((e) => Number(e.payload.account)), effects.map((e) => e.phase)],
      );
    },
  };
  if (perBranch) delete handlers.applyMany;
  return handlers;
}

/** How the participants' side runs; the same in this process or in a child. */
export interface ParticipantsConfig {
  url: string;
  kafkaBrokers: string[];
  prefix: string;
  pool: number;
  runSize: number;
  perMessage: boolean;
  perBranch: boolean;
  poll: boolean;
}

const MIGRATIONS = [MessagingTables1763769600000, TccTables1763942400000];

/** The three participants behind one consumer of `tcc.commands`, with their relay. */
export async function startParticipants(
  config: ParticipantsConfig,
  logger: Logger,
): Promise<{ stop(): Promise<void> }> {
  const dataSource = await openDatabase({
    url: config.url,
    applicationName: 'bench-tcc-participants',
    poolSize: config.pool,
    migrations: MIGRATIONS,
  });
  const kafka = createKafka({
    brokers: config.kafkaBrokers,
    clientId: 'bench-tcc-participants',
    logger,
  });
  const nodes = SERVICES.map(
    (service) =>
      new TccParticipant({
        service,
        resources: { quota: quota(`bench_quota_${service}`, config.perBranch) },
        topicPrefix: config.prefix,
      }),
  );
  const relay = new OutboxRelay({
    dataSource,
    kafka,
    logger,
    registry: new Registry(),
    batchSize: 2_000,
    ...(config.poll ? { pollIntervalMs: 10 } : {}),
  });
  const consumer = new InboxConsumer({
    name: `${config.prefix}participants`,
    kafka,
    dataSource,
    logger,
    topics: [topicName(TOPICS.tccCommands, config.prefix)],
    catalog: SYSTEM_CATALOG,
    maxTransactionSize: config.runSize,
    partitionsConsumedConcurrently: 10,
    handle: async (message, ctx) => {
      for (const node of nodes) await node.handle(message, ctx.manager);
    },
    ...(config.perMessage
      ? {}
      : {
          handleRun: async (entries) => {
            for (const node of nodes) await node.handleRun(entries, entries[0].ctx.manager);
          },
        }),
  });
  relay.start();
  await consumer.start();
  return {
    async stop() {
      await consumer.stop();
      await relay.stop();
      await dataSource.destroy();
    },
  };
}

/** Runs `startParticipants` in a child process (`tcc-participants.ts`) until stopped. */
async function spawnParticipants(config: ParticipantsConfig): Promise<{ stop(): Promise<void> }> {
  const child = spawn(
    process.execPath,
    // The parent's node flags (the TypeScript loader, and --cpu-prof when profiling) carry over.
    [...process.execArgv, join(repoRoot(), 'tools', 'bench', 'tcc-participants.ts')],
    {
      cwd: repoRoot(),
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, BENCH_PARTICIPANTS: JSON.stringify(config) },
    },
  );
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('ready\n')) resolve();
    });
    void exited.then((code) => reject(new Error(`the participants exited ${code} before ready`)));
  });
  return {
    async stop() {
      child.kill('SIGTERM');
      const code = await exited;
      if (code !== 0) throw new Error(`the participants exited ${code}`);
    },
  };
}

export async function tccBenchmark(flags: Record<string, string>): Promise<void> {
  const total = Number(flags.transactions ?? 5_000);
  const concurrency = Number(flags.concurrency ?? 300);
  // Fewer accounts means more transactions touching the same rows at once.
  const ACCOUNTS = Number(flags.accounts ?? 1_000);
  const oneProcess = flags['one-process'] !== undefined;
  process.stdout.write(
    `tcc: ${total.toLocaleString('en-US')} global transactions, 3 branches, ${concurrency} in flight, ` +
      `participants ${oneProcess ? 'in the coordinator process' : 'in a process of their own'}, ` +
      `commands ${flags.unbatched === undefined ? 'batched per participant' : 'one record per branch'}\n`,
  );

  await provisionBench(['coordinator', 'participants'], async ({ urls, kafkaBrokers, prefix }) => {
    const logger = createLogger('bench', process.env.BENCH_LOG_LEVEL ?? 'warn');
    const registry = new Registry();
    const pool = Number(flags.pool ?? 12);
    const [coordinatorDb, participantDb]: DataSource[] = await Promise.all(
      urls.map((url) =>
        openDatabase({ url, applicationName: 'bench-tcc', poolSize: pool, migrations: MIGRATIONS }),
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
    const participantsConfig: ParticipantsConfig = {
      url: urls[1],
      kafkaBrokers,
      prefix,
      pool,
      // Messages per participant transaction: larger runs commit less often but hold row locks longer.
      runSize: Number(flags['run-size'] ?? 200),
      // The consumers call the coordinator and participants once per message instead of once per run.
      perMessage: flags['per-message'] !== undefined,
      // The participants' handlers update their rows one branch at a time instead of once per run.
      perBranch: flags['per-branch'] !== undefined,
      poll,
    };

    // Commands that leave together go as one record per participant (`--unbatched`: one per branch).
    const batchCommands = flags.unbatched === undefined;
    const coordinator = new TccCoordinator({
      dataSource: coordinatorDb,
      service: 'trading',
      logger,
      topicPrefix: prefix,
      registry,
      batchCommands,
    });
    const relay = new OutboxRelay({
      dataSource: coordinatorDb,
      kafka,
      logger,
      registry,
      batchSize: 2_000,
      ...(poll ? { pollIntervalMs: 10 } : {}),
    });
    const consumer = new InboxConsumer({
      name: `${prefix}coordinator`,
      kafka,
      dataSource: coordinatorDb,
      logger,
      topics: [topicName(TOPICS.tccReplies, prefix)],
      catalog: SYSTEM_CATALOG,
      partitionsConsumedConcurrently: 10,
      handle: (message, ctx) => coordinator.onReply(message, ctx.manager),
      ...(participantsConfig.perMessage
        ? {}
        : { handleRun: (entries) => coordinator.onReplies(entries, entries[0].ctx.manager) }),
    });
    const participants = oneProcess
      ? await startParticipants(participantsConfig, logger)
      : await spawnParticipants(participantsConfig);
    await coordinator.start();
    relay.start();
    await consumer.start();

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
      // Figures from a run that lost or doubled anything are not figures.
      if (confirmed !== total || used !== total * 3 + 20 * 3 || reserved !== 0)
        throw new Error('not every transaction confirmed exactly once');
    } finally {
      await consumer.stop();
      await participants.stop();
      await relay.stop();
      await coordinator.stop();
      await Promise.all([coordinatorDb.destroy(), participantDb.destroy()]);
    }
  });
}
