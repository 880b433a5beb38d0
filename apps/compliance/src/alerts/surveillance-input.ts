// The surveillance input of finance.compliance, built from audited trading events: a pure function of
// the entries in the window and the owners of their accounts, so it is unit-testable as is.
import type { SurveillanceInput } from '../pre-trade/compliance-policy';

/** One audited event: its type, when it occurred (ISO), and the envelope's data. */
export interface WindowEntry {
  readonly type: string;
  readonly occurredAt: string;
  readonly data: Record<string, unknown>;
}

type Side = { orderId: string; accountId: string };

const text = (v: unknown): string => (typeof v === 'string' ? v : '');

/** Every account named by the entries (sides of executions, orders' accounts). */
export function accountsOf(entries: readonly WindowEntry[]): string[] {
  const ids = new Set<string>();
  for (const { type, data } of entries) {
    if (type === 'OrderCreated') ids.add(text(data['accountId']));
    if (type === 'OrderExecuted') {
      ids.add(text((data['buy'] as Side | undefined)?.accountId));
      ids.add(text((data['sell'] as Side | undefined)?.accountId));
    }
  }
  ids.delete('');
  return [...ids].sort();
}

/**
 * Trades (one per tradeId: trading publishes an execution on each order), orders placed in the window
 * with when they were cancelled and how much filled. An account without AccountOpened is its own owner,
 * as in the pre-trade check.
 */
export function buildSurveillanceInput(
  entries: readonly WindowEntry[],
  owners: ReadonlyMap<string, string>,
  sessionClose?: string,
): SurveillanceInput {
  const ownerOf = (accountId: string) => owners.get(accountId) ?? accountId;
  const trades = new Map<string, SurveillanceInput['trades'][number]>();
  const filled = new Map<string, bigint>();
  const cancelledAt = new Map<string, string>();
  const created: Array<{ entry: WindowEntry; orderId: string }> = [];

  for (const entry of entries) {
    const { type, data } = entry;
    if (type === 'OrderExecuted') {
      const tradeId = text(data['tradeId']);
      if (!tradeId || trades.has(tradeId)) continue;
      const buy = (data['buy'] ?? {}) as Side;
      const sell = (data['sell'] ?? {}) as Side;
      const quantity = text(data['quantity']);
      trades.set(tradeId, {
        tradeId,
        symbol: text(data['symbol']),
        price: text(data['price']),
        quantity,
        executedAt: text(data['executedAt']) || entry.occurredAt,
        buy: { owner: ownerOf(buy.accountId), accountId: buy.accountId, orderId: buy.orderId },
        sell: { owner: ownerOf(sell.accountId), accountId: sell.accountId, orderId: sell.orderId },
      });
      const q = /^\d+$/.test(quantity) ? BigInt(quantity) : 0n;
      for (const orderId of [buy.orderId, sell.orderId]) {
        filled.set(orderId, (filled.get(orderId) ?? 0n) + q);
      }
    } else if (type === 'OrderCancelled') {
      const orderId = text(data['orderId']);
      if (!cancelledAt.has(orderId)) cancelledAt.set(orderId, entry.occurredAt);
    } else if (type === 'OrderCreated') {
      created.push({ entry, orderId: text(data['orderId']) });
    }
  }

  const seen = new Set<string>();
  const orders: Array<SurveillanceInput['orders'][number]> = [];
  for (const { entry, orderId } of created) {
    if (!orderId || seen.has(orderId)) continue;
    seen.add(orderId);
    const { data } = entry;
    orders.push({
      orderId,
      owner: ownerOf(text(data['accountId'])),
      side: data['side'] === 'SELL' ? 'SELL' : 'BUY',
      symbol: text(data['symbol']),
      quantity: text(data['quantity']),
      placedAt: entry.occurredAt,
      cancelledAt: cancelledAt.get(orderId) ?? null,
      filledQuantity: (filled.get(orderId) ?? 0n).toString(),
    });
  }

  return {
    kind: 'surveillance',
    trades: [...trades.values()],
    orders,
    ...(sessionClose ? { session: { close: sessionClose } } : {}),
  };
}

/** The session close of the day `at` falls in, as RFC 3339, from the configured UTC HH:MM. */
export function sessionCloseOn(at: Date, hhmm: string): string {
  return `${at.toISOString().slice(0, 10)}T${hhmm}:00Z`;
}
