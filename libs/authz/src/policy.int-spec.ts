// The policy against what depends on it: the README table, the guard's open probes, and the tests
// that must exercise every allow rule (with `opa test` coverage of at least 90%).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { policyAllows, policyCoverage, policyDir, policyValue, repoRoot } from '@finance/testing';
import { ACCESS_ROWS, computeAccessTable, parseAccessTable, rowKey } from './access-table';
import { OPEN_PROBES } from './open-probes';

const MIN_COVERAGE = 90;

describe('finance.authz', () => {
  it("matches the README's who-may-call-what table cell for cell", async () => {
    const readme = parseAccessTable(readFileSync(join(repoRoot(), 'README.md'), 'utf8'));
    const { allowed } = await computeAccessTable(policyAllows);
    expect([...readme.keys()]).toEqual(ACCESS_ROWS.map(rowKey));
    const asObject = (table: Map<string, Set<string>>) =>
      Object.fromEntries([...table].map(([row, columns]) => [row, [...columns].sort()]));
    // On failure: run `npm run authz:table` if the policy changed on purpose.
    expect(asObject(readme)).toEqual(asObject(allowed));
  });

  it('opens exactly the paths the guard answers without asking OPA', async () => {
    const healthPaths = await policyValue<string[][]>('data.finance.authz.health_paths');
    expect(healthPaths.map((segments) => `/${segments.join('/')}`).sort()).toEqual(
      OPEN_PROBES.map((p) => p.path).sort(),
    );
    expect(OPEN_PROBES.every((p) => p.method === 'GET')).toBe(true);
  });

  it(`is covered by opa test to at least ${MIN_COVERAGE}%, every allow rule included`, async () => {
    const coverage = await policyCoverage();
    expect(coverage.percent).toBeGreaterThanOrEqual(MIN_COVERAGE);

    const policy = readFileSync(join(policyDir(), 'authz', 'authz.rego'), 'utf8');
    const tests = readFileSync(join(policyDir(), 'authz', 'authz_test.rego'), 'utf8');
    const rules = [...policy.matchAll(/^allowed_by contains "([^"]+)" if \{$/gm)].map((m) => m[1]);
    expect(rules.length).toBeGreaterThanOrEqual(14);
    // Each rule has a test that asserts it, by name, as the reason a request was allowed.
    expect(rules.filter((rule) => !tests.includes(`"allowed by ${rule}"`))).toEqual([]);
    // And no line of an allow rule's body is left unevaluated.
    const lines = policy.split('\n');
    const ruleRows = new Set<number>();
    lines.forEach((line, i) => {
      if (!line.startsWith('allowed_by contains ')) return;
      for (let row = i + 1; row <= lines.length && lines[row - 1] !== '}'; row++) ruleRows.add(row);
    });
    const uncovered = coverage.notCovered
      .filter((f) => f.file.endsWith('authz/authz.rego'))
      .flatMap((f) => f.rows)
      .filter((row) => ruleRows.has(row));
    expect(uncovered).toEqual([]);
  });
});
