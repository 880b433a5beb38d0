// Test harness for risk end to end: trading, risk and settlement as their own processes (mutual TLS,
// the run's OPA, real Postgres and Kafka), and helpers to call them as an identity and to read their
// databases. (Trading's e2e has the same harness; apps do not share code.)
import { ServiceName } from '@finance/contracts';
import {
  createTestDatabase,
  freePort,
  launchService,
  ServiceProcess,
  testCertificates,
  testStack,
  waitUntilReady,
} from '@finance/testing';
import { Client } from 'pg';

export interface RunningService {
  process: ServiceProcess;
  databaseUrl: string;
}

export async function startService(
  name: ServiceName,
  env: Record<string, string> = {},
): Promise<RunningService> {
  const stack = testStack();
  const databaseUrl = (await createTestDatabase(`risk_e2e_${name}`)).url;
  const process = launchService(name, {
    port: await freePort(),
    env: {
      DATABASE_URL: databaseUrl,
      KAFKA_BROKERS: stack.kafkaBrokers.join(','),
      KAFKA_TOPIC_PREFIX: stack.topicPrefix,
      OPA_URL: stack.opaUrl,
      OPA_TIMEOUT_MS: '5000',
      LOG_LEVEL: 'warn',
      ...env,
    },
    certificates: await testCertificates(),
  });
  await waitUntilReady(process);
  return { process, databaseUrl };
}

export async function query<T>(databaseUrl: string, sql: string, params: unknown[] = []) {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

/** Calls a service as `as`; fails with the body when the status is not one of `expect`. */
export async function call<T = Record<string, unknown>>(
  service: RunningService,
  method: string,
  path: string,
  options: { as: string; body?: unknown; expect?: number[] },
): Promise<{ status: number; body: T }> {
  const response = await service.process.request(path, {
    method,
    as: options.as,
    ...(options.body !== undefined ? { body: options.body } : {}),
    timeoutMs: 30_000,
  });
  if (options.expect && !options.expect.includes(response.status)) {
    throw new Error(`${method} ${path} → ${response.status}: ${response.body}`);
  }
  return { status: response.status, body: response.body ? response.json<T>() : (undefined as T) };
}
