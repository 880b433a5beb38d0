import { addBusinessDays, settlementDate } from './settlement-date';

describe('settlement dates', () => {
  it('skips weekends: a Friday trade settles T+1 on Monday', () => {
    expect(addBusinessDays('2026-11-20', 1)).toBe('2026-11-23'); // Friday -> Monday
    expect(addBusinessDays('2026-11-18', 2)).toBe('2026-11-20'); // Wednesday -> Friday
    expect(addBusinessDays('2026-11-19', 2)).toBe('2026-11-23'); // Thursday -> Monday
  });

  it('settles T+0 on the trade date, and uses the symbol period before the default', () => {
    const periods = { SETTLEMENT_PERIOD: 1, SETTLEMENT_PERIOD_BY_SYMBOL: { AAPL: 0 } };
    expect(settlementDate('2026-11-20T15:04:05.123Z', 'AAPL', periods)).toBe('2026-11-20');
    expect(settlementDate('2026-11-20T15:04:05.123Z', 'MSFT', periods)).toBe('2026-11-23');
  });

  it('refuses something that is not a date', () => {
    expect(() => addBusinessDays('20-11-2026', 1)).toThrow('not a date');
  });
});
