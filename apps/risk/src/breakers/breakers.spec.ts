// The breakers' thresholds: exactly at the band or the loss limit is not a breach, beyond it is.
import { lossBreach, percentFraction, priceBandBreach } from './breakers';

describe('circuit breakers', () => {
  it('reads a percentage exactly', () => {
    expect(percentFraction('5')).toEqual([5n, 100n]);
    expect(percentFraction('2.5')).toEqual([25n, 1000n]);
  });

  it('trips the price band only beyond it, up or down', () => {
    const window = { low: 10000n, high: 10400n }; // 100.00 .. 104.00
    expect(priceBandBreach(10500n, window, '5')).toBeNull(); // +5.00% of the low
    expect(priceBandBreach(10501n, window, '5')).toBe('UP');
    expect(priceBandBreach(9880n, window, '5')).toBeNull(); // −5.00% of the high
    expect(priceBandBreach(9879n, window, '5')).toBe('DOWN');
    expect(priceBandBreach(1n, window, '0')).toBeNull();
    expect(priceBandBreach(1n, null, '5')).toBeNull();
  });

  it('trips on a loss beyond the limit only', () => {
    expect(lossBreach(-100000n, 100000n)).toBe(false);
    expect(lossBreach(-100001n, 100000n)).toBe(true);
    expect(lossBreach(-100001n, null)).toBe(false);
  });
});
