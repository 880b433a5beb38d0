// The post-trade saga (one per executed trade), started by settlement when it records the trade:
// trading confirms the trade is booked (compensation: unwind it), risk validates it against the
// positions (compensation: take it out of them), settlement answers once the trade has settled or
// has failed for good (a deferred answer), and compliance checks the settled trade's audit trail.
import { defineSaga } from '../definition/define-saga';

const DAY_MS = 24 * 60 * 60 * 1000;

export const POST_TRADE_STEPS = [
  'create-order',
  'validate-risk',
  'process-settlement',
  'compliance-check',
] as const;

export interface PostTradeInput {
  [key: string]: unknown;
  tradeId: string;
  symbol: string;
  currency: string;
  /** Decimal strings, like the trade events. */
  price: string;
  quantity: string;
  buy: { orderId: string; accountId: string };
  sell: { orderId: string; accountId: string };
}

export const postTradeSaga = defineSaga({
  name: 'post-trade',
  backoff: { initialMs: 1_000, maxMs: 60_000 },
  steps: [
    { name: 'create-order', participant: 'trading', timeoutMs: 30_000, maxAttempts: 10 },
    { name: 'validate-risk', participant: 'risk', timeoutMs: 30_000, maxAttempts: 10 },
    // Answered when a cycle settles the trade or gives up on it: the wait covers the settlement
    // period plus every failed cycle allowed, with a wide margin. Its own undo runs only if it
    // times out; a settled trade cannot be undone, so that compensation parks the saga.
    {
      name: 'process-settlement',
      participant: 'settlement',
      timeoutMs: 30 * DAY_MS,
      maxAttempts: 1,
      compensationTimeoutMs: 30_000,
      maxCompensationAttempts: 10,
    },
    {
      name: 'compliance-check',
      participant: 'compliance',
      timeoutMs: 30_000,
      maxAttempts: 10,
      compensate: false,
    },
  ],
});
