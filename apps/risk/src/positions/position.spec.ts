// Positions at average cost: given fills, then the position, its realized and unrealized P&L.
import { applyFill, averageCost, divideHalfEven, FLAT, Position, unrealized } from './position';

const fills = (...steps: Array<[bigint, bigint]>): Position =>
  steps.reduce((p, [q, price]) => applyFill(p, q, price), FLAT);

describe('a position at average cost', () => {
  it('adds fills on the same side to quantity and cost', () => {
    // Buy 100 @ 10.00, buy 50 @ 12.00 (cents): 150 shares costing 1,600.00, average 10.666…
    const p = fills([100n, 1000n], [50n, 1200n]);
    expect(p).toEqual({ quantity: 150n, cost: 160000n, realized: 0n });
    expect(averageCost(p, 2)).toBe('10.666667');
    expect(unrealized(p, 1100n)).toBe(5000n); // 150 × 11.00 − 1,600.00 = 50.00
  });

  it('realizes the difference to the average cost on a partial close', () => {
    // ... then sell 120 @ 11.00: closes 120 of 150, whose cost is 1,280.00; realized 40.00.
    const p = fills([100n, 1000n], [50n, 1200n], [-120n, 1100n]);
    expect(p).toEqual({ quantity: 30n, cost: 32000n, realized: 4000n });
    expect(averageCost(p, 2)).toBe('10.666667');
  });

  it('closes then opens the rest at the fill price when a fill crosses zero', () => {
    // Long 30 (cost 320.00, realized 40.00), sell 50 @ 9.00: close 30 (−50.00), short 20 @ 9.00.
    const p = fills([100n, 1000n], [50n, 1200n], [-120n, 1100n], [-50n, 900n]);
    expect(p).toEqual({ quantity: -20n, cost: -18000n, realized: -1000n });
    expect(averageCost(p, 2)).toBe('9.00');
    expect(unrealized(p, 1000n)).toBe(-2000n); // short 20 from 9.00, now 10.00
    // Buying back 20 @ 8.50 closes the short with a profit of 10.00.
    expect(applyFill(p, 20n, 850n)).toEqual({ quantity: 0n, cost: 0n, realized: 0n });
  });

  it('realizes exactly proceeds less cost once closed, however the partial closes rounded', () => {
    // Cost 100.00 over 3 shares: each third closes at a cost that is not whole cents.
    const p = fills(
      [1n, 3333n],
      [1n, 3333n],
      [1n, 3334n],
      [-1n, 4000n],
      [-1n, 4000n],
      [-1n, 4000n],
    );
    expect(p).toEqual({ quantity: 0n, cost: 0n, realized: 2000n }); // 120.00 − 100.00
  });

  it('rounds halves to even', () => {
    expect([5n, 15n, -5n, -15n, 7n].map((n) => divideHalfEven(n, 10n))).toEqual([
      0n,
      2n,
      0n,
      -2n,
      1n,
    ]);
  });

  it('has no average cost when flat, and shows a JPY average without decimals', () => {
    expect(averageCost(FLAT, 2)).toBeNull();
    expect(averageCost(fills([100n, 2500n]), 0)).toBe('2500');
  });
});
