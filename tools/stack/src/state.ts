// The stack dir's state.json (what a running stack started) and ports.json (ports to reuse next time).
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isSameProcess, type ProcessRecord } from './processes';

export interface PostgresState {
  external: boolean;
  adminUrl: string;
  port?: number;
  dataDir?: string;
  logFile?: string;
  process?: ProcessRecord;
}

export interface KafkaState {
  external: boolean;
  brokers: string[];
  port?: number;
  controllerPort?: number;
  dataDir?: string;
  logFile?: string;
  process?: ProcessRecord;
}

export interface OpaState {
  external: boolean;
  url: string;
  port?: number;
  policyDir?: string;
  logFile?: string;
  process?: ProcessRecord;
}

// Where clients reach each component, local or external.
export interface StackAddresses {
  postgresAdminUrl: string;
  kafkaBrokers: string[];
  opaUrl: string;
}

export interface StackState {
  version: 1;
  id: string; // distinguishes this run from a later one in the same dir
  dir: string;
  phase: 'starting' | 'running';
  startedAt: string;
  owner: ProcessRecord; // the Node process that called startStack; never stopped by stopStack
  addresses: StackAddresses;
  postgres?: PostgresState;
  kafka?: KafkaState;
  opa?: OpaState;
  running?: boolean; // set by readStackState: a recorded component (or a still-starting owner) is alive
}

export interface RememberedPorts {
  postgres?: number;
  kafka?: number;
  kafkaController?: number;
  opa?: number;
}

export const stateFile = (dir: string): string => join(dir, 'state.json');
const portsFile = (dir: string): string => join(dir, 'ports.json');

export function newStackId(): string {
  return randomBytes(8).toString('hex');
}

async function readJson<T>(file: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    // A torn or hand-edited file records nothing we can trust.
    return undefined;
  }
}

// Write-then-rename so a reader never sees half a file.
async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, JSON.stringify(value, null, 2) + '\n', { mode: 0o600 });
  await rename(tmp, file);
}

export async function readRawState(dir: string): Promise<StackState | undefined> {
  return readJson<StackState>(stateFile(dir));
}

export function recordedProcesses(state: StackState): ProcessRecord[] {
  return [state.opa?.process, state.kafka?.process, state.postgres?.process].filter(
    (p): p is ProcessRecord => p !== undefined,
  );
}

export async function checkLiveness(state: StackState): Promise<StackState> {
  const copy: StackState = JSON.parse(JSON.stringify(state)) as StackState;
  let anyAlive = false;
  for (const record of recordedProcesses(copy)) {
    record.alive = await isSameProcess(record);
    anyAlive ||= record.alive;
  }
  copy.owner.alive = copy.owner.startTime !== '' && (await isSameProcess(copy.owner));
  // While starting, the owner may be between spawning a process and recording it.
  copy.running = anyAlive || (copy.phase === 'starting' && copy.owner.alive);
  return copy;
}

// Exclusive create: of two concurrent starts in one dir, exactly one wins.
export async function createStateFile(state: StackState): Promise<void> {
  await mkdir(state.dir, { recursive: true });
  await writeFile(stateFile(state.dir), JSON.stringify(state, null, 2) + '\n', {
    flag: 'wx',
    mode: 0o600,
  });
}

// Serialises updates from the concurrently starting components.
export class StateWriter {
  private queue: Promise<void> = Promise.resolve();

  constructor(readonly state: StackState) {}

  update(change: (state: StackState) => void): Promise<void> {
    const next = this.queue.then(async () => {
      change(this.state);
      await writeJsonAtomic(stateFile(this.state.dir), this.state);
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  // Only removes state.json while it still describes this run.
  async remove(): Promise<void> {
    await this.queue;
    await removeStateFileIf(this.state.dir, this.state.id);
  }
}

export async function removeStateFileIf(dir: string, id: string): Promise<void> {
  const current = await readRawState(dir);
  if (current && current.id !== id) return;
  await rm(stateFile(dir), { force: true });
}

export async function readRememberedPorts(dir: string): Promise<RememberedPorts> {
  return (await readJson<RememberedPorts>(portsFile(dir))) ?? {};
}

export async function rememberPorts(dir: string, ports: RememberedPorts): Promise<void> {
  const merged = { ...(await readRememberedPorts(dir)), ...ports };
  await writeJsonAtomic(portsFile(dir), merged);
}
