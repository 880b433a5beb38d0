// A position and its P&L at average cost, as pure functions over integer minor units: a fill that
// adds to a position adds its cost; one that reduces it realizes the difference between the fill
// price and the average cost of the part it closes; one that crosses zero closes, then opens the
// rest at the fill price. Rounding (only when part of a position closes at an average cost that is
// not a whole number of minor units) moves at most one minor unit between realized P&L of partial
// closes; a position closed to zero has realized exactly its proceeds less its cost.

export interface Position {
  /** Signed: negative is short. */
  readonly quantity: bigint;
  /** Signed cost of the open quantity (negative for a short), in minor units. */
  readonly cost: bigint;
  /** Realized P&L so far, in minor units. */
  readonly realized: bigint;
}

export const FLAT: Position = { quantity: 0n, cost: 0n, realized: 0n };

const abs = (n: bigint) => (n < 0n ? -n : n);
const sign = (n: bigint) => (n < 0n ? -1n : n > 0n ? 1n : 0n);

/** numerator / denominator rounded half to even (denominator > 0). */
export function divideHalfEven(numerator: bigint, denominator: bigint): bigint {
  const q = numerator / denominator; // truncates toward zero
  const r = numerator % denominator;
  const twice = 2n * abs(r);
  if (twice < denominator) return q;
  const away = q + sign(numerator);
  if (twice > denominator) return away;
  return q % 2n === 0n ? q : away;
}

/**
 * Applies one fill: `quantity` > 0 shares bought (positive) or sold (negative) at `price` minor
 * units per share.
 */
export function applyFill(position: Position, quantity: bigint, price: bigint): Position {
  if (quantity === 0n) return position;
  const { quantity: held, cost, realized } = position;
  if (held === 0n || sign(held) === sign(quantity)) {
    return { quantity: held + quantity, cost: cost + quantity * price, realized };
  }
  // Reducing: close min(|fill|, |held|) shares of the position at its average cost.
  const closing = abs(quantity) < abs(held) ? abs(quantity) : abs(held);
  const closedQuantity = sign(held) * closing; // the part of the position that goes
  const closedCost = closing === abs(held) ? cost : divideHalfEven(cost * closing, abs(held));
  const afterClose: Position = {
    quantity: held - closedQuantity,
    cost: cost - closedCost,
    realized: realized + closedQuantity * price - closedCost,
  };
  const rest = quantity + closedQuantity; // what is left of the fill after closing
  return rest === 0n ? afterClose : applyFill(afterClose, rest, price);
}

/** P&L of the open position against the last trade price. */
export function unrealized(position: Position, lastPrice: bigint): bigint {
  return position.quantity * lastPrice - position.cost;
}

/** Average cost per share in major units, rounded half-even to `scale` decimals (at least the currency's). */
export function averageCost(position: Position, exponent: number, scale = 6): string | null {
  if (position.quantity === 0n) return null;
  // cost and quantity have the same sign, so the average is positive.
  const scaled = divideHalfEven(
    abs(position.cost) * 10n ** BigInt(scale),
    abs(position.quantity) * 10n ** BigInt(exponent),
  );
  const digits = scaled.toString().padStart(scale + 1, '0');
  const fraction = digits.slice(-scale).replace(/0+$/, '').padEnd(exponent, '0');
  return `${digits.slice(0, -scale)}${fraction ? `.${fraction}` : ''}`;
}
