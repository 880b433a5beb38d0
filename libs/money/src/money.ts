// Amounts as integer minor units with an explicit currency; never a JS number.

// ISO 4217 minor-unit exponents of the currencies the system accepts.
const MINOR_UNITS = {
  USD: 2,
  EUR: 2,
  GBP: 2,
  CHF: 2,
  CNY: 2,
  HKD: 2,
  SGD: 2,
  JPY: 0,
  KWD: 3,
  BHD: 3,
} as const;

export type Currency = keyof typeof MINOR_UNITS;

export interface Money {
  readonly currency: Currency;
  readonly minor: bigint;
}

export class MoneyError extends Error {
  override readonly name = 'MoneyError';
}

export function isCurrency(code: string): code is Currency {
  return Object.prototype.hasOwnProperty.call(MINOR_UNITS, code);
}

export function minorUnits(currency: Currency): number {
  return MINOR_UNITS[currency];
}

export function money(currency: Currency, minor: bigint): Money {
  return { currency, minor };
}

const DECIMAL = /^(-)?(\d+)(?:\.(\d+))?$/;

/** Parses a decimal string ("1234.50") exactly; more fraction digits than the currency has is an error. */
export function parseMoney(currency: string, amount: string): Money {
  if (!isCurrency(currency)) throw new MoneyError(`unsupported currency '${currency}'`);
  const match = DECIMAL.exec(amount);
  if (!match) throw new MoneyError(`'${amount}' is not a decimal amount`);
  const [, sign, whole, fraction = ''] = match;
  const exponent = MINOR_UNITS[currency];
  if (fraction.length > exponent) {
    throw new MoneyError(`${currency} has ${exponent} decimal places, got '${amount}'`);
  }
  const minor = BigInt(whole + fraction.padEnd(exponent, '0'));
  return { currency, minor: sign ? -minor : minor };
}

export function formatMoney(value: Money): string {
  const exponent = MINOR_UNITS[value.currency];
  const negative = value.minor < 0n;
  const digits = (negative ? -value.minor : value.minor).toString().padStart(exponent + 1, '0');
  const whole = digits.slice(0, digits.length - exponent);
  const fraction = exponent > 0 ? `.${digits.slice(digits.length - exponent)}` : '';
  return `${negative ? '-' : ''}${whole}${fraction}`;
}

function sameCurrency(a: Money, b: Money): void {
  if (a.currency !== b.currency) {
    throw new MoneyError(`currency mismatch: ${a.currency} vs ${b.currency}`);
  }
}

export function add(a: Money, b: Money): Money {
  sameCurrency(a, b);
  return { currency: a.currency, minor: a.minor + b.minor };
}

export function subtract(a: Money, b: Money): Money {
  sameCurrency(a, b);
  return { currency: a.currency, minor: a.minor - b.minor };
}

export function compare(a: Money, b: Money): -1 | 0 | 1 {
  sameCurrency(a, b);
  return a.minor < b.minor ? -1 : a.minor > b.minor ? 1 : 0;
}
