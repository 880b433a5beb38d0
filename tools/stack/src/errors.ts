// Typed errors the local stack throws so callers (CLI, test runner) can react to them specifically.

export type StackTool = 'java' | 'mvn' | 'go' | 'postgres';

// A tool needed to provision a component is missing; the message is one line saying what to install
// or which variable to set to use an existing component instead.
export class StackPrerequisiteError extends Error {
  constructor(
    readonly tool: StackTool,
    message: string,
  ) {
    super(message);
    this.name = 'StackPrerequisiteError';
  }
}

// state.json in the stack dir records processes that are still alive.
export class StackAlreadyRunningError extends Error {
  constructor(
    readonly dir: string,
    readonly pids: number[],
  ) {
    super(
      `A local stack is already running in ${dir}` +
        (pids.length > 0 ? ` (pids ${pids.join(', ')})` : '') +
        '; stop it first with `npm run stack:down`.',
    );
    this.name = 'StackAlreadyRunningError';
  }
}

// Internal: a component gave up because another one already failed.
export class StackStartAbortedError extends Error {
  constructor(component: string) {
    super(`${component}: start aborted because another component failed`);
    this.name = 'StackStartAbortedError';
  }
}
