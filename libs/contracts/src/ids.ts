// Identifiers and timestamps every message carries: UUIDv7 ids and UTC times with microseconds.
import { randomBytes } from 'node:crypto';

let lastMs = 0;
let counter = 0;

/**
 * RFC 9562 UUIDv7: 48-bit Unix milliseconds, then 74 random bits. Within one millisecond a 12-bit
 * counter (rand_a) keeps ids from one process strictly increasing.
 */
export function uuidv7(nowMs: number = Date.now()): string {
  if (nowMs > lastMs) {
    lastMs = nowMs;
    counter = randomBytes(2).readUInt16BE(0) & 0x3ff; // leave headroom before the counter overflows
  } else {
    counter++;
    if (counter > 0xfff) {
      lastMs++; // borrow the next millisecond rather than repeat an id
      counter = 0;
    }
  }
  const bytes = randomBytes(16);
  const ms = BigInt(lastMs);
  for (let i = 0; i < 6; i++) bytes[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn);
  bytes[6] = 0x70 | ((counter >> 8) & 0x0f);
  bytes[7] = counter & 0xff;
  bytes[8] = 0x80 | (bytes[8] & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export const UUID_PATTERN =
  /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

// Wall clock anchored once, advanced by the monotonic high-resolution clock, so microseconds are real.
const anchorMicros = BigInt(Date.now()) * 1000n;
const anchorHr = process.hrtime.bigint();

export function nowMicros(): bigint {
  return anchorMicros + (process.hrtime.bigint() - anchorHr) / 1000n;
}

/** RFC 3339 UTC with exactly six fractional digits, e.g. 2026-11-22T01:10:26.123456Z. */
export function formatMicros(micros: bigint): string {
  const ms = Number(micros / 1000n);
  const iso = new Date(ms).toISOString(); // ...T01:10:26.123Z
  const fraction = (micros % 1_000_000n).toString().padStart(6, '0');
  return `${iso.slice(0, 19)}.${fraction}Z`;
}

export function utcNowMicros(): string {
  return formatMicros(nowMicros());
}

export const MICROS_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
