// Nx plugin: gives every service (apps/*/project.json) a cached `build` target that compiles it for
// its container image with tools/delivery/src/build.ts, so `nx affected -t build` and `nx build
// trading` work without each app declaring the same target.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { CreateNodesV2, TargetConfiguration } from '@nx/devkit';

function buildTarget(service: string): TargetConfiguration {
  return {
    executor: 'nx:run-commands',
    cache: true,
    inputs: ['production', '^production', '{workspaceRoot}/tools/delivery/src/build.ts'],
    outputs: [`{workspaceRoot}/dist/apps/${service}`],
    options: {
      command: `node -r @swc-node/register tools/delivery/src/build.ts ${service}`,
      cwd: '{workspaceRoot}',
    },
  };
}

export const createNodesV2: CreateNodesV2 = [
  'apps/*/project.json',
  (files, _options, context) =>
    files.map((file) => {
      const root = dirname(file);
      const { name } = JSON.parse(readFileSync(join(context.workspaceRoot, file), 'utf8')) as {
        name: string;
      };
      return [file, { projects: { [root]: { targets: { build: buildTarget(name) } } } }];
    }),
];

export const createNodes = createNodesV2;
