// Test harness for compliance's end-to-end trading day: trading, risk, settlement and compliance as
// their own processes (mutual TLS, the run's OPA, real Postgres and Kafka), with helpers to call them
// as a given identity and to read their databases. (Trading's e2e has the same harness; apps do not
// share code.)
import { ServiceName } from '@finance/contracts';
import { HttpResponse } from '@finance/platform';
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
  port: number;
  env: Record<string, string>;
}

export type TradingDayServices = Record<
  'trading' | 'risk' | 'settlement' | 'compliance',
  RunningService
>;

export async function startService(
  name: ServiceName,
  env: Record<string, string> = {},
  reuse?: RunningService,
): Promise<RunningService> {
  const stack = testStack();
  const databaseUrl = reuse?.databaseUrl ?? (await createTestDatabase(`day_${name}`)).url;
  const port = reuse?.port ?? (await freePort());
  const fullEnv = reuse
    ? { ...reuse.env, ...env }
    : {
        DATABASE_URL: databaseUrl,
        KAFKA_BROKERS: stack.kafkaBrokers.join(','),
        KAFKA_TOPIC_PREFIX: stack.topicPrefix,
        OPA_URL: stack.opaUrl,
        OPA_TIMEOUT_MS: '5000',
        LOG_LEVEL: 'warn',
        ...env,
      };
  const process = launchService(name, {
    port,
    env: fullEnv,
    certificates: await testCertificates(),
  });
  await waitUntilReady(process);
  return { process, databaseUrl, port, env: fullEnv };
}

export async function query<T>(
  databaseUrl: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

/** Calls a service as `as` and fails with the body when the status is not one of `expected`. */
export async function call<T = Record<string, unknown>>(
  service: RunningService,
  method: string,
  path: string,
  options: { as: string; body?: unknown; expect?: number[] },
): Promise<{ status: number; body: T; response: HttpResponse }> {
  const response = await service.process.request(path, {
    method,
    as: options.as,
    ...(options.body !== undefined ? { body: options.body } : {}),
    timeoutMs: 30_000,
  });
  if (options.expect && !options.expect.includes(response.status)) {
    throw new Error(`${method} ${path} → ${response.status}: ${response.body}`);
  }
  return {
    status: response.status,
    body: response.body ? response.json<T>() : (undefined as T),
    response,
  };
}
