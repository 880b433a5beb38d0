// OPA for the stack: the real binary built with `go install`, run as a server the way the sidecar runs it.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { request } from 'node:http';
import { join, resolve } from 'node:path';
import { StackStartAbortedError } from './errors';
import { requireTool, toolsCacheDir } from './prerequisites';
import {
  lastLines,
  runToCompletion,
  sleep,
  spawnDetached,
  tailFile,
  type ProcessRecord,
} from './processes';

export const OPA_VERSION = 'v1.22.2';
const OPA_MODULE = 'github.com/open-policy-agent/opa';

export function opaBinaryPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(toolsCacheDir(env), `opa-${OPA_VERSION}`, 'opa');
}

// A binary that runs and reports the pinned version (a half-copied file does neither).
async function usableOpa(binary: string): Promise<boolean> {
  try {
    await access(binary, constants.X_OK);
    const { code, output } = await runToCompletion(binary, ['version']);
    return code === 0 && output.includes(`Version: ${OPA_VERSION.replace(/^v/, '')}`);
  } catch {
    return false;
  }
}

export async function isOpaBinaryReady(env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  return usableOpa(opaBinaryPath(env));
}

// Builds OPA once per machine into <cache>/opa-v1.22.2/opa (also used by the test runner for `opa test`).
export async function ensureOpaBinary(
  options: { env?: NodeJS.ProcessEnv; log?: (line: string) => void } = {},
): Promise<string> {
  const env = options.env ?? process.env;
  const binary = opaBinaryPath(env);
  if (await usableOpa(binary)) return binary;

  const go = await requireTool('go', process.env);
  const home = join(toolsCacheDir(env), `opa-${OPA_VERSION}`);
  // Build into a private GOBIN and rename into place, so a concurrent reader never sees a partial binary.
  const gobin = join(home, `.build-${process.pid}-${randomBytes(3).toString('hex')}`);
  await mkdir(gobin, { recursive: true });
  (options.log ?? ((line: string) => process.stderr.write(`[stack] ${line}\n`)))(
    `opa: building ${OPA_MODULE}@${OPA_VERSION} with go install (first run only; takes a few minutes)`,
  );
  try {
    const result = await runToCompletion(go, ['install', `${OPA_MODULE}@${OPA_VERSION}`], {
      env: { ...process.env, GOBIN: gobin },
    });
    if (result.code !== 0) {
      throw new Error(
        `opa: \`go install ${OPA_MODULE}@${OPA_VERSION}\` failed (exit ${result.code}):\n${lastLines(result.output)}`,
      );
    }
    await rename(join(gobin, 'opa'), binary);
  } finally {
    await rm(gobin, { recursive: true, force: true });
  }
  if (!(await usableOpa(binary)))
    throw new Error(`opa: the built binary ${binary} does not report version ${OPA_VERSION}`);
  return binary;
}

export function opaHealthy(url: string, timeoutMs = 2_000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      new URL('/health', url),
      { method: 'GET', timeout: timeoutMs, agent: false },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** How OPA runs as a local server, like the sidecar: JSON logs, decision logs on the console. */
export function opaServerArgs(port: number, policyDir: string): string[] {
  return [
    'run',
    '--server',
    '--addr',
    `127.0.0.1:${port}`,
    '--log-format',
    'json',
    '--set',
    'decision_logs.console=true',
    // no call to GitHub on every start
    '--skip-version-check',
    // the policy folder also holds Nx metadata and test cases, which are not policy data
    '--ignore',
    'project.json',
    '--ignore',
    '*_test.rego',
    policyDir,
  ];
}

export interface LocalOpaOptions {
  dir: string;
  port: number;
  policyDir: string;
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
  signal: AbortSignal;
  onSpawn: (state: { logFile: string; process: ProcessRecord }) => Promise<void>;
}

export interface LocalOpa {
  url: string;
  logFile: string;
  process: ProcessRecord;
}

export async function assertPolicyDir(policyDir: string): Promise<void> {
  const info = await stat(policyDir).catch(() => undefined);
  if (!info?.isDirectory()) throw new Error(`opa: policyDir ${policyDir} is not a directory`);
}

export async function startLocalOpa(options: LocalOpaOptions): Promise<LocalOpa> {
  await assertPolicyDir(options.policyDir);
  const binary = await ensureOpaBinary({ env: options.env, log: options.log });
  const logFile = join(options.dir, 'logs', 'opa.log');
  if (options.signal.aborted) throw new StackStartAbortedError('opa');
  const spawned = await spawnDetached(binary, opaServerArgs(options.port, options.policyDir), {
    logFile,
  });
  await options.onSpawn({ logFile, process: spawned.record });

  const url = `http://127.0.0.1:${options.port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const exit = spawned.exited();
    if (exit) {
      throw new Error(
        `opa exited during startup (code ${exit.code}, signal ${exit.signal}); ${logFile} ends with:\n${await tailFile(logFile)}`,
      );
    }
    if (options.signal.aborted) throw new StackStartAbortedError('opa');
    if (await opaHealthy(url)) break;
    if (Date.now() > deadline)
      throw new Error(
        `opa did not become healthy within 30s; ${logFile} ends with:\n${await tailFile(logFile)}`,
      );
    await sleep(100);
  }
  return { url, logFile, process: spawned.record };
}

// OPA names a policy loaded from disk by its path without the leading slash.
function policyId(file: string): string {
  return file.replace(/^\/+/, '');
}

async function policyFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.rego') && !e.name.endsWith('_test.rego'))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/**
 * Brings a running OPA that was started from `policyDir` up to date with the files there (what
 * `opa run --watch` does), so a stack started before a policy change decides with today's policy.
 * Only policies under `policyDir` are touched.
 */
export async function syncPolicies(
  url: string,
  policyDir: string,
): Promise<{ updated: string[]; removed: string[] }> {
  const root = resolve(policyDir);
  const served = await fetch(new URL('/v1/policies', url));
  if (!served.ok) throw new Error(`opa: GET /v1/policies answered ${served.status}`);
  const current = new Map(
    ((await served.json()) as { result: Array<{ id: string; raw: string }> }).result.map((p) => [
      p.id,
      p.raw,
    ]),
  );
  const updated: string[] = [];
  const wanted = new Set<string>();
  for (const file of await policyFiles(root)) {
    const id = policyId(file);
    wanted.add(id);
    const raw = await readFile(file, 'utf8');
    if (current.get(id) === raw) continue;
    const put = await fetch(new URL(`/v1/policies/${id}`, url), {
      method: 'PUT',
      headers: { 'content-type': 'text/plain' },
      body: raw,
    });
    if (!put.ok) throw new Error(`opa: loading ${file} failed: ${await put.text()}`);
    updated.push(file);
  }
  const removed: string[] = [];
  const prefix = `${policyId(root)}/`;
  for (const id of current.keys()) {
    if (!id.startsWith(prefix) || wanted.has(id)) continue;
    const del = await fetch(new URL(`/v1/policies/${id}`, url), { method: 'DELETE' });
    if (!del.ok) throw new Error(`opa: removing ${id} failed: ${await del.text()}`);
    removed.push(`/${id}`);
  }
  return { updated, removed };
}
