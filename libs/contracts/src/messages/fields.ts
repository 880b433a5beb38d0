// Field types shared by message schemas. Amounts and prices are decimal strings, never JS numbers.
import { z } from 'zod';

export const id = z.string().min(1).max(128);
export const currency = z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code');
/** A decimal amount or price as a string, e.g. "101.25". */
export const decimal = z.string().regex(/^-?\d{1,20}(\.\d{1,10})?$/, 'must be a decimal string');
export const positiveDecimal = decimal.refine(
  (v) => !v.startsWith('-') && /[1-9]/.test(v),
  'must be > 0',
);
/** A whole quantity (shares) as a string. */
export const quantity = z.string().regex(/^[1-9]\d{0,17}$/, 'must be a positive whole number');
export const nonNegativeQuantity = z
  .string()
  .regex(/^(0|[1-9]\d{0,17})$/, 'must be a whole number');
export const symbol = z.string().regex(/^[A-Z0-9.]{1,12}$/, 'must be an upper-case ticker');
export const money = z.object({ amount: decimal, currency });
export const timestamp = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/);

export const side = z.enum(['BUY', 'SELL']);
export const orderType = z.enum(['LIMIT', 'MARKET']);
export const timeInForce = z.enum(['GTC', 'IOC', 'FOK', 'DAY']);
export const reason = z.object({ code: z.string().min(1), message: z.string() });
