// Reads the order-placement payload of a TccTry: the contract's schema, then the amounts as exact
// money. Anything unusable is a business refusal (INVALID_PAYLOAD naming the field), never a retry.
// (Risk has the same reader: apps do not share code, and the contract is what they share.)
import { OrderPlacementPayload } from '@finance/contracts';
import { isCurrency, Money, parseMoney } from '@finance/money';
import { BranchRejected } from '@finance/tcc';

export interface PlacementOrder {
  readonly orderId: string;
  readonly accountId: string;
  readonly side: 'BUY' | 'SELL';
  readonly notional: Money;
  readonly fees: Money;
  readonly quantity: bigint;
}

export function parsePlacement(payload: unknown): PlacementOrder {
  const parsed = OrderPlacementPayload.safeParse(payload);
  if (!parsed.success) {
    const where = parsed.error.issues
      .map((i) => `${i.path.join('.') || '(payload)'}: ${i.message}`)
      .join('; ');
    throw new BranchRejected('INVALID_PAYLOAD', where);
  }
  const { orderId, accountId, side, notional, fees, quantity } = parsed.data;
  const notionalMoney = amount('notional', notional);
  if (notionalMoney.minor <= 0n) throw invalid('notional.amount', 'must be > 0');
  const feesMoney = amount('fees', fees);
  if (feesMoney.minor < 0n) throw invalid('fees.amount', 'must be >= 0');
  return {
    orderId,
    accountId,
    side,
    notional: notionalMoney,
    fees: feesMoney,
    quantity: BigInt(quantity),
  };
}

function amount(field: string, value: { amount: string; currency: string }): Money {
  if (!isCurrency(value.currency)) throw invalid(`${field}.currency`, 'unsupported currency');
  try {
    return parseMoney(value.currency, value.amount);
  } catch (error) {
    // More decimal places than the currency has: refuse rather than round.
    throw invalid(`${field}.amount`, (error as Error).message);
  }
}

function invalid(field: string, message: string): BranchRejected {
  return new BranchRejected('INVALID_PAYLOAD', `${field}: ${message}`);
}
