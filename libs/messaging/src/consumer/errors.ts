// Failure kinds: permanent (dead-letter now), unavailable (wait, never dead-letter), other (retry).

/** Thrown by a handler for a message that can never succeed; it goes to the dead-letter topic. */
export class PermanentMessageError extends Error {
  override readonly name = 'PermanentMessageError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A handler failure surfaced by Nest as a plain object (its default exception filter's shape). */
export class HandlerFailedError extends Error {
  override readonly name = 'HandlerFailedError';
  constructor(readonly detail: unknown) {
    super(typeof detail === 'string' ? detail : safeJson(detail));
  }
}

/** The consumer is stopping while a message waits for a retry; the batch is left unresolved. */
export class ConsumerStoppingError extends Error {
  override readonly name = 'ConsumerStoppingError';
  constructor() {
    super('consumer is stopping');
  }
}

// SQLSTATE classes/codes meaning the database cannot be used right now, whatever the message.
const UNAVAILABLE_SQLSTATE = /^(08|53|57P0[1-4])/;
const UNAVAILABLE_ERRNO = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
]);
const UNAVAILABLE_MESSAGE =
  /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection is not established/i;

/**
 * True when the error says the database (not the message) is the problem. Such failures are
 * retried without limit: dead-lettering a stream because PostgreSQL restarted would reorder it.
 */
export function isUnavailableError(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; depth++) {
    const { code, message, driverError, cause } = e as {
      code?: unknown;
      message?: unknown;
      driverError?: unknown;
      cause?: unknown;
    };
    if (
      typeof code === 'string' &&
      (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_ERRNO.has(code))
    )
      return true;
    if (typeof message === 'string' && UNAVAILABLE_MESSAGE.test(message)) return true;
    // TypeORM wraps pg errors in QueryFailedError.driverError.
    e = driverError ?? cause;
  }
  return false;
}

/** One line for logs and the dead-letter-error header. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return `${error.name}${typeof code === 'string' ? ` ${code}` : ''}: ${error.message}`;
  }
  return typeof error === 'string' ? error : safeJson(error);
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
