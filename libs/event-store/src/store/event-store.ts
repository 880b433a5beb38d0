// The event store on PostgreSQL: appends with optimistic concurrency (optionally with the outbox in
// the same transaction), reads of one stream or of the whole log in commit-safe order, snapshots.
import { DecodeResult, Envelope, MessageCatalog } from '@finance/contracts';
import { enqueueOutbox, routeMessage } from '@finance/messaging';
import type { DataSource, EntityManager } from 'typeorm';
import { BEGINNING, GlobalCheckpoint } from './checkpoint';
import { DuplicateEventError, EventDecodingError, WrongExpectedVersionError } from './errors';
import {
  EXPECTED,
  ExpectedVersion,
  matchesExpectedVersion,
  normaliseExpectedVersion,
} from './expected-version';
import type { JsonValue } from './json';

/** An event as stored: the envelope plus where it sits in its stream and in the global log. */
export interface RecordedEvent<E extends Envelope = Envelope> {
  event: E;
  streamId: string;
  streamVersion: number;
  checkpoint: GlobalCheckpoint;
  recordedAt: Date;
}

export interface OutboxOptions {
  /** Routes each event type to its topic. */
  catalog: MessageCatalog;
  topicPrefix?: string;
}

export interface EventStoreOptions<E extends Envelope = Envelope> {
  /** Reads are upcast and validated through it; without one they return the rows as stored. */
  catalog?: MessageCatalog<E>;
  /** When set, appends also enqueue their events in the outbox unless told `publish: false`. */
  outbox?: OutboxOptions;
}

export interface AppendOptions {
  expectedVersion: ExpectedVersion;
  /** The caller's transaction, so other state changes commit or roll back with the events. */
  manager?: EntityManager;
  /** Also enqueue the events in the outbox; defaults to whether the store has an outbox. */
  publish?: boolean;
}

export interface AppendResult<E extends Envelope = Envelope> {
  /** The stream's version after this append: pass it as the next expected version. */
  nextExpectedVersion: number;
  /** Where each appended event sits in the global log, in append order. */
  positions: GlobalCheckpoint[];
  /** The events as stored, with `metadata.aggregateSequence` set to their stream version. */
  events: E[];
}

export interface ReadStreamOptions<M extends Envelope> {
  /** First stream version to return (default 1). */
  fromVersion?: number;
  maxCount?: number;
  manager?: EntityManager;
  /** Decode with this catalog instead of the store's. */
  catalog?: MessageCatalog<M>;
}

export interface ReadAllOptions {
  /** Return events strictly after this checkpoint (default: from the beginning). */
  after?: GlobalCheckpoint;
  maxCount?: number;
  manager?: EntityManager;
}

export interface ReadAllResult<E extends Envelope = Envelope> {
  events: RecordedEvent<E>[];
  /** The last returned event's checkpoint, or `after` when nothing was returned. */
  checkpoint: GlobalCheckpoint;
}

export interface StoredSnapshot {
  streamVersion: number;
  state: JsonValue;
  stateVersion: number;
  takenAt: Date;
}

interface Queryable {
  query<T>(sql: string, parameters?: unknown[]): Promise<T>;
}

interface EventRow {
  global_position: string;
  transaction_id: string;
  stream_id: string;
  stream_version: string;
  type: string;
  version: number;
  data: unknown;
  metadata: Envelope['metadata'];
  recorded_at: Date;
}

interface AppendedRow {
  global_position: string;
  transaction_id: string;
  stream_version: string;
}

const DEFAULT_READ_ALL_COUNT = 1000;

const EVENT_COLUMNS = `global_position::text AS global_position, transaction_id::text AS transaction_id,
  stream_id, stream_version::text AS stream_version, type, version, data, metadata, recorded_at`;

// $1 stream id, $2 number of events; $8 is the variant's own parameter (if any). Every variant
// touches the streams row, so concurrent writers to one stream queue on its row lock and the loser
// of a race sees the winner's version (READ COMMITTED re-checks the WHERE after the wait).
const STREAM_WRITES = {
  [EXPECTED.NO_STREAM]: `INSERT INTO streams (stream_id, aggregate_type, version)
      VALUES ($1, $8::text, $2::bigint) ON CONFLICT (stream_id) DO NOTHING RETURNING version`,
  [EXPECTED.STREAM_EXISTS]: `UPDATE streams SET version = version + $2::bigint
      WHERE stream_id = $1 RETURNING version`,
  [EXPECTED.ANY]: `INSERT INTO streams (stream_id, aggregate_type, version)
      VALUES ($1, $8::text, $2::bigint)
      ON CONFLICT (stream_id) DO UPDATE SET version = streams.version + EXCLUDED.version
      RETURNING version`,
  exact: `UPDATE streams SET version = version + $2::bigint
      WHERE stream_id = $1 AND version = $8::bigint RETURNING version`,
} as const;

// One round trip claims the versions and inserts every event; no row comes back when the
// expectation failed, so a conflict never raises an error inside the caller's transaction.
function appendSql(streamWrite: string): string {
  return `WITH stream AS (${streamWrite})
    INSERT INTO events (stream_id, stream_version, event_id, type, version, data, metadata)
    SELECT $1, stream.version - $2::bigint + e.n, e.event_id, e.type, e.version, e.data,
           jsonb_set(e.metadata, '{aggregateSequence}', to_jsonb(stream.version - $2::bigint + e.n))
    FROM stream,
         unnest($3::uuid[], $4::text[], $5::int4[], $6::jsonb[], $7::jsonb[])
           WITH ORDINALITY AS e(event_id, type, version, data, metadata, n)
    ORDER BY e.n
    RETURNING global_position::text AS global_position, transaction_id::text AS transaction_id,
              stream_version::text AS stream_version`;
}

const APPEND_SQL = {
  [EXPECTED.NO_STREAM]: appendSql(STREAM_WRITES[EXPECTED.NO_STREAM]),
  [EXPECTED.STREAM_EXISTS]: appendSql(STREAM_WRITES[EXPECTED.STREAM_EXISTS]),
  [EXPECTED.ANY]: appendSql(STREAM_WRITES[EXPECTED.ANY]),
  exact: appendSql(STREAM_WRITES.exact),
};

// A row is final once its transaction is older than every transaction still running: nothing can
// commit below that line any more, so a reader never moves its checkpoint past an event that is
// still to commit. Rows of running transactions wait for the next read instead of being skipped.
const READ_ALL_SQL = `SELECT ${EVENT_COLUMNS} FROM events
  WHERE (transaction_id, global_position) > ($1::xid8, $2::bigint)
    AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
  ORDER BY events.transaction_id, events.global_position
  LIMIT $3`;

interface PgError {
  code?: string;
  constraint?: string;
}

export class EventStore<E extends Envelope = Envelope> {
  readonly catalog: MessageCatalog<E> | undefined;
  private readonly outbox: OutboxOptions | undefined;

  constructor(
    readonly dataSource: DataSource,
    options: EventStoreOptions<E> = {},
  ) {
    this.catalog = options.catalog;
    this.outbox = options.outbox;
  }

  /** Runs `work` in one transaction on this store's database. */
  transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.dataSource.transaction(work);
  }

  async append<A extends Envelope>(
    streamId: string,
    events: readonly A[],
    options: AppendOptions,
  ): Promise<AppendResult<A>> {
    const expected = normaliseExpectedVersion(options.expectedVersion);
    const publish = options.publish ?? this.outbox !== undefined;
    if (publish && !this.outbox) {
      throw new Error('append with publish needs an outbox: build the EventStore with { outbox }');
    }
    const { manager } = options;
    if (manager && !manager.queryRunner?.isTransactionActive) {
      throw new Error("append with a manager must run inside the caller's transaction");
    }
    if (events.length === 0) {
      const actual = await this.streamVersion(streamId, { manager });
      if (!matchesExpectedVersion(expected, actual)) {
        throw new WrongExpectedVersionError(streamId, expected, actual);
      }
      return { nextExpectedVersion: actual, positions: [], events: [] };
    }
    if (manager || !publish) return this.appendWith(manager, streamId, events, expected, publish);
    // One statement is atomic on its own; with the outbox it is two, which need a transaction.
    return this.dataSource.transaction((m) => this.appendWith(m, streamId, events, expected, true));
  }

  private async appendWith<A extends Envelope>(
    manager: EntityManager | undefined,
    streamId: string,
    events: readonly A[],
    expected: ExpectedVersion,
    publish: boolean,
  ): Promise<AppendResult<A>> {
    const db: Queryable = manager ?? this.dataSource;
    const variant = typeof expected === 'number' ? 'exact' : expected;
    const parameters: unknown[] = [
      streamId,
      events.length,
      events.map((e) => e.metadata.eventId),
      events.map((e) => e.type),
      events.map((e) => e.metadata.version),
      events.map((e) => JSON.stringify(e.data)),
      events.map((e) => JSON.stringify(e.metadata)),
    ];
    if (variant === 'exact') parameters.push(expected);
    else if (variant !== EXPECTED.STREAM_EXISTS) parameters.push(events[0].metadata.aggregateType);

    let rows: AppendedRow[];
    try {
      rows = await db.query<AppendedRow[]>(APPEND_SQL[variant], parameters);
    } catch (error) {
      throw translateWriteError(error, streamId, expected);
    }
    if (rows.length === 0) {
      throw new WrongExpectedVersionError(
        streamId,
        expected,
        await this.streamVersionWith(db, streamId),
      );
    }
    rows.sort((a, b) => Number(a.stream_version) - Number(b.stream_version));
    const first = Number(rows[0].stream_version);
    const stored = events.map((e, i) => ({
      ...e,
      metadata: { ...e.metadata, aggregateSequence: first + i },
    }));
    if (publish) {
      // append() opens a transaction whenever it publishes, so both are set here.
      if (!this.outbox || !manager) throw new Error('publishing needs an outbox and a transaction');
      const { catalog, topicPrefix } = this.outbox;
      await enqueueOutbox(
        manager,
        stored.map((e) => routeMessage(catalog, e, topicPrefix)),
      );
    }
    return {
      nextExpectedVersion: first + rows.length - 1,
      positions: rows.map((r) => ({
        transactionId: r.transaction_id,
        position: r.global_position,
      })),
      events: stored,
    };
  }

  /** The stream's current version (its number of events); 0 if it does not exist. */
  async streamVersion(
    streamId: string,
    options: { manager?: EntityManager } = {},
  ): Promise<number> {
    return this.streamVersionWith(options.manager ?? this.dataSource, streamId);
  }

  private async streamVersionWith(db: Queryable, streamId: string): Promise<number> {
    const rows = await db.query<Array<{ version: string }>>(
      'SELECT version::text AS version FROM streams WHERE stream_id = $1',
      [streamId],
    );
    return rows.length === 0 ? 0 : Number(rows[0].version);
  }

  /** Events of one stream in order, from `fromVersion` (default 1). */
  async readStream<M extends Envelope = E>(
    streamId: string,
    options: ReadStreamOptions<M> = {},
  ): Promise<RecordedEvent<M>[]> {
    const db = options.manager ?? this.dataSource;
    const rows = await db.query<EventRow[]>(
      `SELECT ${EVENT_COLUMNS} FROM events
       WHERE stream_id = $1 AND stream_version >= $2::bigint
       ORDER BY events.stream_version LIMIT $3::bigint`,
      [streamId, options.fromVersion ?? 1, options.maxCount ?? null],
    );
    const catalog = (options.catalog ?? this.catalog) as MessageCatalog<M> | undefined;
    return rows.map((row) => toRecorded<M>(row, catalog));
  }

  /**
   * The global log after a checkpoint in (transaction id, position) order, up to the oldest
   * transaction still running: an event committed late is returned later, never skipped.
   */
  async readAll(options: ReadAllOptions = {}): Promise<ReadAllResult<E>> {
    const after = options.after ?? BEGINNING;
    const db = options.manager ?? this.dataSource;
    const rows = await db.query<EventRow[]>(READ_ALL_SQL, [
      after.transactionId,
      after.position,
      options.maxCount ?? DEFAULT_READ_ALL_COUNT,
    ]);
    const events = rows.map((row) => toRecorded<E>(row, this.catalog));
    return { events, checkpoint: events.at(-1)?.checkpoint ?? after };
  }

  /**
   * The checkpoint of the last committed event (ignoring what readAll may not return yet): a
   * reader that reaches it has seen everything committed before this call.
   */
  async headCheckpoint(options: { manager?: EntityManager } = {}): Promise<GlobalCheckpoint> {
    const db = options.manager ?? this.dataSource;
    const rows = await db.query<Array<{ transaction_id: string; global_position: string }>>(
      `SELECT transaction_id::text AS transaction_id, global_position::text AS global_position
       FROM events ORDER BY events.transaction_id DESC, events.global_position DESC LIMIT 1`,
    );
    return rows.length === 0
      ? BEGINNING
      : { transactionId: rows[0].transaction_id, position: rows[0].global_position };
  }

  /** The stream's snapshot if it was taken with this state schema version. */
  async readSnapshot(
    streamId: string,
    stateVersion: number,
    options: { manager?: EntityManager } = {},
  ): Promise<StoredSnapshot | undefined> {
    const db = options.manager ?? this.dataSource;
    const rows = await db.query<
      Array<{ stream_version: string; state: JsonValue; state_version: number; taken_at: Date }>
    >(
      `SELECT stream_version::text AS stream_version, state, state_version, taken_at
       FROM snapshots WHERE stream_id = $1 AND state_version = $2`,
      [streamId, stateVersion],
    );
    if (rows.length === 0) return undefined;
    const [row] = rows;
    return {
      streamVersion: Number(row.stream_version),
      state: row.state,
      stateVersion: row.state_version,
      takenAt: row.taken_at,
    };
  }

  /** Replaces the stream's snapshot; call it in the transaction of the append it reflects. */
  async saveSnapshot(
    streamId: string,
    snapshot: { streamVersion: number; state: JsonValue; stateVersion: number },
    options: { manager?: EntityManager } = {},
  ): Promise<void> {
    const db = options.manager ?? this.dataSource;
    await db.query(
      `INSERT INTO snapshots (stream_id, stream_version, state, state_version)
       VALUES ($1, $2::bigint, $3::jsonb, $4)
       ON CONFLICT (stream_id) DO UPDATE SET stream_version = EXCLUDED.stream_version,
         state = EXCLUDED.state, state_version = EXCLUDED.state_version, taken_at = EXCLUDED.taken_at`,
      [streamId, snapshot.streamVersion, JSON.stringify(snapshot.state), snapshot.stateVersion],
    );
  }
}

function toRecorded<M extends Envelope>(
  row: EventRow,
  catalog: MessageCatalog<M> | undefined,
): RecordedEvent<M> {
  const streamVersion = Number(row.stream_version);
  const raw = { type: row.type, data: row.data, metadata: row.metadata };
  let event: M;
  if (catalog) {
    const decoded = catalog.decode(raw);
    if (decoded.status !== 'ok') {
      throw new EventDecodingError(
        row.stream_id,
        streamVersion,
        row.global_position,
        explainDecodeFailure(decoded),
      );
    }
    event = decoded.message;
  } else {
    // Without a catalog the caller asked for the rows as stored.
    event = raw as M;
  }
  return {
    event,
    streamId: row.stream_id,
    streamVersion,
    checkpoint: { transactionId: row.transaction_id, position: row.global_position },
    recordedAt: row.recorded_at,
  };
}

function explainDecodeFailure(result: Exclude<DecodeResult, { status: 'ok' }>): string {
  switch (result.status) {
    case 'unknown-type':
      return `type ${result.type} is not in the catalog`;
    case 'newer-version':
      return `${result.type} v${result.version} is newer than this build knows (v${result.known})`;
    case 'invalid':
      return result.error;
    default: {
      const _never: never = result;
      throw new Error(`unexpected decode result ${JSON.stringify(_never)}`);
    }
  }
}

// Unique violations can only come from a duplicate event id or from rows written around the
// streams table; either way the caller gets a typed error, not the driver's.
function translateWriteError(error: unknown, streamId: string, expected: ExpectedVersion): unknown {
  const { code, constraint } = (error ?? {}) as PgError;
  if (code !== '23505') return error;
  if (constraint === 'events_event_id_key') {
    return new DuplicateEventError(streamId, constraint);
  }
  return new WrongExpectedVersionError(streamId, expected, undefined);
}
