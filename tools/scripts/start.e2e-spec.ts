// `npm start` end to end, on the test run's stack (passed in through POSTGRES_URL, KAFKA_BROKERS and
// OPA_URL, which is also how users point it at servers they already run).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { credentialsOf, readDevCertificates } from '@finance/dev-ca';
import { isPidAlive } from '@finance/local-stack';
import { HttpClient, readTlsMaterial } from '@finance/platform';
import { freePort, runDatabasePrefix, testStack } from '@finance/testing';

const ROOT = join(__dirname, '..', '..');

// Four consecutive free ports for SERVICE_PORT_BASE.
async function freePortBlock(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const base = await freePort();
    if (base > 65530) continue;
    const rest = await Promise.all([1, 2, 3].map(() => freePort()));
    // freePort hands out distinct ports; accept the block only if base+1..3 were not among the taken.
    if (!rest.some((p) => p > base && p <= base + 3)) return base;
  }
  throw new Error('no block of four free ports found');
}

describe('npm start', () => {
  it('runs four ready services, refuses a second instance, and Ctrl-C leaves none of its processes', async () => {
    const stack = testStack();
    const localDir = mkdtempSync(join(tmpdir(), 'finance-start-'));
    const base = await freePortBlock();
    const topicPrefix = `${stack.topicPrefix}start.`;
    const env = {
      ...process.env,
      POSTGRES_URL: stack.postgresAdminUrl,
      KAFKA_BROKERS: stack.kafkaBrokers.join(','),
      OPA_URL: stack.opaUrl,
      FINANCE_LOCAL_DIR: localDir,
      SERVICE_PORT_BASE: String(base),
      DATABASE_NAME_PREFIX: `${runDatabasePrefix(stack.runId)}start_`,
      KAFKA_TOPIC_PREFIX: topicPrefix,
    };
    const start = () => ['-r', '@swc-node/register', join('tools', 'scripts', 'start.ts')];

    // Its own process group, as a terminal runs a foreground job.
    const child = spawn(process.execPath, start(), { cwd: ROOT, env, detached: true });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => resolve(code)),
    );
    try {
      const deadline = Date.now() + 120_000;
      while (!output.includes('press Ctrl-C') && Date.now() < deadline && child.exitCode === null) {
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      expect(output).toContain('ready: all four services answer /health/ready');
      expect(output).toContain(`certs       ${join(localDir, 'certs')}/`);
      expect(output).toMatch(/curl --cacert \S+ca\.crt --cert \S+order-service\.crt --key /);

      // What it printed works: its certificates, https, and the policy deciding.
      const certs = await readDevCertificates(join(localDir, 'certs'));
      const as = (name: string) =>
        new HttpClient({ tls: readTlsMaterial(credentialsOf(certs, name)) });
      const probe = as('health-probe');
      const gateway = as('order-service');
      try {
        for (const port of [base, base + 1, base + 2, base + 3]) {
          expect((await probe.request(`https://127.0.0.1:${port}/health/ready`)).status).toBe(200);
        }
        // Allowed versus denied.
        const orders = await gateway.request(
          `https://127.0.0.1:${base}/trading/orders?accountId=ACC-1`,
        );
        expect(orders.status).toBe(200);
        expect(orders.json()).toEqual({ orders: [], nextCursor: null });
        expect((await gateway.request(`https://127.0.0.1:${base}/metrics`)).status).toBe(403);
      } finally {
        probe.close();
        gateway.close();
      }
      const admin = new Kafka({ brokers: stack.kafkaBrokers, logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      try {
        expect(await admin.listTopics()).toEqual(
          expect.arrayContaining([`${topicPrefix}trading.events`, `${topicPrefix}tcc.commands`]),
        );
      } finally {
        await admin.disconnect();
      }

      const second = spawnSync(process.execPath, start(), { cwd: ROOT, env, encoding: 'utf8' });
      expect(second.status).toBe(1);
      expect(second.stderr).toMatch(/npm start is already running \(pid \d+/);
      const probeAgain = as('health-probe');
      expect((await probeAgain.request(`https://127.0.0.1:${base}/health/ready`)).status).toBe(200);
      probeAgain.close();

      const lock = JSON.parse(readFileSync(join(localDir, 'start.json'), 'utf8')) as {
        pids: number[];
      };
      expect(lock.pids).toHaveLength(4); // the stack was external, so only the services are its own
      expect(lock.pids.every(isPidAlive)).toBe(true);

      process.kill(-child.pid!, 'SIGINT');
      expect(await exited).toBe(0);
      expect(lock.pids.filter(isPidAlive)).toEqual([]);
      expect(existsSync(join(localDir, 'start.json'))).toBe(false);
    } finally {
      if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
    }
  });
});
