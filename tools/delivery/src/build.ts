// Compiles one service for its container image: every TypeScript file reachable from
// apps/<name>/src/main.ts, with the @finance/* aliases rewritten to relative paths, into
// dist/apps/<name>/ (the layout of the repository kept below it) plus dist/apps/<name>/main.js,
// the image's entrypoint. It also lists the npm packages the output requires, which the image
// must get from `npm ci --omit=dev`.
import { transformFile, type Options } from '@swc/core';
import { builtinModules } from 'node:module';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { SERVICE_NAMES, type ServiceName } from '@finance/contracts';

export const ROOT = resolve(__dirname, '..', '..', '..');

export function distDir(service: ServiceName): string {
  return join(ROOT, 'dist', 'apps', service);
}

/** The file the image runs (`node dist/apps/<name>/main.js`). */
export function entrypoint(service: ServiceName): string {
  return join(distDir(service), 'main.js');
}

export interface BuildResult {
  service: ServiceName;
  entrypoint: string;
  files: number;
  /** Bare specifiers the output requires, reduced to package names (`@nestjs/core`, `pg`). */
  packages: string[];
}

// Same decorator semantics as the jest transform and @swc-node/register the services run with today.
function swcOptions(): Options {
  const { compilerOptions } = JSON.parse(
    readFileSync(join(ROOT, 'tsconfig.base.json'), 'utf8'),
  ) as {
    compilerOptions: { paths: Record<string, string[]> };
  };
  return {
    swcrc: false,
    configFile: false,
    sourceMaps: true,
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true, useDefineForClassFields: false },
      target: 'es2022',
      baseUrl: ROOT,
      paths: compilerOptions.paths,
    },
    module: { type: 'commonjs' },
  };
}

function resolveSource(from: string, specifier: string): string {
  const base = resolve(dirname(from), specifier);
  for (const candidate of [`${base}.ts`, join(base, 'index.ts')]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  throw new Error(`${relative(ROOT, from)}: cannot resolve '${specifier}' to a .ts file`);
}

function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

export async function buildService(service: ServiceName): Promise<BuildResult> {
  const out = distDir(service);
  await rm(out, { recursive: true, force: true });
  const options = swcOptions();
  const main = join(ROOT, 'apps', service, 'src', 'main.ts');
  const queue = [main];
  const seen = new Set(queue);
  const packages = new Set<string>();
  while (queue.length > 0) {
    const file = queue.shift()!;
    const { code, map } = await transformFile(file, { ...options, filename: file });
    const target = join(out, relative(ROOT, file)).replace(/\.ts$/, '.js');
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, `${code}\n//# sourceMappingURL=${target.split('/').pop()}.map\n`);
    if (map) await writeFile(`${target}.map`, map);
    // Imports compile to require("…"); a lazy require('…') in the source keeps its quotes.
    for (const [, , specifier] of code.matchAll(/require\((["'])([^"']+)\1\)/g)) {
      if (specifier.startsWith('.')) {
        const source = resolveSource(file, specifier);
        if (!seen.has(source)) {
          seen.add(source);
          queue.push(source);
        }
      } else if (!BUILTINS.has(specifier)) {
        packages.add(packageName(specifier));
      }
    }
  }
  const entry = entrypoint(service);
  // Tracing starts first (off unless OTEL_TRACES_EXPORTER says): its instrumentations patch
  // modules as they load. The service's own code reaches the observability library already.
  const observability = join(ROOT, 'libs', 'observability', 'src', 'index.ts');
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    version: string;
  };
  if (!seen.has(observability)) throw new Error(`${service} does not reach ${observability}`);
  await writeFile(
    entry,
    `// Entrypoint of the ${service} image, written by tools/delivery/src/build.ts.\n` +
      `require('./${relative(ROOT, observability).replace(/\.ts$/, '.js')}').startTracingOrExit('${service}', '${version}');\n` +
      `require('./${relative(ROOT, main).replace(/\.ts$/, '.js')}');\n`,
  );
  return { service, entrypoint: entry, files: seen.size, packages: [...packages].sort() };
}

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const services = wanted.length === 0 ? [...SERVICE_NAMES] : wanted;
  for (const name of services) {
    if (!(SERVICE_NAMES as readonly string[]).includes(name)) {
      throw new Error(`unknown service '${name}' (one of ${SERVICE_NAMES.join(', ')})`);
    }
    const result = await buildService(name as ServiceName);
    process.stdout.write(
      `${name}: ${result.files} files -> ${relative(ROOT, result.entrypoint)} (requires ${result.packages.join(', ')})\n`,
    );
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(
      `build failed: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    process.exit(1);
  });
}
