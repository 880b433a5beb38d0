// Appends and stream reads against real PostgreSQL: expected versions under real races, typed
// conflicts, the outbox committing or rolling back with the events, upcasting on read.
import { MessageCatalog } from '@finance/contracts';
import { createTestDatabase } from '@finance/testing';
import type { DataSource } from 'typeorm';
import { ACCOUNT_EVENTS } from '../test-fixtures/bank-account';
import { barrier, openMigratedDatabase } from '../test-fixtures/database';
import { deposits, opened } from '../test-fixtures/events';
import { DuplicateEventError, WrongExpectedVersionError } from './errors';
import { EventStore } from './event-store';
import { EXPECTED } from './expected-version';

const catalog = new MessageCatalog(ACCOUNT_EVENTS);

describe('EventStore append and readStream (real PostgreSQL)', () => {
  let dataSource: DataSource;
  let store: EventStore;

  beforeAll(async () => {
    const db = await createTestDatabase('event_store_append');
    dataSource = await openMigratedDatabase(db.url);
    store = new EventStore(dataSource, { catalog });
  });

  afterAll(async () => {
    await dataSource?.destroy();
  });

  async function versions(streamId: string): Promise<number[]> {
    const rows = await dataSource.query<Array<{ v: string }>>(
      'SELECT stream_version::text AS v FROM events WHERE stream_id = $1 ORDER BY stream_version',
      [streamId],
    );
    return rows.map((r) => Number(r.v));
  }

  const oneTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

  it('appends a batch in order, numbering the events by their stream version', async () => {
    const first = await store.append('acc-1', [opened('1'), ...deposits('1', 2)], {
      expectedVersion: EXPECTED.NO_STREAM,
    });
    expect(first.nextExpectedVersion).toBe(3);
    expect(first.events.map((e) => e.metadata.aggregateSequence)).toEqual([1, 2, 3]);
    const next = await store.append('acc-1', deposits('1', 2), { expectedVersion: 3 });
    expect(next.nextExpectedVersion).toBe(5);
    expect(next.positions).toHaveLength(2);
    expect(BigInt(next.positions[1].position)).toBeGreaterThan(BigInt(next.positions[0].position));

    const read = await store.readStream('acc-1');
    expect(read.map((r) => r.streamVersion)).toEqual([1, 2, 3, 4, 5]);
    expect(read.map((r) => r.event.metadata.aggregateSequence)).toEqual([1, 2, 3, 4, 5]);
    expect(read.map((r) => r.event.type)).toEqual([
      'TestAccountOpened',
      ...Array(4).fill('TestMoneyDeposited'),
    ]);
    expect(read[3].event.metadata.eventId).toBe(next.events[0].metadata.eventId);
    expect(read[3].checkpoint).toEqual(next.positions[0]);

    const page = await store.readStream('acc-1', { fromVersion: 2, maxCount: 2 });
    expect(page.map((r) => r.streamVersion)).toEqual([2, 3]);
    expect(await store.streamVersion('acc-1')).toBe(5);
    expect(await store.streamVersion('nobody')).toBe(0);
  });

  it('fails typed when the stream is not where the writer expected, and ANY always appends', async () => {
    await store.append('acc-2', [opened('2')], { expectedVersion: EXPECTED.NO_STREAM });

    await expect(
      store.append('acc-2', deposits('2', 1), { expectedVersion: EXPECTED.NO_STREAM }),
    ).rejects.toEqual(
      expect.objectContaining({ name: 'WrongExpectedVersionError', streamId: 'acc-2', actual: 1 }),
    );
    await expect(
      store.append('acc-missing', deposits('x', 1), { expectedVersion: EXPECTED.STREAM_EXISTS }),
    ).rejects.toEqual(expect.objectContaining({ expected: 'stream_exists', actual: 0 }));
    await expect(store.append('acc-2', deposits('2', 1), { expectedVersion: 5 })).rejects.toEqual(
      expect.objectContaining({ expected: 5, actual: 1 }),
    );
    await expect(
      store.append('acc-missing', deposits('x', 1), { expectedVersion: 1 }),
    ).rejects.toBeInstanceOf(WrongExpectedVersionError);
    // An empty append only checks the expectation.
    await expect(store.append('acc-2', [], { expectedVersion: 3 })).rejects.toBeInstanceOf(
      WrongExpectedVersionError,
    );
    expect((await store.append('acc-2', [], { expectedVersion: 1 })).nextExpectedVersion).toBe(1);

    await store.append('acc-2', deposits('2', 1), { expectedVersion: EXPECTED.STREAM_EXISTS });
    const any1 = await store.append('acc-2', deposits('2', 2), { expectedVersion: EXPECTED.ANY });
    expect(any1.nextExpectedVersion).toBe(4);
    const any2 = await store.append('acc-new', [opened('n')], { expectedVersion: EXPECTED.ANY });
    expect(any2.nextExpectedVersion).toBe(1);
    expect(await versions('acc-2')).toEqual(oneTo(4));
    expect(await versions('acc-missing')).toEqual([]);
  });

  it("leaves the caller's transaction usable after a conflict", async () => {
    await store.append('acc-3', [opened('3')], { expectedVersion: EXPECTED.NO_STREAM });
    await dataSource.transaction(async (manager) => {
      await expect(
        store.append('acc-3', deposits('3', 1), { expectedVersion: 0, manager }),
      ).rejects.toBeInstanceOf(WrongExpectedVersionError);
      // No database error happened, so the transaction goes on and commits.
      await store.append('acc-3', deposits('3', 1), { expectedVersion: 1, manager });
    });
    expect(await versions('acc-3')).toEqual([1, 2]);
  });

  it('refuses an event id that is already stored', async () => {
    const event = opened('4');
    await store.append('acc-4', [event], { expectedVersion: EXPECTED.ANY });
    await expect(store.append('acc-4', [event], { expectedVersion: EXPECTED.ANY })).rejects.toEqual(
      expect.objectContaining({ name: 'DuplicateEventError', streamId: 'acc-4' }),
    );
    await expect(
      store.append('acc-4b', [event], { expectedVersion: EXPECTED.ANY }),
    ).rejects.toBeInstanceOf(DuplicateEventError);
    // The failed statement rolled back its stream row too.
    expect(await store.streamVersion('acc-4b')).toBe(0);
    expect(await versions('acc-4')).toEqual([1]);
  });

  it('lets exactly one of two truly concurrent writers with the same expectation win, 20 times', async () => {
    const streamId = 'acc-race';
    let version = 0;
    for (let round = 0; round < 20; round++) {
      const expected = version;
      const ready = barrier(2);
      // Two transactions on two connections, both started before either appends.
      const writer = (n: number) =>
        dataSource.transaction(async (manager) => {
          await manager.query('SELECT 1');
          await ready();
          return store.append(streamId, deposits('race', n), {
            expectedVersion: expected,
            manager,
          });
        });
      const outcomes = await Promise.allSettled([writer(1), writer(2)]);
      const won = outcomes.filter((o) => o.status === 'fulfilled');
      const lost = outcomes.filter((o) => o.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      const error = (lost[0] as PromiseRejectedResult).reason as WrongExpectedVersionError;
      expect(error).toBeInstanceOf(WrongExpectedVersionError);
      expect(error.expected).toBe(expected === 0 ? EXPECTED.NO_STREAM : expected);
      version = (won[0] as PromiseFulfilledResult<{ nextExpectedVersion: number }>).value
        .nextExpectedVersion;
      expect(error.actual).toBe(version);
    }
    // No gap, no duplicate: versions 1..n, and the streams row agrees.
    expect(await versions(streamId)).toEqual(oneTo(version));
    expect(await store.streamVersion(streamId)).toBe(version);
  });

  it('makes the second writer wait on the first and then fail, never both commit', async () => {
    await store.append('acc-wait', [opened('w')], { expectedVersion: EXPECTED.NO_STREAM });
    const runner = dataSource.createQueryRunner();
    await runner.connect();
    await runner.startTransaction();
    try {
      await store.append('acc-wait', deposits('w', 1), {
        expectedVersion: 1,
        manager: runner.manager,
      });
      const [{ pid }] = await runner.query('SELECT pg_backend_pid() AS pid');
      const second = store.append('acc-wait', deposits('w', 1), { expectedVersion: 1 });
      second.catch(() => undefined); // observed below
      // The second writer is blocked on the stream row the first holds.
      await eventually(async () => {
        const rows = await dataSource.query<Array<{ blocked: boolean }>>(
          `SELECT $1 = ANY(pg_blocking_pids(pid)) AS blocked FROM pg_stat_activity
           WHERE datname = current_database() AND pid <> $1 AND pid <> pg_backend_pid()
             AND wait_event_type = 'Lock'`,
          [pid],
        );
        return rows.some((r) => r.blocked);
      });
      await runner.commitTransaction();
      await expect(second).rejects.toEqual(expect.objectContaining({ expected: 1, actual: 2 }));
    } finally {
      if (runner.isTransactionActive) await runner.rollbackTransaction();
      await runner.release();
    }
    expect(await versions('acc-wait')).toEqual([1, 2]);
  });

  it('reads old event versions upcast through the catalog, or raw without one', async () => {
    const raw = new EventStore(dataSource);
    const v1 = {
      type: 'TestMoneyDeposited',
      data: { accountId: '5', cents: '250' },
      metadata: { ...deposits('5', 1)[0].metadata, version: 1 },
    };
    await raw.append('acc-5', [opened('5'), v1], { expectedVersion: EXPECTED.NO_STREAM });
    const [, upcast] = await store.readStream('acc-5');
    expect(upcast.event.data).toEqual({
      accountId: '5',
      amount: { amount: '2.50', currency: 'USD' },
    });
    expect(upcast.event.metadata.version).toBe(2);
    const [, asStored] = await raw.readStream('acc-5');
    expect(asStored.event.data).toEqual({ accountId: '5', cents: '250' });
  });

  it('keeps the log append-only', async () => {
    await store.append('acc-6', [opened('6')], { expectedVersion: EXPECTED.NO_STREAM });
    await expect(
      dataSource.query(`UPDATE events SET data = '{}' WHERE stream_id = 'acc-6'`),
    ).rejects.toThrow(/append-only/);
    await expect(dataSource.query(`DELETE FROM events WHERE stream_id = 'acc-6'`)).rejects.toThrow(
      /append-only/,
    );
  });

  describe('with an outbox', () => {
    let publishing: EventStore;

    beforeAll(() => {
      publishing = new EventStore(dataSource, {
        catalog,
        outbox: { catalog, topicPrefix: 't-es.' },
      });
    });

    async function outbox(eventIds: string[]) {
      return dataSource.query<
        Array<{
          event_id: string;
          topic: string;
          message_key: string;
          payload: { metadata: { aggregateSequence: number } };
        }>
      >(
        'SELECT event_id, topic, message_key, payload FROM outbox WHERE event_id = ANY($1::uuid[]) ORDER BY position',
        [eventIds],
      );
    }

    it('enqueues the appended events, as stored, in the same transaction', async () => {
      const { events } = await publishing.append('acc-7', [opened('7'), ...deposits('7', 2)], {
        expectedVersion: EXPECTED.ANY,
      });
      const rows = await outbox(events.map((e) => e.metadata.eventId));
      expect(rows.map((r) => r.event_id)).toEqual(events.map((e) => e.metadata.eventId));
      expect(rows.map((r) => r.topic)).toEqual(Array(3).fill('t-es.trading.events'));
      expect(rows.map((r) => r.message_key)).toEqual(['7', '7', '7']);
      expect(rows.map((r) => r.payload.metadata.aggregateSequence)).toEqual([1, 2, 3]);

      const quiet = await publishing.append('acc-7', deposits('7', 1), {
        expectedVersion: 3,
        publish: false,
      });
      expect(await outbox(quiet.events.map((e) => e.metadata.eventId))).toEqual([]);
    });

    it("rolls the outbox rows back with the events when the caller's transaction fails", async () => {
      const events = [opened('8'), ...deposits('8', 2)];
      await expect(
        dataSource.transaction(async (manager) => {
          await publishing.append('acc-8', events, {
            expectedVersion: EXPECTED.NO_STREAM,
            manager,
          });
          expect(await outbox(events.map((e) => e.metadata.eventId))).toHaveLength(0); // not yet visible
          throw new Error('the other state change failed');
        }),
      ).rejects.toThrow('the other state change failed');
      expect(await outbox(events.map((e) => e.metadata.eventId))).toEqual([]);
      expect(await versions('acc-8')).toEqual([]);
      expect(await store.streamVersion('acc-8')).toBe(0);
    });
  });
});

async function eventually(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
