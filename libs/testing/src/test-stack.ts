// What integration and e2e tests get from the jest global setup: the real stack's addresses and a
// run id that keeps their databases and topics apart from any other run on the machine.
import { DevCertificates, readDevCertificates } from '@finance/dev-ca';
import { randomBytes } from 'node:crypto';
import { databaseUrl, ensureDatabases } from '@finance/local-stack';

export interface TestStack {
  runId: string;
  postgresAdminUrl: string;
  kafkaBrokers: string[];
  opaUrl: string;
  /** Prefix of every topic this run creates. */
  topicPrefix: string;
  /** This run's dev CA and certificates (the system's identities, the health probe and prometheus). */
  certDir: string;
}

export const TEST_STACK_ENV = 'FINANCE_TEST_STACK';

export function testStack(): TestStack {
  const raw = process.env[TEST_STACK_ENV];
  if (!raw) {
    throw new Error(
      `${TEST_STACK_ENV} is not set: integration tests must run through the jest global setup (npm test)`,
    );
  }
  return JSON.parse(raw) as TestStack;
}

/** Database names of a run start with its run id so teardown can find and drop them. */
export function runDatabasePrefix(runId: string): string {
  return `t_${runId}_`;
}

let counter = 0;

/** A new, empty database for one test file; dropped when the run ends. */
export async function createTestDatabase(label: string): Promise<{ name: string; url: string }> {
  const stack = testStack();
  // Each test file loads this module afresh (the counter restarts), so add randomness too.
  const suffix = `${process.pid.toString(36)}_${(counter++).toString(36)}_${randomBytes(3).toString('hex')}`;
  const name = `${runDatabasePrefix(stack.runId)}${label.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${suffix}`;
  await ensureDatabases(stack.postgresAdminUrl, [name]);
  return { name, url: databaseUrl(stack.postgresAdminUrl, name) };
}

/** The run's dev certificates, for launching services and calling them. */
export function testCertificates(): Promise<DevCertificates> {
  return readDevCertificates(testStack().certDir);
}
