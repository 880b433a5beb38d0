// Evaluates the repository's Rego policies with the real OPA binary, without a server: the README's
// who-may-call-what table and the policy coverage gate use it.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ensureOpaBinary } from '@finance/local-stack';
import { repoRoot } from './paths';

export function policyDir(): string {
  return join(repoRoot(), 'libs', 'policies');
}

async function runOpa(args: string[], stdin?: string): Promise<string> {
  const opa = await ensureOpaBinary();
  return new Promise((resolve, reject) => {
    const child = spawn(opa, args, { cwd: repoRoot() });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`opa ${args[0]} exited ${code}: ${err}${out}`)),
    );
    child.stdin.end(stdin ?? '');
  });
}

/** `data.finance.authz.allow` for each input, in one `opa eval`. */
export async function policyAllows(inputs: unknown[]): Promise<boolean[]> {
  const out = await runOpa(
    [
      'eval',
      '--format',
      'json',
      '--stdin-input',
      '--data',
      policyDir(),
      '--ignore',
      '*_test.rego',
      '--ignore',
      'project.json',
      'answers := [allowed | some c in input.cases; allowed := data.finance.authz.allow with input as c]',
    ],
    JSON.stringify({ cases: inputs }),
  );
  const parsed = JSON.parse(out) as { result: Array<{ bindings: { answers: boolean[] } }> };
  return parsed.result[0].bindings.answers;
}

/** Any rego value of the policies (e.g. `data.finance.authz.health_paths`). */
export async function policyValue<T>(ref: string): Promise<T> {
  const out = await runOpa([
    'eval',
    '--format',
    'json',
    '--data',
    policyDir(),
    '--ignore',
    '*_test.rego',
    '--ignore',
    'project.json',
    `value := ${ref}`,
  ]);
  return (JSON.parse(out) as { result: Array<{ bindings: { value: T } }> }).result[0].bindings
    .value;
}

export interface PolicyCoverage {
  /** Percent of the policy lines (test files excluded) that some test evaluated. */
  percent: number;
  notCovered: Array<{ file: string; rows: number[] }>;
}

export async function policyCoverage(): Promise<PolicyCoverage> {
  const out = await runOpa(['test', '--coverage', '--format', 'json', policyDir()]);
  type Range = { start: { row: number }; end: { row: number } };
  const report = JSON.parse(out) as {
    files: Record<
      string,
      { covered_lines?: number; not_covered_lines?: number; not_covered?: Range[] }
    >;
  };
  let covered = 0;
  let total = 0;
  const notCovered: PolicyCoverage['notCovered'] = [];
  for (const [file, stats] of Object.entries(report.files)) {
    if (file.endsWith('_test.rego')) continue;
    covered += stats.covered_lines ?? 0;
    total += (stats.covered_lines ?? 0) + (stats.not_covered_lines ?? 0);
    const rows = (stats.not_covered ?? []).flatMap((r) =>
      Array.from({ length: r.end.row - r.start.row + 1 }, (_, i) => r.start.row + i),
    );
    if (rows.length > 0) notCovered.push({ file, rows: [...new Set(rows)] });
  }
  return { percent: total === 0 ? 0 : (100 * covered) / total, notCovered };
}
