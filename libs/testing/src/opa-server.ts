// A private OPA server for one test file, run as the stack runs it (decision logs on the console),
// which the test can stop and start again to prove the services fail closed.
import { ChildProcess, spawn } from 'node:child_process';
import { ensureOpaBinary, opaServerArgs } from '@finance/local-stack';
import { policyDir } from './policy';
import { freePort } from './service-process';

export interface DecisionLogEntry {
  decision_id: string;
  path: string;
  input?: unknown;
  result?: unknown;
  erased?: string[];
}

export interface OpaServer {
  url: string;
  /** Everything OPA printed so far (JSON lines), including its decision log. */
  output(): string;
  decisions(): DecisionLogEntry[];
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
}

export async function startOpaServer(): Promise<OpaServer> {
  const binary = await ensureOpaBinary();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let output = '';
  let child: ChildProcess | undefined;

  const start = async () => {
    child = spawn(binary, opaServerArgs(port, policyDir()), { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`opa exited during start-up:\n${output}`);
      const healthy = await fetch(`${url}/health`).then(
        (r) => r.ok,
        () => false,
      );
      if (healthy) return;
      if (Date.now() > deadline) throw new Error(`opa not healthy after 30 s:\n${output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  const stop = async () => {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGTERM');
    await exited;
  };

  await start();
  return {
    url,
    output: () => output,
    decisions: () =>
      output
        .split('\n')
        .filter((line) => line.includes('"Decision Log"'))
        .map((line) => JSON.parse(line) as DecisionLogEntry),
    stop,
    start,
  };
}
