// Reconciliation: what trading says each account owns (available + frozen + pending out, the part
// that has not left yet) against the client's balance in the ledger, and trading's fee income
// against the ledger's fee account. Trades the ledger has settled but trading has not applied yet
// (no OrderSettled back) are allowed for exactly; every other difference is listed.
import { Currency, formatMoney, isCurrency, money, parseMoney } from '@finance/money';
import type { EntityManager, DataSource } from 'typeorm';
import type { ObligationRow } from '../cycles/cycle';

export interface TradingBalance {
  accountId: string;
  assetKind: 'CASH' | 'SECURITY';
  asset: string;
  available: string;
  frozen: string;
  pendingOut: string;
  pendingIn: string;
}

/** One page of trading's balances, read in one snapshot. */
export interface TradingPage {
  balances: TradingBalance[];
  feeIncome: Array<{ currency: string; amount: string }>;
  /** Trades of the asked cycles that this snapshot has settled. */
  settledTrades: string[];
  next: string | null;
}

/** The firm's fee income in a difference (no trading account id has a colon). */
export const FEE_INCOME_PARTY = 'firm:fees';

export interface Difference {
  /** A trading account id, or firm:fees for the firm's fee income. */
  party: string;
  assetKind: 'CASH' | 'SECURITY';
  asset: string;
  ledger: string;
  trading: string;
  /** trading - ledger (after allowing for trades in flight). */
  difference: string;
}

export interface Reconciliation {
  businessDate: string;
  reconciledAt: string;
  positionsCompared: number;
  /** Trades the ledger settled that trading had not applied yet, allowed for. */
  tradesInFlight: number;
  /** Obligations due by the business date that are still open (fails carried over). */
  openObligationsDue: number;
  differences: Difference[];
}

const key = (party: string, kind: string, asset: string) => `${party}\u0000${kind}\u0000${asset}`;

function minor(kind: string, asset: string, amount: string): bigint {
  if (kind === 'CASH') {
    if (!isCurrency(asset)) throw new Error(`trading reported an unsupported currency ${asset}`);
    return parseMoney(asset, amount).minor;
  }
  return BigInt(amount);
}

function show(kind: string, asset: string, value: bigint): string {
  return kind === 'CASH' && isCurrency(asset)
    ? formatMoney(money(asset as Currency, value))
    : value.toString();
}

type Position = { party: string; kind: 'CASH' | 'SECURITY'; asset: string; value: bigint };

type InFlightTrade = Pick<
  ObligationRow,
  | 'trade_id'
  | 'symbol'
  | 'currency'
  | 'quantity'
  | 'value_minor'
  | 'buyer_fee_minor'
  | 'buy_account_id'
  | 'sell_account_id'
> & { cycle_id: string };

interface LedgerView {
  balances: Map<string, Position>;
  /** Settled in the ledger, not confirmed by trading (it may or may not have applied them). */
  inFlight: InFlightTrade[];
  openDue: number;
}

async function ledgerView(manager: EntityManager, businessDate: string): Promise<LedgerView> {
  const balances = new Map<string, Position>();
  const accounts: Array<{
    kind: string;
    party: string;
    asset_kind: 'CASH' | 'SECURITY';
    asset: string;
    balance: string;
  }> = await manager.query(
    `SELECT kind, party, asset_kind, asset, credits_posted - debits_posted AS balance
       FROM ledger_accounts WHERE kind IN ('CLIENT', 'FEES')`,
  );
  for (const a of accounts) {
    const party = a.kind === 'FEES' ? FEE_INCOME_PARTY : a.party;
    balances.set(key(party, a.asset_kind, a.asset), {
      party,
      kind: a.asset_kind,
      asset: a.asset,
      value: BigInt(a.balance),
    });
  }
  const inFlight: InFlightTrade[] = await manager.query(
    `SELECT trade_id, settled_cycle_id AS cycle_id, symbol, currency, quantity, value_minor,
            buyer_fee_minor, buy_account_id, sell_account_id
       FROM settlement_obligations WHERE state = 'SETTLED' AND trading_settled_at IS NULL`,
  );
  const [{ n }]: Array<{ n: number }> = await manager.query(
    `SELECT count(*)::int AS n FROM settlement_obligations WHERE state = 'OPEN' AND settlement_date <= $1`,
    [businessDate],
  );
  return { balances, inFlight, openDue: n };
}

/**
 * What trading should show for a position, given the ledger and the in-flight trades its snapshot
 * has not applied: it still counts the buyer's cash and the seller's shares as pending out, and has
 * not credited the buyer's shares, the seller's cash or the fee.
 */
function shift(trade: InFlightTrade): Array<[string, 'CASH' | 'SECURITY', string, bigint]> {
  const value = BigInt(trade.value_minor);
  const fee = BigInt(trade.buyer_fee_minor);
  const quantity = BigInt(trade.quantity);
  return [
    [trade.buy_account_id, 'CASH', trade.currency, value + fee],
    [trade.buy_account_id, 'SECURITY', trade.symbol, -quantity],
    [trade.sell_account_id, 'SECURITY', trade.symbol, quantity],
    [trade.sell_account_id, 'CASH', trade.currency, -value],
    [FEE_INCOME_PARTY, 'CASH', trade.currency, -fee],
  ];
}

function owned(b: TradingBalance): bigint {
  return (
    minor(b.assetKind, b.asset, b.available) +
    minor(b.assetKind, b.asset, b.frozen) +
    minor(b.assetKind, b.asset, b.pendingOut)
  );
}

/**
 * Reads the ledger in one snapshot, then trading page by page. Each page says which in-flight trades
 * its own snapshot has applied, so the positions of that page are compared exactly.
 */
export async function reconcile(
  dataSource: DataSource,
  businessDate: string,
  fetchPage: (after: string | null, cycles: string[]) => Promise<TradingPage>,
): Promise<Reconciliation> {
  const view = await dataSource.transaction('REPEATABLE READ', (m) => ledgerView(m, businessDate));
  const cycles = [...new Set(view.inFlight.map((t) => t.cycle_id))].slice(0, 50);
  const differences: Difference[] = [];
  const seen = new Set<string>();
  let compared = 0;
  let inFlightSeen = 0;

  const check = (position: Position, tradingValue: bigint, pending: readonly InFlightTrade[]) => {
    const k = key(position.party, position.kind, position.asset);
    seen.add(k);
    compared += 1;
    let expected = view.balances.get(k)?.value ?? 0n;
    for (const trade of pending) {
      for (const [party, kind, asset, delta] of shift(trade)) {
        if (key(party, kind, asset) === k) expected += delta;
      }
    }
    if (expected === tradingValue) return;
    differences.push({
      party: position.party,
      assetKind: position.kind,
      asset: position.asset,
      ledger: show(position.kind, position.asset, expected),
      trading: show(position.kind, position.asset, tradingValue),
      difference: show(position.kind, position.asset, tradingValue - expected),
    });
  };

  let after: string | null = null;
  let first = true;
  let pending: InFlightTrade[] = view.inFlight;
  for (;;) {
    const page = await fetchPage(after, cycles);
    const applied = new Set(page.settledTrades);
    pending = view.inFlight.filter((t) => !applied.has(t.trade_id));
    if (first) inFlightSeen = pending.length;
    for (const b of page.balances) {
      check(
        { party: b.accountId, kind: b.assetKind, asset: b.asset, value: 0n },
        owned(b),
        pending,
      );
    }
    if (first) {
      for (const f of page.feeIncome) {
        check(
          { party: FEE_INCOME_PARTY, kind: 'CASH', asset: f.currency, value: 0n },
          minor('CASH', f.currency, f.amount),
          pending,
        );
      }
      first = false;
    }
    if (!page.next) break;
    after = page.next;
  }
  // Positions only the ledger has (trading shows nothing for them), judged by the last snapshot.
  for (const [k, position] of view.balances) {
    if (!seen.has(k)) check(position, 0n, pending);
  }
  differences.sort((x, y) =>
    key(x.party, x.assetKind, x.asset).localeCompare(key(y.party, y.assetKind, y.asset)),
  );
  return {
    businessDate,
    reconciledAt: new Date().toISOString(),
    positionsCompared: compared,
    tradesInFlight: inFlightSeen,
    openObligationsDue: view.openDue,
    differences,
  };
}

/** Trading confirmed a trade's settlement: reconciliation stops allowing for it. */
export async function confirmSettledInTrading(
  manager: EntityManager,
  tradeId: string,
  settledAt: string,
): Promise<void> {
  await manager.query(
    `UPDATE settlement_obligations SET trading_settled_at = $2
      WHERE trade_id = $1 AND trading_settled_at IS NULL`,
    [tradeId, settledAt],
  );
}
