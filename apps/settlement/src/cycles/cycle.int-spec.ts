// The ledger and settlement cycles on a real PostgreSQL migrated like the service's: transfers are
// immutable, idempotent and linked; the database refuses an overdraft; a cycle nets, posts DvP
// movements once, carries fails over and unwinds them after the configured number of cycles, and a
// cycle interrupted between netting and posting is finished, not redone.
import { OrderExecuted, MessageOf } from '@finance/contracts';
import { openDatabase } from '@finance/platform';
import { createTestDatabase } from '@finance/testing';
import { randomUUID } from 'node:crypto';
import type { DataSource, EntityManager } from 'typeorm';
import { settlementService } from '../service';
import {
  clientAccount,
  closePending,
  createTransfers,
  externalAccount,
  LedgerError,
  readBalances,
  reverseTransfer,
} from '../ledger/ledger';
import { recordMovement, recordObligation } from '../obligations/obligations';
import { createEnvelope } from '@finance/messaging';
import { FundsDeposited, FundsWithdrawn, SecuritiesDeposited } from '@finance/contracts';
import { CycleListener, ObligationRow, SettlementCycles } from './cycle';
import { cycleReport } from './reports';

const periods = { SETTLEMENT_PERIOD: 0, SETTLEMENT_PERIOD_BY_SYMBOL: {} };
const cycleConfig = { SETTLEMENT_MAX_FAILED_CYCLES: 2, KAFKA_TOPIC_PREFIX: '' };
const TODAY = new Date().toISOString().slice(0, 10);

describe('ledger and settlement cycles', () => {
  let db: DataSource;

  beforeAll(async () => {
    const { url } = await createTestDatabase('settlement_cycles');
    db = await openDatabase({
      url,
      applicationName: 'settlement-cycle-test',
      poolSize: 6,
      migrations: settlementService.migrations,
    });
  });
  afterAll(() => db?.destroy());

  const unique = (name: string) => `${name}-${randomUUID().slice(0, 8)}`;

  async function deposit(
    account: string,
    asset: string,
    kind: 'CASH' | 'SECURITY',
    amount: bigint,
  ) {
    await db.transaction((m) =>
      createTransfers(m, [
        {
          id: `deposit/${account}/${randomUUID()}`,
          debit: externalAccount(asset, kind),
          credit: clientAccount(account, asset, kind),
          amount,
          code: 'TEST_DEPOSIT',
        },
      ]),
    );
  }

  async function balance(party: string, asset: string): Promise<bigint> {
    const rows = await readBalances(db.manager, { party, kind: 'CLIENT' });
    return rows.find((r) => r.asset === asset)?.posted ?? 0n;
  }

  function trade(buyer: string, seller: string, symbol: string, quantity: number, price: string) {
    return {
      tradeId: randomUUID(),
      symbol,
      price,
      quantity: String(quantity),
      currency: 'USD',
      buy: { orderId: randomUUID(), accountId: buyer },
      sell: { orderId: randomUUID(), accountId: seller },
      executedAt: new Date().toISOString(),
      buyerFee: '0.05',
    } satisfies MessageOf<typeof OrderExecuted>['data'];
  }

  async function record(...trades: ReturnType<typeof trade>[]) {
    await db.transaction(async (m) => {
      for (const t of trades) {
        await recordObligation(m, periods, t);
        // The second side's event is the same trade: nothing more happens.
        expect(await recordObligation(m, periods, t)).toBe('seen');
      }
    });
  }

  const count = async (sql: string, params: unknown[] = []) =>
    Number((await db.query(sql, params))[0].n);

  describe('ledger', () => {
    it('refuses to change or delete a transfer, even with plain SQL', async () => {
      const account = unique('imm');
      await deposit(account, 'USD', 'CASH', 1_000n);
      await expect(
        db.query(`UPDATE ledger_transfers SET amount = 1 WHERE code = 'TEST_DEPOSIT'`),
      ).rejects.toThrow('ledger transfers are immutable');
      await expect(db.query(`DELETE FROM ledger_transfers`)).rejects.toThrow(
        'ledger transfers are immutable',
      );
    });

    it('makes a transfer once per id, and refuses the id with other fields', async () => {
      const account = unique('idem');
      const transfer = {
        id: `t-${account}`,
        debit: externalAccount('USD', 'CASH'),
        credit: clientAccount(account, 'USD', 'CASH'),
        amount: 500n,
        code: 'TEST',
      };
      const first = await db.transaction((m) => createTransfers(m, [transfer]));
      const again = await db.transaction((m) => createTransfers(m, [transfer]));
      expect(first).toEqual([{ id: transfer.id, created: true }]);
      expect(again).toEqual([{ id: transfer.id, created: false }]);
      expect(await balance(account, 'USD')).toBe(500n);
      await expect(
        db.transaction((m) => createTransfers(m, [{ ...transfer, amount: 501n }])),
      ).rejects.toMatchObject({ code: 'EXISTS_WITH_DIFFERENT_FIELDS' });
    });

    it('lets PostgreSQL refuse an overdraft, and a linked batch takes effect completely or not at all', async () => {
      const a = unique('a');
      const b = unique('b');
      await deposit(a, 'USD', 'CASH', 100n);
      const error = await db
        .transaction((m) =>
          createTransfers(m, [
            {
              id: `ok-${a}`,
              debit: clientAccount(a, 'USD', 'CASH'),
              credit: clientAccount(b, 'USD', 'CASH'),
              amount: 60n,
              code: 'TEST',
            },
            {
              id: `too-much-${a}`,
              debit: clientAccount(a, 'USD', 'CASH'),
              credit: clientAccount(b, 'USD', 'CASH'),
              amount: 41n,
              code: 'TEST',
            },
          ]),
        )
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LedgerError);
      expect((error as LedgerError).code).toBe('EXCEEDS_CREDITS');
      expect(await balance(a, 'USD')).toBe(100n);
      expect(await balance(b, 'USD')).toBe(0n);
      expect(
        await count(`SELECT count(*) AS n FROM ledger_transfers WHERE transfer_id = $1`, [
          `ok-${a}`,
        ]),
      ).toBe(0);
      // Not only the code: an UPDATE by hand is refused as well.
      await expect(
        db.query(`UPDATE ledger_accounts SET debits_posted = credits_posted + 1 WHERE party = $1`, [
          a,
        ]),
      ).rejects.toThrow('ledger_accounts_no_overdraft');
    });

    it('holds a pending transfer against the balance until it is posted or voided, once', async () => {
      const a = unique('p');
      await deposit(a, 'USD', 'CASH', 100n);
      const pending = (id: string) =>
        db.transaction((m) =>
          createTransfers(m, [
            {
              id,
              debit: clientAccount(a, 'USD', 'CASH'),
              credit: externalAccount('USD', 'CASH'),
              amount: 70n,
              kind: 'PENDING',
              code: 'TEST',
            },
          ]),
        );
      await pending(`p1-${a}`);
      // 30 left to use: a second pending of 70 is refused.
      await expect(pending(`p2-${a}`)).rejects.toMatchObject({ code: 'EXCEEDS_CREDITS' });
      await db.transaction((m) =>
        closePending(m, [{ id: `v1-${a}`, pendingId: `p1-${a}`, action: 'VOID', code: 'TEST' }]),
      );
      await expect(
        db.transaction((m) =>
          closePending(m, [{ id: `x1-${a}`, pendingId: `p1-${a}`, action: 'POST', code: 'TEST' }]),
        ),
      ).rejects.toMatchObject({ code: 'PENDING_ALREADY_CLOSED' });
      await pending(`p3-${a}`);
      await db.transaction((m) =>
        closePending(m, [{ id: `c3-${a}`, pendingId: `p3-${a}`, action: 'POST', code: 'TEST' }]),
      );
      const [row] = await readBalances(db.manager, { party: a, kind: 'CLIENT' });
      expect(row).toMatchObject({ posted: 30n, available: 30n, debitsPending: 0n });
    });

    it('corrects a transfer with a reversing one, at most once', async () => {
      const a = unique('r');
      const id = `dep-${a}`;
      await db.transaction((m) =>
        createTransfers(m, [
          {
            id,
            debit: externalAccount('AAPL', 'SECURITY'),
            credit: clientAccount(a, 'AAPL', 'SECURITY'),
            amount: 100n,
            code: 'TEST',
          },
        ]),
      );
      await db.transaction((m) =>
        reverseTransfer(m, { id: `rev-${a}`, reversesId: id, code: 'FIX' }),
      );
      expect(await balance(a, 'AAPL')).toBe(0n);
      await expect(
        db.transaction((m) => reverseTransfer(m, { id: `rev2-${a}`, reversesId: id, code: 'FIX' })),
      ).rejects.toMatchObject({ code: 'ALREADY_REVERSED' });
    });
  });

  it("mirrors trading's deposits and withdrawals once each, and dead-letters a withdrawal it cannot cover", async () => {
    const account = unique('mv');
    const meta = {
      producer: 'trading' as const,
      aggregateId: account,
      aggregateSequence: 1,
      correlationId: account,
    };
    const deposit = createEnvelope(
      FundsDeposited,
      { accountId: account, requestId: 'r1', amount: { amount: '100.50', currency: 'USD' } },
      meta,
    );
    const shares = createEnvelope(
      SecuritiesDeposited,
      { accountId: account, requestId: 'r2', symbol: 'AAPL', quantity: '7' },
      meta,
    );
    await db.transaction(async (m) => {
      await recordMovement(m, deposit);
      await recordMovement(m, deposit);
      await recordMovement(m, shares);
    });
    expect(await balance(account, 'USD')).toBe(10_050n);
    expect(await balance(account, 'AAPL')).toBe(7n);
    const tooMuch = createEnvelope(
      FundsWithdrawn,
      { accountId: account, requestId: 'r3', amount: { amount: '100.51', currency: 'USD' } },
      meta,
    );
    await expect(db.transaction((m) => recordMovement(m, tooMuch))).rejects.toThrow(
      'would take an account below zero',
    );
    expect(await balance(account, 'USD')).toBe(10_050n);
  });

  describe('cycles', () => {
    const unwound: string[] = [];
    const handler: CycleListener = {
      async settled() {},
      async failedForGood(_m: EntityManager, trades: readonly ObligationRow[]) {
        unwound.push(...trades.map((t) => t.trade_id));
      },
    };

    it('settles a day of trades once: DvP net movements, a balanced ledger, one TradeSettled per trade', async () => {
      const [a, b, c] = [unique('A'), unique('B'), unique('C')];
      await deposit(a, 'SYMA', 'SECURITY', 300n);
      await deposit(b, 'USD', 'CASH', 1_000_000n);
      await deposit(c, 'USD', 'CASH', 1_000_000n);
      // B buys 200 from A, then sells 100 of them on to C: B delivers only what it receives.
      const trades = [
        trade(b, a, 'SYMA', 200, '10.00'),
        trade(c, b, 'SYMA', 100, '10.50'),
        trade(c, a, 'SYMA', 100, '9.90'),
      ];
      await record(...trades);
      const cycles = new SettlementCycles(db, cycleConfig, handler);
      const cycleId = unique('day');
      const outcome = await cycles.run({ cycleId, businessDate: TODAY, requestedBy: 'test' });
      expect(outcome).toMatchObject({ cycleId, ran: true });
      const report = (await cycleReport(db.manager, cycleId))!;
      expect(
        report.trades
          .filter((t) => t.tradeId !== undefined && trades.some((x) => x.tradeId === t.tradeId))
          .map((t) => t.outcome),
      ).toEqual(['SETTLED', 'SETTLED', 'SETTLED']);
      // Fees: 0.05 per trade, paid by the buyer.
      expect(await balance(a, 'USD')).toBe(200_000n + 99_000n);
      expect(await balance(a, 'SYMA')).toBe(0n);
      expect(await balance(b, 'SYMA')).toBe(100n);
      expect(await balance(b, 'USD')).toBe(1_000_000n - 200_005n + 105_000n);
      expect(await balance(c, 'SYMA')).toBe(200n);
      expect(await balance(c, 'USD')).toBe(1_000_000n - 105_005n - 99_005n);
      // Debits equal credits for every asset, and the CCP ends flat.
      const unbalanced = await db.query(
        `SELECT asset FROM ledger_accounts GROUP BY asset_kind, asset
          HAVING sum(debits_posted) <> sum(credits_posted) OR sum(debits_pending) <> sum(credits_pending)`,
      );
      expect(unbalanced).toEqual([]);
      expect(
        await count(
          `SELECT count(*) AS n FROM ledger_accounts WHERE kind = 'CCP' AND credits_posted <> debits_posted`,
        ),
      ).toBe(0);
      const events = await db.query(
        `SELECT payload->'data'->>'tradeId' AS trade FROM outbox
          WHERE payload->>'type' = 'TradeSettled' AND payload->'data'->>'cycleId' = $1`,
        [cycleId],
      );
      expect(events.map((e: { trade: string }) => e.trade).sort()).toEqual(
        trades.map((t) => t.tradeId).sort(),
      );

      // The same cycle again: nothing is posted twice.
      const transfersBefore = await count(`SELECT count(*) AS n FROM ledger_transfers`);
      const again = await cycles.run({ cycleId, businessDate: TODAY, requestedBy: 'test' });
      expect(again).toMatchObject({ cycleId, ran: false });
      expect(await count(`SELECT count(*) AS n FROM ledger_transfers`)).toBe(transfersBefore);
      // A new cycle finds nothing of these due any more.
      const next = await cycles.run({ businessDate: TODAY, requestedBy: 'test' });
      const nextReport = (await cycleReport(db.manager, next.cycleId))!;
      expect(nextReport.trades.filter((t) => trades.some((x) => x.tradeId === t.tradeId))).toEqual(
        [],
      );
    });

    it('carries a fail over, settles it once the shares arrive, and unwinds one that keeps failing', async () => {
      const [seller, buyer, short] = [unique('S'), unique('B'), unique('X')];
      await deposit(buyer, 'USD', 'CASH', 1_000_000n);
      await deposit(seller, 'SYMB', 'SECURITY', 40n);
      const late = trade(buyer, seller, 'SYMB', 100, '5.00');
      const never = trade(buyer, short, 'SYMB', 10, '5.00');
      await record(late, never);
      const cycles = new SettlementCycles(db, cycleConfig, handler);

      const first = await cycles.run({ businessDate: TODAY, requestedBy: 'test' });
      const r1 = (await cycleReport(db.manager, first.cycleId, seller))!;
      expect(r1.trades).toEqual([
        expect.objectContaining({
          tradeId: late.tradeId,
          outcome: 'FAILED',
          disposition: 'CARRIED_OVER',
          failCode: 'INSUFFICIENT_SECURITIES',
          failedCycles: 1,
          failAgeDays: 0,
        }),
      ]);
      expect(await balance(buyer, 'USD')).toBe(1_000_000n);

      await deposit(seller, 'SYMB', 'SECURITY', 60n);
      const second = await cycles.run({ businessDate: TODAY, requestedBy: 'test' });
      const r2 = (await cycleReport(db.manager, second.cycleId))!;
      expect(r2.trades.find((t) => t.tradeId === late.tradeId)).toMatchObject({
        outcome: 'SETTLED',
      });
      expect(r2.trades.find((t) => t.tradeId === never.tradeId)).toMatchObject({
        outcome: 'FAILED',
        failedCycles: 2,
        disposition: 'UNWOUND',
      });
      expect(unwound).toContain(never.tradeId);
      expect(await balance(buyer, 'SYMB')).toBe(100n);
      const [state] = await db.query(
        `SELECT state, failed_cycles FROM settlement_obligations WHERE trade_id = $1`,
        [never.tradeId],
      );
      expect(state).toEqual({ state: 'FAILED', failed_cycles: 2 });
      // A third cycle leaves the unwound trade alone.
      const third = await cycles.run({ businessDate: TODAY, requestedBy: 'test' });
      expect(
        (await cycleReport(db.manager, third.cycleId))!.trades.some(
          (t) => t.tradeId === never.tradeId,
        ),
      ).toBe(false);
    });

    it('finishes a cycle interrupted between netting and posting, posting it exactly once', async () => {
      const [a, b] = [unique('A'), unique('B')];
      await deposit(a, 'SYMC', 'SECURITY', 10n);
      await deposit(b, 'USD', 'CASH', 10_000n);
      const t = trade(b, a, 'SYMC', 10, '1.00');
      await record(t);
      class Crashing extends SettlementCycles {
        protected override async post(manager: EntityManager, cycleId: string): Promise<void> {
          await super.post(manager, cycleId);
          throw new Error('killed after posting, before commit');
        }
      }
      const cycleId = unique('crash');
      await expect(
        new Crashing(db, cycleConfig).run({ cycleId, businessDate: TODAY, requestedBy: 'test' }),
      ).rejects.toThrow('killed');
      const [netted] = await db.query(`SELECT state FROM settlement_cycles WHERE cycle_id = $1`, [
        cycleId,
      ]);
      expect(netted.state).toBe('NETTED');
      expect(await balance(b, 'SYMC')).toBe(0n);

      const cycles = new SettlementCycles(db, cycleConfig);
      const resumed = await cycles.run({ businessDate: TODAY, requestedBy: 'test' });
      expect(resumed.resumed).toContain(cycleId);
      expect(await balance(b, 'SYMC')).toBe(10n);
      expect(await balance(a, 'USD')).toBe(1_000n);
      expect(
        await count(
          `SELECT count(*) AS n FROM settlement_cycle_trades WHERE trade_id = $1 AND outcome = 'SETTLED'`,
          [t.tradeId],
        ),
      ).toBe(1);
      expect(
        await count(
          `SELECT count(*) AS n FROM outbox WHERE payload->>'type' = 'TradeSettled' AND payload->'data'->>'tradeId' = $1`,
          [t.tradeId],
        ),
      ).toBe(1);
    });
  });
});
