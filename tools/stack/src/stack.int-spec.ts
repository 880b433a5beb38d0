// Integration tests: the stack really starts Postgres, Kafka and OPA, and stops exactly what it started.
import { pathExists } from './files';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { Client } from 'pg';
import {
  deleteTopicsWithPrefix,
  dropDatabases,
  dropDatabasesWithPrefix,
  ensureDatabases,
  ensureTopics,
  readStackState,
  startStack,
  StackAlreadyRunningError,
  stopStack,
  type ProcessRecord,
  type RunningStack,
} from './index';

const POLICY = `package stack_test

default allow := false

allow if input.user == "alice"
`;

// The suite always exercises locally started components, whatever the caller's environment says.
function localOnly(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.POSTGRES_URL;
  delete env.KAFKA_BROKERS;
  delete env.OPA_URL;
  return { ...env, ...extra };
}

async function query<T>(url: string, sql: string): Promise<T[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

function kafkaAdmin(brokers: string[]) {
  return new Kafka({ clientId: 'stack-int-spec', brokers, logLevel: logLevel.NOTHING }).admin();
}

// Gone means no such pid at all: not running, and already reaped if it was our child.
async function gone(pid: number, withinMs = 5_000): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ESRCH') return true;
    }
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('local stack (real Postgres, Kafka and OPA)', () => {
  let dir: string;
  let policyDir: string;
  let stack: RunningStack | undefined;
  const timings: string[] = [];
  const log: string[] = [];

  beforeAll(async () => {
    // mkdtemp makes a 0700 dir: startStack has to open it up for the unprivileged postgres user.
    dir = await mkdtemp(join(tmpdir(), 'finance-stack-'));
    policyDir = join(dir, 'policies');
    await mkdir(policyDir);
    await writeFile(join(policyDir, 'stack.rego'), POLICY);
    const began = Date.now();
    stack = await startStack({ dir, policyDir, env: localOnly(), log: (line) => log.push(line) });
    timings.push(`fresh dir ${Date.now() - began} ms`);
  }, 300_000);

  afterAll(async () => {
    await stack?.stop();
    if (dir) {
      await stopStack(dir, { reset: true, log: () => undefined });
      await rm(dir, { recursive: true, force: true });
    }
    process.stderr.write(`[stack int-spec] start times: ${timings.join(', ')}\n`);
  }, 120_000);

  it('runs a real Postgres that answers SELECT 1 and gets databases from ensureDatabases', async () => {
    const running = stack!;
    expect(running.postgres.external).toBe(false);
    expect(running.postgres.adminUrl).toMatch(
      /^postgres:\/\/postgres:[^@]+@127\.0\.0\.1:\d+\/postgres$/,
    );
    expect(await query<{ one: number }>(running.postgres.adminUrl, 'SELECT 1 AS one')).toEqual([
      { one: 1 },
    ]);

    const urls = await ensureDatabases(running.postgres.adminUrl, [
      'stack_trading',
      'stack_scratch_a',
      'stack_scratch_b',
    ]);
    expect(await query(urls.stack_trading!, 'SELECT current_database() AS db')).toEqual([
      { db: 'stack_trading' },
    ]);
    // idempotent: a second call neither fails nor changes anything
    expect(await ensureDatabases(running.postgres.adminUrl, ['stack_trading'])).toEqual({
      stack_trading: urls.stack_trading,
    });

    await dropDatabases(running.postgres.adminUrl, ['stack_scratch_a']);
    expect(await dropDatabasesWithPrefix(running.postgres.adminUrl, 'stack_scratch_')).toEqual([
      'stack_scratch_b',
    ]);
    const left = await query<{ datname: string }>(
      running.postgres.adminUrl,
      "SELECT datname FROM pg_database WHERE datname LIKE 'stack\\_%'",
    );
    expect(left.map((r) => r.datname)).toEqual(['stack_trading']);
  });

  it('runs a real Kafka broker where ensureTopics creates topics idempotently', async () => {
    const brokers = stack!.kafka.brokers;
    expect(stack!.kafka.external).toBe(false);
    const topics = [
      { name: 'stack-test.orders', partitions: 3 },
      { name: 'stack-keep.fills', partitions: 2, configs: { 'retention.ms': '3600000' } },
    ];
    expect(await ensureTopics(brokers, topics)).toEqual(['stack-test.orders', 'stack-keep.fills']);
    expect(await ensureTopics(brokers, topics)).toEqual([]);

    const admin = kafkaAdmin(brokers);
    await admin.connect();
    try {
      const metadata = await admin.fetchTopicMetadata({
        topics: ['stack-test.orders', 'stack-keep.fills'],
      });
      const partitions = Object.fromEntries(
        metadata.topics.map((t) => [t.name, t.partitions.length]),
      );
      expect(partitions).toEqual({ 'stack-test.orders': 3, 'stack-keep.fills': 2 });

      expect(await deleteTopicsWithPrefix(brokers, 'stack-test.')).toEqual(['stack-test.orders']);
      expect(await admin.listTopics()).not.toContain('stack-test.orders');
      await expect(deleteTopicsWithPrefix(brokers, '')).rejects.toThrow(/empty prefix/);
    } finally {
      await admin.disconnect();
    }
  });

  it('runs a real OPA server that serves the policies in policyDir', async () => {
    const url = stack!.opa.url;
    expect(stack!.opa.external).toBe(false);
    expect((await fetch(`${url}/health`)).status).toBe(200);
    const decide = async (user: string): Promise<unknown> => {
      const response = await fetch(`${url}/v1/data/stack_test/allow`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ input: { user } }),
      });
      expect(response.status).toBe(200);
      return ((await response.json()) as { result?: unknown }).result;
    };
    expect(await decide('alice')).toBe(true);
    expect(await decide('mallory')).toBe(false);
  });

  it('records its live processes and refuses a second start in the same dir', async () => {
    const state = await readStackState(dir);
    expect(state?.running).toBe(true);
    expect(state?.phase).toBe('running');
    for (const component of [state?.postgres, state?.kafka, state?.opa]) {
      expect(component?.process?.alive).toBe(true);
    }
    expect(state?.addresses).toEqual({
      postgresAdminUrl: stack!.postgres.adminUrl,
      kafkaBrokers: stack!.kafka.brokers,
      opaUrl: stack!.opa.url,
    });

    const second = startStack({ dir, policyDir, env: localOnly(), log: () => undefined });
    await expect(second).rejects.toBeInstanceOf(StackAlreadyRunningError);
    await expect(second).rejects.toThrow(/npm run stack:down/);
    // the refused start must not have disturbed the running one
    expect((await readStackState(dir))?.id).toBe(state?.id);
  });

  it('starts no Kafka when KAFKA_BROKERS points at an existing cluster', async () => {
    const otherDir = await mkdtemp(join(tmpdir(), 'finance-stack-ext-'));
    try {
      const partial = await startStack({
        dir: otherDir,
        policyDir,
        // Postgres is the suite's own server used as "existing"; only OPA is started here.
        env: localOnly({ KAFKA_BROKERS: '127.0.0.1:1', POSTGRES_URL: stack!.postgres.adminUrl }),
        log: () => undefined,
      });
      try {
        expect(partial.kafka).toEqual({
          brokers: ['127.0.0.1:1'],
          external: true,
          logFile: undefined,
        });
        expect(partial.postgres).toMatchObject({
          adminUrl: stack!.postgres.adminUrl,
          external: true,
        });
        expect(partial.opa.external).toBe(false);
        const state = await readStackState(otherDir);
        expect(state?.kafka).toEqual({ external: true, brokers: ['127.0.0.1:1'] });
        expect(state?.postgres?.process).toBeUndefined();
        expect(state?.opa?.process?.alive).toBe(true);
        expect(await pathExists(join(otherDir, 'kafka'))).toBe(false);
      } finally {
        await partial.stop();
      }
      expect(await readStackState(otherDir)).toBeUndefined();
    } finally {
      await rm(otherDir, { recursive: true, force: true });
    }
  }, 120_000);

  it('stop() leaves none of the recorded processes alive', async () => {
    const state = await readStackState(dir);
    const records = [state?.opa?.process, state?.kafka?.process, state?.postgres?.process];
    expect(records.every((r) => r !== undefined)).toBe(true);

    await stack!.stop();
    stack = undefined;
    for (const record of records as ProcessRecord[]) {
      expect({ pid: record.pid, gone: await gone(record.pid) }).toEqual({
        pid: record.pid,
        gone: true,
      });
    }
    expect(await pathExists(join(dir, 'state.json'))).toBe(false);
    expect(await readStackState(dir)).toBeUndefined();
  }, 120_000);

  it('restarts on the same dir with its data, and stopStack(reset) wipes it', async () => {
    const began = Date.now();
    stack = await startStack({ dir, policyDir, env: localOnly(), log: (line) => log.push(line) });
    timings.push(`restart ${Date.now() - began} ms`);

    const dbs = await query<{ datname: string }>(
      stack.postgres.adminUrl,
      "SELECT datname FROM pg_database WHERE datname = 'stack_trading'",
    );
    expect(dbs).toHaveLength(1);
    const admin = kafkaAdmin(stack.kafka.brokers);
    await admin.connect();
    try {
      expect(await admin.listTopics()).toContain('stack-keep.fills');
    } finally {
      await admin.disconnect();
    }

    // stopStack works from the state file alone, as `npm run stack:down` does from another process.
    const records = (await readStackState(dir))!;
    await stopStack(dir, { log: () => undefined });
    for (const record of [
      records.opa?.process,
      records.kafka?.process,
      records.postgres?.process,
    ] as ProcessRecord[]) {
      expect(await gone(record.pid)).toBe(true);
    }
    // The RunningStack handle finds nothing left to stop.
    await stack.stop();
    stack = undefined;

    expect(await pathExists(join(dir, 'postgres', 'data'))).toBe(true);
    await stopStack(dir, { reset: true, log: () => undefined });
    expect(await pathExists(join(dir, 'postgres'))).toBe(false);
    expect(await pathExists(join(dir, 'kafka'))).toBe(false);
    expect(await pathExists(policyDir)).toBe(true);
  }, 300_000);
});
