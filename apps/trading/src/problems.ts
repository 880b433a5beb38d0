// Problem documents trading answers with beyond plain validation: each names the field at fault.
import { ProblemException } from '@finance/platform';

export function fieldProblem(
  status: 404 | 409 | 422,
  title: string,
  field: string,
  message: string,
  extra: Record<string, unknown> = {},
): ProblemException {
  return new ProblemException({
    status,
    title,
    detail: `${field}: ${message}`,
    errors: [{ field, message }],
    ...extra,
  });
}
