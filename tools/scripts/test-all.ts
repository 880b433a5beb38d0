// `npm test`: every check of the repository in one run (format, lint, types, OPA policies, jest unit +
// integration + e2e on the real stack), ending with one line `N passed, N failed`.
import { spawn } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureOpaBinary } from '@finance/local-stack';
import { LOCAL_DIR, POLICY_DIR, ROOT } from './local-system';

const REPORTS = join(LOCAL_DIR, 'reports');
const bin = (name: string) => join(ROOT, 'node_modules', '.bin', name);

interface Outcome {
  step: string;
  passed: number;
  failed: number;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<number> {
  process.stdout.write(`\n$ ${[command, ...args].join(' ')}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: ROOT,
      stdio: 'inherit',
      env: { ...process.env, ...env },
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/** A step that is one check: it passes when the command exits 0. */
async function single(step: string, command: string, args: string[]): Promise<Outcome> {
  const code = await run(command, args);
  return { step, passed: code === 0 ? 1 : 0, failed: code === 0 ? 0 : 1 };
}

/** Each `opa test` case is a check of its own. */
async function opaTests(opa: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn(opa, ['test', POLICY_DIR, '--format', 'json'], { cwd: ROOT });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => process.stderr.write(c));
    child.on('exit', () => {
      try {
        const results = JSON.parse(out) as Array<{
          name: string;
          package: string;
          fail?: boolean;
          error?: unknown;
        }>;
        const failed = results.filter((r) => r.fail || r.error);
        for (const r of failed) process.stdout.write(`  FAIL ${r.package}.${r.name}\n`);
        process.stdout.write(
          `opa test: ${results.length - failed.length} passed, ${failed.length} failed\n`,
        );
        resolve({
          step: 'opa test',
          passed: results.length - failed.length,
          failed: failed.length,
        });
      } catch {
        process.stdout.write(out);
        resolve({ step: 'opa test', passed: 0, failed: 1 });
      }
    });
  });
}

async function jest(): Promise<Outcome> {
  const report = join(REPORTS, 'jest.json');
  const code = await run(bin('jest'), ['--ci', '--json', `--outputFile=${report}`]);
  try {
    const result = JSON.parse(await readFile(report, 'utf8')) as {
      numPassedTests: number;
      numFailedTests: number;
      numRuntimeErrorTestSuites: number;
    };
    // A suite that fails to load has no failed tests of its own but is a failed check.
    const failed = result.numFailedTests + result.numRuntimeErrorTestSuites;
    return {
      step: 'jest',
      passed: result.numPassedTests,
      failed: failed === 0 && code !== 0 ? 1 : failed,
    };
  } catch {
    return { step: 'jest', passed: 0, failed: 1 };
  }
}

async function main(): Promise<void> {
  await mkdir(REPORTS, { recursive: true });
  process.env.NX_DAEMON = 'false';
  process.env.NX_NO_CLOUD = 'true';
  const outcomes: Outcome[] = [];
  outcomes.push(await single('format', bin('prettier'), ['--check', '.', '--log-level', 'warn']));
  // The boundary lint rule reads the cached project graph and silently skips itself without one.
  outcomes.push(
    await single('nx graph', bin('nx'), ['graph', `--file=${join(REPORTS, 'graph.json')}`]),
  );
  outcomes.push(await single('lint', bin('eslint'), ['.', '--max-warnings', '0']));
  outcomes.push(await single('typecheck', bin('tsc'), ['-p', 'tsconfig.json', '--noEmit']));
  const opa = await ensureOpaBinary();
  outcomes.push(await single('opa check', opa, ['check', '--strict', POLICY_DIR]));
  outcomes.push(await opaTests(opa));
  // The manifest tools (kustomize, kubeconform, gator, actionlint, checkov, hadolint, CRD schemas),
  // fetched into the tools cache before jest's delivery checks use them (minutes once, then cached).
  outcomes.push(
    await single('delivery tools', process.execPath, [
      '-r',
      '@swc-node/register',
      join(ROOT, 'tools', 'delivery', 'src', 'toolchain.ts'),
    ]),
  );
  outcomes.push(await jest());

  process.stdout.write('\nsummary\n');
  for (const o of outcomes)
    process.stdout.write(`  ${o.step.padEnd(10)} ${o.passed} passed, ${o.failed} failed\n`);
  const passed = outcomes.reduce((n, o) => n + o.passed, 0);
  const failed = outcomes.reduce((n, o) => n + o.failed, 0);
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `test run aborted: ${error instanceof Error ? error.stack : String(error)}\n`,
  );
  process.stdout.write('0 passed, 1 failed\n');
  process.exit(1);
});
