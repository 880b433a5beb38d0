// The delivery manifests checked offline with the real tools (kustomize, kubeconform, gator,
// actionlint, checkov, hadolint) and against the code: the Istio rules against finance.authz, every
// Deployment against the service it runs, the topics against the contracts.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ALL_TOPICS, SERVICE_NAMES, type ServiceName } from '@finance/contracts';
import { ACCESS_ROWS, TABLE_CALLERS, caseInput, expandRow, type AccessCase } from '@finance/authz';
import { HealthController, workloadPrincipal } from '@finance/platform';
import { OPA_VERSION } from '@finance/local-stack';
import { policyAllows } from '@finance/testing';
import { buildService, entrypoint, ROOT } from './build';
import { istioAllows, type Request } from './istio-authz';
import { KUBERNETES_VERSIONS, ensureToolchain, run, type Toolchain } from './toolchain';

type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: any; // eslint-disable-line @typescript-eslint/no-explicit-any
};

// Which cluster each overlay targets: edge nodes run K3s v1.30 (seeds 000/001/003).
const OVERLAYS: Record<string, (typeof KUBERNETES_VERSIONS)[number]> = {
  dev: '1.33.0',
  prod: '1.33.0',
  edge: '1.30.0',
};
const PORTS: Record<ServiceName, number> = {
  trading: 3001,
  settlement: 3002,
  risk: 3003,
  compliance: 3004,
};

// Apps are leaves nothing imports (module boundaries), so their definition is read in a child
// process: the default port, the variables the config schema knows, and its verdict on `env`.
async function serviceFacts(
  service: ServiceName,
  env: Record<string, string>,
): Promise<{ defaultPort: number; variables: string[]; problems: unknown[] }> {
  const script = `
    const { ${service}Service: d } = require('./apps/${service}/src/service.ts');
    const { baseConfigSchema } = require('./libs/platform/src/index.ts');
    const schema = d.configSchema ?? baseConfigSchema;
    const r = schema.safeParse(JSON.parse(process.env.SAMPLE_ENV));
    process.stdout.write(JSON.stringify({ defaultPort: d.defaultPort,
      variables: Object.keys(schema.shape), problems: r.success ? [] : r.error.issues }));`;
  const out = await run(process.execPath, ['-r', '@swc-node/register', '-e', script], {
    cwd: ROOT,
    env: { SAMPLE_ENV: JSON.stringify(env), SWC_NODE_PROJECT: join(ROOT, 'tsconfig.json') },
  });
  if (out.code !== 0) throw new Error(`reading the ${service} definition: ${out.stderr}`);
  return JSON.parse(out.stdout) as {
    defaultPort: number;
    variables: string[];
    problems: unknown[];
  };
}

let tools: Toolchain;
const rendered = new Map<string, string>();

function objects(yamlText: string): Obj[] {
  return parseAllDocuments(yamlText)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);
}

async function kustomize(dir: string): Promise<string> {
  const result = await run(tools.kustomize, ['build', join(ROOT, dir)]);
  if (result.code !== 0) throw new Error(`kustomize build ${dir}: ${result.stderr}`);
  return result.stdout;
}

// First run builds the tools (a few minutes); later runs find them in the cache.
beforeAll(async () => {
  tools = await ensureToolchain();
  for (const overlay of Object.keys(OVERLAYS)) {
    rendered.set(overlay, await kustomize(`k8s/overlays/${overlay}`));
  }
}, 20 * 60_000);

async function kubeconform(file: string | undefined, input: string, version: string) {
  return run(
    tools.kubeconform,
    [
      '-strict',
      '-summary',
      '-output',
      'json',
      '-kubernetes-version',
      version,
      '-schema-location',
      `${tools.kubernetesSchemaDir}/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json`,
      '-schema-location',
      `${tools.crdSchemas}/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json`,
      file ?? '-',
    ],
    { input },
  );
}

describe('kustomize and kubeconform', () => {
  it.each(Object.entries(OVERLAYS))(
    'overlay %s renders and every object validates against its schema (Kubernetes %s and CRDs)',
    async (overlay, version) => {
      const out = await kubeconform(undefined, rendered.get(overlay)!, version);
      const summary = JSON.parse(out.stdout) as {
        summary: { valid: number; invalid: number; errors: number; skipped: number };
        resources: Array<{ kind: string; name: string; status: string; msg: string }>;
      };
      expect(summary.resources.filter((r) => r.status !== 'statusValid')).toEqual([]);
      expect(summary.summary.skipped).toBe(0);
      expect(summary.summary.valid).toBe(objects(rendered.get(overlay)!).length);
    },
  );

  it('the Gatekeeper policy and the Argo CD objects validate too', async () => {
    for (const dir of ['k8s/gatekeeper', 'argocd']) {
      const text = await kustomize(dir);
      // Constraints are instances of the templates' own kinds; gator checks them below.
      const checkable = objects(text).filter((o) => !o.apiVersion.startsWith('constraints.'));
      const yamlText = checkable.map((o) => JSON.stringify(o)).join('\n---\n');
      const out = await kubeconform(undefined, yamlText, '1.33.0');
      expect(`${out.stdout}${out.stderr}`).toContain('"invalid": 0');
      expect(out.code).toBe(0);
    }
  });

  it('rejects a malformed object (the schemas are really applied)', async () => {
    const bad =
      'apiVersion: kafka.strimzi.io/v1\nkind: KafkaTopic\nmetadata:\n  name: t\nspec:\n  partitions: ten\n';
    const out = await kubeconform(undefined, bad, '1.33.0');
    expect(out.code).not.toBe(0);
  });
});

describe('gatekeeper', () => {
  it('gator verify passes the suites (allowed and forbidden examples)', async () => {
    const out = await run(tools.gator, ['verify', join(ROOT, 'k8s', 'gatekeeper', 'tests')]);
    expect(`${out.stdout}${out.stderr}`).toMatch(/PASS/);
    expect(out.code).toBe(0);
  });

  async function violations(manifests: string): Promise<Array<{ msg: string }>> {
    const policy = await kustomize('k8s/gatekeeper');
    const dir = join(ROOT, '.local', 'delivery');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'policy.yaml'), policy);
    writeFileSync(join(dir, 'objects.yaml'), manifests);
    const out = await run(tools.gator, [
      'test',
      '-o',
      'json',
      '-f',
      join(dir, 'policy.yaml'),
      '-f',
      join(dir, 'objects.yaml'),
    ]);
    return (JSON.parse(out.stdout || 'null') as Array<{ msg: string }> | null) ?? [];
  }

  it('the rendered prod overlay violates no constraint', async () => {
    expect(await violations(rendered.get('prod')!)).toEqual([]);
  });

  it('the same prod Deployments without Kata are caught (the constraints do match them)', async () => {
    const broken = rendered.get('prod')!.replace(/\n\s+runtimeClassName: kata/g, '');
    const found = await violations(broken);
    expect(found.map((v) => v.msg).filter((m) => m.includes('runtimeClassName'))).toHaveLength(4);
  });

  it('the deliberately bad Deployment of the suite is caught by every constraint', async () => {
    const bad = readFileSync(
      join(ROOT, 'k8s/gatekeeper/tests/samples/bad-deployment.yaml'),
      'utf8',
    );
    const messages = (await violations(bad)).map((v) => v.msg).join('\n');
    for (const expected of [
      'runtimeClassName',
      'runAsNonRoot',
      'drop ALL',
      'seccomp',
      'resources.limits',
      'pinned by digest',
    ]) {
      expect(messages).toContain(expected);
    }
  });
});

describe('linters', () => {
  it('actionlint passes on the workflows', async () => {
    const out = await run(tools.actionlint, ['-no-color', '-oneline'], { cwd: ROOT });
    expect(out.stdout + out.stderr).toBe('');
    expect(out.code).toBe(0);
  });

  it('every third-party action is pinned by commit SHA', () => {
    const dir = join(ROOT, '.github', 'workflows');
    for (const file of readdirSync(dir)) {
      for (const [, ref] of readFileSync(join(dir, file), 'utf8').matchAll(/uses:\s*(\S+)/g)) {
        expect(`${file}: ${ref}`).toMatch(/@[0-9a-f]{40}$/);
      }
    }
  });

  it('checkov finds no failed check in the rendered overlays that is not skipped with a reason', async () => {
    const dir = join(ROOT, '.local', 'delivery');
    mkdirSync(dir, { recursive: true });
    const files = Object.keys(OVERLAYS).map((overlay) => {
      const file = join(dir, `checkov-${overlay}.yaml`);
      writeFileSync(file, rendered.get(overlay)!);
      return file;
    });
    const out = await run(
      tools.checkov,
      [
        ...files.flatMap((f) => ['-f', f]),
        '--framework',
        'kubernetes',
        '--output',
        'json',
        '--compact',
        '--quiet',
        '--skip-download',
        '--config-file',
        join(ROOT, 'k8s', '.checkov.yaml'),
      ],
      { cwd: ROOT },
    );
    type Report = {
      summary?: { passed: number };
      results?: { failed_checks: Array<{ check_id: string; resource: string }> };
    };
    const reports = ([] as Report[]).concat(JSON.parse(out.stdout || '[]') as Report | Report[]);
    const failed = reports.flatMap((r) => r.results?.failed_checks ?? []);
    expect(failed.map((f) => `${f.check_id} ${f.resource}`)).toEqual([]);
    expect(reports.reduce((n, r) => n + (r.summary?.passed ?? 0), 0)).toBeGreaterThan(100);
  }, 300_000);

  it('hadolint passes on the Dockerfile', async () => {
    const out = await run(tools.hadolint, ['--no-color', join(ROOT, 'Dockerfile')]);
    expect(out.stdout + out.stderr).toBe('');
    expect(out.code).toBe(0);
  });
});

describe('the image', () => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

  it('runs as user 1000 on a Node LTS base pinned by digest, with a healthcheck', () => {
    expect(dockerfile).toMatch(
      /ARG NODE_IMAGE=node:(2[02468])\.\d+\.\d+-[a-z-]+@sha256:[0-9a-f]{64}\n/,
    );
    expect(dockerfile).toMatch(/\nUSER 1000:1000\n/);
    expect(dockerfile).toMatch(/\nHEALTHCHECK .*CMD \["node", "healthcheck.cjs"\]\n/);
    expect(dockerfile).toMatch(/ENTRYPOINT \["node", "--enable-source-maps", "main.js"\]/);
    expect(existsSync(join(ROOT, '.dockerignore'))).toBe(true);
  });

  it.each(SERVICE_NAMES)(
    'nx build of %s writes the entrypoint the image runs, needing only production dependencies',
    async (service) => {
      const result = await buildService(service);
      expect(existsSync(entrypoint(service))).toBe(true);
      const { dependencies } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
        dependencies: Record<string, string>;
      };
      expect(result.packages.filter((p) => !(p in dependencies))).toEqual([]);
    },
  );
});

describe('consistency with the code', () => {
  const prod = () => objects(rendered.get('prod')!);

  it.each(SERVICE_NAMES)(
    'the %s Deployment matches what the service reads and serves',
    async (service) => {
      const objs = prod();
      const deployment = objs.find(
        (o) => o.kind === 'Deployment' && o.metadata.name === `${service}-service`,
      )!;
      const pod = deployment.spec.template.spec;
      const container = pod.containers.find((c: { name: string }) => c.name === service);
      // Identity: the ServiceAccount is the principal the policy and the mesh know.
      expect(
        `spiffe://cluster.local/ns/${deployment.metadata.namespace}/sa/${pod.serviceAccountName}`,
      ).toBe(workloadPrincipal(service));
      expect(
        objs.some((o) => o.kind === 'ServiceAccount' && o.metadata.name === pod.serviceAccountName),
      ).toBe(true);
      // Port: the service's default port, served by name http, which Service and probes use.
      const env = new Map<string, { value?: string }>(
        container.env.map((e: { name: string; value?: string }) => [e.name, e]),
      );
      // The Deployment's environment (secrets by a sample value) through the service's own schema.
      const sample = Object.fromEntries(
        [...env].map(([k, v]) => [
          k,
          v.value ?? (k === 'DATABASE_URL' ? 'postgresql://u:p@h:5432/db' : 'x'),
        ]),
      );
      const definition = await serviceFacts(service, sample);
      expect(definition.defaultPort).toBe(PORTS[service]);
      expect(container.ports).toEqual([
        { name: 'http', containerPort: PORTS[service], protocol: 'TCP' },
      ]);
      expect(env.get('PORT')?.value).toBe(String(PORTS[service]));
      const svc = objs.find(
        (o) => o.kind === 'Service' && o.metadata.name === `${service}-service`,
      )!;
      expect(svc.spec.ports[0]).toMatchObject({ port: PORTS[service], targetPort: 'http' });
      // Probes: the health endpoints the platform serves (HealthController: /health/live, /health/ready).
      const prefix = Reflect.getMetadata('path', HealthController);
      const route = (method: 'live' | 'ready') =>
        `/${prefix}/${Reflect.getMetadata('path', HealthController.prototype[method])}`;
      expect(container.livenessProbe.httpGet).toEqual({ path: route('live'), port: 'http' });
      expect(container.startupProbe.httpGet).toEqual({ path: route('live'), port: 'http' });
      expect(container.readinessProbe.httpGet).toEqual({ path: route('ready'), port: 'http' });
      // Env: only variables the service's schema knows; every required one set; mesh mode on, so no
      // TLS files; OPA is the sidecar.
      expect([...env.keys()].filter((name) => !definition.variables.includes(name))).toEqual([]);
      expect(definition.problems).toEqual([]);
      expect(env.get('MESH_MODE')?.value).toBe('true');
      expect(env.get('OPA_URL')?.value).toBe('http://127.0.0.1:8181');
      expect(
        container.env.find((e: { name: string }) => e.name === 'DATABASE_URL').valueFrom
          .secretKeyRef,
      ).toEqual({
        name: `${service}-db-app`,
        key: 'uri',
      });
      // The database it reads is its own CloudNativePG cluster.
      expect(
        objs.some(
          (o) =>
            o.kind === 'Cluster' &&
            o.metadata.name === `${service}-db` &&
            o.spec.bootstrap.initdb.database === service,
        ),
      ).toBe(true);
      // The OPA sidecar runs the OPA the tests use, with the ConfigMaps it mounts.
      const opa = pod.containers.find((c: { name: string }) => c.name === 'opa');
      expect(opa.image).toMatch(
        new RegExp(`/opa(:${OPA_VERSION.replace(/^v/, '')}-envoy|@sha256:[0-9a-f]{64})$`),
      );
      expect(opa.args).toContain('--addr=127.0.0.1:8181');
    },
  );

  it('the OPA sidecars load exactly the policies of libs/policies (test files aside)', () => {
    const policies = join(ROOT, 'libs', 'policies');
    const source = readdirSync(policies, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && e.name.endsWith('.rego') && !e.name.endsWith('_test.rego'))
      .map((e) => readFileSync(join(e.parentPath, e.name), 'utf8'))
      .sort();
    const copies = join(ROOT, 'k8s', 'base', 'opa', 'policies');
    const deployed = readdirSync(copies)
      .map((f) => readFileSync(join(copies, f), 'utf8'))
      .sort();
    expect(deployed).toEqual(source);
  });

  it("KafkaTopics are the contracts' topics with their partitions and retention, 3 replicas, min ISR 2", () => {
    const topics = prod().filter((o) => o.kind === 'KafkaTopic');
    expect(topics.map((t) => t.spec.topicName).sort()).toEqual(
      ALL_TOPICS.map((t) => t.name).sort(),
    );
    for (const topic of ALL_TOPICS) {
      const resource = topics.find((t) => t.spec.topicName === topic.name)!;
      expect(resource.spec).toEqual({
        topicName: topic.name,
        partitions: topic.partitions,
        replicas: 3,
        config: {
          'retention.ms': topic.retentionMs,
          'min.insync.replicas': 2,
          'cleanup.policy': 'delete',
        },
      });
      expect(resource.metadata.labels?.['strimzi.io/cluster']).toBe('finance-kafka');
    }
  });

  it('the audit log is kept 365 days', () => {
    const config = prod().find(
      (o) => o.kind === 'ConfigMap' && o.metadata.name === 'audit-log-config',
    )!;
    expect((config as unknown as { data: Record<string, string> }).data['audit.yaml']).toMatch(
      /retention_days: 365\n/,
    );
    const db = prod().find((o) => o.kind === 'Cluster' && o.metadata.name === 'compliance-db')!;
    expect(db.spec.backup.retentionPolicy).toBe('365d');
  });
});

describe('Istio authorization is the finance.authz matrix', () => {
  const UNKNOWN = 'spiffe://cluster.local/ns/other/sa/intruder';

  it('the ALLOW rules and the Rego allow exactly the same requests', async () => {
    const policies = objects(
      readFileSync(join(ROOT, 'istio', 'authorization-policies.yaml'), 'utf8'),
    );
    const callers = [...TABLE_CALLERS.map((c) => c.spiffeId), UNKNOWN];
    const cases: Array<{ c: AccessCase; caller: string }> = [];
    for (const row of ACCESS_ROWS) {
      for (const service of SERVICE_NAMES) {
        const example = row.example.replace('{service}', service);
        const path = example.split('?')[0];
        for (const variant of [example, `${path}/sub`]) {
          for (const caller of callers)
            cases.push({ c: { row, service, method: row.method, path: variant }, caller });
        }
      }
    }
    const rego = await policyAllows(
      cases.map(({ c, caller }) => caseInput(c, { spiffeId: caller })),
    );
    const differences = cases
      .map(({ c, caller }, i) => {
        const request: Request = {
          workloadLabels: { app: c.service, 'app.kubernetes.io/part-of': 'finance-core' },
          principal: caller.replace(/^spiffe:\/\//, ''),
          method: c.method,
          // Istio matches the path without its query string.
          path: c.path.split('?')[0],
        };
        const istio = istioAllows(policies, request);
        return istio === rego[i]
          ? undefined
          : `${c.method} ${c.path} on ${c.service} by ${caller}: rego ${rego[i]}, istio ${istio}`;
      })
      .filter(Boolean);
    expect(differences).toEqual([]);
    expect(rego.filter(Boolean).length).toBeGreaterThan(50);
  }, 120_000);

  it("OPA decides every request but the probes (CUSTOM), and the provider is the mesh's", () => {
    const ext = objects(readFileSync(join(ROOT, 'istio', 'ext-authz.yaml'), 'utf8'));
    const custom = ext.find((o) => o.kind === 'AuthorizationPolicy')!;
    expect(custom.spec.action).toBe('CUSTOM');
    expect(custom.spec.rules).toEqual([
      { to: [{ operation: { notPaths: ['/health/live', '/health/ready'] } }] },
    ]);
    const mesh = objects(
      readFileSync(join(ROOT, 'istio', 'install', 'istio-operator.yaml'), 'utf8'),
    )[0];
    const provider = mesh.spec.meshConfig.extensionProviders.find(
      (p: { name: string }) => p.name === custom.spec.provider.name,
    );
    const entry = ext.find((o) => o.kind === 'ServiceEntry')!;
    expect(provider.envoyExtAuthzGrpc).toMatchObject({
      service: entry.spec.hosts[0],
      port: entry.spec.ports[0].number,
    });
    const opaConfig = readFileSync(join(ROOT, 'k8s', 'base', 'opa', 'config.yaml'), 'utf8');
    expect(opaConfig).toContain(`addr: 127.0.0.1:${entry.spec.ports[0].number}`);
    expect(mesh.spec.components.cni.enabled).toBe(true);
  });

  it('each service accepts connections (NetworkPolicy) from exactly the workloads the matrix lets call it', async () => {
    const objs = objects(rendered.get('prod')!);
    // The four services carry app=<service>; the other callers app=<identity>.
    const workloadOf = new Map(
      TABLE_CALLERS.map((c) => [
        c.spiffeId,
        c.column.replace(/^(trading|settlement|risk|compliance)-service$/, '$1'),
      ]),
    );
    const cases: Array<{ c: AccessCase; caller: string }> = [];
    // Only the routes each service serves (the table's "served by"); probes come from the kubelet.
    for (const row of ACCESS_ROWS.filter((r) => !r.pattern.startsWith('/health'))) {
      for (const c of expandRow(row)) {
        for (const caller of TABLE_CALLERS) {
          cases.push({ c: { ...c, path: c.path.split('?')[0] }, caller: caller.spiffeId });
        }
      }
    }
    const answers = await policyAllows(
      cases.map(({ c, caller }) => caseInput(c, { spiffeId: caller })),
    );
    for (const service of SERVICE_NAMES) {
      const expected = new Set(
        cases
          .filter(
            ({ c, caller }, i) =>
              answers[i] &&
              c.service === service &&
              !caller.includes('/istio-system/') &&
              !caller.endsWith('/health-probe'),
          )
          .map(({ caller }) => workloadOf.get(caller)!),
      );
      const policy = objs.find(
        (o) => o.kind === 'NetworkPolicy' && o.metadata.name === `${service}-service`,
      )!;
      const allowed = new Set<string>(
        policy.spec.ingress[0].from.map(
          (f: { podSelector: { matchLabels: { app: string } } }) => f.podSelector.matchLabels.app,
        ),
      );
      expect([...allowed].sort()).toEqual([...expected].sort());
      expect(policy.spec.ingress[0].ports).toEqual([{ port: PORTS[service], protocol: 'TCP' }]);
    }
  }, 120_000);
});
