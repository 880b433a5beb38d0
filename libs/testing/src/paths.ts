// Locations inside the repository, independent of the current working directory.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

export function repoRoot(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'nx.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the repository root (nx.json)');
    dir = parent;
  }
  return dir;
}

/** Where local state lives: `.local/` unless FINANCE_LOCAL_DIR says otherwise. */
export function localDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.FINANCE_LOCAL_DIR ?? join(repoRoot(), '.local');
}
