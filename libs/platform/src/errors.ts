// Failures that stop a service at start-up with one clear line instead of a stack trace.
export class StartupError extends Error {
  override readonly name = 'StartupError';
}
