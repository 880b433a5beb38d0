// Query and path parameters of the audit API: parsed with parseOrProblem, a bad one answers 400
// problem details naming it.
import { ProblemException } from '@finance/platform';
import { z } from 'zod';

/** A leaf index or tree size: a whole number (not "", not 1.5, not -1). */
const size = z
  .string()
  .regex(/^(0|[1-9]\d{0,14})$/, 'must be a whole number from 0')
  .transform(Number);

export const sizeParam = size;

export const inclusionQuery = z.strictObject({
  /** Leaf index of the entry. */
  entry: size,
  /** Tree size of a signed checkpoint (default: the latest). */
  checkpoint: size.optional(),
});

export const consistencyQuery = z
  .strictObject({
    from: size,
    /** Tree size of a signed checkpoint (default: the latest). */
    to: size.optional(),
  })
  .refine((q) => q.to === undefined || q.from <= q.to, {
    path: ['from'],
    message: 'must not be greater than to',
  });

export const entriesQuery = z
  .strictObject({
    from: size.optional(),
    to: size.optional(),
    /** Tree size of a signed checkpoint the export is to be checked against. */
    checkpoint: size.optional(),
  })
  .refine((q) => q.from === undefined || q.to === undefined || q.from <= q.to, {
    path: ['from'],
    message: 'must not be greater than to',
  });

export const publicKeyQuery = z.strictObject({
  keyId: z
    .string()
    .regex(/^[0-9a-f]{16}$/)
    .optional(),
});

/** 404 naming the parameter that points at nothing. */
export function notFound(field: string, message: string): ProblemException {
  return new ProblemException({
    status: 404,
    title: 'not found',
    detail: `${field}: ${message}`,
    errors: [{ field, message }],
  });
}

/** 400 for a value that is well-formed but outside the log. */
export function outOfRange(field: string, message: string): ProblemException {
  return new ProblemException({
    status: 400,
    title: 'invalid request',
    detail: `${field}: ${message}`,
    errors: [{ field, message }],
  });
}

/** The caller's x-request-id, so an audit entry leads back to the request's logs. */
export function requestId(request: unknown): string | undefined {
  const header = (request as { headers?: Record<string, unknown> }).headers?.['x-request-id'];
  return typeof header === 'string' && header.length > 0 && header.length <= 128
    ? header
    : undefined;
}
