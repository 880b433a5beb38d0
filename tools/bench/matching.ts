// Order book throughput and latency on one core over a deterministic, exchange-like order stream.
// No database or broker: the stream is generated first (seeded, by simulating it against a book, so
// every cancel and replace targets an order that is live at that moment), stored compactly, then
// replayed on fresh books: once untimed for throughput, once with a clock read around each operation
// for latency, so the timer's own cost does not lower the throughput figure.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { IncomingOrder, OrderBook, Side, SubmitResult, TimeInForce } from '@finance/order-book';
import { percentile } from './stats';

const SUBMIT = 0;
const CANCEL = 1;
const REPLACE = 2;
const KIND_NAMES = ['submit', 'cancel', 'replace'] as const;
const TIFS: readonly TimeInForce[] = ['GTC', 'IOC', 'FOK', 'DAY'];
const MARKET_FLAG = 4;

// The shape of the stream, per symbol: resting orders kept around TARGET_ORDERS, placed mostly near
// the touch with a long tail out to MAX_DISTANCE ticks, so a book spans about 1,000 price levels.
const TARGET_ORDERS = 10_000;
const MAX_DISTANCE = 500;
const START_PRICE = 100_000;
const OWNERS = 2_000;

/** mulberry32: small, fast and good enough to make a reproducible stream from a seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The operations as columns: no per-operation objects kept alive while measuring. */
interface Stream {
  count: number;
  kind: Uint8Array;
  symbol: Uint16Array;
  /** Index into `ids`: the new order for a submit, the target for a cancel or replace. */
  order: Int32Array;
  owner: Int32Array;
  side: Uint8Array;
  /** Time in force index into TIFS, plus MARKET_FLAG. */
  flags: Uint8Array;
  /** Ticks; 0 means none (a market order, or a replace keeping its price). */
  price: Int32Array;
  protection: Int32Array;
  /** Lots; 0 means unchanged in a replace. */
  quantity: Int32Array;
  ids: string[];
  owners: string[];
  /** Operations of each kind, by intent. */
  mix: Record<string, number>;
}

function generate(count: number, symbols: number, seed: number): Stream {
  const random = prng(seed);
  const int = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
  const exponential = (mean: number) => Math.floor(-Math.log(1 - random()) * mean);
  const stream: Stream = {
    count,
    kind: new Uint8Array(count),
    symbol: new Uint16Array(count),
    order: new Int32Array(count),
    owner: new Int32Array(count),
    side: new Uint8Array(count),
    flags: new Uint8Array(count),
    price: new Int32Array(count),
    protection: new Int32Array(count),
    quantity: new Int32Array(count),
    ids: [],
    owners: Array.from({ length: OWNERS }, (_, i) => `acct-${i}`),
    mix: {},
  };
  const books = Array.from({ length: symbols }, (_, s) => new OrderBook(`SYM${s}`));
  const center = Array.from({ length: symbols }, () => START_PRICE);
  // Live orders: a dense array for a uniform random pick, and each order's place in it.
  const live: number[] = [];
  const livePosition = new Int32Array(count).fill(-1);
  const orderSymbol = new Uint16Array(count);
  const addLive = (order: number) => {
    livePosition[order] = live.length;
    live.push(order);
  };
  const removeLive = (order: number) => {
    const at = livePosition[order];
    if (at < 0) return;
    const last = live.pop()!;
    if (last !== order) {
      live[at] = last;
      livePosition[last] = at;
    }
    livePosition[order] = -1;
  };
  const indexOf = (id: string) => Number(id.slice(1));
  const track = (result: SubmitResult) => {
    for (const fill of result.fills) {
      if (fill.makerRemaining === 0) removeLive(indexOf(fill.makerOrderId));
    }
    for (const c of result.cancelled) removeLive(indexOf(c.orderId));
    const own = indexOf(result.orderId);
    if (result.remaining > 0 && livePosition[own] < 0) addLive(own);
    if (result.remaining === 0) removeLive(own);
  };
  const tally = (name: string) => (stream.mix[name] = (stream.mix[name] ?? 0) + 1);

  for (let i = 0; i < count; i++) {
    const s = int(0, symbols - 1);
    const book = books[s];
    if (random() < 0.02) center[s] += random() < 0.5 ? -1 : 1;
    const { bid, ask } = book.top();
    const liveShare = live.length / (TARGET_ORDERS * symbols);
    const roll = random();
    // About a third cancels of live orders, more when the books are above target, fewer while they
    // are being built (below half the target only passive orders arrive).
    const cancelShare = live.length === 0 ? 0 : liveShare > 1 ? 0.45 : liveShare < 0.5 ? 0.1 : 0.3;
    const replaceShare = live.length === 0 ? 0 : 0.07;
    stream.symbol[i] = s;
    if (roll < cancelShare + replaceShare) {
      const target = live[int(0, live.length - 1)];
      stream.symbol[i] = orderSymbol[target];
      stream.order[i] = target;
      const targetBook = books[orderSymbol[target]];
      if (roll < cancelShare) {
        stream.kind[i] = CANCEL;
        tally('cancel');
        targetBook.cancel(stream.ids[target]);
        removeLive(target);
        continue;
      }
      stream.kind[i] = REPLACE;
      const current = targetBook.get(stream.ids[target])!;
      const what = random();
      if (what < 0.5) {
        tally('replace: smaller (keeps priority)');
        stream.quantity[i] = Math.max(1, Math.floor(current.quantity / 2));
      } else if (what < 0.8) {
        tally('replace: new price');
        const step = int(1, 3) * (random() < 0.5 ? -1 : 1);
        stream.price[i] = Math.max(1, current.price + step);
      } else {
        tally('replace: larger');
        stream.quantity[i] = current.quantity + int(1, 20);
      }
      track(
        targetBook.replace(stream.ids[target], {
          price: stream.price[i] || undefined,
          quantity: stream.quantity[i] || undefined,
        })!,
      );
      continue;
    }

    const id = stream.ids.length;
    stream.ids.push(`o${id}`);
    stream.kind[i] = SUBMIT;
    stream.order[i] = id;
    stream.owner[i] = int(0, OWNERS - 1);
    const side: Side = random() < 0.5 ? 'BUY' : 'SELL';
    const buy = side === 'BUY';
    stream.side[i] = buy ? 0 : 1;
    orderSymbol[id] = s;
    const opposite = buy ? ask : bid;
    const kindRoll = liveShare < 0.5 ? 0 : random();
    let tif = 0;
    if (kindRoll < 0.84 || opposite === null) {
      // Passive: behind the touch, mostly close to it, sometimes far out.
      tally('submit: passive limit');
      const distance = random() < 0.85 ? exponential(6) : int(0, MAX_DISTANCE);
      const reference = buy
        ? Math.min(center[s], ask?.price ?? Infinity)
        : Math.max(center[s], bid?.price ?? 0);
      stream.price[i] = Math.max(1, buy ? reference - 1 - distance : reference + 1 + distance);
      stream.quantity[i] = 1 + exponential(20);
      tif = random() < 0.8 ? 0 : 3;
    } else if (kindRoll < 0.93) {
      // Aggressive limit through the touch; GTC ones rest what they do not fill and move the price.
      tally('submit: aggressive limit');
      const through = int(0, 3);
      stream.price[i] = Math.max(1, buy ? opposite.price + through : opposite.price - through);
      stream.quantity[i] = 1 + exponential(40);
      tif = random() < 0.5 ? 0 : 1;
    } else if (kindRoll < 0.98) {
      tally('submit: market');
      stream.flags[i] = MARKET_FLAG;
      if (random() < 0.5) {
        stream.protection[i] = Math.max(1, buy ? opposite.price + 10 : opposite.price - 10);
      }
      stream.quantity[i] = 1 + exponential(40);
      tif = 1;
    } else {
      tally('submit: FOK limit');
      stream.price[i] = Math.max(1, buy ? opposite.price + 2 : opposite.price - 2);
      stream.quantity[i] = 1 + exponential(40);
      tif = 2;
    }
    stream.flags[i] |= tif;
    track(book.submit(incoming(stream, i)));
  }
  return stream;
}

// Same shape for every order (absent fields are undefined) so the book sees one hidden class.
function incoming(stream: Stream, i: number): IncomingOrder {
  const market = (stream.flags[i] & MARKET_FLAG) !== 0;
  return {
    id: stream.ids[stream.order[i]],
    owner: stream.owners[stream.owner[i]],
    side: stream.side[i] === 0 ? 'BUY' : 'SELL',
    type: market ? 'MARKET' : 'LIMIT',
    price: market ? undefined : stream.price[i],
    protectionPrice: stream.protection[i] || undefined,
    quantity: stream.quantity[i],
    timeInForce: TIFS[stream.flags[i] & 3],
  };
}

function apply(books: OrderBook[], stream: Stream, i: number): number {
  const book = books[stream.symbol[i]];
  switch (stream.kind[i]) {
    case SUBMIT:
      return book.submit(incoming(stream, i)).fills.length;
    case CANCEL:
      book.cancel(stream.ids[stream.order[i]]);
      return 0;
    default: {
      const price = stream.price[i];
      const quantity = stream.quantity[i];
      const result = book.replace(stream.ids[stream.order[i]], {
        price: price === 0 ? undefined : price,
        quantity: quantity === 0 ? undefined : quantity,
      });
      return result === null ? 0 : result.fills.length;
    }
  }
}

function freshBooks(symbols: number): OrderBook[] {
  return Array.from({ length: symbols }, (_, s) => new OrderBook(`SYM${s}`));
}

function replay(stream: Stream, books: OrderBook[]): { seconds: number; trades: number } {
  let trades = 0;
  const started = process.hrtime.bigint();
  for (let i = 0; i < stream.count; i++) trades += apply(books, stream, i);
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, trades };
}

/** Nanoseconds per operation, one clock read either side of it. */
function replayTimed(
  stream: Stream,
  books: OrderBook[],
): { latencies: Float64Array; trades: number } {
  const latencies = new Float64Array(stream.count);
  let trades = 0;
  for (let i = 0; i < stream.count; i++) {
    const t0 = process.hrtime.bigint();
    trades += apply(books, stream, i);
    latencies[i] = Number(process.hrtime.bigint() - t0);
  }
  return { latencies, trades };
}

// A collector to read retained heap; without it heapUsed includes garbage not yet collected.
function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

export async function matchingBenchmark(flags: Record<string, string>): Promise<void> {
  const ops = Number(flags.ops ?? 3_000_000);
  const symbols = Number(flags.symbols ?? 1);
  const seed = Number(flags.seed ?? 1);
  const warmupOps = Number(flags.warmup ?? Math.min(ops, 1_000_000));
  for (const [name, value] of Object.entries({ ops, symbols, seed, warmupOps })) {
    if (!Number.isSafeInteger(value) || value < 0) throw new Error(`--${name} must be a count`);
  }
  if (symbols < 1 || symbols > 65_535) throw new Error('--symbols must be 1..65535');
  const gc = collector();

  process.stdout.write(
    `matching: ${fmt(ops)} operations on ${symbols} symbol(s), seed ${seed}, warm-up ${fmt(warmupOps)}\n`,
  );
  const warmup = generate(warmupOps, symbols, seed + 1_000_003);
  replay(warmup, freshBooks(symbols));
  replayTimed(warmup, freshBooks(symbols));

  const stream = generate(ops, symbols, seed);
  for (const [name, n] of Object.entries(stream.mix).sort()) {
    process.stdout.write(
      `  ${name.padEnd(36)} ${fmt(n).padStart(11)}  ${((100 * n) / ops).toFixed(1).padStart(5)}%\n`,
    );
  }

  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const books = freshBooks(symbols);
  const run = replay(stream, books);
  gc();
  const heapAfter = process.memoryUsage().heapUsed;
  const resting = books.reduce((n, b) => n + b.size, 0);
  const levels = books.reduce((n, b) => {
    const { bids, asks } = b.depth(Number.MAX_SAFE_INTEGER);
    return n + bids.length + asks.length;
  }, 0);

  const timed = replayTimed(stream, freshBooks(symbols));
  if (timed.trades !== run.trades) {
    throw new Error(`replays disagree: ${run.trades} trades, then ${timed.trades}`);
  }

  process.stdout.write(
    `throughput: ${fmt(ops / run.seconds)} ops/s (${fmt(ops)} in ${run.seconds.toFixed(2)} s), ` +
      `${fmt(run.trades / run.seconds)} trades/s (${fmt(run.trades)} fills)\n`,
  );
  process.stdout.write(
    `latency per operation, timed replay (ns):\n  ${'operation'.padEnd(9)} ${'count'.padStart(11)} ${'p50'.padStart(7)} ${'p99'.padStart(7)} ${'p99.9'.padStart(7)}\n`,
  );
  for (let kind = 0; kind < KIND_NAMES.length; kind++) {
    const sample: number[] = [];
    for (let i = 0; i < ops; i++) if (stream.kind[i] === kind) sample.push(timed.latencies[i]);
    sample.sort((a, b) => a - b);
    process.stdout.write(
      `  ${KIND_NAMES[kind].padEnd(9)} ${fmt(sample.length).padStart(11)} ${[50, 99, 99.9]
        .map((p) => fmt(percentile(sample, p)).padStart(7))
        .join(' ')}\n`,
    );
  }
  process.stdout.write(
    `book at the end: ${fmt(resting)} resting orders on ${fmt(levels)} price levels; ` +
      `retained heap ${((heapAfter - heapBefore) / 2 ** 20).toFixed(1)} MiB ` +
      `(${fmt((heapAfter - heapBefore) / Math.max(1, resting))} B per resting order); ` +
      `process heap used ${(process.memoryUsage().heapUsed / 2 ** 20).toFixed(0)} MiB\n`,
  );
}
