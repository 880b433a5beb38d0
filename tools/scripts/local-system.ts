// What `npm run stack` and `npm start` share: where things live, the default ports, and how the
// services' databases and topics are provisioned on whatever stack is in use.
import { join } from 'node:path';
import { ALL_TOPICS, SERVICE_NAMES, ServiceName, topicName } from '@finance/contracts';
import { databaseUrl, ensureDatabases, ensureTopics } from '@finance/local-stack';

export const ROOT = join(__dirname, '..', '..');
export const LOCAL_DIR = process.env.FINANCE_LOCAL_DIR ?? join(ROOT, '.local');
export const STACK_DIR = join(LOCAL_DIR, 'stack');
export const POLICY_DIR = join(ROOT, 'libs', 'policies');

// Fixed ports for the stack `npm start` runs, away from the usual 5432/9092/8181 a developer may use.
export const STACK_PORTS = { postgres: 55432, kafka: 59092, kafkaController: 59093, opa: 58181 };

export function servicePorts(env: NodeJS.ProcessEnv = process.env): Record<ServiceName, number> {
  const base = Number(env.SERVICE_PORT_BASE ?? 3001);
  if (!Number.isInteger(base) || base < 1 || base > 65530) {
    throw new Error(`SERVICE_PORT_BASE must be a port number, got '${env.SERVICE_PORT_BASE}'`);
  }
  return Object.fromEntries(SERVICE_NAMES.map((name, i) => [name, base + i])) as Record<
    ServiceName,
    number
  >;
}

export interface Addresses {
  postgresAdminUrl: string;
  kafkaBrokers: string[];
  opaUrl: string;
}

export interface Naming {
  /** Put before each service's database name, for servers shared with other systems. */
  databasePrefix: string;
  topicPrefix: string;
}

export function naming(env: NodeJS.ProcessEnv = process.env): Naming {
  const databasePrefix = env.DATABASE_NAME_PREFIX ?? '';
  const topicPrefix = env.KAFKA_TOPIC_PREFIX ?? '';
  if (!/^[a-z0-9_]*$/.test(databasePrefix)) {
    throw new Error(
      `DATABASE_NAME_PREFIX may contain only a-z, 0-9 and '_', got '${databasePrefix}'`,
    );
  }
  if (!/^[A-Za-z0-9._-]*$/.test(topicPrefix)) {
    throw new Error(
      `KAFKA_TOPIC_PREFIX may contain only letters, digits, '.', '_' and '-', got '${topicPrefix}'`,
    );
  }
  return { databasePrefix, topicPrefix };
}

/** One database per service and every topic of the system, created if missing. */
export async function provision(
  addresses: Addresses,
  { databasePrefix, topicPrefix }: Naming,
): Promise<Record<ServiceName, string>> {
  const databaseName = (service: ServiceName) => `${databasePrefix}${service}`;
  await ensureDatabases(addresses.postgresAdminUrl, SERVICE_NAMES.map(databaseName));
  await ensureTopics(
    addresses.kafkaBrokers,
    ALL_TOPICS.map((topic) => ({
      name: topicName(topic, topicPrefix),
      partitions: topic.partitions,
      configs: { 'retention.ms': String(topic.retentionMs) },
    })),
  );
  return Object.fromEntries(
    SERVICE_NAMES.map((name) => [
      name,
      databaseUrl(addresses.postgresAdminUrl, databaseName(name)),
    ]),
  ) as Record<ServiceName, string>;
}
