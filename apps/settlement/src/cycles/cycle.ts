// A settlement cycle: nets every open obligation due by the business date, reserves the net
// movements as pending ledger transfers (NETTED), then posts them all (POSTED) and tells trading
// which trades settled. Two transactions, so a cycle interrupted after netting is finished (never
// redone) by the next request; cycles never overlap, across replicas too (a session advisory lock).
// A trade that cannot settle is a fail: it stays open for the next cycle, and once it has failed
// SETTLEMENT_MAX_FAILED_CYCLES cycles it is closed as FAILED and unwound.
import { SettlementFailed, TradeSettled } from '@finance/contracts';
import type { DataSource, EntityManager } from 'typeorm';
import type { SettlementConfig } from '../config';
import {
  AssetKind,
  ccpAccount,
  clientAccount,
  closePending,
  createTransfers,
  feesAccount,
  NewTransfer,
} from '../ledger/ledger';
import { releaseTrades } from '../obligations/obligations';
import { publishTradeEvents } from '../settlement-events';
import { DueTrade, net, positionKey } from './netting';

export type CycleConfig = Pick<
  SettlementConfig,
  'SETTLEMENT_MAX_FAILED_CYCLES' | 'KAFKA_TOPIC_PREFIX'
>;

/** Told, in the cycle's transactions, which trades settled and which failed for good. */
export interface CycleListener {
  /** The trades a cycle posted. */
  settled(manager: EntityManager, trades: readonly SettledRow[], cycleId: string): Promise<void>;
  /** Trades that failed for the last time: closed as FAILED, to be unwound (the post-trade saga). */
  failedForGood(
    manager: EntityManager,
    trades: readonly ObligationRow[],
    cycleId: string,
  ): Promise<void>;
}

export interface SettledRow {
  trade_id: string;
  buy_order_id: string;
  sell_order_id: string;
  value_minor: string;
  saga_id: string | null;
}

export interface CycleRequest {
  /** Names the cycle; asking again for a cycle that exists returns it and posts nothing. */
  readonly cycleId?: string;
  /** YYYY-MM-DD: obligations due on or before it are processed. */
  readonly businessDate: string;
  readonly requestedBy: string;
}

export interface ObligationRow {
  trade_id: string;
  symbol: string;
  currency: string;
  quantity: string;
  value_minor: string;
  buyer_fee_minor: string;
  buy_account_id: string;
  sell_account_id: string;
  buy_order_id: string;
  sell_order_id: string;
  failed_cycles: number;
  saga_id: string | null;
}

export interface CycleOutcome {
  readonly cycleId: string;
  /** false: the cycle existed already (a repeated request) and nothing was posted now. */
  readonly ran: boolean;
  /** A cycle left NETTED by an interrupted run, finished before this one. */
  readonly resumed: string[];
}

const CYCLE_LOCK = 'settlement-cycle';
const LOCK_CLASS = 0x5e77;

export class SettlementCycles {
  constructor(
    private readonly dataSource: DataSource,
    private readonly config: CycleConfig,
    private readonly listener?: CycleListener,
  ) {}

  async run(request: CycleRequest): Promise<CycleOutcome> {
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    try {
      await runner.query('SELECT pg_advisory_lock($1, hashtext($2))', [LOCK_CLASS, CYCLE_LOCK]);
      try {
        const resumed: string[] = [];
        const interrupted: Array<{ cycle_id: string }> = await runner.query(
          `SELECT cycle_id FROM settlement_cycles WHERE state = 'NETTED' ORDER BY sequence`,
        );
        for (const { cycle_id } of interrupted) {
          await this.inTransaction(runner.manager, (m) => this.post(m, cycle_id));
          resumed.push(cycle_id);
        }
        if (request.cycleId) {
          const [existing]: Array<{ state: string }> = await runner.query(
            'SELECT state FROM settlement_cycles WHERE cycle_id = $1',
            [request.cycleId],
          );
          if (existing) return { cycleId: request.cycleId, ran: false, resumed };
        }
        const cycleId = await this.inTransaction(runner.manager, (m) => this.netCycle(m, request));
        await this.inTransaction(runner.manager, (m) => this.post(m, cycleId));
        return { cycleId, ran: true, resumed };
      } finally {
        await runner.query('SELECT pg_advisory_unlock($1, hashtext($2))', [LOCK_CLASS, CYCLE_LOCK]);
      }
    } finally {
      await runner.release();
    }
  }

  private async inTransaction<T>(
    manager: EntityManager,
    work: (manager: EntityManager) => Promise<T>,
  ): Promise<T> {
    const runner = manager.queryRunner!;
    await runner.startTransaction();
    try {
      const result = await work(manager);
      await runner.commitTransaction();
      return result;
    } catch (error) {
      await runner.rollbackTransaction();
      throw error;
    }
  }

  /** Phase 1: nets, records fails, and reserves the net movements as pending transfers. */
  private async netCycle(manager: EntityManager, request: CycleRequest): Promise<string> {
    const [{ n }]: Array<{ n: number }> = await manager.query(
      `SELECT count(*)::int + 1 AS n FROM settlement_cycles WHERE business_date = $1`,
      [request.businessDate],
    );
    const cycleId = request.cycleId ?? `${request.businessDate}-${n}`;
    await manager.query(
      `INSERT INTO settlement_cycles (cycle_id, business_date, state, requested_by)
       VALUES ($1, $2, 'NETTED', $3)`,
      [cycleId, request.businessDate, request.requestedBy],
    );
    const due: ObligationRow[] = await manager.query(
      `SELECT trade_id, symbol, currency, quantity, value_minor, buyer_fee_minor, buy_account_id,
              sell_account_id, buy_order_id, sell_order_id, failed_cycles, saga_id
         FROM settlement_obligations
        WHERE state = 'OPEN' AND settlement_date <= $1
        ORDER BY executed_at, trade_id
          FOR UPDATE`,
      [request.businessDate],
    );
    const trades: DueTrade[] = due.map((o) => ({
      tradeId: o.trade_id,
      symbol: o.symbol,
      currency: o.currency,
      quantity: BigInt(o.quantity),
      value: BigInt(o.value_minor),
      buyerFee: BigInt(o.buyer_fee_minor),
      buyer: o.buy_account_id,
      seller: o.sell_account_id,
    }));
    const parties = [...new Set(trades.flatMap((t) => [t.buyer, t.seller]))];
    const balances: Array<{
      party: string;
      asset_kind: AssetKind;
      asset: string;
      available: string;
    }> = await manager.query(
      `SELECT party, asset_kind, asset, credits_posted - debits_posted - debits_pending AS available
           FROM ledger_accounts WHERE kind = 'CLIENT' AND party = ANY($1)`,
      [parties],
    );
    const available = new Map(
      balances.map((b) => [
        positionKey({ party: b.party, assetKind: b.asset_kind, asset: b.asset }),
        BigInt(b.available),
      ]),
    );
    const result = net(trades, available);

    // The net movements, each a pending transfer with the CCP; the fee income from the CCP.
    const transfers: NewTransfer[] = [];
    const movements: Array<{
      party: string;
      asset: string;
      kind: AssetKind;
      net: bigint;
      id: string;
    }> = [];
    for (const { position, net: amount } of result.nets.values()) {
      if (amount === 0n) continue;
      const id = `${cycleId}/${position.party}/${position.assetKind}/${position.asset}`;
      const client = clientAccount(position.party, position.asset, position.assetKind);
      const ccp = ccpAccount(position.asset, position.assetKind);
      transfers.push({
        id,
        debit: amount < 0n ? client : ccp,
        credit: amount < 0n ? ccp : client,
        amount: amount < 0n ? -amount : amount,
        kind: 'PENDING',
        code: 'SETTLEMENT_NET',
        reference: cycleId,
      });
      movements.push({ ...position, kind: position.assetKind, net: amount, id });
    }
    for (const [currency, fees] of result.fees) {
      if (fees === 0n) continue;
      const id = `${cycleId}/fees/CASH/${currency}`;
      transfers.push({
        id,
        debit: ccpAccount(currency, 'CASH'),
        credit: feesAccount(currency),
        amount: fees,
        kind: 'PENDING',
        code: 'SETTLEMENT_FEES',
        reference: cycleId,
      });
      movements.push({ party: 'fees', asset: currency, kind: 'CASH', net: fees, id });
    }
    // The no-overdraft CHECK backs the netting: a client short of what it delivers fails here.
    await createTransfers(manager, transfers);
    if (movements.length > 0) {
      await manager.query(
        `INSERT INTO settlement_cycle_movements (cycle_id, party, asset, asset_kind, net, transfer_id)
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[])`,
        [
          cycleId,
          movements.map((m) => m.party),
          movements.map((m) => m.asset),
          movements.map((m) => m.kind),
          movements.map((m) => m.net.toString()),
          movements.map((m) => m.id),
        ],
      );
    }
    await manager.query(
      `INSERT INTO settlement_cycle_trades (cycle_id, trade_id, outcome, disposition)
       SELECT $1, unnest($2::text[]), 'SETTLED', 'SETTLED'`,
      [cycleId, result.settled.map((t) => t.tradeId)],
    );
    await this.recordFails(manager, cycleId, due, result.failed);
    await manager.query(
      `UPDATE settlement_cycles SET netted_at = clock_timestamp(), trades_settled = $2,
              trades_failed = $3, transfers = $4 WHERE cycle_id = $1`,
      [cycleId, result.settled.length, result.failed.size, transfers.length],
    );
    return cycleId;
  }

  private async recordFails(
    manager: EntityManager,
    cycleId: string,
    due: readonly ObligationRow[],
    failed: ReadonlyMap<string, { code: string; message: string }>,
  ): Promise<void> {
    if (failed.size === 0) return;
    const ids = [...failed.keys()];
    const updated: Array<{ trade_id: string; failed_cycles: number }> = await manager.query(
      `WITH u AS (
       UPDATE settlement_obligations o
          SET failed_cycles = o.failed_cycles + 1,
              first_failed_at = coalesce(o.first_failed_at, clock_timestamp()),
              last_fail_code = f.code, last_fail_message = f.message,
              state = CASE WHEN o.failed_cycles + 1 >= $4 THEN 'FAILED' ELSE 'OPEN' END,
              closed_at = CASE WHEN o.failed_cycles + 1 >= $4 THEN clock_timestamp() END
         FROM unnest($1::text[], $2::text[], $3::text[]) AS f(trade_id, code, message)
        WHERE o.trade_id = f.trade_id
       RETURNING o.trade_id, o.failed_cycles)
       SELECT * FROM u`,
      [
        ids,
        ids.map((id) => failed.get(id)!.code),
        ids.map((id) => failed.get(id)!.message),
        this.config.SETTLEMENT_MAX_FAILED_CYCLES,
      ],
    );
    const cycles = new Map(updated.map((u) => [u.trade_id, u.failed_cycles]));
    await manager.query(
      `INSERT INTO settlement_cycle_trades (cycle_id, trade_id, outcome, fail_code, fail_message,
                                            failed_cycles, disposition)
       SELECT $1, f.trade_id, 'FAILED', f.code, f.message, f.cycles,
              CASE WHEN f.cycles >= $6 THEN 'UNWOUND' ELSE 'CARRIED_OVER' END
         FROM unnest($2::text[], $3::text[], $4::text[], $5::int[]) AS f(trade_id, code, message, cycles)`,
      [
        cycleId,
        ids,
        ids.map((id) => failed.get(id)!.code),
        ids.map((id) => failed.get(id)!.message),
        ids.map((id) => cycles.get(id)!),
        this.config.SETTLEMENT_MAX_FAILED_CYCLES,
      ],
    );
    await publishTradeEvents(
      manager,
      this.config.KAFKA_TOPIC_PREFIX,
      SettlementFailed,
      ids.map((id) => ({
        tradeId: id,
        data: {
          tradeId: id,
          cycleId,
          reason: failed.get(id)!,
          failedCycles: cycles.get(id)!,
        },
      })),
      cycleId,
    );
    const final = due.filter(
      (o) => (cycles.get(o.trade_id) ?? 0) >= this.config.SETTLEMENT_MAX_FAILED_CYCLES,
    );
    if (final.length === 0) return;
    // Closed for good: the clearing quota they held goes back, and the trade is unwound.
    await releaseTrades(
      manager,
      final.map((o) => ({
        buyOrderId: o.buy_order_id,
        sellOrderId: o.sell_order_id,
        value: BigInt(o.value_minor),
      })),
    );
    await this.listener?.failedForGood(manager, final, cycleId);
  }

  /** Phase 2: posts the cycle's pending transfers and settles its trades. */
  protected async post(manager: EntityManager, cycleId: string): Promise<void> {
    const [cycle]: Array<{ state: string }> = await manager.query(
      'SELECT state FROM settlement_cycles WHERE cycle_id = $1 FOR UPDATE',
      [cycleId],
    );
    if (cycle?.state !== 'NETTED') return;
    const pending: Array<{ transfer_id: string }> = await manager.query(
      `SELECT transfer_id FROM settlement_cycle_movements WHERE cycle_id = $1 ORDER BY transfer_id`,
      [cycleId],
    );
    await closePending(
      manager,
      pending.map((p) => ({
        id: `${p.transfer_id}/post`,
        pendingId: p.transfer_id,
        action: 'POST' as const,
        code: 'SETTLEMENT_POST',
      })),
    );
    const settled: SettledRow[] = await manager.query(
      `WITH u AS (
       UPDATE settlement_obligations o SET state = 'SETTLED', settled_cycle_id = $1,
              closed_at = clock_timestamp()
         FROM settlement_cycle_trades c
        WHERE c.cycle_id = $1 AND c.outcome = 'SETTLED' AND o.trade_id = c.trade_id AND o.state = 'OPEN'
       RETURNING o.trade_id, o.buy_order_id, o.sell_order_id, o.value_minor, o.saga_id)
       SELECT * FROM u`,
      [cycleId],
    );
    await releaseTrades(
      manager,
      settled.map((s) => ({
        buyOrderId: s.buy_order_id,
        sellOrderId: s.sell_order_id,
        value: BigInt(s.value_minor),
      })),
    );
    const [{ now }]: Array<{ now: Date }> = await manager.query('SELECT clock_timestamp() AS now');
    const settledAt = now.toISOString();
    await publishTradeEvents(
      manager,
      this.config.KAFKA_TOPIC_PREFIX,
      TradeSettled,
      settled.map((s) => ({
        tradeId: s.trade_id,
        data: { tradeId: s.trade_id, cycleId, settledAt },
      })),
      cycleId,
    );
    await this.listener?.settled(manager, settled, cycleId);
    await manager.query(
      `UPDATE settlement_cycles SET state = 'POSTED', posted_at = clock_timestamp() WHERE cycle_id = $1`,
      [cycleId],
    );
  }
}
