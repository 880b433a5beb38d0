// The repository around the test bank account: commands become stored events, races are retried on
// fresh state, and snapshots shorten loading without changing what is loaded.
import { MessageCatalog } from '@finance/contracts';
import { createTestDatabase } from '@finance/testing';
import type { DataSource } from 'typeorm';
import { WrongExpectedVersionError } from '../store/errors';
import { EventStore } from '../store/event-store';
import { ACCOUNT_EVENTS, AccountError, bankAccount } from '../test-fixtures/bank-account';
import { openMigratedDatabase } from '../test-fixtures/database';
import { AggregateRepository, CommandContext } from './aggregate-repository';

const context: CommandContext = { producer: 'trading', correlationId: 'corr-1', causationId: null };
const catalog = new MessageCatalog(ACCOUNT_EVENTS);

describe('AggregateRepository (real PostgreSQL)', () => {
  let dataSource: DataSource;
  let store: EventStore;

  beforeAll(async () => {
    const db = await createTestDatabase('event_store_aggregates');
    dataSource = await openMigratedDatabase(db.url, 20);
    store = new EventStore(dataSource, { outbox: { catalog, topicPrefix: 't-agg.' } });
  });

  afterAll(async () => {
    await dataSource?.destroy();
  });

  const accounts = () => new AggregateRepository(store, bankAccount());

  it('decides, appends and returns the new events, state and version', async () => {
    const repository = accounts();
    const open = await repository.handle(
      'a1',
      { type: 'OpenAccount', accountId: 'a1', currency: 'USD' },
      { context },
    );
    expect(open.version).toBe(1);
    const deposit = await repository.handle('a1', { type: 'Deposit', amount: '12.5' }, { context });
    expect(deposit.version).toBe(2);
    expect(deposit.events).toHaveLength(1);
    expect(deposit.events[0]).toMatchObject({
      type: 'TestMoneyDeposited',
      data: { accountId: 'a1', amount: { amount: '12.50', currency: 'USD' } },
      metadata: {
        aggregateType: 'test-account',
        aggregateId: 'a1',
        aggregateSequence: 2,
        correlationId: 'corr-1',
        producer: 'trading',
      },
    });
    expect(deposit.state).toMatchObject({ status: 'open', balance: { minor: 1250n } });
    expect(await repository.load('a1')).toEqual({
      state: deposit.state,
      version: 2,
      snapshotVersion: undefined,
      replayed: 2,
    });
    // The store has an outbox, so the events were enqueued with the append.
    const [{ count }] = await dataSource.query(
      `SELECT count(*)::int AS count FROM outbox WHERE message_key = 'a1'`,
    );
    expect(count).toBe(2);
  });

  it('appends nothing when the domain refuses the command', async () => {
    const repository = accounts();
    await repository.handle(
      'a2',
      { type: 'OpenAccount', accountId: 'a2', currency: 'USD' },
      { context },
    );
    await expect(
      repository.handle('a2', { type: 'Withdraw', amount: '1' }, { context }),
    ).rejects.toEqual(expect.objectContaining({ code: 'INSUFFICIENT_FUNDS' }));
    await expect(
      repository.handle(
        'a2',
        { type: 'OpenAccount', accountId: 'a2', currency: 'USD' },
        { context },
      ),
    ).rejects.toBeInstanceOf(AccountError);
    expect(await store.streamVersion('test-account-a2')).toBe(1);
  });

  it('decides again on fresh state when it loses a race, unless the caller pinned a version', async () => {
    const repository = accounts();
    await repository.handle(
      'a3',
      { type: 'OpenAccount', accountId: 'a3', currency: 'USD' },
      { context },
    );
    const results = await Promise.all(
      Array.from({ length: 10 }, () =>
        repository.handle('a3', { type: 'Deposit', amount: '1' }, { context, retries: 20 }),
      ),
    );
    expect(results.map((r) => r.version).sort((x, y) => x - y)).toEqual(
      Array.from({ length: 10 }, (_, i) => i + 2),
    );
    const loaded = await repository.load('a3');
    expect(loaded.version).toBe(11);
    expect(loaded.state).toMatchObject({ balance: { minor: 1000n }, movements: 10 });

    // A client that saw version 5 is told it is stale; nothing is decided on its behalf.
    await expect(
      repository.handle('a3', { type: 'Deposit', amount: '1' }, { context, expectedVersion: 5 }),
    ).rejects.toEqual(expect.objectContaining({ name: 'WrongExpectedVersionError', actual: 11 }));
    await expect(
      repository.handle('a3', { type: 'Deposit', amount: '1' }, { context, expectedVersion: 11 }),
    ).resolves.toMatchObject({ version: 12 });
  });

  it('gives up after the allowed retries', async () => {
    const repository = accounts();
    await repository.handle(
      'a4',
      { type: 'OpenAccount', accountId: 'a4', currency: 'USD' },
      { context },
    );
    const outcomes = await Promise.allSettled(
      Array.from({ length: 6 }, () =>
        repository.handle('a4', { type: 'Deposit', amount: '1' }, { context, retries: 0 }),
      ),
    );
    const lost = outcomes.filter((o) => o.status === 'rejected');
    for (const o of lost) {
      expect((o as PromiseRejectedResult).reason).toBeInstanceOf(WrongExpectedVersionError);
    }
    const won = outcomes.length - lost.length;
    expect(won).toBeGreaterThanOrEqual(1);
    expect(await store.streamVersion('test-account-a4')).toBe(1 + won);
  });

  describe('snapshots', () => {
    const every10 = () => new AggregateRepository(store, bankAccount({ snapshotEvery: 10 }));

    async function snapshotRow(streamId: string) {
      const rows = await dataSource.query<
        Array<{ stream_version: string; state_version: number; state: Record<string, unknown> }>
      >('SELECT stream_version, state_version, state FROM snapshots WHERE stream_id = $1', [
        streamId,
      ]);
      return rows[0];
    }

    it('loads the same state from snapshot + later events as from a full replay', async () => {
      const repository = every10();
      await repository.handle(
        's1',
        { type: 'OpenAccount', accountId: 's1', currency: 'USD' },
        { context },
      );
      for (let i = 1; i <= 24; i++) {
        await repository.handle('s1', { type: 'Deposit', amount: `${i}.01` }, { context });
      }
      // Taken when the append crossed 10 and 20; the latest one stays.
      expect(await snapshotRow('test-account-s1')).toMatchObject({
        stream_version: '20',
        state_version: 1,
        state: { status: 'open', minor: String(((19 * 20) / 2) * 100 + 19) },
      });

      const fromSnapshot = await repository.load('s1');
      expect(fromSnapshot.snapshotVersion).toBe(20);
      expect(fromSnapshot.replayed).toBe(5);
      const replay = await accounts().load('s1');
      expect(replay.replayed).toBe(25);
      expect(fromSnapshot.state).toEqual(replay.state);
      expect(fromSnapshot.version).toBe(25);
      expect(replay.state).toMatchObject({ balance: { minor: 30024n }, movements: 24 });

      // Proof the snapshot is what loading starts from: a doctored one shows through.
      await dataSource.query(
        `UPDATE snapshots SET state = jsonb_set(state, '{minor}', '"0"') WHERE stream_id = $1`,
        ['test-account-s1'],
      );
      const doctored = await repository.load('s1');
      expect(doctored.state).toMatchObject({ balance: { minor: 30024n - 19019n } });
    });

    it('ignores a snapshot taken with another state version', async () => {
      const v1 = every10();
      await v1.handle('s2', { type: 'OpenAccount', accountId: 's2', currency: 'USD' }, { context });
      for (let i = 0; i < 11; i++)
        await v1.handle('s2', { type: 'Deposit', amount: '1' }, { context });
      expect((await v1.load('s2')).snapshotVersion).toBe(10);

      const v2 = new AggregateRepository(
        store,
        bankAccount({ snapshotEvery: 10, stateVersion: 2 }),
      );
      const loaded = await v2.load('s2');
      expect(loaded).toMatchObject({ snapshotVersion: undefined, replayed: 12, version: 12 });
      expect(loaded.state).toEqual((await v1.load('s2')).state);
      // The next threshold replaces it with a snapshot of the new version.
      for (let i = 0; i < 8; i++)
        await v2.handle('s2', { type: 'Deposit', amount: '1' }, { context });
      expect(await snapshotRow('test-account-s2')).toMatchObject({
        stream_version: '20',
        state_version: 2,
      });
      expect(await v2.load('s2')).toMatchObject({ snapshotVersion: 20, replayed: 0 });
    });

    it('takes the snapshot in the transaction of the append that crosses the threshold', async () => {
      const repository = every10();
      await repository.handle(
        's3',
        { type: 'OpenAccount', accountId: 's3', currency: 'USD' },
        { context },
      );
      for (let i = 0; i < 8; i++)
        await repository.handle('s3', { type: 'Deposit', amount: '1' }, { context });
      await expect(
        dataSource.transaction(async (manager) => {
          const result = await repository.handle(
            's3',
            { type: 'Deposit', amount: '1' },
            { context, manager },
          );
          expect(result.version).toBe(10);
          throw new Error('the rest of the use case failed');
        }),
      ).rejects.toThrow('the rest of the use case failed');
      expect(await snapshotRow('test-account-s3')).toBeUndefined();
      expect(await store.streamVersion('test-account-s3')).toBe(9);

      await repository.handle('s3', { type: 'Deposit', amount: '1' }, { context });
      expect(await snapshotRow('test-account-s3')).toMatchObject({ stream_version: '10' });
    });
  });
});
