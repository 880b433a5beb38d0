// Pre-trade decision latency of risk: the policy evaluation alone (Wasm in-process, and the OPA
// sidecar's round trip for comparison) and the whole Try (participant barrier, checks, reservation
// and reply, committed) on a fresh database of the stack. The measuring runs in a child process from
// apps/risk/test, because a benchmark may not import an app.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '@finance/testing';
import { provisionBench } from './support';

export async function riskBenchmark(flags: Record<string, string>): Promise<void> {
  await provisionBench(['risk'], async ({ urls, opaUrl }) => {
    const child = spawn(
      process.execPath,
      ['-r', '@swc-node/register', join(repoRoot(), 'apps', 'risk', 'test', 'pre-trade-bench.ts')],
      {
        cwd: repoRoot(),
        stdio: ['ignore', 'inherit', 'inherit'],
        env: {
          ...process.env,
          DATABASE_URL: urls[0],
          OPA_URL: opaUrl,
          BENCH_EVALUATIONS: flags.evaluations ?? '20000',
          BENCH_SIDECAR: flags.sidecar ?? '2000',
          BENCH_TRIES: flags.tries ?? '3000',
        },
      },
    );
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    if (code !== 0) throw new Error(`the risk benchmark exited ${code}`);
  });
}
