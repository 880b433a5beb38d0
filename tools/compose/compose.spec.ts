// docker-compose.yml is valid against the real Compose spec schema and wired the way the docs say.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { parse } from 'yaml';
import { loadComposeSchema } from './compose-schema';

const ROOT = join(__dirname, '..', '..');
const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');
const START_LINE =
  'POSTGRES_URL=postgres://postgres:postgres@localhost:5432/postgres KAFKA_BROKERS=localhost:9092 OPA_URL=http://localhost:8181 npm start';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Dict = Record<string, unknown>;

interface Service {
  image: string;
  command?: string[];
  environment: Record<string, unknown>;
  ports: string[];
  volumes: string[];
  healthcheck?: { test?: string | string[] };
}

// Compose interpolates ${VAR}, ${VAR:-default}, ${VAR-default} and $VAR before validating; an
// empty environment makes the result deterministic and exercises the defaults users get.
function interpolate(value: Json, env: Record<string, string | undefined>): Json {
  if (typeof value === 'string') {
    return value.replace(
      /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])((?:[^}])*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
      (match, name?: string, colon?: string, op?: string, arg?: string, bare?: string) => {
        if (match === '$$') return '$';
        const key = (name ?? bare) as string;
        const current = env[key];
        const missing = colon ? current === undefined || current === '' : current === undefined;
        if (!missing) return current as string;
        if (op === '?') throw new Error(`required variable ${key} is not set: ${arg ?? ''}`);
        return op === '-' ? (arg ?? '') : '';
      },
    );
  }
  if (Array.isArray(value)) return value.map((v) => interpolate(v, env));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env)]));
  }
  return value;
}

function formatErrors(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`)
    .join('\n');
}

// "127.0.0.1:5432:5432" -> { host: '127.0.0.1', published: 5432, target: 5432 }
function parsePort(spec: string): { host: string; published: number; target: number } {
  const match = /^(\d+\.\d+\.\d+\.\d+):(\d+):(\d+)(?:\/tcp)?$/.exec(spec);
  if (!match) throw new Error(`port ${spec} is not host_ip:published:target`);
  return { host: match[1], published: Number(match[2]), target: Number(match[3]) };
}

// Lines in docs that tell users how to point `npm start` at the containers.
function startLines(text: string): string[] {
  return text
    .split('\n')
    .filter((line) => line.includes('POSTGRES_URL=') && line.includes('npm start'));
}

function parseStartLine(line: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const match of line.matchAll(/([A-Z_]+)=([^\s`'"]+)/g)) vars[match[1]] = match[2];
  return vars;
}

describe('docker-compose.yml', () => {
  const text = readFileSync(COMPOSE_FILE, 'utf8');
  const raw = parse(text) as Json;
  const config = interpolate(raw, {}) as unknown as {
    services: Record<string, Service>;
    volumes?: Dict;
  };
  let validate: ValidateFunction;

  beforeAll(async () => {
    const schema = await loadComposeSchema();
    // The schema declares draft 2020-12. Unknown keywords or formats still throw (strictSchema);
    // only the type-annotation lint is off, as it flags the upstream schema's style, not our file.
    const ajv = new Ajv2020({
      allErrors: true,
      strictSchema: true,
      strictTypes: false,
      allowUnionTypes: true,
    });
    addFormats(ajv);
    validate = ajv.compile(schema);
  }, 300_000);

  it('validates against the Compose specification schema', () => {
    for (const doc of [config, raw]) {
      const ok = validate(doc);
      if (!ok) throw new Error(`schema errors:\n${formatErrors(validate.errors)}`);
      expect(ok).toBe(true);
    }
  });

  it('rejects a broken copy, so the validation can fail', () => {
    const broken = (
      mutate: (c: Dict & { services: Record<string, Dict> }) => void,
    ): ErrorObject[] => {
      const copy = structuredClone(config) as unknown as Dict & { services: Record<string, Dict> };
      mutate(copy);
      expect(validate(copy)).toBe(false);
      return validate.errors ?? [];
    };
    const unknownServiceKey = broken((c) => {
      c.services.postgres.imagee = 'postgres:17';
    });
    expect(formatErrors(unknownServiceKey)).toContain('imagee');
    const unknownHealthcheckKey = broken((c) => {
      (c.services.kafka.healthcheck as Dict).intervall = '5s';
    });
    expect(formatErrors(unknownHealthcheckKey)).toContain('intervall');
    broken((c) => {
      c.services.opa.ports = 8181;
    });
    broken((c) => {
      c.servces = c.services;
    });
  });

  it('runs exactly postgres, kafka and opa with healthchecks, published on loopback only', () => {
    expect(Object.keys(config.services).sort()).toEqual(['kafka', 'opa', 'postgres']);
    for (const [name, service] of Object.entries(config.services)) {
      expect({ name, test: service.healthcheck?.test }).toEqual({ name, test: expect.anything() });
      for (const port of service.ports)
        expect({ name, host: parsePort(port).host }).toEqual({ name, host: '127.0.0.1' });
    }
  });

  it('postgres: official 17 image, port 5432, dev password by interpolation, init script', () => {
    const pg = config.services.postgres;
    expect(pg.image).toBe('postgres:17');
    expect(pg.ports.map(parsePort)).toEqual([{ host: '127.0.0.1', published: 5432, target: 5432 }]);
    const rawPg = (raw as unknown as { services: Record<string, Service> }).services.postgres;
    expect(rawPg.environment.POSTGRES_PASSWORD).toBe('${POSTGRES_PASSWORD:-postgres}');
    expect(pg.environment.POSTGRES_PASSWORD).toBe('postgres');
    expect(pg.environment.POSTGRES_USER).toBe('postgres');
    const init = pg.volumes.find((v) => v.includes('/docker-entrypoint-initdb.d/'));
    expect(init).toMatch(
      /^\.\/tools\/compose\/init-databases\.sql:\/docker-entrypoint-initdb\.d\/[^:]+\.sql:ro$/,
    );
  });

  it('the init script creates the four service databases', () => {
    const sql = readFileSync(join(ROOT, 'tools', 'compose', 'init-databases.sql'), 'utf8').replace(
      /--.*$/gm,
      '',
    );
    const created = [...sql.matchAll(/CREATE\s+DATABASE\s+"?([a-z_]+)"?\s*;/gi)]
      .map((m) => m[1])
      .sort();
    expect(created).toEqual(['compliance', 'risk', 'settlement', 'trading']);
  });

  it('kafka: KRaft single node on 9092 advertised as localhost, no topic auto-creation', () => {
    const kafka = config.services.kafka;
    const env = kafka.environment;
    expect(kafka.image).toBe('apache/kafka:3.9.1');
    expect(kafka.ports.map(parsePort)).toEqual([
      { host: '127.0.0.1', published: 9092, target: 9092 },
    ]);
    expect(env.KAFKA_PROCESS_ROLES).toBe('broker,controller');
    expect(String(env.KAFKA_LISTENERS)).toMatch(/(^|,)PLAINTEXT:\/\/[^,]*:9092(,|$)/);
    expect(String(env.KAFKA_LISTENERS)).toMatch(/(^|,)CONTROLLER:\/\//);
    expect(env.KAFKA_ADVERTISED_LISTENERS).toBe('PLAINTEXT://localhost:9092');
    expect(env.KAFKA_CONTROLLER_LISTENER_NAMES).toBe('CONTROLLER');
    // A string, as the brief's env contract says; YAML `false` would also pass the schema.
    expect(env.KAFKA_AUTO_CREATE_TOPICS_ENABLE).toBe('false');
    for (const key of [
      'KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR',
      'KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR',
      'KAFKA_TRANSACTION_STATE_LOG_MIN_ISR',
    ]) {
      expect({ key, value: String(env[key]) }).toEqual({ key, value: '1' });
    }
  });

  it('opa: 1.22.2 serving libs/policies read-only on 8181 with JSON logs', () => {
    const opa = config.services.opa;
    expect(opa.image).toBe('openpolicyagent/opa:1.22.2');
    expect(opa.ports.map(parsePort)).toEqual([
      { host: '127.0.0.1', published: 8181, target: 8181 },
    ]);
    expect(opa.volumes).toContain('./libs/policies:/policies:ro');
    const command = opa.command ?? [];
    expect(command.slice(0, 2)).toEqual(['run', '--server']);
    expect(command[command.indexOf('--addr') + 1]).toBe(':8181');
    expect(command[command.indexOf('--log-format') + 1]).toBe('json');
    expect(command[command.length - 1]).toBe('/policies');
    expect(existsSync(join(ROOT, 'libs', 'policies', 'authz', 'authz.rego'))).toBe(true);
  });

  it('tells users the exact variables `npm start` reads, matching the published ports', () => {
    expect(text).toContain(START_LINE);
    const docs = [COMPOSE_FILE, join(ROOT, 'README.md')].filter((f) => existsSync(f));
    const lines = docs.flatMap((f) => startLines(readFileSync(f, 'utf8')));
    expect(lines.length).toBeGreaterThan(0);
    const published = (name: string) => parsePort(config.services[name].ports[0]).published;
    for (const line of lines) {
      const vars = parseStartLine(line);
      const pg = new URL(vars.POSTGRES_URL);
      expect({ line, port: Number(pg.port), password: pg.password }).toEqual({
        line,
        port: published('postgres'),
        password: config.services.postgres.environment.POSTGRES_PASSWORD,
      });
      expect({ line, kafka: vars.KAFKA_BROKERS }).toEqual({
        line,
        kafka: `localhost:${published('kafka')}`,
      });
      expect({ line, opa: vars.OPA_URL }).toEqual({
        line,
        opa: `http://localhost:${published('opa')}`,
      });
    }
  });
});
