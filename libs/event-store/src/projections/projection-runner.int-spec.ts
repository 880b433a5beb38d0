// A per-account balance read model kept by the projection runner: built live while accounts are
// written concurrently (some commits late), it equals the same model rebuilt from the beginning.
import { createTestDatabase } from '@finance/testing';
import type { DataSource, EntityManager } from 'typeorm';
import { AggregateRepository, CommandContext } from '../aggregates/aggregate-repository';
import { EventStore, RecordedEvent } from '../store/event-store';
import {
  ACCOUNT_EVENTS,
  AccountCommand,
  AccountEvent,
  AccountState,
  bankAccount,
} from '../test-fixtures/bank-account';
import { openMigratedDatabase } from '../test-fixtures/database';
import { MessageCatalog } from '@finance/contracts';
import { formatMoney, parseMoney } from '@finance/money';
import { Projection, ProjectionRunner } from './projection-runner';

const context: CommandContext = { producer: 'trading', correlationId: 'proj', causationId: null };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Sums per account in memory, then writes each touched account once per batch.
function balances(table: string): Projection<AccountEvent> {
  return {
    name: `balances:${table}`,
    async handle(manager: EntityManager, events: readonly RecordedEvent<AccountEvent>[]) {
      const delta = new Map<string, { minor: bigint; movements: number; status?: string }>();
      for (const { event } of events) {
        const row = delta.get(event.data.accountId) ?? { minor: 0n, movements: 0 };
        switch (event.type) {
          case 'TestAccountOpened':
            row.status = 'open';
            break;
          case 'TestMoneyDeposited':
            row.minor += parseMoney(event.data.amount.currency, event.data.amount.amount).minor;
            row.movements++;
            break;
          case 'TestMoneyWithdrawn':
            row.minor -= parseMoney(event.data.amount.currency, event.data.amount.amount).minor;
            row.movements++;
            break;
          case 'TestAccountClosed':
            row.status = 'closed';
            break;
        }
        delta.set(event.data.accountId, row);
      }
      for (const [accountId, d] of delta) {
        await manager.query(
          `INSERT INTO ${table} (account_id, status, balance_minor, movements)
           VALUES ($1, coalesce($2, 'open'), $3::bigint, $4)
           ON CONFLICT (account_id) DO UPDATE SET
             status = coalesce($2, ${table}.status),
             balance_minor = ${table}.balance_minor + EXCLUDED.balance_minor,
             movements = ${table}.movements + EXCLUDED.movements`,
          [accountId, d.status ?? null, d.minor.toString(), d.movements],
        );
      }
    },
    async reset(manager: EntityManager) {
      await manager.query(`TRUNCATE ${table}`);
    },
  };
}

describe('ProjectionRunner (real PostgreSQL)', () => {
  let dataSource: DataSource;
  let store: EventStore<AccountEvent>;
  let accounts: AggregateRepository<AccountState, AccountCommand, AccountEvent>;

  beforeAll(async () => {
    const db = await createTestDatabase('event_store_projections');
    dataSource = await openMigratedDatabase(db.url, 20);
    store = new EventStore(dataSource, {
      catalog: new MessageCatalog<AccountEvent>(ACCOUNT_EVENTS),
    });
    accounts = new AggregateRepository(store, bankAccount());
  });

  afterAll(async () => {
    await dataSource?.destroy();
  });

  async function createTable(table: string): Promise<void> {
    await dataSource.query(
      `CREATE TABLE ${table} (account_id text PRIMARY KEY, status text NOT NULL,
         balance_minor bigint NOT NULL, movements int NOT NULL)`,
    );
  }

  // What the aggregates themselves say, in the read model's shape.
  async function truth() {
    const rows = await Promise.all(
      Array.from({ length: 30 }, async (_, n) => {
        const { state } = await accounts.load(`p${n}`);
        if (state.status === 'unopened') throw new Error(`p${n} was never opened`);
        return {
          account_id: `p${n}`,
          status: state.status,
          balance_minor: state.balance.minor.toString(),
          movements: state.movements,
        };
      }),
    );
    return rows.sort((a, b) => a.account_id.localeCompare(b.account_id));
  }

  async function readModel(table: string) {
    return dataSource.query<Array<Record<string, unknown>>>(
      `SELECT account_id, status, balance_minor::text AS balance_minor, movements FROM ${table} ORDER BY account_id`,
    );
  }

  it('builds live under concurrent and late commits, and a rebuild from 0 gives the same model', async () => {
    await createTable('balances_live');
    const runner = new ProjectionRunner(store, balances('balances_live'), {
      batchSize: 37,
      pollIntervalMs: 10,
    });
    runner.start();

    // 30 accounts, each opened then moved 10 times by its own sequential client; the clients run
    // in parallel, and some writes are held open while later ones commit.
    const clients = Array.from({ length: 30 }, async (_, n) => {
      const id = `p${n}`;
      await accounts.handle(
        id,
        { type: 'OpenAccount', accountId: id, currency: 'USD' },
        { context },
      );
      for (let i = 0; i < 10; i++) {
        const command =
          i % 4 === 3
            ? ({ type: 'Withdraw', amount: '0.50' } as const)
            : ({ type: 'Deposit', amount: `${n + 1}.${i}5` } as const);
        if (i % 5 === 2) {
          await dataSource.transaction(async (manager) => {
            await accounts.handle(id, command, { context, manager, retries: 10 });
            await sleep(Math.random() * 30); // commit late
          });
        } else {
          await accounts.handle(id, command, { context, retries: 10 });
        }
      }
      if (n % 10 === 0) {
        // Empty it and close it, to exercise every event type.
        const { state } = await accounts.load(id);
        if (state.status !== 'open') throw new Error(`${id} is ${state.status}`);
        await accounts.handle(
          id,
          { type: 'Withdraw', amount: formatMoney(state.balance) },
          { context },
        );
        await accounts.handle(id, { type: 'CloseAccount' }, { context });
      }
    });
    await Promise.all(clients);
    const [{ total }] = await dataSource.query(`SELECT count(*)::int AS total FROM events`);
    expect(total).toBeGreaterThanOrEqual(330);

    // It followed while the clients wrote, not only when asked to catch up.
    expect((await runner.checkpoint()).position).not.toBe('0');
    await runner.catchUp();
    const live = await readModel('balances_live');
    expect(live).toEqual(await truth());

    // Rebuild while the runner keeps following in the background and commands keep coming.
    const [rebuilt] = await Promise.all([
      runner.rebuild(),
      ...[1, 2, 3].map((n) =>
        accounts.handle(`p${n}`, { type: 'Deposit', amount: '7' }, { context }),
      ),
    ]);
    expect(BigInt(rebuilt.position)).toBeGreaterThan(0n);
    await runner.catchUp();
    const afterRebuild = await readModel('balances_live');
    expect(afterRebuild).toEqual(await truth());
    expect(afterRebuild).not.toEqual(live);
    await runner.stop();
    expect(runner.running).toBe(false);

    // A second model, built only by rebuild from 0, agrees too.
    await createTable('balances_rebuilt');
    await new ProjectionRunner(store, balances('balances_rebuilt')).rebuild();
    expect(await readModel('balances_rebuilt')).toEqual(afterRebuild);
  });

  it('continues from its stored checkpoint after a restart, applying nothing twice', async () => {
    await createTable('balances_restart');
    const first = new ProjectionRunner(store, balances('balances_restart'), { batchSize: 50 });
    await first.catchUp();
    const before = await readModel('balances_restart');

    await accounts.handle('p1', { type: 'Deposit', amount: '100' }, { context });
    const second = new ProjectionRunner(store, balances('balances_restart'), { batchSize: 50 });
    await second.catchUp();
    const after = await readModel('balances_restart');
    const row = (rows: Array<Record<string, unknown>>) => rows.find((r) => r.account_id === 'p1');
    expect(BigInt(row(after)?.balance_minor as string)).toBe(
      BigInt(row(before)?.balance_minor as string) + 10_000n,
    );
    expect(after.filter((r) => r.account_id !== 'p1')).toEqual(
      before.filter((r) => r.account_id !== 'p1'),
    );
  });

  it('retries a failed batch without losing or repeating it, and stop() drains', async () => {
    await createTable('balances_flaky');
    const inner = balances('balances_flaky');
    let failures = 1;
    const errors: unknown[] = [];
    const flaky: Projection<AccountEvent> = {
      ...inner,
      async handle(manager, events) {
        await inner.handle(manager, events);
        if (failures-- > 0) throw new Error('read model briefly unavailable');
      },
    };
    const runner = new ProjectionRunner(store, flaky, {
      pollIntervalMs: 10,
      retryDelayMs: 20,
      onError: (error) => errors.push(error),
    });
    runner.start();
    while (errors.length === 0) await sleep(5);
    await runner.catchUp();
    await runner.stop();
    expect(errors).toEqual([new Error('read model briefly unavailable')]);

    await createTable('balances_reference');
    await new ProjectionRunner(store, balances('balances_reference')).catchUp();
    expect(await readModel('balances_flaky')).toEqual(await readModel('balances_reference'));
  });
});
