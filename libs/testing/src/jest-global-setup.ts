// Jest global setup for integration and e2e tests: reuse a running local stack or start a private
// one, and give this run an id so its databases and topics never meet another run's.
import './register-aliases';
import { join } from 'node:path';
import { readStackState, RunningStack, startStack } from '@finance/local-stack';
import { localDir, repoRoot } from './paths';
import { TEST_STACK_ENV, TestStack } from './test-stack';

export interface GlobalRun {
  stack: TestStack;
  started?: RunningStack;
  dir?: string;
}

export default async function globalSetup(): Promise<void> {
  const runId = `${Date.now().toString(36)}${process.pid.toString(36)}`;
  const shared = await readStackState(join(localDir(), 'stack'));
  let run: GlobalRun;
  if (shared) {
    run = { stack: { runId, topicPrefix: `t-${runId}.`, ...shared.addresses } };
  } else {
    const dir = join(localDir(), 'test-runs', runId);
    const started = await startStack({
      dir,
      policyDir: join(repoRoot(), 'libs', 'policies'),
      log: (line) => process.stderr.write(`[stack] ${line}\n`),
    });
    run = {
      started,
      dir,
      stack: {
        runId,
        topicPrefix: `t-${runId}.`,
        postgresAdminUrl: started.postgres.adminUrl,
        kafkaBrokers: started.kafka.brokers,
        opaUrl: started.opa.url,
      },
    };
  }
  process.env[TEST_STACK_ENV] = JSON.stringify(run.stack);
  (globalThis as { __financeRun?: GlobalRun }).__financeRun = run;
}
