// A TCC node in a process of its own, for crash tests over the real Kafka. Env:
//   ROLE=coordinator|participants, DATABASE_URL, KAFKA_BROKERS, TOPIC_PREFIX, GROUP
//   KILL_WHEN=confirming (coordinator: right after "all tried" committed, before confirms go out)
//            try:<branchId> (participants: inside that branch's Try, before it commits)
//   MARKER_FILE: the kill happens once; the marker says it already did
//   RETRY_INITIAL_MS: coordinator resend delay
//   BATCH_COMMANDS=1: the coordinator packs its commands (TccCommandBatch)
import { existsSync, writeFileSync } from 'node:fs';
import { SYSTEM_CATALOG, SystemMessage, topicName, TOPICS } from '@finance/contracts';
import { createKafka, InboxConsumer, OutboxRelay } from '@finance/messaging';
import { createLogger, openDatabase } from '@finance/platform';
import { Registry } from 'prom-client';
import { TccCoordinator } from '../src/coordinator/coordinator';
import { BranchHandlers, TccParticipant } from '../src/participant/participant';
import { countingHandlers, TEST_MIGRATIONS } from './chaos-bus';

const env = process.env;
const killOnce = () => {
  if (env.MARKER_FILE && existsSync(env.MARKER_FILE)) return;
  if (env.MARKER_FILE) writeFileSync(env.MARKER_FILE, String(process.pid));
  process.kill(process.pid, 'SIGKILL');
};

async function main(): Promise<void> {
  const role = env.ROLE!;
  const prefix = env.TOPIC_PREFIX ?? '';
  const logger = createLogger(`tcc-${role}`, 'warn');
  const dataSource = await openDatabase({
    url: env.DATABASE_URL!,
    applicationName: `tcc-${role}`,
    poolSize: 8,
    migrations: TEST_MIGRATIONS,
  });
  const kafka = createKafka({
    brokers: env.KAFKA_BROKERS!.split(','),
    clientId: `tcc-${role}`,
    logger,
  });
  const registry = new Registry();
  const relay = new OutboxRelay({ dataSource, kafka, logger, registry, pollIntervalMs: 50 });
  relay.start();

  let consumer: InboxConsumer<SystemMessage>;
  let coordinator: TccCoordinator | undefined;
  if (role === 'coordinator') {
    coordinator = new TccCoordinator({
      dataSource,
      service: 'trading',
      logger,
      topicPrefix: prefix,
      registry,
      retryInitialMs: Number(env.RETRY_INITIAL_MS ?? 500),
      tickIntervalMs: 100,
      batchCommands: env.BATCH_COMMANDS === '1',
    });
    await coordinator.start();
    consumer = new InboxConsumer({
      name: env.GROUP ?? 'tcc-coordinator',
      kafka,
      dataSource,
      logger,
      topics: [topicName(TOPICS.tccReplies, prefix)],
      catalog: SYSTEM_CATALOG,
      handle: (message, ctx) => coordinator!.onReply(message, ctx.manager),
      handleRun: (entries) => coordinator!.onReplies(entries, entries[0].ctx.manager),
      consumerConfig: { sessionTimeout: 6_000, heartbeatInterval: 1_000 },
      onHandled: async () => {
        if (env.KILL_WHEN !== 'confirming') return;
        const [{ n }] = await dataSource.query(
          `SELECT count(*)::int AS n FROM tcc_transactions WHERE state = 'CONFIRMING'`,
        );
        if (n > 0) killOnce();
      },
    });
  } else {
    const handlers: BranchHandlers = {
      ...countingHandlers,
      async try(ctx, payload) {
        await countingHandlers.try(ctx, payload);
        if (env.KILL_WHEN === `try:${ctx.branchId}`) killOnce(); // effect written, not committed
      },
    };
    const nodes = (['trading', 'risk', 'settlement'] as const).map(
      (service) =>
        new TccParticipant({ service, resources: { quota: handlers }, topicPrefix: prefix }),
    );
    consumer = new InboxConsumer({
      name: env.GROUP ?? 'tcc-participants',
      kafka,
      dataSource,
      logger,
      topics: [topicName(TOPICS.tccCommands, prefix)],
      catalog: SYSTEM_CATALOG,
      // A killed member must not hold its partitions for the default 30 s.
      consumerConfig: { sessionTimeout: 6_000, heartbeatInterval: 1_000 },
      handle: async (message, ctx) => {
        for (const node of nodes) await node.handle(message, ctx.manager);
      },
      handleRun: async (entries) => {
        for (const node of nodes) await node.handleRun(entries, entries[0].ctx.manager);
      },
    });
  }
  await consumer.start();
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => {
    void (async () => {
      await consumer.stop();
      await coordinator?.stop();
      await relay.stop();
      await dataSource.destroy();
      process.exit(0);
    })();
  });
}

void main();
