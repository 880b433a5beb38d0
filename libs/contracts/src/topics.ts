// Every Kafka topic of the system, defined once. Services and the stack derive names from here.

const DAY_MS = 24 * 60 * 60 * 1000;

export interface TopicDefinition {
  /** Base name; deployments may prefix it (see `topicName`). */
  readonly name: string;
  readonly partitions: number;
  readonly retentionMs: number;
  /** What the message key is, so per-key ordering is explicit. */
  readonly key: 'aggregateId' | 'symbol' | 'globalTransactionId';
  readonly description: string;
}

export const TOPICS = {
  tradingEvents: {
    name: 'trading.events',
    partitions: 10,
    retentionMs: 7 * DAY_MS,
    key: 'aggregateId',
    description: 'Order and account lifecycle published by trading',
  },
  riskEvents: {
    name: 'risk.events',
    partitions: 10,
    retentionMs: 7 * DAY_MS,
    key: 'aggregateId',
    description: 'Limit changes, breaches and kill-switch state published by risk',
  },
  settlementEvents: {
    name: 'settlement.events',
    partitions: 10,
    retentionMs: 7 * DAY_MS,
    key: 'aggregateId',
    description: 'Obligations, settlements and fails published by settlement',
  },
  complianceEvents: {
    name: 'compliance.events',
    partitions: 10,
    retentionMs: 7 * DAY_MS,
    key: 'aggregateId',
    description: 'Audit checkpoints and alerts published by compliance',
  },
  tccCommands: {
    name: 'tcc.commands',
    partitions: 10,
    retentionMs: 1 * DAY_MS,
    key: 'globalTransactionId',
    description: 'Try / Confirm / Cancel commands sent by a coordinator to participants',
  },
  tccReplies: {
    name: 'tcc.replies',
    partitions: 10,
    retentionMs: 1 * DAY_MS,
    key: 'globalTransactionId',
    description: 'Participant answers to TCC commands',
  },
  sagaCommands: {
    name: 'saga.commands',
    partitions: 10,
    retentionMs: 1 * DAY_MS,
    key: 'aggregateId',
    description: 'Saga step executions and compensations sent by an orchestrator',
  },
  sagaReplies: {
    name: 'saga.replies',
    partitions: 10,
    retentionMs: 1 * DAY_MS,
    key: 'aggregateId',
    description: 'Participant answers to saga step commands',
  },
  operationsEvents: {
    name: 'operations.events',
    partitions: 3,
    retentionMs: 30 * DAY_MS,
    key: 'aggregateId',
    description: 'Operator actions, authorization denials and engine alerts, for audit and paging',
  },
  marketDataTrades: {
    name: 'market-data.trades',
    partitions: 10,
    retentionMs: 1 * DAY_MS,
    key: 'symbol',
    description: 'Public trade prints per symbol',
  },
} as const satisfies Record<string, TopicDefinition>;

export type TopicKey = keyof typeof TOPICS;

const DEAD_LETTER_RETENTION_MS = 30 * DAY_MS;

/** Where a consumer puts a message it cannot process, with the error, so its partition moves on. */
export function deadLetterTopic(topic: TopicDefinition): TopicDefinition {
  return {
    name: `${topic.name}.dlq`,
    partitions: 3,
    retentionMs: DEAD_LETTER_RETENTION_MS,
    key: topic.key,
    description: `Messages of ${topic.name} that failed processing`,
  };
}

export const ALL_TOPICS: readonly TopicDefinition[] = Object.values(TOPICS).flatMap((topic) => [
  topic,
  deadLetterTopic(topic),
]);

/** Full topic name under an optional prefix (test runs and shared clusters use one). */
export function topicName(topic: TopicDefinition, prefix = ''): string {
  return `${prefix}${topic.name}`;
}
