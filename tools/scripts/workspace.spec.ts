// The workspace's shape is enforced: Nx sees every project, and lint rejects imports that cross
// the boundaries the tags declare.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const BOUNDARY_RULE = '@nx/enforce-module-boundaries';

// The real CLI, as `npm test` runs it, fed the file on stdin as if it existed at `file`.
async function boundaryErrors(file: string, code: string): Promise<string[]> {
  const result = spawnSync(
    join(ROOT, 'node_modules', '.bin', 'eslint'),
    ['--stdin', '--stdin-filename', join(ROOT, file), '--format', 'json'],
    { cwd: ROOT, input: code, encoding: 'utf8', env: { ...process.env, NX_DAEMON: 'false' } },
  );
  const [report] = JSON.parse(result.stdout) as Array<{
    messages: Array<{ ruleId: string; message: string }>;
  }>;
  return report.messages.filter((m) => m.ruleId === BOUNDARY_RULE).map((m) => m.message);
}

describe('workspace', () => {
  let graphFile: string;

  // Also the cache the lint rule reads: without it the rule skips itself and would prove nothing.
  beforeAll(() => {
    graphFile = join(mkdtempSync(join(tmpdir(), 'nx-graph-')), 'graph.json');
    execFileSync(join(ROOT, 'node_modules', '.bin', 'nx'), ['graph', `--file=${graphFile}`], {
      cwd: ROOT,
      env: { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true' },
      stdio: 'pipe',
    });
  }, 60_000);

  it('nx graph shows the four apps and the libraries', () => {
    const graph = JSON.parse(readFileSync(graphFile, 'utf8')) as {
      graph: {
        nodes: Record<string, { type: string }>;
        dependencies: Record<string, Array<{ target: string }>>;
      };
    };
    const { nodes, dependencies } = graph.graph;
    for (const app of ['trading', 'settlement', 'risk', 'compliance']) {
      expect(nodes[app]?.type).toBe('app');
      expect(dependencies[app].map((d) => d.target)).toEqual(
        expect.arrayContaining(['platform', 'authz']),
      );
    }
    for (const lib of [
      'contracts',
      'money',
      'platform',
      'authz',
      'testing',
      'local-stack',
      'dev-ca',
      'policies',
    ]) {
      expect(nodes[lib]?.type).toBe('lib');
    }
  });

  it('rejects an app importing another app', async () => {
    const errors = await boundaryErrors(
      'apps/trading/src/cross-app.ts',
      "import { SettlementModule } from '../../settlement/src/settlement.module';\nexport const m = SettlementModule;\n",
    );
    expect(errors.join('\n')).toMatch(/relative or absolute path|Imports of apps are forbidden/);
  }, 60_000);

  it('rejects domain code importing infrastructure', async () => {
    const errors = await boundaryErrors(
      'libs/money/src/leak.ts',
      "import { createLogger } from '@finance/platform';\nexport const l = createLogger;\n",
    );
    expect(errors.join('\n')).toMatch(/type:domain/);
  }, 60_000);

  it('rejects contracts depending on anything of ours', async () => {
    const errors = await boundaryErrors(
      'libs/contracts/src/leak.ts',
      "import { parseMoney } from '@finance/money';\nexport const p = parseMoney;\n",
    );
    expect(errors.join('\n')).toMatch(/type:contracts/);
  }, 60_000);

  it('accepts an app using a shared infrastructure library', async () => {
    const errors = await boundaryErrors(
      'apps/trading/src/ok.ts',
      "import { runService } from '@finance/platform';\nexport const r = runService;\n",
    );
    expect(errors).toEqual([]);
  }, 60_000);
});
