// Runs a service as its own Node process, the way `npm start` and the e2e tests do, and talks to it
// over mutual TLS with the dev certificates.
import { ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { ServiceName } from '@finance/contracts';
import { credentialsOf, DevCertificates, HEALTH_PROBE } from '@finance/dev-ca';
import {
  HttpClient,
  HttpRequestOptions,
  HttpResponse,
  readTlsMaterial,
  workloadPrincipal,
} from '@finance/platform';
import { repoRoot } from './paths';

export interface ServiceProcess {
  name: string;
  /** https:// off the mesh, http:// with MESH_MODE=true. */
  url: string;
  child: ChildProcess;
  /** Everything the process wrote so far (stdout and stderr interleaved). */
  output(): string;
  /** Resolves with the exit code (or signal) once the process is gone. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(
    signal?: NodeJS.Signals,
    timeoutMs?: number,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /**
   * Sends a request presenting the dev certificate `as` (default: the health probe, which the
   * policy lets reach the health endpoints only). The server must prove the service's SPIFFE id.
   */
  request(path: string, options?: HttpRequestOptions & { as?: string }): Promise<HttpResponse>;
}

export interface LaunchOptions {
  port: number;
  env: Record<string, string>;
  /** Also copy the service's output to this stream (e.g. process.stdout for `npm start`). */
  echo?: NodeJS.WritableStream;
  /** Start it in its own process group so a terminal Ctrl-C reaches only the supervisor. */
  detached?: boolean;
  /** Extra Node options before the script (e.g. `--cpu-prof`, which NODE_OPTIONS refuses). */
  nodeArgs?: string[];
  /** TypeScript files of the repository required before the script (after the TS loader). */
  preload?: string[];
}

export interface ServiceLaunchOptions extends LaunchOptions {
  /**
   * The dev certificates: the service gets `<name>-service`'s as TLS_* variables (unless `env`
   * sets them or MESH_MODE=true), and `request` presents them.
   */
  certificates?: DevCertificates;
}

/** One kept-alive client per certificate, closed when the process it talks to exits. */
function clientPool(certificates: DevCertificates | undefined) {
  const clients = new Map<string, HttpClient>();
  return {
    get(identity: string | undefined): HttpClient {
      const key = identity ?? HEALTH_PROBE;
      let client = clients.get(key);
      if (!client) {
        if (!certificates) {
          client = new HttpClient();
        } else {
          const files = credentialsOf(certificates, key);
          client = new HttpClient({ tls: readTlsMaterial(files) });
        }
        clients.set(key, client);
      }
      return client;
    },
    close(): void {
      for (const client of clients.values()) client.close();
      clients.clear();
    },
  };
}

export function launchService(name: string, options: ServiceLaunchOptions): ServiceProcess {
  const host = options.env.HOST ?? '127.0.0.1';
  const mesh = options.env.MESH_MODE === 'true';
  const tlsEnv: Record<string, string> = {};
  if (options.certificates && !mesh) {
    const own = credentialsOf(options.certificates, `${name}-service`);
    tlsEnv.TLS_CERT_FILE = own.certFile;
    tlsEnv.TLS_KEY_FILE = own.keyFile;
    tlsEnv.TLS_CA_FILE = own.caFile;
  }
  const script = launchNodeScript(join('apps', name, 'src', 'main.ts'), {
    ...options,
    // Tracing starts before the service loads anything (it stays off unless OTEL_TRACES_EXPORTER says).
    preload: [TRACING_PRELOAD, ...(options.preload ?? [])],
    env: { ...tlsEnv, ...options.env, PORT: String(options.port) },
  });
  const url = `${mesh ? 'http' : 'https'}://${host}:${options.port}`;
  const pool = clientPool(mesh ? undefined : options.certificates);
  void script.exited.then(() => pool.close());
  return {
    ...script,
    name,
    url,
    request: (path, { as, ...request } = {}) =>
      pool.get(as).request(`${url}${path}`, {
        ...(mesh ? {} : { expectedPeer: workloadPrincipal(name as ServiceName) }),
        ...request,
      }),
  };
}

/** The preload that starts a service's tracing (see libs/observability). */
export const TRACING_PRELOAD = join('libs', 'observability', 'src', 'preload.ts');

export type ScriptProcess = Omit<ServiceProcess, 'name' | 'url' | 'request'>;

/** Runs a TypeScript file of the repository (path relative to its root) as a Node process. */
export function launchNodeScript(
  file: string,
  options: Omit<LaunchOptions, 'port'>,
): ScriptProcess {
  const root = repoRoot();
  const args = [
    ...(options.nodeArgs ?? []),
    '-r',
    '@swc-node/register',
    ...(options.preload ?? []).flatMap((preload) => ['-r', join(root, preload)]),
    file,
  ];
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, ...options.env, SWC_NODE_PROJECT: join(root, 'tsconfig.json') },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
    options.echo?.write(chunk);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return {
    child,
    output: () => output,
    exited,
    async stop(signal = 'SIGTERM', timeoutMs = 15_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Polls `/health/ready` until it answers 200, the process exits, or the timeout passes. */
export async function waitUntilReady(service: ServiceProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  let gone = false;
  void service.exited.then(() => (gone = true));
  while (Date.now() < deadline) {
    if (gone) {
      throw new Error(
        `${service.name} exited before it was ready:\n${service.output().slice(-2000)}`,
      );
    }
    try {
      const response = await service.request('/health/ready', { timeoutMs: 3_000 });
      if (response.status === 200) return;
      last = `${response.status} ${response.body}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(
    `${service.name} not ready after ${timeoutMs} ms (last: ${last}):\n${service.output().slice(-2000)}`,
  );
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}
