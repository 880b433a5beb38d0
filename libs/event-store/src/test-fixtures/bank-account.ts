// A small bank account used only by the event store's tests: pure decide/evolve over exact money.
import { defineMessage, fields, MessageOf, TOPICS } from '@finance/contracts';
import {
  add,
  compare,
  Currency,
  formatMoney,
  isCurrency,
  money,
  Money,
  parseMoney,
  subtract,
} from '@finance/money';
import { z } from 'zod';
import { defineAggregate, EventDraft, SnapshotPolicy } from '../aggregates/aggregate';
import type { JsonValue } from '../store/json';

export const ACCOUNT = 'test-account';

const declared = { aggregateType: ACCOUNT, topic: TOPICS.tradingEvents } as const;

export const AccountOpened = defineMessage({
  type: 'TestAccountOpened',
  ...declared,
  schema: z.object({ accountId: fields.id, currency: fields.currency }),
});

// v1 carried US cents only; v2 carries an amount with its currency.
export const MoneyDeposited = defineMessage({
  type: 'TestMoneyDeposited',
  ...declared,
  version: 2,
  schema: z.object({ accountId: fields.id, amount: fields.money }),
  upcasters: {
    1: (data) => {
      const { accountId, cents } = z
        .object({ accountId: z.string(), cents: z.string() })
        .parse(data);
      return {
        accountId,
        amount: { amount: formatMoney(money('USD', BigInt(cents))), currency: 'USD' },
      };
    },
  },
});

export const MoneyWithdrawn = defineMessage({
  type: 'TestMoneyWithdrawn',
  ...declared,
  schema: z.object({ accountId: fields.id, amount: fields.money }),
});

export const AccountClosed = defineMessage({
  type: 'TestAccountClosed',
  ...declared,
  schema: z.object({ accountId: fields.id }),
});

export const ACCOUNT_EVENTS = [
  AccountOpened,
  MoneyDeposited,
  MoneyWithdrawn,
  AccountClosed,
] as const;

export type AccountEvent = MessageOf<(typeof ACCOUNT_EVENTS)[number]>;
/** What the domain needs of an event: its type and data, never the envelope. */
export type AccountEventData = EventDraft<AccountEvent>;

export type AccountState =
  | { status: 'unopened' }
  | { status: 'open' | 'closed'; accountId: string; balance: Money; movements: number };

export type AccountCommand =
  | { type: 'OpenAccount'; accountId: string; currency: Currency }
  | { type: 'Deposit'; amount: string }
  | { type: 'Withdraw'; amount: string }
  | { type: 'CloseAccount' };

export type AccountErrorCode =
  'ACCOUNT_NOT_OPEN' | 'ALREADY_OPENED' | 'INSUFFICIENT_FUNDS' | 'NOT_EMPTY';

export class AccountError extends Error {
  override readonly name = 'AccountError';

  constructor(
    readonly code: AccountErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function initialState(): AccountState {
  return { status: 'unopened' };
}

export function decide(command: AccountCommand, state: AccountState): AccountEventData[] {
  if (command.type === 'OpenAccount') {
    if (state.status !== 'unopened') throw new AccountError('ALREADY_OPENED', 'account exists');
    return [
      {
        type: 'TestAccountOpened',
        data: { accountId: command.accountId, currency: command.currency },
      },
    ];
  }
  if (state.status !== 'open') throw new AccountError('ACCOUNT_NOT_OPEN', 'account is not open');
  const { accountId, balance } = state;
  switch (command.type) {
    case 'Deposit': {
      const amount = positive(balance.currency, command.amount);
      return [{ type: 'TestMoneyDeposited', data: { accountId, amount: wire(amount) } }];
    }
    case 'Withdraw': {
      const amount = positive(balance.currency, command.amount);
      if (compare(amount, balance) > 0) {
        throw new AccountError('INSUFFICIENT_FUNDS', `balance ${formatMoney(balance)} is too low`);
      }
      return [{ type: 'TestMoneyWithdrawn', data: { accountId, amount: wire(amount) } }];
    }
    case 'CloseAccount':
      if (balance.minor !== 0n) throw new AccountError('NOT_EMPTY', 'withdraw the balance first');
      return [{ type: 'TestAccountClosed', data: { accountId } }];
    default: {
      const _never: never = command;
      throw new Error(`unknown command ${JSON.stringify(_never)}`);
    }
  }
}

export function evolve(state: AccountState, event: AccountEventData): AccountState {
  switch (event.type) {
    case 'TestAccountOpened': {
      const { accountId, currency } = event.data;
      if (!isCurrency(currency)) throw new Error(`unsupported currency ${currency}`);
      return { status: 'open', accountId, balance: money(currency, 0n), movements: 0 };
    }
    case 'TestMoneyDeposited':
      return move(state, (b) => add(b, fromWire(event.data.amount)));
    case 'TestMoneyWithdrawn':
      return move(state, (b) => subtract(b, fromWire(event.data.amount)));
    case 'TestAccountClosed':
      return state.status === 'unopened' ? state : { ...state, status: 'closed' };
    default: {
      const _never: never = event;
      throw new Error(`unknown event ${JSON.stringify(_never)}`);
    }
  }
}

function move(state: AccountState, change: (balance: Money) => Money): AccountState {
  if (state.status === 'unopened') return state;
  return { ...state, balance: change(state.balance), movements: state.movements + 1 };
}

function positive(currency: Currency, amount: string): Money {
  const parsed = parseMoney(currency, amount);
  if (parsed.minor <= 0n) throw new RangeError(`amount must be > 0, got ${amount}`);
  return parsed;
}

function wire(value: Money): { amount: string; currency: string } {
  return { amount: formatMoney(value), currency: value.currency };
}

function fromWire(value: { amount: string; currency: string }): Money {
  return parseMoney(value.currency, value.amount);
}

// The balance is a bigint, which JSON cannot hold: it travels as a decimal string of minor units.
const snapshotSchema = z.union([
  z.object({ status: z.literal('unopened') }),
  z.object({
    status: z.enum(['open', 'closed']),
    accountId: z.string(),
    currency: z.string(),
    minor: z.string().regex(/^-?\d+$/),
    movements: z.number().int(),
  }),
]);

export function accountSnapshots(every: number, stateVersion = 1): SnapshotPolicy<AccountState> {
  return {
    every,
    stateVersion,
    toSnapshot(state): JsonValue {
      if (state.status === 'unopened') return { status: state.status };
      const { status, accountId, balance, movements } = state;
      return {
        status,
        accountId,
        currency: balance.currency,
        minor: balance.minor.toString(),
        movements,
      };
    },
    fromSnapshot(json): AccountState {
      const parsed = snapshotSchema.parse(json);
      if (parsed.status === 'unopened') return parsed;
      if (!isCurrency(parsed.currency)) throw new Error(`unsupported currency ${parsed.currency}`);
      return {
        status: parsed.status,
        accountId: parsed.accountId,
        balance: money(parsed.currency, BigInt(parsed.minor)),
        movements: parsed.movements,
      };
    },
  };
}

export function bankAccount(options: { snapshotEvery?: number; stateVersion?: number } = {}) {
  return defineAggregate({
    type: ACCOUNT,
    events: ACCOUNT_EVENTS,
    initialState,
    evolve,
    decide,
    snapshot:
      options.snapshotEvery === undefined
        ? undefined
        : accountSnapshots(options.snapshotEvery, options.stateVersion),
  });
}
