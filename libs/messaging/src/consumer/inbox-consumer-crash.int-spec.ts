// A consumer process SIGKILLed between effect commit and offset commit, restarted: one effect each.
import { createLogger } from '@finance/platform';
import { createTestDatabase, testStack } from '@finance/testing';
import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { createKafka } from '../kafka';
import {
  committedTotal,
  credited,
  effectCounts,
  envelopeRecord,
  migratedDataSource,
  produce,
  testMessages,
  waitFor,
  provisionTopic,
} from '../../test/consumer/support';

const ROOT = join(__dirname, '..', '..', '..', '..');
const FIXTURE = 'libs/messaging/test/consumer/crash-consumer.ts';

interface Fixture {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function launch(env: Record<string, string>): Fixture {
  const child = spawn(process.execPath, ['-r', '@swc-node/register', FIXTURE], {
    cwd: ROOT,
    env: { ...process.env, ...env, SWC_NODE_PROJECT: join(ROOT, 'tsconfig.json') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => output, exited };
}

describe('inbox consumer killed between effect and offset commit', () => {
  const running: Fixture[] = [];
  let dataSource: DataSource | undefined;

  afterAll(async () => {
    for (const fixture of running)
      if (fixture.child.exitCode === null) fixture.child.kill('SIGKILL');
    await dataSource?.destroy();
  });

  it('has exactly one effect per event after a SIGKILL and a restart', async () => {
    const stack = testStack();
    const { definition, topic } = await provisionTopic('crash', 3);
    const db = await createTestDatabase('inbox_crash');
    dataSource = await migratedDataSource(db.url);
    const kafka = createKafka({
      brokers: stack.kafkaBrokers,
      clientId: 'inbox-crash-test',
      logger: createLogger('inbox-crash-test', 'silent'),
    });

    const messages = testMessages(definition);
    const total = 300;
    const envelopes = Array.from({ length: total }, (_, n) =>
      credited(messages, { account: `acct-${n % 7}`, amount: n + 1, n }),
    );
    for (let from = 0; from < total; from += 50) {
      await produce(
        kafka,
        topic,
        envelopes.slice(from, from + 50).map((e) => envelopeRecord(e)),
      );
    }

    const group = `inbox-crash-${Date.now().toString(36)}`;
    const env = {
      DATABASE_URL: db.url,
      KAFKA_BROKERS: stack.kafkaBrokers.join(','),
      TOPIC: topic,
      GROUP: group,
      MAX_TRANSACTION_SIZE: '20',
    };

    const first = launch({ ...env, KILL_AFTER: '130' });
    running.push(first);
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    const afterCrash = await effectCounts(dataSource);
    const committedAtCrash = await committedTotal(kafka, group, topic);
    // The killed message's transaction committed, its offset did not: the case under test.
    expect(afterCrash.rows).toBeGreaterThanOrEqual(130);
    expect(afterCrash.rows).toBe(afterCrash.distinct);
    expect(committedAtCrash).toBeLessThan(afterCrash.rows);

    const second = launch(env);
    running.push(second);
    await waitFor(
      'every effect',
      () => effectCounts(dataSource!),
      (c) => c.rows >= total,
      60_000,
    );
    await waitFor(
      'every offset',
      () => committedTotal(kafka, group, topic),
      (n) => n === total,
    );
    second.child.kill('SIGTERM');
    expect(await second.exited).toEqual({ code: 0, signal: null });
    const stats = JSON.parse(second.output().trim().split('\n').pop() ?? '{}') as {
      handled: number;
      duplicates: number;
    };

    const effects = await effectCounts(dataSource);
    expect(effects).toEqual({ rows: total, distinct: total });
    const perEvent = (await dataSource.query(
      'SELECT event_id FROM effects GROUP BY event_id HAVING count(*) > 1',
    )) as unknown[];
    expect(perEvent).toEqual([]);
    const [{ count }] = (await dataSource.query('SELECT count(*)::int AS count FROM inbox')) as [
      { count: number },
    ];
    expect(count).toBe(total);
    // The restart saw the messages whose effects had committed without their offsets.
    expect(stats.duplicates).toBeGreaterThan(0);
    expect(stats.handled).toBe(total - afterCrash.rows);
  });
});
