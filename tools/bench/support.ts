// What every benchmark needs: the real stack (running, or a private one), its own databases and a
// topic prefix, all removed afterwards.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  databaseUrl,
  deleteTopicsWithPrefix,
  dropDatabases,
  ensureDatabases,
  readStackState,
  RunningStack,
  startStack,
} from '@finance/local-stack';
import { localDir, repoRoot } from '@finance/testing';

export interface BenchEnvironment {
  id: string;
  /** One database URL per requested label, in order. */
  urls: string[];
  postgresAdminUrl: string;
  kafkaBrokers: string[];
  /** OPA with the repository's policies (for benchmarks that run the services). */
  opaUrl: string;
  /** Put before every topic the benchmark uses. */
  prefix: string;
}

export async function provisionBench(
  labels: string[],
  work: (env: BenchEnvironment) => Promise<void>,
): Promise<void> {
  const id = `bench_${Date.now().toString(36)}`;
  const shared = await readStackState(join(localDir(), 'stack'));
  let stack: RunningStack | undefined;
  const dir = join(localDir(), 'bench', id);
  try {
    let postgresAdminUrl: string;
    let kafkaBrokers: string[];
    let opaUrl: string;
    if (shared) {
      ({ postgresAdminUrl, kafkaBrokers, opaUrl } = shared.addresses);
    } else {
      stack = await startStack({
        dir,
        policyDir: join(repoRoot(), 'libs', 'policies'),
        log: () => undefined,
      });
      postgresAdminUrl = stack.postgres.adminUrl;
      kafkaBrokers = stack.kafka.brokers;
      opaUrl = stack.opa.url;
    }
    const names = labels.map((label) => `${id}_${label}`);
    await ensureDatabases(postgresAdminUrl, names);
    const prefix = `${id}.`;
    try {
      await work({
        id,
        urls: names.map((n) => databaseUrl(postgresAdminUrl, n)),
        postgresAdminUrl,
        kafkaBrokers,
        opaUrl,
        prefix,
      });
    } finally {
      // BENCH_KEEP=1 leaves the databases for a look at what happened.
      if (process.env.BENCH_KEEP !== '1') {
        await dropDatabases(postgresAdminUrl, names).catch(() => undefined);
        await deleteTopicsWithPrefix(kafkaBrokers, prefix).catch(() => undefined);
      } else process.stdout.write(`kept databases ${names.join(', ')}\n`);
    }
  } finally {
    await stack?.stop();
    if (stack) await rm(dir, { recursive: true, force: true });
  }
}

export async function waitFor(
  condition: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
