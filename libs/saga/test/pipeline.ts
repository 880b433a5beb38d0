// Both sides of a saga wired the way a service wires them: outbox relay, inbox consumer on the
// topic it reads, and (orchestrator) the ticking loop. Used by the integration tests and the
// orchestrator process fixture.
import { SYSTEM_CATALOG, TOPICS, topicName, type SystemMessage } from '@finance/contracts';
import {
  InboxConsumer,
  OutboxRelay,
  type HandledInfo,
  type InboxHandler,
} from '@finance/messaging';
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { DataSource } from 'typeorm';
import type { SagaOrchestrator } from '../src/orchestrator/saga-orchestrator';
import type { SagaCommandMessage, SagaParticipant } from '../src/participant/saga-participant';

export function sagaTopics(prefix: string) {
  return {
    commands: topicName(TOPICS.sagaCommands, prefix),
    replies: topicName(TOPICS.sagaReplies, prefix),
    operations: topicName(TOPICS.operationsEvents, prefix),
  };
}

/** Topic specs for ensureTopics: the three saga topics and their dead-letter topics. */
export function sagaTopicSpecs(prefix: string): Array<{ name: string; partitions: number }> {
  return Object.values(sagaTopics(prefix)).flatMap((name) => [
    { name, partitions: 3 },
    { name: `${name}.dlq`, partitions: 1 },
  ]);
}

export interface Side {
  relay: OutboxRelay;
  consumer: InboxConsumer<SystemMessage>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

interface Common {
  dataSource: DataSource;
  kafka: Kafka;
  logger: Logger;
  prefix: string;
  group: string;
  onHandled?: (info: HandledInfo) => void;
}

function side(
  common: Common,
  topic: string,
  handle: InboxHandler,
  extra: { start?: () => void; stop?: () => Promise<void> } = {},
): Side {
  const relay = new OutboxRelay({
    dataSource: common.dataSource,
    kafka: common.kafka,
    logger: common.logger,
    pollIntervalMs: 50,
    registry: new Registry(),
  });
  const consumer = new InboxConsumer({
    name: common.group,
    kafka: common.kafka,
    dataSource: common.dataSource,
    logger: common.logger,
    topics: [topic],
    catalog: SYSTEM_CATALOG,
    handle,
    ...(common.onHandled ? { onHandled: common.onHandled } : {}),
    retry: { attempts: 3, initialDelayMs: 50, maxDelayMs: 200 },
    // A killed member must leave the group quickly so its restart gets the partitions back.
    consumerConfig: { sessionTimeout: 6_000, heartbeatInterval: 500 },
  });
  return {
    relay,
    consumer,
    async start() {
      relay.start();
      await consumer.start();
      extra.start?.();
    },
    async stop() {
      await extra.stop?.();
      await consumer.stop();
      await relay.stop();
    },
  };
}

export function participantSide(
  common: Common & {
    participant: SagaParticipant;
    /** Commands the test's network loses before the participant sees them. */
    drop?: (command: SagaCommandMessage) => boolean;
  },
): Side {
  const inner = common.participant.inboxHandler();
  return side(common, sagaTopics(common.prefix).commands, async (message, ctx) => {
    if (common.drop?.(message as SagaCommandMessage)) return;
    await inner(message, ctx);
  });
}

export function orchestratorSide(
  common: Common & {
    orchestrator: SagaOrchestrator;
    tickMs: number;
    /** Default: the orchestrator's own inbox handler. */
    handle?: InboxHandler;
  },
): Side {
  const handle = common.handle ?? common.orchestrator.inboxHandler();
  return side(common, sagaTopics(common.prefix).replies, handle, {
    start: () => common.orchestrator.startTicking(common.tickMs),
    stop: () => common.orchestrator.stopTicking(),
  });
}
