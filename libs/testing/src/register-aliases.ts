// Resolves `@finance/*` imports from tsconfig paths in code jest loads outside its module
// registry (global setup and teardown), where moduleNameMapper does not apply.
import Module from 'node:module';
import { join } from 'node:path';
import { repoRoot } from './paths';

const root = repoRoot();
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { compilerOptions } = require(join(root, 'tsconfig.base.json')) as {
  compilerOptions: { paths: Record<string, string[]> };
};
const aliases = new Map(
  Object.entries(compilerOptions.paths).map(([alias, [target]]) => [alias, join(root, target)]),
);

type Resolve = (request: string, ...rest: unknown[]) => string;
const internal = Module as unknown as { _resolveFilename: Resolve };
const original = internal._resolveFilename;
internal._resolveFilename = function (request: string, ...rest: unknown[]) {
  return original.call(this, aliases.get(request) ?? request, ...rest);
};
