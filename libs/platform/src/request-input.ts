// Reading HTTP input at the edge: parse with a schema or answer 400 naming each bad field.
import { z } from 'zod';
import { ProblemException } from './problem-details';

export function parseOrProblem<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const errors = result.error.issues.map((i) => ({
    field: [where, ...i.path].join('.'),
    message: i.message,
  }));
  throw new ProblemException({
    status: 400,
    title: 'invalid request',
    detail: errors.map((e) => `${e.field}: ${e.message}`).join('; '),
    errors,
  });
}

/** Who is calling: the authorization guard puts the caller's verified identity on the request. */
export function requestActor(request: unknown): string {
  return (request as { principal?: string }).principal ?? 'unauthenticated';
}

/** Query fields of operator listings: how long unchanged (stuck) and how many at most. */
export const listingQueryFields = {
  olderThanSeconds: z.coerce.number().int().min(0).max(31_536_000).optional(),
  limit: z.coerce.number().int().min(1).max(1_000).optional(),
};
