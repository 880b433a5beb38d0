// Envelopes of the test account's events, built the way services build them.
import { createEnvelope } from '@finance/messaging';
import { AccountEvent, AccountOpened, MoneyDeposited } from './bank-account';

const context = (accountId: string, sequence: number) => ({
  producer: 'trading' as const,
  aggregateId: accountId,
  aggregateSequence: sequence,
  correlationId: `test-${accountId}`,
});

export function opened(accountId: string): AccountEvent {
  return createEnvelope(AccountOpened, { accountId, currency: 'USD' }, context(accountId, 1));
}

/** `count` deposits of `amount` each; their sequence is a placeholder the store overwrites. */
export function deposits(accountId: string, count: number, amount = '1.00'): AccountEvent[] {
  return Array.from({ length: count }, () =>
    createEnvelope(
      MoneyDeposited,
      { accountId, amount: { amount, currency: 'USD' } },
      context(accountId, 1),
    ),
  );
}
