// PUT /risk/limits/:accountId input: a bad body answers 400 naming the field, amounts parse exactly.
import { parseOrProblem, ProblemException } from '@finance/platform';
import { limitsBody } from './risk-limits';

function problem(body: unknown) {
  try {
    parseOrProblem(limitsBody, body, 'body');
  } catch (error) {
    if (error instanceof ProblemException) {
      return { status: error.getStatus(), ...(error.getResponse() as object) } as {
        status: number;
        errors: Array<{ field: string; message: string }>;
      };
    }
    throw error;
  }
  throw new Error('expected a 400');
}

describe('risk limits request', () => {
  it('parses decimal strings exactly into minor units of the given currency', () => {
    expect(
      parseOrProblem(
        limitsBody,
        { currency: 'USD', maxOrderValue: '250000.5', quota: '90071992547409.93' },
        'body',
      ),
    ).toEqual({
      currency: 'USD',
      maxOrderValue: { currency: 'USD', minor: 25000050n },
      quota: { currency: 'USD', minor: 9007199254740993n },
    });
    expect(
      parseOrProblem(limitsBody, { currency: 'JPY', maxOrderValue: '0', quota: '100' }, 'body'),
    ).toMatchObject({ maxOrderValue: { minor: 0n }, quota: { minor: 100n } });
  });

  it('answers 400 naming each bad field', () => {
    expect(problem({ currency: 'USD', maxOrderValue: '-5', quota: '100' })).toMatchObject({
      status: 400,
      errors: [{ field: 'body.maxOrderValue', message: expect.stringMatching(/non-negative/) }],
    });
    expect(problem({ currency: 'usd', maxOrderValue: '1', quota: '1' }).errors).toEqual([
      { field: 'body.currency', message: 'must be a supported ISO 4217 currency code' },
    ]);
    expect(problem({ currency: 'USD', maxOrderValue: 1000, quota: '1' }).errors[0].field).toBe(
      'body.maxOrderValue',
    );
    expect(problem({ currency: 'USD', maxOrderValue: '1' }).errors[0].field).toBe('body.quota');
    // A misspelt field is refused, not ignored.
    expect(
      problem({ currency: 'USD', maxOrderValue: '1', quota: '1', quotas: '2' }).errors,
    ).toEqual([{ field: 'body', message: expect.stringContaining('quotas') }]);
  });

  it('refuses more decimal places than the currency has instead of rounding', () => {
    expect(problem({ currency: 'USD', maxOrderValue: '10.001', quota: '1' }).errors).toEqual([
      { field: 'body.maxOrderValue', message: "USD has 2 decimal places, got '10.001'" },
    ]);
    expect(problem({ currency: 'JPY', maxOrderValue: '10', quota: '1.5' }).errors).toEqual([
      { field: 'body.quota', message: "JPY has 0 decimal places, got '1.5'" },
    ]);
  });

  it('refuses an amount that does not fit the bigint column', () => {
    expect(
      problem({ currency: 'USD', maxOrderValue: '1', quota: '99999999999999999.99' }).errors,
    ).toEqual([{ field: 'body.quota', message: 'is too large' }]);
  });
});
