// Starting, inspecting and stopping the whole local stack (Postgres, Kafka, OPA) kept in one state dir.
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { StackAlreadyRunningError, StackStartAbortedError } from './errors';
import { isOpaBinaryReady, assertPolicyDir, startLocalOpa } from './opa';
import { kafkaLibsReady, parseBrokers, startLocalKafka } from './kafka';
import { choosePort } from './ports';
import { localAdminUrl, maskUrl, resolvePostgresPackages, startLocalPostgres } from './postgres';
import { requireJava, requireTool } from './prerequisites';
import { currentProcessRecord, stopProcess, type ProcessRecord } from './processes';
import {
  checkLiveness,
  createStateFile,
  newStackId,
  readRawState,
  readRememberedPorts,
  recordedProcesses,
  rememberPorts,
  removeStateFileIf,
  stateFile,
  StateWriter,
  type RememberedPorts,
  type StackState,
} from './state';

export interface StackOptions {
  dir: string; // state, logs and data live here, e.g. <repo>/.local/stack
  policyDir: string; // directory of .rego files OPA loads
  ports?: { postgres?: number; kafka?: number; kafkaController?: number; opa?: number }; // undefined => pick a free port
  log?: (line: string) => void; // progress lines (default: stderr)
  env?: NodeJS.ProcessEnv; // where POSTGRES_URL / KAFKA_BROKERS / OPA_URL (and FINANCE_TOOLS_CACHE) are read
}

export interface RunningStack {
  postgres: { adminUrl: string; external: boolean; logFile?: string };
  kafka: { brokers: string[]; external: boolean; logFile?: string };
  opa: { url: string; external: boolean; logFile?: string };
  stop(): Promise<void>; // stops exactly what this call started: OPA, Kafka, Postgres; graceful, then SIGKILL
}

type Component = 'opa' | 'kafka' | 'postgres';

// Stop order: OPA and Kafka first so nothing is left talking to a database that is going away.
const STOP_ORDER: Component[] = ['opa', 'kafka', 'postgres'];

const STOP_POLICY: Record<Component, { signal: NodeJS.Signals; graceMs: number }> = {
  opa: { signal: 'SIGTERM', graceMs: 10_000 },
  // a controlled shutdown flushes and closes the logs, so the next start skips recovery
  kafka: { signal: 'SIGTERM', graceMs: 30_000 },
  // SIGINT is Postgres' "fast" shutdown: disconnect clients, checkpoint, exit
  postgres: { signal: 'SIGINT', graceMs: 20_000 },
};

const defaultLog = (line: string): void => {
  process.stderr.write(`[stack] ${line}\n`);
};

const seconds = (since: number): string => `${((Date.now() - since) / 1000).toFixed(1)}s`;

async function stopRecorded(
  records: Partial<Record<Component, ProcessRecord>>,
  log: (line: string) => void,
): Promise<void> {
  const failures: string[] = [];
  for (const component of STOP_ORDER) {
    const record = records[component];
    if (!record) continue;
    try {
      const outcome = await stopProcess(record, {
        name: component,
        log,
        ...STOP_POLICY[component],
      });
      if (outcome !== 'not-running') log(`${component}: ${outcome} (pid ${record.pid})`);
    } catch (error) {
      failures.push((error as Error).message);
    }
  }
  if (failures.length > 0)
    throw new Error(`could not stop the stack cleanly: ${failures.join('; ')}`);
}

function livePids(state: StackState): number[] {
  return recordedProcesses(state)
    .filter((p) => p.alive)
    .map((p) => p.pid);
}

async function inspect(dir: string): Promise<StackState | undefined> {
  const state = await readRawState(dir);
  return state ? checkLiveness(state) : undefined;
}

// What a running stack wrote to <dir>/state.json, with the liveness of its processes checked;
// undefined when no stack runs there (no state, or none of its processes is alive any more).
export async function readStackState(dir: string): Promise<StackState | undefined> {
  const state = await inspect(resolve(dir));
  return state?.running ? state : undefined;
}

export async function startStack(opts: StackOptions): Promise<RunningStack> {
  const began = Date.now();
  const dir = resolve(opts.dir);
  const policyDir = resolve(opts.policyDir);
  const env = opts.env ?? process.env;
  const log = opts.log ?? defaultLog;
  await mkdir(join(dir, 'logs'), { recursive: true });

  const previous = await inspect(dir);
  if (previous?.running) throw new StackAlreadyRunningError(dir, livePids(previous));
  if (previous) {
    log(`removing stale ${stateFile(dir)} (none of its processes is alive)`);
    await removeStateFileIf(dir, previous.id);
  }

  const external = {
    postgres: env.POSTGRES_URL?.trim() || undefined,
    kafka: parseBrokers(env.KAFKA_BROKERS),
    opa: env.OPA_URL?.trim() || undefined,
  };

  // Every prerequisite is checked before anything starts, so a missing tool fails fast with one line.
  if (!external.postgres) resolvePostgresPackages();
  const java = external.kafka ? undefined : await requireJava(process.env);
  if (!external.kafka && !(await kafkaLibsReady(env))) await requireTool('mvn', process.env);
  if (!external.opa) {
    await assertPolicyDir(policyDir);
    if (!(await isOpaBinaryReady(env))) await requireTool('go', process.env);
  }

  const remembered = await readRememberedPorts(dir);
  const taken = new Set<number>();
  const ports: RememberedPorts = {};
  if (!external.postgres)
    ports.postgres = await choosePort('postgres', opts.ports?.postgres, remembered.postgres, taken);
  if (!external.kafka) {
    ports.kafka = await choosePort('kafka', opts.ports?.kafka, remembered.kafka, taken);
    ports.kafkaController = await choosePort(
      'kafka controller',
      opts.ports?.kafkaController,
      remembered.kafkaController,
      taken,
    );
  }
  if (!external.opa) ports.opa = await choosePort('opa', opts.ports?.opa, remembered.opa, taken);
  await rememberPorts(dir, ports);

  const state: StackState = {
    version: 1,
    id: newStackId(),
    dir,
    phase: 'starting',
    startedAt: new Date().toISOString(),
    owner: await currentProcessRecord(),
    addresses: {
      postgresAdminUrl: external.postgres ?? localAdminUrl(ports.postgres ?? 0),
      kafkaBrokers: external.kafka ?? [`127.0.0.1:${ports.kafka ?? 0}`],
      opaUrl: external.opa ?? `http://127.0.0.1:${ports.opa ?? 0}`,
    },
  };
  if (external.postgres) state.postgres = { external: true, adminUrl: external.postgres };
  if (external.kafka) state.kafka = { external: true, brokers: external.kafka };
  if (external.opa) state.opa = { external: true, url: external.opa };
  try {
    await createStateFile(state);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST')
      throw new StackAlreadyRunningError(dir, []);
    throw error;
  }
  const writer = new StateWriter(state);
  const started: Partial<Record<Component, ProcessRecord>> = {};
  const abort = new AbortController();
  const timed = <T>(component: Component, task: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    return task().then(
      (result) => {
        log(`${component}: ready (${seconds(t0)})`);
        return result;
      },
      (error: unknown) => {
        // One failure makes the others give up instead of waiting out their own timeouts.
        abort.abort();
        throw error;
      },
    );
  };

  if (external.postgres)
    log(`postgres: using existing server ${maskUrl(external.postgres)} (POSTGRES_URL)`);
  if (external.kafka)
    log(`kafka: using existing cluster ${external.kafka.join(',')} (KAFKA_BROKERS)`);
  if (external.opa) log(`opa: using existing server ${external.opa} (OPA_URL)`);

  const pgPort = ports.postgres ?? 0;
  const kafkaPort = ports.kafka ?? 0;
  const opaPort = ports.opa ?? 0;
  const results = await Promise.allSettled([
    external.postgres
      ? undefined
      : timed('postgres', () =>
          startLocalPostgres({
            dir,
            port: pgPort,
            log,
            signal: abort.signal,
            onSpawn: async ({ dataDir, logFile, process }) => {
              started.postgres = process;
              await writer.update((s) => {
                s.postgres = {
                  external: false,
                  adminUrl: localAdminUrl(pgPort),
                  port: pgPort,
                  dataDir,
                  logFile,
                  process,
                };
              });
            },
          }),
        ),
    external.kafka || !java
      ? undefined
      : timed('kafka', () =>
          startLocalKafka({
            dir,
            port: kafkaPort,
            controllerPort: ports.kafkaController ?? 0,
            java,
            env,
            log,
            signal: abort.signal,
            onSpawn: async ({ dataDir, logFile, process }) => {
              started.kafka = process;
              await writer.update((s) => {
                s.kafka = {
                  external: false,
                  brokers: [`127.0.0.1:${kafkaPort}`],
                  port: kafkaPort,
                  controllerPort: ports.kafkaController,
                  dataDir,
                  logFile,
                  process,
                };
              });
            },
          }),
        ),
    external.opa
      ? undefined
      : timed('opa', () =>
          startLocalOpa({
            dir,
            port: opaPort,
            policyDir,
            env,
            log,
            signal: abort.signal,
            onSpawn: async ({ logFile, process }) => {
              started.opa = process;
              await writer.update((s) => {
                s.opa = {
                  external: false,
                  url: `http://127.0.0.1:${opaPort}`,
                  port: opaPort,
                  policyDir,
                  logFile,
                  process,
                };
              });
            },
          }),
        ),
  ]);

  const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (failures.length > 0) {
    await stopRecorded(started, log).catch((error: unknown) => log((error as Error).message));
    await writer.remove();
    throw failures.find((e) => !(e instanceof StackStartAbortedError)) ?? failures[0];
  }
  await writer.update((s) => {
    s.phase = 'running';
  });
  log(`stack ready in ${seconds(began)} (state in ${stateFile(dir)})`);

  const final = writer.state;
  let stopping: Promise<void> | undefined;
  return {
    postgres: {
      adminUrl: final.postgres!.adminUrl,
      external: final.postgres!.external,
      logFile: final.postgres!.logFile,
    },
    kafka: {
      brokers: final.kafka!.brokers,
      external: final.kafka!.external,
      logFile: final.kafka!.logFile,
    },
    opa: { url: final.opa!.url, external: final.opa!.external, logFile: final.opa!.logFile },
    stop: () =>
      (stopping ??= (async () => {
        log('stopping the stack');
        await stopRecorded(started, log);
        await writer.remove();
      })()),
  };
}

// Stops the processes recorded in <dir>/state.json (only those still the same processes); reset wipes the data.
export async function stopStack(
  dir: string,
  opts: { reset?: boolean; log?: (line: string) => void } = {},
): Promise<void> {
  const root = resolve(dir);
  const log = opts.log ?? defaultLog;
  const state = await readRawState(root);
  if (state) {
    await stopRecorded(
      { opa: state.opa?.process, kafka: state.kafka?.process, postgres: state.postgres?.process },
      log,
    );
    await removeStateFileIf(root, state.id);
  } else {
    log(`no stack state in ${root}; nothing to stop`);
  }
  if (opts.reset) {
    // Only the stack's own entries: dir may be shared with other files.
    for (const entry of ['postgres', 'kafka', 'logs', 'ports.json']) {
      await rm(join(root, entry), { recursive: true, force: true });
    }
    log(`reset: removed data and logs in ${root}`);
  }
}
