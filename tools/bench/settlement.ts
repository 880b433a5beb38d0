// Settlement on a fresh database of the stack: ledger transfers/s and the time of one cycle over
// 100,000 trades. The measuring runs in a child process from apps/settlement/test, because a
// benchmark may not import an app.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '@finance/testing';
import { provisionBench } from './support';

export async function settlementBenchmark(flags: Record<string, string>): Promise<void> {
  await provisionBench(['settlement'], async ({ urls }) => {
    const child = spawn(
      process.execPath,
      [
        '-r',
        '@swc-node/register',
        join(repoRoot(), 'apps', 'settlement', 'test', 'settlement-bench.ts'),
      ],
      {
        cwd: repoRoot(),
        stdio: ['ignore', 'inherit', 'inherit'],
        env: {
          ...process.env,
          DATABASE_URL: urls[0],
          BENCH_TRADES: flags.trades ?? '100000',
          BENCH_ACCOUNTS: flags.accounts ?? '1000',
          BENCH_TRANSFERS: flags.transfers ?? '100000',
          BENCH_BATCH: flags.batch ?? '1000',
          BENCH_CONCURRENCY: flags.concurrency ?? '8',
        },
      },
    );
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    if (code !== 0) throw new Error(`the settlement benchmark exited ${code}`);
  });
}
