// Removes what the run created (its databases and topics) and stops the stack if the run started it.
import './register-aliases';
import { rm } from 'node:fs/promises';
import { deleteTopicsWithPrefix, dropDatabasesWithPrefix } from '@finance/local-stack';
import type { GlobalRun } from './jest-global-setup';
import { runDatabasePrefix } from './test-stack';

export default async function globalTeardown(): Promise<void> {
  const run = (globalThis as { __financeRun?: GlobalRun }).__financeRun;
  if (!run) return;
  if (run.started) {
    // A private stack goes away whole, data included.
    await run.started.stop();
    if (run.dir) await rm(run.dir, { recursive: true, force: true });
    return;
  }
  await dropDatabasesWithPrefix(run.stack.postgresAdminUrl, runDatabasePrefix(run.stack.runId));
  await deleteTopicsWithPrefix(run.stack.kafkaBrokers, run.stack.topicPrefix);
  if (run.dir) await rm(run.dir, { recursive: true, force: true }); // the run's certificates
}
