import { add, compare, formatMoney, MoneyError, parseMoney, subtract } from './money';

describe('money', () => {
  it('parses decimal strings exactly into minor units', () => {
    expect(parseMoney('USD', '1234.5')).toEqual({ currency: 'USD', minor: 123450n });
    expect(parseMoney('JPY', '1500')).toEqual({ currency: 'JPY', minor: 1500n });
    expect(parseMoney('KWD', '-0.125')).toEqual({ currency: 'KWD', minor: -125n });
    // Larger than Number.MAX_SAFE_INTEGER stays exact.
    expect(parseMoney('USD', '90071992547409.93').minor).toBe(9007199254740993n);
  });

  it('rejects amounts finer than the currency allows, bad syntax and unknown currencies', () => {
    expect(() => parseMoney('USD', '0.001')).toThrow(MoneyError);
    expect(() => parseMoney('JPY', '1.5')).toThrow(/0 decimal places/);
    expect(() => parseMoney('USD', '1e3')).toThrow(/not a decimal/);
    expect(() => parseMoney('XXX', '1')).toThrow(/unsupported currency/);
  });

  it('formats back to the canonical decimal string', () => {
    expect(formatMoney(parseMoney('USD', '0.05'))).toBe('0.05');
    expect(formatMoney(parseMoney('USD', '-12'))).toBe('-12.00');
    expect(formatMoney(parseMoney('JPY', '7'))).toBe('7');
  });

  it('refuses arithmetic across currencies', () => {
    const usd = parseMoney('USD', '1');
    expect(add(usd, parseMoney('USD', '0.99'))).toEqual({ currency: 'USD', minor: 199n });
    expect(subtract(usd, parseMoney('USD', '2')).minor).toBe(-100n);
    expect(compare(usd, parseMoney('USD', '1.00'))).toBe(0);
    expect(() => add(usd, parseMoney('EUR', '1'))).toThrow(/currency mismatch/);
  });
});
