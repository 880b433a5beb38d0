// The test aggregate's business rules, given past events, when a command, then new events or an error.
import {
  accountSnapshots,
  AccountCommand,
  AccountError,
  AccountEventData,
  bankAccount,
  decide,
  evolve,
  initialState,
} from './bank-account';

function given(...history: AccountEventData[]) {
  const state = history.reduce(evolve, initialState());
  return {
    when: (command: AccountCommand) => ({
      then: (expected: AccountEventData[]) => expect(decide(command, state)).toEqual(expected),
      thenFails: (code: AccountError['code']) =>
        expect(() => decide(command, state)).toThrow(expect.objectContaining({ code })),
    }),
  };
}

const opened: AccountEventData = {
  type: 'TestAccountOpened',
  data: { accountId: 'a1', currency: 'USD' },
};
const deposited = (amount: string): AccountEventData => ({
  type: 'TestMoneyDeposited',
  data: { accountId: 'a1', amount: { amount, currency: 'USD' } },
});
const withdrawn = (amount: string): AccountEventData => ({
  type: 'TestMoneyWithdrawn',
  data: { accountId: 'a1', amount: { amount, currency: 'USD' } },
});

describe('bank account (test aggregate)', () => {
  it('opens once', () => {
    given().when({ type: 'OpenAccount', accountId: 'a1', currency: 'USD' }).then([opened]);
    given(opened)
      .when({ type: 'OpenAccount', accountId: 'a1', currency: 'USD' })
      .thenFails('ALREADY_OPENED');
  });

  it('takes deposits in the account currency, exactly', () => {
    given(opened)
      .when({ type: 'Deposit', amount: '10.5' })
      .then([deposited('10.50')]);
    given().when({ type: 'Deposit', amount: '1' }).thenFails('ACCOUNT_NOT_OPEN');
    expect(() =>
      decide({ type: 'Deposit', amount: '0.001' }, evolve(initialState(), opened)),
    ).toThrow(/2 decimal places/);
  });

  it('withdraws only what the balance covers', () => {
    given(opened, deposited('10.00'))
      .when({ type: 'Withdraw', amount: '10' })
      .then([withdrawn('10.00')]);
    given(opened, deposited('10.00'), withdrawn('4.00'))
      .when({ type: 'Withdraw', amount: '6.01' })
      .thenFails('INSUFFICIENT_FUNDS');
  });

  it('closes only when empty, and a closed account takes no more commands', () => {
    given(opened, deposited('1.00')).when({ type: 'CloseAccount' }).thenFails('NOT_EMPTY');
    given(opened, deposited('1.00'), withdrawn('1.00'))
      .when({ type: 'CloseAccount' })
      .then([{ type: 'TestAccountClosed', data: { accountId: 'a1' } }]);
    given(opened, { type: 'TestAccountClosed', data: { accountId: 'a1' } })
      .when({ type: 'Deposit', amount: '1' })
      .thenFails('ACCOUNT_NOT_OPEN');
  });

  it('folds events into an exact balance', () => {
    const state = [opened, deposited('0.10'), deposited('0.20'), withdrawn('0.05')].reduce(
      evolve,
      initialState(),
    );
    expect(state).toEqual({
      status: 'open',
      accountId: 'a1',
      balance: { currency: 'USD', minor: 25n },
      movements: 3,
    });
  });

  it('round-trips its state through a JSON snapshot, bigint included', () => {
    const policy = accountSnapshots(10);
    const state = [opened, deposited('90071992547409.93')].reduce(evolve, initialState());
    const json = JSON.parse(JSON.stringify(policy.toSnapshot(state)));
    expect(policy.fromSnapshot(json)).toEqual(state);
  });

  it('upcasts a v1 deposit (US cents) to the current shape', () => {
    const aggregate = bankAccount();
    const decoded = aggregate.catalog.decode({
      type: 'TestMoneyDeposited',
      data: { accountId: 'a1', cents: '1234' },
      metadata: {
        eventId: '0190f1e2-7c4a-7d3e-9a4b-0123456789ab',
        type: 'TestMoneyDeposited',
        version: 1,
        aggregateType: 'test-account',
        aggregateId: 'a1',
        aggregateSequence: 2,
        occurredAt: '2026-01-01T00:00:00.000000Z',
        correlationId: 'c1',
        causationId: null,
        producer: 'trading',
      },
    });
    expect(decoded).toMatchObject({
      status: 'ok',
      message: { data: { accountId: 'a1', amount: { amount: '12.34', currency: 'USD' } } },
    });
  });
});
