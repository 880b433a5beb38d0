// Identifiers and timestamps every message carries: UUIDv7 ids and UTC times with microseconds.
import { randomFillSync } from 'node:crypto';

let lastMs = 0;
let counter = 0;

// Random bytes are drawn from the CSPRNG a pool at a time: one call per 512 ids instead of one each.
const POOL_SIZE = 8 * 1024;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let poolOffset = POOL_SIZE;

function random(n: number): number {
  if (poolOffset + n > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const at = poolOffset;
  poolOffset += n;
  return at;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * RFC 9562 UUIDv7: 48-bit Unix milliseconds, then 74 random bits. Within one millisecond a 12-bit
 * counter (rand_a) keeps ids from one process strictly increasing.
 */
export function uuidv7(nowMs: number = Date.now()): string {
  if (nowMs > lastMs) {
    lastMs = nowMs;
    counter = pool.readUInt16BE(random(2)) & 0x3ff; // leave headroom before the counter overflows
  } else {
    counter++;
    if (counter > 0xfff) {
      lastMs++; // borrow the next millisecond rather than repeat an id
      counter = 0;
    }
  }
  const r = random(8);
  // 48 bits of milliseconds: the high 16 and the low 32, exact in a double.
  const high = Math.floor(lastMs / 0x1_0000_0000);
  const low = lastMs >>> 0;
  return (
    HEX[(high >>> 8) & 0xff] +
    HEX[high & 0xff] +
    HEX[low >>> 24] +
    HEX[(low >>> 16) & 0xff] +
    '-' +
    HEX[(low >>> 8) & 0xff] +
    HEX[low & 0xff] +
    '-' +
    HEX[0x70 | ((counter >>> 8) & 0x0f)] +
    HEX[counter & 0xff] +
    '-' +
    HEX[0x80 | (pool[r] & 0x3f)] +
    HEX[pool[r + 1]] +
    '-' +
    HEX[pool[r + 2]] +
    HEX[pool[r + 3]] +
    HEX[pool[r + 4]] +
    HEX[pool[r + 5]] +
    HEX[pool[r + 6]] +
    HEX[pool[r + 7]]
  );
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
