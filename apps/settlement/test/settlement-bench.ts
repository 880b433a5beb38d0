// The settlement side of `npm run bench -- settlement`, run as its own process by
// tools/bench/settlement.ts (the bench may not import an app), on a fresh database migrated like the
// service's:
//  1. ledger transfers/s: deposits posted in linked batches (one transaction each), and one transfer
//     per transaction from several connections at once;
//  2. one settlement cycle over BENCH_TRADES open obligations between BENCH_ACCOUNTS accounts:
//     multilateral netting, pending net transfers, posting, TradeSettled events and clearing release,
//     timed per phase, then checked: every trade settled once, debits = credits for every asset.
import { openDatabase } from '@finance/platform';
import { randomUUID } from 'node:crypto';
import { SettlementCycles } from '../src/cycles/cycle';
import { clientAccount, createTransfers, externalAccount, NewTransfer } from '../src/ledger/ledger';
import { settlementService } from '../src/service';

const env = (name: string, fallback?: string) => {
  const value = process.env[name] ?? fallback;
  if (!value) throw new Error(`${name} is required`);
  return value;
};
const int = (name: string, fallback: string) => Number(env(name, fallback));
const say = (text: string) => process.stdout.write(`${text}\n`);
const rate = (n: number, ms: number) => Math.round((n * 1000) / ms).toLocaleString('en-US');

async function main(): Promise<void> {
  const trades = int('BENCH_TRADES', '100000');
  const accounts = int('BENCH_ACCOUNTS', '1000');
  const transfers = int('BENCH_TRANSFERS', '100000');
  const batch = int('BENCH_BATCH', '1000');
  const concurrency = int('BENCH_CONCURRENCY', '8');
  if (transfers < 2 * accounts)
    throw new Error('BENCH_TRANSFERS must be at least 2 x BENCH_ACCOUNTS');
  const db = await openDatabase({
    url: env('DATABASE_URL'),
    applicationName: 'settlement-bench',
    poolSize: concurrency + 2,
    migrations: settlementService.migrations,
  });
  try {
    // 1a. Linked batches: each batch is one transaction that takes effect completely or not at all.
    const deposit = (i: number, kind: 'CASH' | 'SECURITY'): NewTransfer => {
      const party = `T${i % accounts}`;
      const asset = kind === 'CASH' ? 'USD' : 'AAPL';
      return {
        id: `bench-dep/${kind}/${i}`,
        debit: externalAccount(asset, kind),
        credit: clientAccount(party, asset, kind),
        amount: kind === 'CASH' ? 1_000_000_00n : 1_000_000n,
        code: 'BENCH_DEPOSIT',
      };
    };
    let t0 = performance.now();
    for (let start = 0; start < transfers; start += batch) {
      const size = Math.min(batch, transfers - start);
      await db.transaction((m) =>
        createTransfers(
          m,
          Array.from({ length: size }, (_, k) =>
            // Round 0 gives every account cash, round 1 shares, and so on.
            deposit(start + k, Math.floor((start + k) / accounts) % 2 === 0 ? 'CASH' : 'SECURITY'),
          ),
        ),
      );
    }
    let ms = performance.now() - t0;
    say(
      `ledger, linked batches of ${batch}: ${transfers.toLocaleString('en-US')} transfers in ${(ms / 1000).toFixed(2)} s = ${rate(transfers, ms)} transfers/s`,
    );

    // 1b. One transfer per transaction, client to client, from several connections.
    const single = Math.min(20_000, transfers);
    let next = 0;
    t0 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < single) {
          const i = next++;
          await db.transaction((m) =>
            createTransfers(m, [
              {
                id: `bench-move/${i}`,
                debit: clientAccount(`T${i % accounts}`, 'USD', 'CASH'),
                credit: clientAccount(`T${(i * 7 + 3) % accounts}`, 'USD', 'CASH'),
                amount: 1n,
                code: 'BENCH_MOVE',
              },
            ]),
          );
        }
      }),
    );
    ms = performance.now() - t0;
    say(
      `ledger, one transfer per transaction (${concurrency} connections): ${single.toLocaleString('en-US')} in ${(ms / 1000).toFixed(2)} s = ${rate(single, ms)} transfers/s`,
    );

    // 2. A cycle over `trades` obligations: random pairs, prices and sizes, every one coverable.
    const today = new Date().toISOString().slice(0, 10);
    let seed = 42;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const rows = Array.from({ length: trades }, (_, i) => {
      const buyer = Math.floor(random() * accounts);
      let seller = Math.floor(random() * accounts);
      if (seller === buyer) seller = (seller + 1) % accounts;
      const quantity = 1 + Math.floor(random() * 100);
      const price = 10_000 + Math.floor(random() * 1_000);
      return {
        id: randomUUID(),
        quantity,
        price,
        value: quantity * price,
        fee: Math.ceil((quantity * price) / 10_000),
        buyer: `T${buyer}`,
        seller: `T${seller}`,
        n: i,
      };
    });
    for (let start = 0; start < rows.length; start += 10_000) {
      const part = rows.slice(start, start + 10_000);
      await db.query(
        `INSERT INTO settlement_obligations (trade_id, symbol, currency, price_minor, quantity, value_minor,
           buyer_fee_minor, buy_account_id, sell_account_id, buy_order_id, sell_order_id, executed_at,
           settlement_date, state)
         SELECT id, 'AAPL', 'USD', price, quantity, value, fee, buyer, seller, 'b-' || id, 's-' || id,
                now(), $8::date, 'OPEN'
           FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::text[])
                AS t(id, price, quantity, value, fee, buyer, seller)`,
        [
          part.map((r) => r.id),
          part.map((r) => r.price),
          part.map((r) => r.quantity),
          part.map((r) => r.value),
          part.map((r) => r.fee),
          part.map((r) => r.buyer),
          part.map((r) => r.seller),
          today,
        ],
      );
    }
    const cycles = new SettlementCycles(db, {
      SETTLEMENT_MAX_FAILED_CYCLES: 3,
      KAFKA_TOPIC_PREFIX: 'bench.',
    });
    const transfersBefore = Number(
      (await db.query(`SELECT count(*) AS n FROM ledger_transfers`))[0].n,
    );
    t0 = performance.now();
    const outcome = await cycles.run({ businessDate: today, requestedBy: 'bench' });
    ms = performance.now() - t0;
    const [cycle] = await db.query(
      `SELECT trades_settled, trades_failed, transfers,
              extract(epoch FROM netted_at - started_at) * 1000 AS net_ms,
              extract(epoch FROM posted_at - netted_at) * 1000 AS post_ms
         FROM settlement_cycles WHERE cycle_id = $1`,
      [outcome.cycleId],
    );
    const posted =
      Number((await db.query(`SELECT count(*) AS n FROM ledger_transfers`))[0].n) - transfersBefore;
    say(
      `cycle over ${trades.toLocaleString('en-US')} trades between ${accounts.toLocaleString('en-US')} accounts: ${(ms / 1000).toFixed(2)} s ` +
        `(netting + pending transfers ${(Number(cycle.net_ms) / 1000).toFixed(2)} s, posting + events ${(Number(cycle.post_ms) / 1000).toFixed(2)} s); ` +
        `${Number(cycle.trades_settled).toLocaleString('en-US')} settled, ${cycle.trades_failed} failed; ` +
        `${posted.toLocaleString('en-US')} ledger transfers (net, pending + post) instead of ${(trades * 4).toLocaleString('en-US')} gross legs; ${rate(trades, ms)} trades/s`,
    );
    // The same checks as the tests: settled once, a balanced ledger, an event per trade.
    const [check] = await db.query(
      `SELECT (SELECT count(*) FROM settlement_obligations WHERE state <> 'SETTLED') AS open,
              (SELECT count(*) FROM outbox WHERE payload->>'type' = 'TradeSettled') AS events,
              (SELECT count(*) FROM (SELECT 1 FROM ledger_accounts GROUP BY asset_kind, asset
                 HAVING sum(debits_posted) <> sum(credits_posted) OR sum(debits_pending) <> sum(credits_pending)) u) AS unbalanced`,
    );
    if (
      Number(check.open) !== 0 ||
      Number(check.events) !== trades ||
      Number(check.unbalanced) !== 0
    ) {
      throw new Error(`cycle check failed: ${JSON.stringify(check)}`);
    }
    say(
      `checked: every trade settled once (${check.events} TradeSettled), debits = credits for every asset`,
    );
  } finally {
    await db.destroy();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
