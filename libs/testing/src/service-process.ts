// Runs a service as its own Node process, the way `npm start` and the e2e tests do.
import { ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { repoRoot } from './paths';

export interface ServiceProcess {
  name: string;
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
}

export interface LaunchOptions {
  port: number;
  env: Record<string, string>;
  /** Also copy the service's output to this stream (e.g. process.stdout for `npm start`). */
  echo?: NodeJS.WritableStream;
  /** Start it in its own process group so a terminal Ctrl-C reaches only the supervisor. */
  detached?: boolean;
}

export function launchService(name: string, options: LaunchOptions): ServiceProcess {
  const host = options.env.HOST ?? '127.0.0.1';
  const script = launchNodeScript(join('apps', name, 'src', 'main.ts'), {
    ...options,
    env: { ...options.env, PORT: String(options.port) },
  });
  return { ...script, name, url: `http://${host}:${options.port}` };
}

export type ScriptProcess = Omit<ServiceProcess, 'name' | 'url'>;

/** Runs a TypeScript file of the repository (path relative to its root) as a Node process. */
export function launchNodeScript(
  file: string,
  options: Omit<LaunchOptions, 'port'>,
): ScriptProcess {
  const root = repoRoot();
  const child = spawn(process.execPath, ['-r', '@swc-node/register', file], {
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
      const response = await fetch(`${service.url}/health/ready`, {
        signal: AbortSignal.timeout(3_000),
      });
      if (response.status === 200) return;
      last = `${response.status} ${await response.text()}`;
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
