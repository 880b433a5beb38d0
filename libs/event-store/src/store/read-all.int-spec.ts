// Reading the whole log by checkpoint never skips an event whose transaction commits after a later
// one: such events wait behind the oldest running transaction instead of being jumped over.
import { MessageCatalog } from '@finance/contracts';
import { createTestDatabase } from '@finance/testing';
import type { DataSource, QueryRunner } from 'typeorm';
import { ACCOUNT_EVENTS } from '../test-fixtures/bank-account';
import { openMigratedDatabase } from '../test-fixtures/database';
import { deposits, opened } from '../test-fixtures/events';
import { BEGINNING, compareCheckpoints, GlobalCheckpoint } from './checkpoint';
import { EventStore, RecordedEvent } from './event-store';
import { EXPECTED } from './expected-version';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('EventStore readAll (real PostgreSQL)', () => {
  let dataSource: DataSource;
  let store: EventStore;

  beforeAll(async () => {
    const db = await createTestDatabase('event_store_read_all');
    dataSource = await openMigratedDatabase(db.url, 20);
    store = new EventStore(dataSource, { catalog: new MessageCatalog(ACCOUNT_EVENTS) });
  });

  afterAll(async () => {
    await dataSource?.destroy();
  });

  /** Reads from `after` until nothing more is returned, in pages of `pageSize`. */
  async function drain(after: GlobalCheckpoint, pageSize = 7) {
    const seen: RecordedEvent[] = [];
    let checkpoint = after;
    for (;;) {
      const page = await store.readAll({ after: checkpoint, maxCount: pageSize });
      seen.push(...page.events);
      checkpoint = page.checkpoint;
      if (page.events.length < pageSize) return { seen, checkpoint };
    }
  }

  /**
   * Drains until `target` is reached. Any transaction on the server (other test files, other runs
   * sharing the stack) holds readAll back while it runs, so the end may take a few polls.
   */
  async function drainUntil(after: GlobalCheckpoint, target: GlobalCheckpoint) {
    const seen: RecordedEvent[] = [];
    let checkpoint = after;
    for (let polls = 0; compareCheckpoints(checkpoint, target) < 0; polls++) {
      if (polls > 0) await sleep(5);
      const page = await drain(checkpoint);
      seen.push(...page.seen);
      checkpoint = page.checkpoint;
    }
    return { seen, checkpoint };
  }

  const ids = (events: RecordedEvent[]) => events.map((e) => e.event.metadata.eventId);

  it('holds back a late-committing transaction and everything after it, then returns it', async () => {
    const before = await store.append('early', [opened('e'), ...deposits('e', 11)], {
      expectedVersion: EXPECTED.NO_STREAM,
    });

    // A appends first (so its transaction id is lower) but commits last.
    const a: QueryRunner = dataSource.createQueryRunner();
    await a.connect();
    await a.startTransaction();
    let aIds: string[];
    try {
      const appendedA = await store.append('late-a', [opened('a'), ...deposits('a', 2)], {
        expectedVersion: EXPECTED.NO_STREAM,
        manager: a.manager,
      });
      aIds = appendedA.events.map((e) => e.metadata.eventId);
      const b = await store.append('quick-b', [opened('b'), ...deposits('b', 1)], {
        expectedVersion: EXPECTED.NO_STREAM,
      });
      const bIds = b.events.map((e) => e.metadata.eventId);
      expect(compareCheckpoints(b.positions[0], appendedA.positions[2])).toBe(1);

      // B is committed, but reading must stop before A: nothing of A or B, all of `early`. (A
      // transaction of another test file on the same server may hold the line lower for a while.)
      let first = await drain(BEGINNING);
      for (let tries = 0; first.seen.length < before.events.length && tries < 500; tries++) {
        expect(first.seen.length).toBeLessThan(before.events.length);
        await sleep(10);
        first = await drain(BEGINNING);
      }
      expect(ids(first.seen)).toEqual(before.events.map((e) => e.metadata.eventId));
      expect(first.checkpoint).toEqual(before.positions.at(-1));

      await a.commitTransaction();

      // From the same checkpoint: A's events, then B's, each exactly once.
      const second = await drainUntil(first.checkpoint, b.positions[1]);
      expect(ids(second.seen)).toEqual([...aIds, ...bIds]);
      expect(second.checkpoint).toEqual(b.positions[1]);
      expect((await drain(second.checkpoint)).seen).toEqual([]);
    } finally {
      if (a.isTransactionActive) await a.rollbackTransaction();
      await a.release();
    }
  });

  it('gives a follower every event exactly once while many writers commit out of order', async () => {
    const start = await store.headCheckpoint();
    const writers = 8;
    const appendsPerWriter = 15;
    let writing = true;

    // Each append stays uncommitted for a random while, so commit order differs from id order.
    const write = async (w: number) => {
      for (let i = 0; i < appendsPerWriter; i++) {
        const streamId = `mixed-${w}-${i % 3}`;
        await dataSource.transaction(async (manager) => {
          await store.append(streamId, deposits(streamId, 1 + (i % 3)), {
            expectedVersion: EXPECTED.ANY,
            manager,
          });
          await sleep(Math.random() * 15);
        });
      }
    };
    const follow = async () => {
      const seen: RecordedEvent[] = [];
      let checkpoint = start;
      while (writing) {
        const page = await store.readAll({ after: checkpoint, maxCount: 5 });
        seen.push(...page.events);
        checkpoint = page.checkpoint;
        if (page.events.length === 0) await sleep(2);
      }
      seen.push(...(await drainUntil(checkpoint, await store.headCheckpoint())).seen);
      return seen;
    };

    const following = follow();
    await Promise.all(Array.from({ length: writers }, (_, w) => write(w)));
    writing = false;
    const seen = await following;

    const stored = await dataSource.query<Array<{ event_id: string }>>(
      `SELECT event_id FROM events WHERE stream_id LIKE 'mixed-%' ORDER BY transaction_id, global_position`,
    );
    expect(ids(seen)).toEqual(stored.map((r) => r.event_id));
    expect(new Set(ids(seen)).size).toBe(seen.length);
    // Per stream, versions arrive in order.
    const lastVersion = new Map<string, number>();
    for (const e of seen) {
      expect(e.streamVersion).toBe((lastVersion.get(e.streamId) ?? 0) + 1);
      lastVersion.set(e.streamId, e.streamVersion);
    }
  });
});
