// Errors a TCC branch handler can raise on purpose.

/**
 * A business refusal inside Try (insufficient funds, limit breached): the handler's changes are rolled
 * back, the refusal is recorded in the barrier and replied as FAILED with this code. Any other error
 * is technical: the whole local transaction rolls back and the command is retried.
 */
export class BranchRejected extends Error {
  override readonly name = 'BranchRejected';

  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
