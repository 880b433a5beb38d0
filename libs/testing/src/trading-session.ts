// A randomized trading session through the real services (HTTP + placement TCC + matching), and the
// invariants that must hold after it: nothing created or lost, nothing negative, nothing left half
// done, and every reservation in trading, risk and settlement accounted for.
import type { HttpResponse } from '@finance/platform';
import { Client } from 'pg';

export interface TradingApi {
  request(
    path: string,
    options: { method: string; as: string; body?: unknown; timeoutMs?: number },
  ): Promise<HttpResponse>;
}

export interface SessionOptions {
  orders: number;
  accounts: number;
  concurrency: number;
  seed: number;
  /** Makes account ids unique to this session. */
  tag: string;
  /** Open loop: start orders at this rate whatever the answers take (default: as fast as answered). */
  ratePerSecond?: number;
  onPlaced?: (latencyMs: number, status: number, orderStatus: string) => void;
}

export interface SessionResult {
  accounts: string[];
  statuses: Record<string, number>;
  cancels: number;
  elapsedMs: number;
}

const SYMBOLS = ['AAPL', 'MSFT'] as const;
const CASH = '1000000.00';
const SHARES = '5000';

// Deterministic PRNG so a failing run can be replayed with its seed.
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function expectStatus(response: Promise<HttpResponse>, ok: number[], what: string) {
  const r = await response;
  if (!ok.includes(r.status)) throw new Error(`${what}: ${r.status} ${r.body}`);
  return r;
}

export async function runTradingSession(
  api: TradingApi,
  options: SessionOptions,
): Promise<SessionResult> {
  const random = mulberry32(options.seed);
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)];
  const accounts = Array.from({ length: options.accounts }, (_, i) => `R${options.tag}-${i}`);
  for (const accountId of accounts) {
    await expectStatus(
      api.request('/trading/accounts', {
        method: 'POST',
        as: 'order-service',
        body: { accountId, owner: `owner-${accountId}` },
      }),
      [200, 201],
      'open account',
    );
    const deposits = [
      { requestId: `usd-${accountId}`, currency: 'USD', amount: CASH },
      ...SYMBOLS.map((symbol) => ({
        requestId: `${symbol}-${accountId}`,
        symbol,
        quantity: SHARES,
      })),
    ];
    for (const body of deposits) {
      await expectStatus(
        api.request(`/trading/accounts/${accountId}/deposits`, {
          method: 'POST',
          as: 'settlement-service',
          body,
        }),
        [200, 201],
        'deposit',
      );
    }
  }

  const statuses: Record<string, number> = {};
  const open: string[] = [];
  let cancels = 0;
  let next = 0;
  const started = Date.now();
  const worker = async () => {
    while (next < options.orders) {
      const n = next++;
      if (options.ratePerSecond) {
        const due = started + (n * 1000) / options.ratePerSecond;
        if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      }
      if (open.length > 20 && random() < 0.1) {
        const orderId = open.splice(Math.floor(random() * open.length), 1)[0];
        const r = await api.request(`/trading/orders/${orderId}`, {
          method: 'DELETE',
          as: 'order-service',
          timeoutMs: 60_000,
        });
        if (![200, 202, 409].includes(r.status)) throw new Error(`cancel: ${r.status} ${r.body}`);
        cancels++;
      }
      const side = pick(['BUY', 'SELL'] as const);
      const market = random() < 0.1;
      // Prices around 100.00 so that both sides cross often.
      const cents = 9_500 + Math.floor(random() * 1_000);
      const body = {
        clientOrderId: `o-${n}`,
        accountId: pick(accounts),
        symbol: pick(SYMBOLS),
        side,
        type: market ? 'MARKET' : 'LIMIT',
        ...(market ? {} : { price: (cents / 100).toFixed(2) }),
        quantity: String(1 + Math.floor(random() * 50)),
        timeInForce: market ? 'IOC' : pick(['GTC', 'GTC', 'GTC', 'DAY', 'IOC', 'FOK'] as const),
      };
      const t0 = performance.now();
      const r = await api.request('/trading/orders', {
        method: 'POST',
        as: 'order-service',
        body,
        timeoutMs: 60_000,
      });
      const latency = performance.now() - t0;
      // 422: a MARKET order with nothing on the other side.
      if (![200, 201, 202, 422].includes(r.status)) throw new Error(`place: ${r.status} ${r.body}`);
      const status = r.status === 422 ? 'NO_LIQUIDITY' : r.json<{ status: string }>().status;
      statuses[status] = (statuses[status] ?? 0) + 1;
      options.onPlaced?.(latency, r.status, status);
      if (r.status !== 422 && (status === 'NEW' || status === 'PARTIALLY_FILLED')) {
        open.push(r.json<{ orderId: string }>().orderId);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return { accounts, statuses, cancels, elapsedMs: Date.now() - started };
}

async function rows<T>(url: string, sql: string): Promise<T[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

/** Waits until every placement finished and the engine's queue is empty. */
export async function settle(tradingUrl: string, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [state] = await rows<{ open_tx: number; queued: number; pending: number }>(
      tradingUrl,
      `SELECT (SELECT count(*)::int FROM tcc_transactions WHERE finished_at IS NULL) AS open_tx,
              (SELECT count(*)::int FROM matching_commands WHERE done_at IS NULL) AS queued,
              (SELECT count(*)::int FROM orders WHERE status = 'PENDING_NEW') AS pending`,
    );
    if (state.open_tx === 0 && state.queued === 0 && state.pending === 0) return;
    if (Date.now() > deadline) throw new Error(`not settled: ${JSON.stringify(state)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Every violated invariant over the whole of the three databases, as a sentence (empty when all
 * hold). Global on purpose: accounts trade with each other, whoever created them.
 */
export async function invariantViolations(urls: {
  trading: string;
  risk: string;
  settlement: string;
}): Promise<string[]> {
  const problems: string[] = [];
  const check = async (what: string, url: string, sql: string) => {
    const found = await rows<Record<string, unknown>>(url, sql);
    if (found.length > 0) problems.push(`${what}: ${JSON.stringify(found.slice(0, 5))}`);
  };
  // Cash: what was deposited less what was withdrawn is still there (available + frozen + pending
  // out), or was paid to the firm as fees of settled trades, per currency.
  await check(
    'cash not conserved',
    urls.trading,
    `SELECT d.asset, d.total, b.held FROM
       (SELECT asset, sum(CASE direction WHEN 'DEPOSIT' THEN amount ELSE -amount END) AS total FROM account_transfers WHERE asset_kind = 'CASH' GROUP BY asset) d
       JOIN (SELECT currency AS asset, sum(available + frozen + pending_out) AS held FROM cash_balances GROUP BY currency) b0 USING (asset)
       CROSS JOIN LATERAL (SELECT b0.held + coalesce((SELECT amount FROM fee_income f WHERE f.currency = d.asset), 0) AS held) b
      WHERE d.total <> b.held`,
  );
  await check(
    'shares not conserved',
    urls.trading,
    `SELECT d.asset, d.total, b.held FROM
       (SELECT asset, sum(CASE direction WHEN 'DEPOSIT' THEN amount ELSE -amount END) AS total FROM account_transfers WHERE asset_kind = 'SECURITY' GROUP BY asset) d
       JOIN (SELECT symbol AS asset, sum(available + frozen + pending_out) AS held FROM holdings GROUP BY symbol) b USING (asset)
      WHERE d.total <> b.held`,
  );
  // What buyers of unsettled trades owe equals what sellers get plus fees; shares delivered equal
  // shares received.
  await check(
    'pending settlement does not match the trades',
    urls.trading,
    `WITH t AS (SELECT currency, symbol, sum(price_minor * quantity) AS value, sum(buyer_fee_minor) AS fees, sum(quantity) AS qty
                  FROM trades WHERE settled_at IS NULL AND unwound_at IS NULL GROUP BY currency, symbol),
          cash AS (SELECT currency, sum(pending_out) AS out, sum(pending_in) AS inn FROM cash_balances GROUP BY currency),
          shares AS (SELECT symbol, sum(pending_out) AS out, sum(pending_in) AS inn FROM holdings GROUP BY symbol)
     SELECT 'cash' AS kind, c.currency FROM cash c
       LEFT JOIN (SELECT currency, sum(value) AS value, sum(fees) AS fees FROM t GROUP BY currency) v USING (currency)
      WHERE c.inn <> coalesce(v.value, 0) OR c.out <> coalesce(v.value, 0) + coalesce(v.fees, 0)
     UNION ALL
     SELECT 'shares', s.symbol FROM shares s LEFT JOIN (SELECT symbol, sum(qty) AS qty FROM t GROUP BY symbol) q USING (symbol)
      WHERE s.inn <> coalesce(q.qty, 0) OR s.out <> coalesce(q.qty, 0)`,
  );
  await check(
    'negative balance',
    urls.trading,
    `SELECT account_id FROM cash_balances WHERE least(available, frozen, pending_out, pending_in) < 0
     UNION ALL SELECT account_id FROM holdings WHERE least(available, frozen, pending_out, pending_in) < 0`,
  );
  // Frozen is exactly what live orders still hold.
  await check(
    'frozen cash differs from open reservations',
    urls.trading,
    `SELECT b.account_id, b.frozen, coalesce(r.held, 0) AS held FROM cash_balances b
       LEFT JOIN (SELECT account_id, asset, sum(remaining) AS held FROM order_reservations
                   WHERE state <> 'RELEASED' AND asset_kind = 'CASH' GROUP BY account_id, asset) r
         ON r.account_id = b.account_id AND r.asset = b.currency
      WHERE b.frozen <> coalesce(r.held, 0)`,
  );
  await check(
    'finished orders still hold funds',
    urls.trading,
    `SELECT o.order_id, o.status, r.remaining FROM orders o JOIN order_reservations r USING (order_id)
      WHERE o.status IN ('FILLED', 'CANCELLED', 'REJECTED') AND r.state <> 'RELEASED' AND r.remaining > 0`,
  );
  await check(
    'unfinished transactions',
    urls.trading,
    `SELECT gtid, state FROM tcc_transactions WHERE finished_at IS NULL`,
  );
  // Risk and settlement: usage equals their open reservations.
  await check(
    'risk usage differs from its reservations',
    urls.risk,
    `SELECT l.account_id, l.used_minor, coalesce(r.held, 0) AS held FROM risk_limits l
       LEFT JOIN (SELECT account_id, currency, sum(amount_minor) AS held FROM risk_reservations
                   WHERE state <> 'RELEASED' GROUP BY account_id, currency) r USING (account_id, currency)
      WHERE l.used_minor <> coalesce(r.held, 0)`,
  );
  await check(
    'clearing usage differs from its reservations',
    urls.settlement,
    `SELECT q.account_id, q.used_minor, coalesce(r.held, 0) AS held FROM clearing_quota q
       LEFT JOIN (SELECT account_id, currency, sum(held_minor) AS held FROM clearing_reservations
                   WHERE state <> 'RELEASED' GROUP BY account_id, currency) r USING (account_id, currency)
      WHERE q.used_minor <> coalesce(r.held, 0)`,
  );
  return problems;
}
