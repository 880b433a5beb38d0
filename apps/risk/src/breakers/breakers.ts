// When a circuit breaker trips, as pure decisions over exact integers (minor units, percent strings):
// a symbol trading beyond its band around the trades of the window, an account losing more than its
// loss limit.

/** "5" or "2.5" → [numerator, denominator] of the percentage, so no decimal is ever rounded. */
export function percentFraction(percent: string): [bigint, bigint] {
  const [whole, fraction = ''] = percent.split('.');
  return [BigInt(whole + fraction), 100n * 10n ** BigInt(fraction.length)];
}

/**
 * The trade price against the lowest and highest price of the symbol's trades within the window
 * before it: beyond `percent` of either (seed 004: 5%) is a breach; a band of 0 is off.
 */
export function priceBandBreach(
  price: bigint,
  window: { low: bigint; high: bigint } | null,
  percent: string,
): 'UP' | 'DOWN' | null {
  const [num, den] = percentFraction(percent);
  if (num === 0n || window === null) return null;
  // (price - low) / low > num / den, without dividing.
  if ((price - window.low) * den > num * window.low) return 'UP';
  if ((window.high - price) * den > num * window.high) return 'DOWN';
  return null;
}

/** A loss (negative P&L) larger than the limit; exactly the limit is not yet a breach. */
export function lossBreach(pnl: bigint, lossLimit: bigint | null): boolean {
  return lossLimit !== null && pnl < -lossLimit;
}
