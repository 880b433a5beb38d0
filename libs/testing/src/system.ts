// End-to-end harness for tests that run several services as processes (mutual TLS, the run's OPA,
// real Postgres and Kafka): start or restart one on its own database, call it as an identity, read
// its database, follow a server-sent event stream.
import { ALL_TOPICS, topicName, type ServiceName } from '@finance/contracts';
import { ensureTopics } from '@finance/local-stack';
import { credentialsOf } from '@finance/dev-ca';
import type { HttpResponse } from '@finance/platform';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { Client } from 'pg';
import { freePort, launchService, ServiceProcess, waitUntilReady } from './service-process';
import { createTestDatabase, testCertificates, testStack } from './test-stack';

export interface RunningService {
  process: ServiceProcess;
  databaseUrl: string;
  port: number;
  env: Record<string, string>;
}

/**
 * Starts a service on a new database (named after `label`), or restarts `reuse` on its database and
 * port with `env` laid over its environment.
 */
export async function startSystemService(
  name: ServiceName,
  options: { label?: string; env?: Record<string, string>; reuse?: RunningService } = {},
): Promise<RunningService> {
  const { env = {}, reuse } = options;
  const stack = testStack();
  const databaseUrl =
    reuse?.databaseUrl ?? (await createTestDatabase(`${options.label ?? 'e2e'}_${name}`)).url;
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

/**
 * Every topic of the system under a prefix of the test's own (inside the run's), for a test whose
 * services must see only their own events, e.g. one that compares a report with everything they
 * did while other test files trade on the run's topics. Pass it as KAFKA_TOPIC_PREFIX.
 */
export async function privateTopicPrefix(label: string): Promise<string> {
  const stack = testStack();
  const prefix = `${stack.topicPrefix}${label}.`;
  await ensureTopics(
    stack.kafkaBrokers,
    ALL_TOPICS.map((t) => ({ name: topicName(t, prefix), partitions: t.partitions })),
  );
  return prefix;
}

export async function queryDatabase<T>(
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

/** Calls a service as `as` and fails with the body when the status is not one of `expect`. */
export async function callService<T = Record<string, unknown>>(
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

export interface EventStream {
  events: Array<{ event: string; data: Record<string, unknown> }>;
  close(): void;
}

/** Opens a server-sent event stream as `as` and collects its events. */
export async function openEventStream(
  service: RunningService,
  path: string,
  as: string,
): Promise<EventStream> {
  const files = credentialsOf(await testCertificates(), as);
  const events: EventStream['events'] = [];
  const request = httpsRequest(`${service.process.url}${path}`, {
    cert: readFileSync(files.certFile),
    key: readFileSync(files.keyFile),
    ca: readFileSync(files.caFile),
    // The service proves a SPIFFE id, not a host name; the dev CA is the only one trusted.
    checkServerIdentity: () => undefined,
  });
  await new Promise<void>((resolve, reject) => {
    request.on('response', (response) => {
      if (response.statusCode !== 200) reject(new Error(`stream: ${response.statusCode}`));
      let buffer = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) });
        }
      });
      resolve();
    });
    request.on('error', reject);
    request.end();
  });
  return { events, close: () => request.destroy() };
}
