// The business failure a step handler throws: its effects are rolled back and the saga is told FAILED.

export class StepFailedError extends Error {
  override readonly name = 'StepFailedError';

  /** `code` travels in the reply (e.g. RISK_LIMIT_EXCEEDED); keep it stable, operators search by it. */
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
