// The audit log in PostgreSQL. Appends are serialised by locking the tree head, hash as they go and
// write a whole batch (entries, leaves, newly completed subtrees, new head) in one statement. The
// stored subtrees answer roots and proofs in O(log n) reads; checkpoints and signing keys are kept
// here too, and any range can be exported in the verifiable JSON lines format.
import {
  CompactRange,
  consistencyProof,
  decomposeRange,
  inclusionProof,
  NodeId,
  NodeSource,
  nodeHash,
  rootAt,
  SignedCheckpoint,
  toHex,
  leafHash as hashLeaf,
} from '@finance/merkle';
import type {
  DataSource,
  EntityManager,
  EntitySubscriberInterface,
  QueryRunner,
  TransactionCommitEvent,
  TransactionRollbackEvent,
} from 'typeorm';
import {
  ArchivedRange,
  entryLine,
  EXPORT_FORMAT,
  ExportHeader,
  headerLine,
} from '../export-format';
import { AuditInput, AuditRecord, PreparedInput, prepareInput, recordLeafText } from '../record';
import { STORED_LEVEL_STEP } from './audit-log.migration';

/** Anything that runs SQL: the DataSource (pool) or a transaction's EntityManager. */
export type Queryable = Pick<EntityManager, 'query'>;

export interface AppendOutcome {
  /** Leaf index of each input, in order; null when its event is already in the log. */
  readonly indexes: ReadonlyArray<number | null>;
  /** Size of the tree after this append (in the appending transaction). */
  readonly treeSize: number;
}

export interface TreeHead {
  readonly treeSize: number;
  readonly root: Uint8Array;
}

/** A checkpoint as served: the signed fields plus the signing key's PEM, for convenience. */
export interface CheckpointDocument extends SignedCheckpoint {
  readonly sequence: number;
  readonly publicKey: string;
}

export class AuditTreeError extends Error {
  override readonly name = 'AuditTreeError';
}

const UTC_MICROS = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;
const CHECKPOINT_LOCK = 7_210_431_201;

// Payloads travel as one JSON array: far cheaper to build and parse than a text[] literal of JSON.
const APPEND_BATCH = `
  WITH x AS (
    SELECT * FROM unnest($1::bigint[], $3::text[], $4::uuid[], $5::text[], $6::text[], $7::text[],
                         $8::text[], $9::text[], $10::timestamptz[], $12::text[])
           WITH ORDINALITY AS x(i, s, e, t, p, a, c, tr, o, h, n)
  ), entries AS (
    INSERT INTO audit_entries (leaf_index, appended_at, source, event_id, type, producer,
      aggregate_id, correlation_id, trace_id, occurred_at, payload, leaf_hash)
    SELECT x.i, $2::timestamptz, x.s, x.e, x.t, x.p, x.a, x.c, x.tr, x.o, pl.value, decode(x.h, 'hex')
      FROM x JOIN json_array_elements_text($11::json) WITH ORDINALITY AS pl(value, n) USING (n)
  ), leaves AS (
    INSERT INTO audit_leaves (leaf_index, event_id, leaf_hash) SELECT i, e, decode(h, 'hex') FROM x
  ), nodes AS (
    INSERT INTO audit_tree_nodes (level, node_index, hash)
    SELECT l, i, decode(h, 'hex') FROM unnest($13::smallint[], $14::bigint[], $15::text[]) AS y(l, i, h)
  ), head AS (
    UPDATE audit_tree_head SET tree_size = $16, frontier = $17::bytea[], updated_at = $2::timestamptz
    RETURNING tree_size
  )
  SELECT tree_size FROM head`;

const ENTRY_COLUMNS = `leaf_index::text AS leaf_index,
  to_char(appended_at AT TIME ZONE 'UTC', ${UTC_MICROS}) AS appended_at, source,
  event_id::text AS event_id, type, producer, aggregate_id, correlation_id, trace_id,
  to_char(occurred_at AT TIME ZONE 'UTC', ${UTC_MICROS}) AS occurred_at, payload,
  encode(leaf_hash, 'hex') AS leaf_hash`;

interface EntryRow {
  leaf_index: string;
  appended_at: string;
  source: string;
  event_id: string;
  type: string;
  producer: string;
  aggregate_id: string;
  correlation_id: string;
  trace_id: string | null;
  occurred_at: string;
  payload: string;
  leaf_hash: string;
}

/** A stored entry: its fields, the exact text its leaf hash covers, and the recorded hash. */
export interface StoredEntry {
  readonly index: number;
  readonly record: Omit<AuditRecord, 'payload'>;
  readonly payloadText: string;
  readonly leafText: string;
  readonly leafHash: string;
}

function storedEntry(row: EntryRow): StoredEntry {
  const record = {
    source: row.source,
    eventId: row.event_id,
    type: row.type,
    producer: row.producer,
    aggregateId: row.aggregate_id,
    correlationId: row.correlation_id,
    traceId: row.trace_id,
    occurredAt: row.occurred_at,
    appendedAt: row.appended_at,
  };
  return {
    index: Number(row.leaf_index),
    record,
    payloadText: row.payload,
    leafText: recordLeafText(record, row.payload),
    leafHash: row.leaf_hash,
  };
}

interface CheckpointRow {
  tree_size: string;
  sequence: string;
  origin: string;
  root_hash: Buffer;
  signed_at: Date;
  key_id: string;
  signature: Buffer;
  public_key: string;
}

function checkpointDocument(row: CheckpointRow): CheckpointDocument {
  return {
    origin: row.origin,
    treeSize: Number(row.tree_size),
    rootHash: toHex(row.root_hash),
    timestamp: row.signed_at.toISOString(),
    keyId: row.key_id,
    signature: row.signature.toString('base64'),
    sequence: Number(row.sequence),
    publicKey: row.public_key,
  };
}

const CHECKPOINT_SELECT = `SELECT c.tree_size::text AS tree_size, c.sequence::text AS sequence, c.origin,
  c.root_hash, c.signed_at, c.key_id, c.signature, k.public_key
  FROM audit_checkpoints c JOIN audit_signing_keys k USING (key_id)`;

/** Subtree hashes from audit_leaves (level 0) and audit_tree_nodes (every STORED_LEVEL_STEP-th level). */
export class StoredSubtrees implements NodeSource {
  constructor(private readonly db: Queryable) {}

  async nodes(ids: readonly NodeId[]): Promise<readonly Uint8Array[]> {
    // Each subtree is rebuilt from the stored level at or below it: at most 2^(STEP-1) hashes.
    const plans = ids.map(({ level, index }) => {
      const base = level - (level % STORED_LEVEL_STEP);
      const width = 2 ** (level - base);
      return { base, first: index * width, width };
    });
    const leafKeys: number[] = [];
    const nodeLevels: number[] = [];
    const nodeKeys: number[] = [];
    for (const { base, first, width } of plans) {
      for (let k = first; k < first + width; k++) {
        if (base === 0) leafKeys.push(k);
        else {
          nodeLevels.push(base);
          nodeKeys.push(k);
        }
      }
    }
    const rows: Array<{ level: number; idx: string; hash: Buffer }> = await this.db.query(
      `SELECT 0 AS level, leaf_index::text AS idx, leaf_hash AS hash
         FROM audit_leaves WHERE leaf_index = ANY($1::bigint[])
       UNION ALL
       SELECT n.level, n.node_index::text, n.hash
         FROM audit_tree_nodes n
         JOIN unnest($2::smallint[], $3::bigint[]) AS k(level, node_index)
           ON n.level = k.level AND n.node_index = k.node_index`,
      [leafKeys, nodeLevels, nodeKeys],
    );
    const found = new Map(rows.map((row) => [`${row.level}/${row.idx}`, row.hash]));
    return plans.map(({ base, first, width }) => {
      let layer: Uint8Array[] = [];
      for (let k = first; k < first + width; k++) {
        const hash = found.get(`${base}/${k}`);
        if (!hash) {
          throw new AuditTreeError(
            base === 0
              ? `leaf ${k} is missing from the audit tree`
              : `subtree ${base}/${k} is missing`,
          );
        }
        layer.push(hash);
      }
      while (layer.length > 1) {
        const next: Uint8Array[] = [];
        for (let i = 0; i < layer.length; i += 2) next.push(nodeHash(layer[i], layer[i + 1]));
        layer = next;
      }
      return layer[0];
    });
  }
}

// Entries queued by appendOnCommit, per transaction (its query runner), until it commits.
const queued = new WeakMap<QueryRunner, { store: AuditLogStore; inputs: PreparedInput[] }>();
const hooked = new WeakSet<DataSource>();

// Savepoints (nested transactions) commit and roll back with the same events; only the outermost
// transaction's end decides. TypeORM keeps the depth in a protected field.
function depth(runner: QueryRunner): number {
  return (runner as unknown as { transactionDepth?: number }).transactionDepth ?? 1;
}

/** Appends what a transaction queued right before it commits, in one batch. */
class AppendOnCommit implements EntitySubscriberInterface {
  async beforeTransactionCommit({ queryRunner, manager }: TransactionCommitEvent): Promise<void> {
    if (depth(queryRunner) > 1) return;
    const queue = queued.get(queryRunner);
    if (!queue) return;
    queued.delete(queryRunner);
    await queue.store.appendPrepared(manager, queue.inputs);
  }

  beforeTransactionRollback({ queryRunner }: TransactionRollbackEvent): void {
    if (depth(queryRunner) <= 1) queued.delete(queryRunner);
  }
}

export class AuditLogStore {
  // Months whose partition is known to exist (committed), so appends skip the check.
  private readonly partitions = new Set<string>();

  /**
   * `clock`, when given, stamps appended_at instead of the database's clock: tests of retention
   * write months in the past with it. Stamps must not go backwards, or months would interleave.
   */
  constructor(
    private readonly dataSource: DataSource,
    private readonly options: { readonly clock?: () => Date } = {},
  ) {}

  /**
   * Appends in the caller's transaction, after any entry it already holds. Events already in the
   * log (or twice in `inputs`) are skipped. Blocks other appends until the transaction ends.
   */
  async append(manager: EntityManager, inputs: readonly AuditInput[]): Promise<AppendOutcome> {
    return this.appendPrepared(manager, inputs.map(prepareInput));
  }

  /**
   * Queues entries to be appended, in one batch, when the caller's transaction commits (and
   * dropped if it rolls back). For a consumer that handles many messages in one transaction: the
   * log's lock is then held only for that last batch instead of from the first message on.
   */
  appendOnCommit(manager: EntityManager, inputs: readonly AuditInput[]): void {
    const runner = manager.queryRunner;
    if (!runner?.isTransactionActive)
      throw new Error('audit appends must run inside a transaction');
    if (runner.connection !== this.dataSource) {
      throw new Error("appendOnCommit needs a transaction of the store's own data source");
    }
    if (!hooked.has(this.dataSource)) {
      this.dataSource.subscribers.push(new AppendOnCommit());
      hooked.add(this.dataSource);
    }
    const prepared = inputs.map(prepareInput);
    const queue = queued.get(runner);
    if (queue) queue.inputs.push(...prepared);
    else queued.set(runner, { store: this, inputs: prepared });
  }

  /** `append` in a transaction of its own. */
  appendNow(inputs: readonly AuditInput[]): Promise<AppendOutcome> {
    const prepared = inputs.map(prepareInput); // outside the lock
    return this.dataSource.transaction((manager) => this.appendPrepared(manager, prepared));
  }

  async appendPrepared(
    manager: EntityManager,
    inputs: readonly PreparedInput[],
  ): Promise<AppendOutcome> {
    if (!manager.queryRunner?.isTransactionActive) {
      throw new Error('audit appends must run inside a transaction');
    }
    const [head]: Array<{ tree_size: string; frontier: Buffer[]; now: string }> =
      await manager.query(
        `SELECT tree_size::text AS tree_size, frontier,
                to_char(clock_timestamp() AT TIME ZONE 'UTC', ${UTC_MICROS}) AS now
           FROM audit_tree_head FOR UPDATE`,
      );
    if (!head) throw new AuditTreeError('audit_tree_head has no row');
    const size = Number(head.tree_size);
    if (inputs.length === 0) return { indexes: [], treeSize: size };
    // Read after the lock: whatever a concurrent append committed is visible now.
    const present: Array<{ event_id: string }> = await manager.query(
      'SELECT event_id::text AS event_id FROM audit_leaves WHERE event_id = ANY($1::uuid[])',
      [[...new Set(inputs.map((input) => input.eventId))]],
    );
    const taken = new Set(present.map((row) => row.event_id));

    const range = new CompactRange(size, head.frontier);
    const clock = this.options.clock;
    const appendedAt = clock ? clock().toISOString().replace(/Z$/, '000Z') : head.now;
    const rows = {
      index: [] as number[],
      source: [] as string[],
      eventId: [] as string[],
      type: [] as string[],
      producer: [] as string[],
      aggregateId: [] as string[],
      correlationId: [] as string[],
      traceId: [] as Array<string | null>,
      occurredAt: [] as string[],
      payload: [] as string[],
      leafHash: [] as string[],
    };
    const nodes = { level: [] as number[], index: [] as number[], hash: [] as string[] };
    const indexes = inputs.map((input) => {
      if (taken.has(input.eventId)) return null;
      taken.add(input.eventId);
      const index = range.size;
      const leaf = hashLeaf(
        Buffer.from(recordLeafText({ ...input, appendedAt }, input.payloadText)),
      );
      range.appendLeaf(leaf, (node, hash) => {
        if (node.level % STORED_LEVEL_STEP !== 0) return;
        nodes.level.push(node.level);
        nodes.index.push(node.index);
        nodes.hash.push(toHex(hash));
      });
      rows.index.push(index);
      rows.source.push(input.source);
      rows.eventId.push(input.eventId);
      rows.type.push(input.type);
      rows.producer.push(input.producer);
      rows.aggregateId.push(input.aggregateId);
      rows.correlationId.push(input.correlationId);
      rows.traceId.push(input.traceId);
      rows.occurredAt.push(input.occurredAt);
      rows.payload.push(input.payloadText);
      rows.leafHash.push(toHex(leaf));
      return index;
    });
    if (rows.index.length === 0) return { indexes, treeSize: size };

    const month = appendedAt.slice(0, 7);
    if (!this.partitions.has(month)) {
      // Not remembered: this transaction may still roll back. ensurePartitions() remembers.
      await manager.query('SELECT audit_ensure_partition($1::timestamptz)', [appendedAt]);
    }
    await manager.query(APPEND_BATCH, [
      rows.index,
      appendedAt,
      rows.source,
      rows.eventId,
      rows.type,
      rows.producer,
      rows.aggregateId,
      rows.correlationId,
      rows.traceId,
      rows.occurredAt,
      JSON.stringify(rows.payload),
      rows.leafHash,
      nodes.level,
      nodes.index,
      nodes.hash,
      range.size,
      range.frontier.map((hash) => Buffer.from(hash)),
    ]);
    return { indexes, treeSize: range.size };
  }

  /** Creates the partitions of the months from `at` to `monthsAhead` later, if missing. */
  async ensurePartitions(at: Date, monthsAhead = 1): Promise<string[]> {
    const names: string[] = [];
    for (let i = 0; i <= monthsAhead; i++) {
      const month = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + i, 1));
      const [{ name }]: Array<{ name: string }> = await this.dataSource.query(
        'SELECT audit_ensure_partition($1::timestamptz) AS name',
        [month.toISOString()],
      );
      this.partitions.add(month.toISOString().slice(0, 7));
      names.push(name);
    }
    return names;
  }

  subtrees(db: Queryable = this.dataSource): StoredSubtrees {
    return new StoredSubtrees(db);
  }

  /** The committed tree size and its root, from the head's frontier. */
  async head(db: Queryable = this.dataSource): Promise<TreeHead> {
    const [row]: Array<{ tree_size: string; frontier: Buffer[] }> = await db.query(
      'SELECT tree_size::text AS tree_size, frontier FROM audit_tree_head',
    );
    const range = new CompactRange(Number(row.tree_size), row.frontier);
    return { treeSize: range.size, root: range.root() };
  }

  rootAt(size: number, db: Queryable = this.dataSource): Promise<Uint8Array> {
    return rootAt(this.subtrees(db), size);
  }

  inclusionProof(index: number, size: number, db: Queryable = this.dataSource) {
    return inclusionProof(this.subtrees(db), index, size);
  }

  consistencyProof(oldSize: number, newSize: number, db: Queryable = this.dataSource) {
    return consistencyProof(this.subtrees(db), oldSize, newSize);
  }

  async leafHash(index: number, db: Queryable = this.dataSource): Promise<string | null> {
    const [row]: Array<{ hash: string }> = await db.query(
      `SELECT encode(leaf_hash, 'hex') AS hash FROM audit_leaves WHERE leaf_index = $1`,
      [index],
    );
    return row?.hash ?? null;
  }

  /** Entries [from, to) that are still stored, in leaf order. */
  async entries(from: number, to: number, db: Queryable = this.dataSource): Promise<StoredEntry[]> {
    const rows: EntryRow[] = await db.query(
      `SELECT ${ENTRY_COLUMNS} FROM audit_entries
        WHERE leaf_index >= $1 AND leaf_index < $2 ORDER BY audit_entries.leaf_index`,
      [from, to],
    );
    return rows.map(storedEntry);
  }

  async entry(index: number, db: Queryable = this.dataSource): Promise<StoredEntry | null> {
    const [entry] = await this.entries(index, index + 1, db);
    return entry ?? null;
  }

  /**
   * The export of [from, to) against the tree of `treeSize` (≥ to): the header, then one line per
   * stored entry, read page by page (entries below the head never change, so pages need no snapshot).
   */
  async *exportLines(options: {
    origin: string;
    from: number;
    to: number;
    treeSize: number;
    pageSize?: number;
  }): AsyncGenerator<string> {
    const { origin, from, to, treeSize } = options;
    const subtrees = this.subtrees();
    const left = await subtrees.nodes(decomposeRange(0, from));
    const right = await subtrees.nodes(decomposeRange(to, treeSize));
    const archived = await this.archivedRanges(from, to);
    const header: ExportHeader = {
      format: EXPORT_FORMAT,
      origin,
      from,
      to,
      treeSize,
      left: left.map(toHex),
      right: right.map(toHex),
      ...(archived.length > 0 ? { archived } : {}),
    };
    yield `${headerLine(header)}\n`;
    const pageSize = options.pageSize ?? 2_000;
    for (let next = from; next < to;) {
      const rows: EntryRow[] = await this.dataSource.query(
        `SELECT ${ENTRY_COLUMNS} FROM audit_entries
          WHERE leaf_index >= $1 AND leaf_index < $2 ORDER BY audit_entries.leaf_index LIMIT $3`,
        [next, to, pageSize],
      );
      if (rows.length === 0) break;
      let page = '';
      for (const row of rows) {
        const entry = storedEntry(row);
        page += `${entryLine(entry.index, entry.leafHash, entry.leafText)}\n`;
      }
      yield page;
      next = Number(rows[rows.length - 1].leaf_index) + 1;
    }
  }

  /** Ranges of [from, to) that retention archived and dropped, clipped, with their subtree hashes. */
  async archivedRanges(from: number, to: number): Promise<ArchivedRange[]> {
    const rows: Array<{ first: string; last: string; location: string }> = await this.dataSource
      .query(
        `SELECT first_leaf::text AS first, last_leaf::text AS last, location FROM audit_archives
        WHERE first_leaf IS NOT NULL AND first_leaf < $2 AND last_leaf >= $1
          AND to_regclass(partition_name) IS NULL
        ORDER BY first_leaf`,
        [from, to],
      )
      .catch((error: { code?: string }) => {
        // Before the retention migration there is nothing archived.
        if (error.code === '42P01') return [];
        throw error;
      });
    const subtrees = this.subtrees();
    const ranges: ArchivedRange[] = [];
    for (const row of rows) {
      const a = Math.max(from, Number(row.first));
      const b = Math.min(to, Number(row.last) + 1);
      const hashes = await subtrees.nodes(decomposeRange(a, b));
      ranges.push({ from: a, to: b, hashes: hashes.map(toHex), location: row.location });
    }
    return ranges;
  }

  /** Whether entries of other types than these were appended at or after `size`. */
  async grewSince(size: number, ignoringTypes: readonly string[]): Promise<boolean> {
    const [row]: Array<{ grew: boolean }> = await this.dataSource.query(
      `SELECT EXISTS (SELECT 1 FROM audit_entries
                       WHERE leaf_index >= $1 AND type <> ALL($2::text[])) AS grew`,
      [size, ignoringTypes],
    );
    return row.grew;
  }

  // --- signing keys and checkpoints ---

  async registerKey(keyId: string, publicKeyPem: string): Promise<void> {
    await this.dataSource.query(
      `INSERT INTO audit_signing_keys (key_id, algorithm, public_key) VALUES ($1, 'Ed25519', $2)
       ON CONFLICT (key_id) DO NOTHING`,
      [keyId, publicKeyPem],
    );
  }

  async publicKey(keyId: string): Promise<{ keyId: string; publicKey: string } | null> {
    const [row]: Array<{ key_id: string; public_key: string }> = await this.dataSource.query(
      'SELECT key_id, public_key FROM audit_signing_keys WHERE key_id = $1',
      [keyId],
    );
    return row ? { keyId: row.key_id, publicKey: row.public_key } : null;
  }

  /** Serialises checkpoint writers for the rest of the transaction. */
  async lockCheckpoints(manager: EntityManager): Promise<void> {
    await manager.query('SELECT pg_advisory_xact_lock($1)', [CHECKPOINT_LOCK]);
  }

  /** Stores a signed checkpoint (after `lockCheckpoints`); null when one of that size exists. */
  async saveCheckpoint(
    manager: EntityManager,
    checkpoint: SignedCheckpoint,
  ): Promise<CheckpointDocument | null> {
    const inserted: Array<{ tree_size: string }> = await manager.query(
      `INSERT INTO audit_checkpoints (tree_size, sequence, origin, root_hash, signed_at, key_id, signature)
       SELECT $1, COALESCE(max(sequence), 0) + 1, $2, decode($3, 'hex'), $4, $5, decode($6, 'base64')
         FROM audit_checkpoints
       ON CONFLICT (tree_size) DO NOTHING
       RETURNING tree_size::text AS tree_size`,
      [
        checkpoint.treeSize,
        checkpoint.origin,
        checkpoint.rootHash,
        checkpoint.timestamp,
        checkpoint.keyId,
        checkpoint.signature,
      ],
    );
    return inserted.length === 0 ? null : this.checkpoint(checkpoint.treeSize, manager);
  }

  async checkpoint(
    size: number,
    db: Queryable = this.dataSource,
  ): Promise<CheckpointDocument | null> {
    const [row]: CheckpointRow[] = await db.query(`${CHECKPOINT_SELECT} WHERE c.tree_size = $1`, [
      size,
    ]);
    return row ? checkpointDocument(row) : null;
  }

  async latestCheckpoint(db: Queryable = this.dataSource): Promise<CheckpointDocument | null> {
    const [row]: CheckpointRow[] = await db.query(
      `${CHECKPOINT_SELECT} ORDER BY c.tree_size DESC LIMIT 1`,
    );
    return row ? checkpointDocument(row) : null;
  }
}
