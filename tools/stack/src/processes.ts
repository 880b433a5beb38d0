// Spawning, fingerprinting, waiting for and stopping the stack's detached child processes.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { open, readFile, stat } from 'node:fs/promises';

// A pid alone can be recycled by the OS; the start time makes the record identify one process.
export interface ProcessRecord {
  pid: number;
  startTime: string;
  command: string;
  alive?: boolean; // filled in by readStackState
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnedProcess {
  child: ChildProcess;
  record: ProcessRecord;
  exited(): ExitInfo | undefined;
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

// Fields of /proc/<pid>/stat after the parenthesised command name (which may contain spaces).
export function parseProcStat(content: string): { state: string; startTime: string } | undefined {
  const close = content.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = content
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  // fields[0] is field 3 (state), so field 22 (starttime, clock ticks since boot) is fields[19]
  const state = fields[0];
  const startTime = fields[19];
  if (!state || !startTime) return undefined;
  return { state, startTime };
}

function execFileText(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { encoding: 'utf8' }, (error, stdout) =>
      error ? reject(error) : resolve(stdout),
    );
  });
}

// Undefined when the process does not exist or has already exited (zombies count as exited).
export async function processStartTime(pid: number): Promise<string | undefined> {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  if (process.platform === 'linux') {
    let content: string;
    try {
      content = await readFile(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return undefined;
    }
    const parsed = parseProcStat(content);
    if (!parsed || parsed.state === 'Z' || parsed.state === 'X') return undefined;
    return parsed.startTime;
  }
  // Other Unixes have no /proc; ps reports the start time instead.
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return undefined;
  }
  const out = await execFileText('ps', ['-o', 'lstart=', '-p', String(pid)]).catch(() => '');
  return out.trim() || undefined;
}

export async function isSameProcess(record: ProcessRecord): Promise<boolean> {
  const startTime = await processStartTime(record.pid);
  return startTime !== undefined && startTime === record.startTime;
}

export async function currentProcessRecord(): Promise<ProcessRecord> {
  return {
    pid: process.pid,
    startTime: (await processStartTime(process.pid)) ?? '',
    command: process.argv.slice(0, 2).join(' '),
  };
}

export interface SpawnOptions {
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  uid?: number;
  gid?: number;
}

// Own process group (so a terminal Ctrl-C reaches only our parent) and output straight into a log file.
export async function spawnDetached(
  command: string,
  args: string[],
  options: SpawnOptions,
): Promise<SpawnedProcess> {
  const log = await open(options.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, args, {
      detached: true,
      stdio: ['ignore', log.fd, log.fd],
      env: options.env ?? process.env,
      cwd: options.cwd,
      uid: options.uid,
      gid: options.gid,
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
  } finally {
    await log.close();
  }
  // Keep a listener so a late 'error' (e.g. a failed kill) cannot crash the host process.
  child.on('error', () => undefined);
  let exit: ExitInfo | undefined;
  child.on('exit', (code, signal) => {
    exit = { code, signal };
  });
  // The stack may outlive this Node process; do not keep its event loop alive for the child.
  child.unref();
  const pid = child.pid as number;
  const startTime = (await processStartTime(pid)) ?? '';
  return {
    child,
    record: { pid, startTime, command: [command, ...args].join(' ') },
    exited: () => exit ?? (startTime === '' ? { code: null, signal: null } : undefined),
  };
}

export async function waitForExit(record: ProcessRecord, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!(await isSameProcess(record))) return true;
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
}

export interface StopOptions {
  name: string;
  signal: NodeJS.Signals;
  graceMs: number;
  log: (line: string) => void;
}

// Graceful signal first, then SIGKILL to the whole process group (the record is the group leader).
export async function stopProcess(
  record: ProcessRecord,
  options: StopOptions,
): Promise<'stopped' | 'killed' | 'not-running'> {
  if (!(await isSameProcess(record))) return 'not-running';
  try {
    process.kill(record.pid, options.signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return 'not-running';
    throw error;
  }
  if (await waitForExit(record, options.graceMs)) return 'stopped';
  options.log(
    `${options.name} (pid ${record.pid}) did not stop within ${options.graceMs / 1000}s; sending SIGKILL`,
  );
  if (!(await isSameProcess(record))) return 'stopped';
  try {
    process.kill(-record.pid, 'SIGKILL');
  } catch {
    try {
      process.kill(record.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  if (await waitForExit(record, 10_000)) return 'killed';
  throw new Error(`could not stop ${options.name} (pid ${record.pid}) even with SIGKILL`);
}

// Last lines of a log file, for error messages when a component fails to come up.
export async function tailFile(file: string, lines = 30): Promise<string> {
  try {
    const size = (await stat(file)).size;
    const handle = await open(file, 'r');
    try {
      const length = Math.min(size, 64 * 1024);
      const buffer = Buffer.alloc(length);
      await handle.read(buffer, 0, length, size - length);
      return buffer.toString('utf8').split(/\r?\n/).filter(Boolean).slice(-lines).join('\n');
    } finally {
      await handle.close();
    }
  } catch {
    return '(no log output)';
  }
}

// Runs a short-lived command to completion, capturing its combined output.
export function runToCompletion(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.once('error', reject);
    child.once('close', (code) =>
      resolve({ code, output: Buffer.concat(chunks).toString('utf8') }),
    );
  });
}

export function lastLines(text: string, lines = 30): string {
  return text.split(/\r?\n/).filter(Boolean).slice(-lines).join('\n');
}
