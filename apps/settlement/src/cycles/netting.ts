// Multilateral netting with fails, as a pure function: every account's receipts and deliveries of
// each asset over the due trades are netted; an account that cannot cover its net delivery from
// what the ledger holds for it fails the trades in which it delivers that asset (delivery versus
// payment: a trade's two legs settle together or not at all), and the netting runs again without
// them until every remaining account can cover.
import type { AssetKind } from '../ledger/ledger';

export interface DueTrade {
  readonly tradeId: string;
  readonly symbol: string;
  readonly currency: string;
  readonly quantity: bigint;
  readonly value: bigint;
  readonly buyerFee: bigint;
  readonly buyer: string;
  readonly seller: string;
}

export interface Position {
  readonly party: string;
  readonly assetKind: AssetKind;
  readonly asset: string;
}

export const positionKey = (p: Position) => `${p.party}\u0000${p.assetKind}\u0000${p.asset}`;

export interface Fail {
  readonly code: 'INSUFFICIENT_CASH' | 'INSUFFICIENT_SECURITIES';
  readonly message: string;
}

export interface NettingResult {
  readonly settled: DueTrade[];
  readonly failed: Map<string, Fail>;
  /** Net movement per position of the settled trades: positive receives, negative delivers. */
  readonly nets: Map<string, { position: Position; net: bigint }>;
  /** Fees the settled trades pay, per currency. */
  readonly fees: Map<string, bigint>;
}

function legs(trade: DueTrade): Array<[Position, bigint]> {
  return [
    [
      { party: trade.buyer, assetKind: 'CASH', asset: trade.currency },
      -(trade.value + trade.buyerFee),
    ],
    [{ party: trade.seller, assetKind: 'CASH', asset: trade.currency }, trade.value],
    [{ party: trade.buyer, assetKind: 'SECURITY', asset: trade.symbol }, trade.quantity],
    [{ party: trade.seller, assetKind: 'SECURITY', asset: trade.symbol }, -trade.quantity],
  ];
}

/**
 * @param available what each client position can deliver now (posted balance less pending debits),
 *   by positionKey; a position missing from the map has nothing.
 */
export function net(
  trades: readonly DueTrade[],
  available: ReadonlyMap<string, bigint>,
): NettingResult {
  let included = [...trades];
  const failed = new Map<string, Fail>();
  for (;;) {
    const nets = new Map<string, { position: Position; net: bigint }>();
    for (const trade of included) {
      for (const [position, amount] of legs(trade)) {
        const key = positionKey(position);
        const entry = nets.get(key) ?? { position, net: 0n };
        entry.net += amount;
        nets.set(key, entry);
      }
    }
    const short = new Map<string, { position: Position; missing: bigint }>();
    for (const [key, { position, net }] of nets) {
      const after = (available.get(key) ?? 0n) + net;
      if (after < 0n) short.set(key, { position, missing: -after });
    }
    if (short.size === 0) {
      const fees = new Map<string, bigint>();
      for (const trade of included) {
        fees.set(trade.currency, (fees.get(trade.currency) ?? 0n) + trade.buyerFee);
      }
      return { settled: included, failed, nets, fees };
    }
    // A short position fails every trade in which it delivers: the buyer's cash, the seller's shares.
    const keep: DueTrade[] = [];
    for (const trade of included) {
      const cash = short.get(
        positionKey({ party: trade.buyer, assetKind: 'CASH', asset: trade.currency }),
      );
      const shares = short.get(
        positionKey({ party: trade.seller, assetKind: 'SECURITY', asset: trade.symbol }),
      );
      if (shares) {
        failed.set(trade.tradeId, {
          code: 'INSUFFICIENT_SECURITIES',
          message: `seller ${trade.seller} is short ${shares.missing} ${trade.symbol} for its net delivery`,
        });
      } else if (cash) {
        failed.set(trade.tradeId, {
          code: 'INSUFFICIENT_CASH',
          message: `buyer ${trade.buyer} is short ${cash.missing} minor units of ${trade.currency} for its net payment`,
        });
      } else {
        keep.push(trade);
      }
    }
    if (keep.length === included.length) {
      // Only a position that was short before any trade (impossible for client accounts, which the
      // database keeps at zero or above) can get here; refuse rather than loop.
      throw new Error(`netting cannot cover ${[...short.keys()].join(', ')}`);
    }
    included = keep;
  }
}
