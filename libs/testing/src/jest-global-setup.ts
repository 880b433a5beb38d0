// Jest global setup for integration and e2e tests: reuse a running local stack or start a private
// one, give this run an id so its databases and topics never meet another run's, and issue the
// run's own dev certificates and topics.
import './register-aliases';
import { join } from 'node:path';
import { DEV_IDENTITIES, writeDevCertificates } from '@finance/dev-ca';
import { ALL_TOPICS, topicName } from '@finance/contracts';
import {
  ensureTopics,
  readStackState,
  RunningStack,
  startStack,
  syncPolicies,
} from '@finance/local-stack';
import { localDir, repoRoot } from './paths';
import { TEST_STACK_ENV, TestStack } from './test-stack';

export interface GlobalRun {
  stack: TestStack;
  started?: RunningStack;
  dir?: string;
}

// Not an identity of the system; tests prove it may read /metrics and nothing else.
const PROMETHEUS = {
  name: 'prometheus',
  spiffeId: 'spiffe://cluster.local/ns/istio-system/sa/prometheus',
};

export default async function globalSetup(): Promise<void> {
  const runId = `${Date.now().toString(36)}${process.pid.toString(36)}`;
  const shared = await readStackState(join(localDir(), 'stack'));
  const policyDir = join(repoRoot(), 'libs', 'policies');
  const certDir = join(localDir(), 'test-runs', runId, 'certs');
  let run: GlobalRun;
  if (shared) {
    // A stack started before the last policy edit would otherwise decide with yesterday's policy.
    if (shared.opa && !shared.opa.external && shared.opa.policyDir === policyDir) {
      await syncPolicies(shared.addresses.opaUrl, policyDir);
    }
    run = {
      dir: join(localDir(), 'test-runs', runId),
      stack: { runId, topicPrefix: `t-${runId}.`, certDir, ...shared.addresses },
    };
  } else {
    const dir = join(localDir(), 'test-runs', runId);
    const started = await startStack({
      dir,
      policyDir,
      log: (line) => process.stderr.write(`[stack] ${line}\n`),
    });
    run = {
      started,
      dir,
      stack: {
        runId,
        topicPrefix: `t-${runId}.`,
        certDir,
        postgresAdminUrl: started.postgres.adminUrl,
        kafkaBrokers: started.kafka.brokers,
        opaUrl: started.opa.url,
      },
    };
  }
  await writeDevCertificates({ dir: certDir, identities: [...DEV_IDENTITIES, PROMETHEUS] });
  // Every topic of the system under the run's prefix: services expect them, as in production.
  await ensureTopics(
    run.stack.kafkaBrokers,
    ALL_TOPICS.map((t) => ({
      name: topicName(t, run.stack.topicPrefix),
      partitions: t.partitions,
    })),
  );
  process.env[TEST_STACK_ENV] = JSON.stringify(run.stack);
  (globalThis as { __financeRun?: GlobalRun }).__financeRun = run;
}
