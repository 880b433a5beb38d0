// Accounts as the trading date sees them: cash per currency and holdings per symbol, each split into
// available, frozen (reserved by open orders) and pending settlement (committed by executed trades).
// Deposits and withdrawals are idempotent by request id, and every change leaves an event.
import {
  AccountOpened,
  FundsDeposited,
  FundsWithdrawn,
  SecuritiesDeposited,
  SecuritiesWithdrawn,
  SYSTEM_CATALOG,
} from '@finance/contracts';
import { createEnvelope, enqueueOutbox, routeMessage } from '@finance/messaging';
import { Currency, formatMoney, money, parseMoney } from '@finance/money';
import { SERVICE_CONFIG } from '@finance/platform';
import { Inject, Injectable } from '@nestjs/common';
import { DataSource, EntityManager } from 'typeorm';
import type { TradingConfig } from '../config';
import { fieldProblem } from '../problems';

export interface OpenAccount {
  accountId: string;
  owner: string;
}

export type TransferInput =
  | { requestId: string; currency: string; amount: string }
  | { requestId: string; symbol: string; quantity: string };

export type Direction = 'DEPOSIT' | 'WITHDRAWAL';

interface BalanceRow {
  asset: string;
  available: string;
  frozen: string;
  pending_out: string;
  pending_in: string;
}

export interface AccountView {
  accountId: string;
  owner: string;
  cash: Array<{
    currency: string;
    available: string;
    frozen: string;
    pendingSettlementOut: string;
    pendingSettlementIn: string;
  }>;
  holdings: Array<{
    symbol: string;
    available: string;
    frozen: string;
    pendingSettlementOut: string;
    pendingSettlementIn: string;
  }>;
}

@Injectable()
export class AccountsService {
  constructor(
    private readonly db: DataSource,
    @Inject(SERVICE_CONFIG) private readonly config: TradingConfig,
  ) {}

  /** Opens an account; opening it again with the same owner answers the existing one. */
  async open(
    input: OpenAccount,
    actor: string,
  ): Promise<{ created: boolean; account: AccountView }> {
    const created = await this.db.transaction(async (manager) => {
      const inserted: unknown[] = await manager.query(
        `INSERT INTO accounts (account_id, owner, created_by) VALUES ($1, $2, $3)
         ON CONFLICT (account_id) DO NOTHING RETURNING account_id`,
        [input.accountId, input.owner, actor],
      );
      if (inserted.length === 0) {
        const [existing] = await manager.query(`SELECT owner FROM accounts WHERE account_id = $1`, [
          input.accountId,
        ]);
        if (existing.owner !== input.owner) {
          throw fieldProblem(
            409,
            'account exists',
            'body.accountId',
            'already open for another owner',
          );
        }
        return false;
      }
      await this.publish(manager, input.accountId, AccountOpened, {
        accountId: input.accountId,
        owner: input.owner,
        openedBy: actor,
      });
      return true;
    });
    return { created, account: await this.view(input.accountId) };
  }

  /** Moves cash or shares in or out; a repeated request id answers the first result. */
  async transfer(
    accountId: string,
    direction: Direction,
    input: TransferInput,
    actor: string,
  ): Promise<{ replayed: boolean; account: AccountView }> {
    const cash = 'currency' in input;
    let asset: string;
    let amount: bigint;
    if (cash) {
      try {
        const value = parseMoney(input.currency, input.amount);
        asset = value.currency;
        amount = value.minor;
      } catch (error) {
        throw fieldProblem(422, 'invalid amount', 'body.amount', (error as Error).message);
      }
    } else {
      asset = input.symbol;
      amount = BigInt(input.quantity);
      const [instrument] = await this.db.query(`SELECT 1 FROM instruments WHERE symbol = $1`, [
        asset,
      ]);
      if (!instrument)
        throw fieldProblem(422, 'unknown symbol', 'body.symbol', `${asset} is not traded here`);
    }
    if (amount <= 0n)
      throw fieldProblem(
        422,
        'invalid amount',
        cash ? 'body.amount' : 'body.quantity',
        'must be > 0',
      );

    const replayed = await this.db.transaction(async (manager) => {
      await this.requireAccount(manager, accountId);
      const inserted: unknown[] = await manager.query(
        `INSERT INTO account_transfers (account_id, request_id, direction, asset_kind, asset, amount, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (account_id, request_id) DO NOTHING RETURNING request_id`,
        [
          accountId,
          input.requestId,
          direction,
          cash ? 'CASH' : 'SECURITY',
          asset,
          amount.toString(),
          actor,
        ],
      );
      if (inserted.length === 0) {
        const [first] = await manager.query(
          `SELECT direction, asset, amount FROM account_transfers WHERE account_id = $1 AND request_id = $2`,
          [accountId, input.requestId],
        );
        if (
          first.direction !== direction ||
          first.asset !== asset ||
          BigInt(first.amount) !== amount
        ) {
          throw fieldProblem(
            409,
            'request id reused',
            'body.requestId',
            'was used for a different transfer',
          );
        }
        return true;
      }
      const table = cash ? 'cash_balances' : 'holdings';
      const key = cash ? 'currency' : 'symbol';
      if (direction === 'DEPOSIT') {
        await manager.query(
          `INSERT INTO ${table} (account_id, ${key}, available) VALUES ($1, $2, $3)
           ON CONFLICT (account_id, ${key}) DO UPDATE SET available = ${table}.available + EXCLUDED.available`,
          [accountId, asset, amount.toString()],
        );
      } else {
        const changed: unknown[] = await manager.query(
          `WITH w AS (UPDATE ${table} SET available = available - $3
                       WHERE account_id = $1 AND ${key} = $2 AND available >= $3 RETURNING 1)
           SELECT * FROM w`,
          [accountId, asset, amount.toString()],
        );
        if (changed.length === 0) {
          throw fieldProblem(
            422,
            cash ? 'insufficient funds' : 'insufficient holdings',
            cash ? 'body.amount' : 'body.quantity',
            `more than the available ${asset} balance`,
          );
        }
      }
      const data = { accountId, requestId: input.requestId };
      if (cash) {
        const amountText = formatMoney(money(asset as Currency, amount));
        await this.publish(
          manager,
          accountId,
          direction === 'DEPOSIT' ? FundsDeposited : FundsWithdrawn,
          {
            ...data,
            amount: { amount: amountText, currency: asset },
          },
        );
      } else {
        await this.publish(
          manager,
          accountId,
          direction === 'DEPOSIT' ? SecuritiesDeposited : SecuritiesWithdrawn,
          { ...data, symbol: asset, quantity: amount.toString() },
        );
      }
      return false;
    });
    return { replayed, account: await this.view(accountId) };
  }

  async view(accountId: string, manager: EntityManager = this.db.manager): Promise<AccountView> {
    const [account] = await manager.query(`SELECT owner FROM accounts WHERE account_id = $1`, [
      accountId,
    ]);
    if (!account)
      throw fieldProblem(404, 'unknown account', 'accountId', `${accountId} does not exist`);
    const cash: BalanceRow[] = await manager.query(
      `SELECT currency AS asset, available, frozen, pending_out, pending_in
         FROM cash_balances WHERE account_id = $1 ORDER BY currency`,
      [accountId],
    );
    const holdings: BalanceRow[] = await manager.query(
      `SELECT symbol AS asset, available, frozen, pending_out, pending_in
         FROM holdings WHERE account_id = $1 ORDER BY symbol`,
      [accountId],
    );
    const amount = (currency: string, minor: string) =>
      formatMoney(money(currency as Currency, BigInt(minor)));
    return {
      accountId,
      owner: account.owner,
      cash: cash.map((r) => ({
        currency: r.asset,
        available: amount(r.asset, r.available),
        frozen: amount(r.asset, r.frozen),
        pendingSettlementOut: amount(r.asset, r.pending_out),
        pendingSettlementIn: amount(r.asset, r.pending_in),
      })),
      holdings: holdings.map((r) => ({
        symbol: r.asset,
        available: r.available,
        frozen: r.frozen,
        pendingSettlementOut: r.pending_out,
        pendingSettlementIn: r.pending_in,
      })),
    };
  }

  private async requireAccount(manager: EntityManager, accountId: string): Promise<void> {
    const [row] = await manager.query(`SELECT 1 FROM accounts WHERE account_id = $1 FOR SHARE`, [
      accountId,
    ]);
    if (!row)
      throw fieldProblem(404, 'unknown account', 'accountId', `${accountId} does not exist`);
  }

  private async publish(
    manager: EntityManager,
    accountId: string,
    type: Parameters<typeof createEnvelope>[0],
    data: Record<string, unknown>,
  ): Promise<void> {
    const [{ version }]: Array<{ version: number }> = await manager.query(
      `WITH v AS (UPDATE accounts SET version = version + 1 WHERE account_id = $1 RETURNING version)
       SELECT version FROM v`,
      [accountId],
    );
    const envelope = createEnvelope(type, data as never, {
      producer: 'trading',
      aggregateId: accountId,
      aggregateSequence: version,
      correlationId: accountId,
    });
    await enqueueOutbox(manager, [
      routeMessage(SYSTEM_CATALOG, envelope, this.config.KAFKA_TOPIC_PREFIX),
    ]);
  }
}
