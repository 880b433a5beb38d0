// The audit log on real PostgreSQL: serialised appends with one entry per event, roots and proofs
// from stored subtrees, and tampering that goes around the protections (a superuser with the
// triggers silenced) caught by the offline verifier against signed checkpoints.
import { uuidv7 } from '@finance/contracts';
import {
  signCheckpoint,
  SignedCheckpoint,
  toHex,
  verifyConsistency,
  verifyInclusion,
  parseHash,
} from '@finance/merkle';
import { openDatabase } from '@finance/platform';
import { createTestDatabase, testStack } from '@finance/testing';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { AuditInput } from '../record';
import { MemoryLog, sampleRecord } from '../test-fixtures/memory-log';
import { verifyAudit, wantedFromExport } from '../verify/audit-verification';
import { verifyExportText } from '../verify/export-verifier';
import { AuditLogTables1764288000000 } from './audit-log.migration';
import { AuditLogStore } from './audit-log.store';

const ORIGIN = 'test/audit-log';
const { privateKey, publicKey } = generateKeyPairSync('ed25519');

function input(i: number, overrides: Partial<AuditInput> = {}): AuditInput {
  const { appendedAt: _appendedAt, ...rest } = sampleRecord(i);
  return { ...rest, ...overrides };
}

async function open(url: string, name: string): Promise<DataSource> {
  return openDatabase({
    url,
    applicationName: name,
    poolSize: 10,
    migrations: [AuditLogTables1764288000000],
  });
}

/** Runs statements as the superuser of the test database, e.g. to tamper with it. */
async function asSuperuser<T>(url: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function sign(store: AuditLogStore, size?: number): Promise<SignedCheckpoint> {
  const treeSize = size ?? (await store.head()).treeSize;
  return signCheckpoint(
    {
      origin: ORIGIN,
      treeSize,
      rootHash: toHex(await store.rootAt(treeSize)),
      timestamp: new Date().toISOString(),
    },
    privateKey,
  );
}

async function exportText(store: AuditLogStore, from: number, to: number, treeSize = to) {
  let text = '';
  for await (const chunk of store.exportLines({
    origin: ORIGIN,
    from,
    to,
    treeSize,
    pageSize: 7,
  })) {
    text += chunk;
  }
  return text;
}

function audit(text: string, checkpoint: SignedCheckpoint, previous: SignedCheckpoint[] = []) {
  const request = { checkpoint, previous, publicKey };
  return verifyAudit({ ...request, export: verifyExportText(text, wantedFromExport(request)) });
}

describe('audit log store', () => {
  let db: DataSource;
  let url: string;
  let store: AuditLogStore;

  beforeAll(async () => {
    ({ url } = await createTestDatabase('audit_log'));
    db = await open(url, 'audit-log-test');
    store = new AuditLogStore(db);
  });
  afterAll(async () => {
    await db?.destroy();
  });

  it('appends batches in order, once per event, with the root of a naive recomputation', async () => {
    const batch = Array.from({ length: 40 }, (_, i) => input(i));
    const first = await store.appendNow(batch);
    expect(first).toEqual({ indexes: batch.map((_, i) => i), treeSize: 40 });

    // Redelivered events, alone or mixed with new ones (and one twice in the batch): no second entry.
    const fresh = input(40);
    const again = await store.appendNow([batch[3], fresh, batch[39], fresh]);
    expect(again).toEqual({ indexes: [null, 40, null, null], treeSize: 41 });
    expect(await store.appendNow([batch[0]])).toEqual({ indexes: [null], treeSize: 41 });

    const entries = await store.entries(0, 41);
    expect(entries.map((e) => e.index)).toEqual(Array.from({ length: 41 }, (_, i) => i));
    expect(entries[40].record).toMatchObject({ eventId: fresh.eventId, source: fresh.source });
    const memory = new MemoryLog(
      entries.map((e) => ({ ...e.record, payload: JSON.parse(e.payloadText) as never })),
    );
    const head = await store.head();
    expect(head.treeSize).toBe(41);
    expect(toHex(head.root)).toBe(toHex(memory.root()));
    expect(toHex(await store.rootAt(41))).toBe(toHex(memory.root()));
    expect(toHex(await store.rootAt(17))).toBe(toHex(memory.root(17)));
    for (const e of entries) expect(e.leafHash).toBe(toHex(memory.leaves[e.index]));
  });

  it('serialises concurrent appenders: indexes follow commit order with no gap', async () => {
    const before = (await store.head()).treeSize;
    await Promise.all(
      Array.from({ length: 8 }, (_, w) =>
        store.appendNow(Array.from({ length: 25 }, (_, i) => input(1000 + w * 25 + i))),
      ),
    );
    const { treeSize } = await store.head();
    expect(treeSize).toBe(before + 200);
    const rows: Array<{ n: string; distinct_times: string; misordered: string }> = await db.query(
      `SELECT count(*) AS n, count(DISTINCT appended_at) AS distinct_times,
              count(*) FILTER (WHERE appended_at < prev) AS misordered
         FROM (SELECT appended_at, lag(appended_at) OVER (ORDER BY leaf_index) AS prev
                 FROM audit_entries) t`,
    );
    expect(rows[0]).toMatchObject({ n: String(treeSize), misordered: '0' });
    // Each transaction's batch shares one appended_at; 8 batches added 8 distinct times.
    expect(Number(rows[0].distinct_times)).toBeGreaterThanOrEqual(8);
  });

  it('appends what a transaction queued when it commits, and nothing when it rolls back', async () => {
    const before = (await store.head()).treeSize;
    const [a, b, c, d] = [input(2000), input(2001), input(2002), input(2003)];
    await db.transaction(async (manager) => {
      store.appendOnCommit(manager, [a, b]);
      // Another transaction appends and commits meanwhile: the lock is not taken until commit.
      await store.appendNow([c]);
      store.appendOnCommit(manager, [a]);
    });
    const order = async () =>
      (await store.entries(before, before + 10)).map((e) => e.record.eventId);
    expect(await order()).toEqual([c.eventId, a.eventId, b.eventId]);

    await expect(
      db.transaction(async (manager) => {
        store.appendOnCommit(manager, [d]);
        throw new Error('handler failed');
      }),
    ).rejects.toThrow('handler failed');
    await db.transaction(async (manager) => store.appendOnCommit(manager, []));
    expect(await order()).toHaveLength(3);
    expect(() => store.appendOnCommit(db.manager, [d])).toThrow(/inside a transaction/);
  });

  it('serves inclusion and consistency proofs from stored subtrees that verify', async () => {
    const more = Array.from({ length: 700 }, (_, i) => input(5000 + i));
    await store.appendNow(more);
    const { treeSize, root } = await store.head();
    const [{ nodes }]: Array<{ nodes: string }> = await db.query(
      'SELECT count(*) AS nodes FROM audit_tree_nodes',
    );
    // Levels 4 and 8 only: one stored node per 16 leaves (and per 256), not one per leaf.
    expect(Number(nodes)).toBe(Math.floor(treeSize / 16) + Math.floor(treeSize / 256));
    for (const index of [0, 1, 40, 500, treeSize - 1]) {
      const proof = await store.inclusionProof(index, treeSize);
      const leaf = parseHash((await store.leafHash(index))!);
      expect(verifyInclusion(leaf, index, treeSize, proof, root)).toBe(true);
    }
    for (const old of [1, 41, 241, 512, treeSize]) {
      const proof = await store.consistencyProof(old, treeSize);
      expect(verifyConsistency(old, treeSize, proof, await store.rootAt(old), root)).toBe(true);
    }
  });

  it('exports any range that the offline verifier checks against a signed checkpoint', async () => {
    const checkpoint = await sign(store);
    const size = checkpoint.treeSize;
    const whole = audit(await exportText(store, 0, size), checkpoint);
    expect(whole).toMatchObject({ ok: true, firstBadEntry: null });
    expect(audit(await exportText(store, 123, 456, size), checkpoint).ok).toBe(true);
  });

  it('tells whether the log grew by more than the given types since a size', async () => {
    const { treeSize } = await store.head();
    expect(await store.grewSince(treeSize, [])).toBe(false);
    await store.appendNow([input(3000, { type: 'AuditCheckpointSigned' })]);
    expect(await store.grewSince(treeSize, ['AuditCheckpointSigned'])).toBe(false);
    expect(await store.grewSince(treeSize, [])).toBe(true);
    await store.appendNow([input(3001)]);
    expect(await store.grewSince(treeSize, ['AuditCheckpointSigned'])).toBe(true);
  });

  it('creates month partitions ahead, named by month', async () => {
    expect(await store.ensurePartitions(new Date('2031-12-15T00:00:00Z'), 1)).toEqual([
      'audit_entries_y2031m12',
      'audit_entries_y2032m01',
    ]);
    const [{ bound }]: Array<{ bound: string }> = await db.query(
      `SELECT pg_get_expr(relpartbound, oid) AS bound FROM pg_class WHERE relname = 'audit_entries_y2032m01'`,
    );
    expect(bound).toBe("FOR VALUES FROM ('2032-01-01 00:00:00+00') TO ('2032-02-01 00:00:00+00')");
    const [{ month }]: Array<{ month: string }> = await db.query(
      `SELECT tableoid::regclass::text AS month FROM audit_entries ORDER BY leaf_index DESC LIMIT 1`,
    );
    expect(month).toMatch(/^audit_entries_y\d{4}m\d{2}$/);
  });

  it('refuses UPDATE, DELETE and TRUNCATE of every audit table, even to its owner', async () => {
    const refusals = [
      `UPDATE audit_entries SET type = 'x' WHERE leaf_index = 0`,
      'DELETE FROM audit_entries WHERE leaf_index = 1',
      'TRUNCATE audit_entries',
      'UPDATE audit_leaves SET leaf_hash = leaf_hash WHERE leaf_index = 0',
      'DELETE FROM audit_tree_nodes',
      'DELETE FROM audit_tree_head',
      'TRUNCATE audit_checkpoints',
    ];
    for (const statement of refusals) {
      await expect(db.query(statement)).rejects.toThrow(
        /^audit log is append-only: (UPDATE|DELETE|TRUNCATE) on audit_/,
      );
    }
    // A partition addressed directly is protected the same way.
    const [{ part }]: Array<{ part: string }> = await db.query(
      'SELECT tableoid::regclass::text AS part FROM audit_entries WHERE leaf_index = 0',
    );
    await expect(db.query(`DELETE FROM ${part}`)).rejects.toThrow(
      /append-only: DELETE on audit_entries_y/,
    );
    await expect(db.query(`TRUNCATE ${part}`)).rejects.toThrow(/append-only: TRUNCATE/);
  });

  it("refuses the service's own role, which owns the tables, by privilege and then by trigger", async () => {
    const stack = testStack();
    const role = `audit_svc_${randomBytes(4).toString('hex')}`;
    const { name, url: adminUrl } = await createTestDatabase('audit_role');
    await asSuperuser(stack.postgresAdminUrl, async (admin) => {
      await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'service-pw' NOSUPERUSER`);
      await admin.query(`ALTER DATABASE ${name} OWNER TO ${role}`);
    });
    const serviceUrl = new URL(adminUrl);
    serviceUrl.username = role;
    serviceUrl.password = 'service-pw';
    const service = await open(serviceUrl.toString(), 'audit-role-test');
    try {
      const own = new AuditLogStore(service);
      expect((await own.appendNow([input(1), input(2)])).treeSize).toBe(2);
      const [{ owner }]: Array<{ owner: string }> = await service.query(
        `SELECT tableowner AS owner FROM pg_tables WHERE tablename = 'audit_entries'`,
      );
      expect(owner).toBe(role);
      for (const statement of [
        `UPDATE audit_entries SET type = 'x'`,
        'DELETE FROM audit_leaves',
        'TRUNCATE audit_tree_nodes',
        'DELETE FROM audit_tree_head',
      ]) {
        await expect(service.query(statement)).rejects.toThrow(
          /^permission denied for table audit_/,
        );
      }
      // Even if the owner grants itself the privilege back, the trigger still refuses.
      await service.query(`GRANT UPDATE, DELETE ON audit_entries, audit_leaves TO ${role}`);
      await expect(service.query(`UPDATE audit_entries SET type = 'x'`)).rejects.toThrow(
        /^audit log is append-only: UPDATE on audit_entries_y/,
      );
      await expect(service.query('DELETE FROM audit_leaves')).rejects.toThrow(
        'audit log is append-only: DELETE on audit_leaves refused',
      );
      // Only a superuser may silence triggers; the service's role may not.
      await expect(service.query('SET session_replication_role = replica')).rejects.toThrow(
        /permission denied to set parameter "session_replication_role"/,
      );
    } finally {
      await service.destroy();
      await asSuperuser(adminUrl, async (admin) => {
        await admin.query(`REASSIGN OWNED BY ${role} TO CURRENT_USER`);
        await admin.query(`DROP OWNED BY ${role}`);
      });
      await asSuperuser(stack.postgresAdminUrl, (admin) => admin.query(`DROP ROLE ${role}`));
    }
  });
});

describe('tampering by a superuser around the protections', () => {
  let db: DataSource;
  let url: string;
  let store: AuditLogStore;

  beforeEach(async () => {
    ({ url } = await createTestDatabase('audit_tamper'));
    db = await open(url, 'audit-tamper-test');
    store = new AuditLogStore(db);
    await store.appendNow(Array.from({ length: 60 }, (_, i) => input(i)));
  });
  afterEach(async () => {
    await db?.destroy();
  });

  it('a changed row: the verifier names it as the first bad entry', async () => {
    const checkpoint = await sign(store);
    await asSuperuser(url, async (client) => {
      await client.query('SET session_replication_role = replica');
      await client.query(
        `UPDATE audit_entries SET payload = replace(payload, '"21.50"', '"2100.50"') WHERE leaf_index = 21`,
      );
      await client.query(`UPDATE audit_entries SET producer = 'risk' WHERE leaf_index = 33`);
    });
    const report = audit(await exportText(store, 0, 60), checkpoint);
    expect(report.ok).toBe(false);
    expect(report.firstBadEntry).toBe(21);
    expect(report.checks.filter((c) => !c.ok).map((c) => c.message)).toEqual([
      'entry 21: its content does not match its recorded leaf hash',
      'entry 33: its content does not match its recorded leaf hash',
      expect.stringMatching(/^the root of the first 60 entries is .* the signed checkpoint says/),
    ]);
  });

  it('a row and its hashes rewritten consistently: the roots no longer match the checkpoints', async () => {
    const early = await sign(store, 20);
    const checkpoint = await sign(store);
    await asSuperuser(url, async (client) => {
      await client.query('SET session_replication_role = replica');
      const [entry] = await store.entries(44, 45);
      const forged = { ...entry.record, type: 'Nothing' };
      const hash = new MemoryLog([{ ...forged, payload: JSON.parse(entry.payloadText) as never }])
        .leaves[0];
      await client.query(
        `UPDATE audit_entries SET type = 'Nothing', leaf_hash = $1 WHERE leaf_index = 44`,
        [hash],
      );
      await client.query('UPDATE audit_leaves SET leaf_hash = $1 WHERE leaf_index = 44', [hash]);
    });
    const report = audit(await exportText(store, 0, 60), checkpoint, [early]);
    expect(report).toMatchObject({ ok: false, firstBadEntry: null, firstBadWithin: [20, 60] });
  });

  it('a deleted row: named as missing, and a rebuilt log fails the consistency proof to the old checkpoint', async () => {
    const saved = await sign(store);
    await asSuperuser(url, async (client) => {
      await client.query('SET session_replication_role = replica');
      await client.query('DELETE FROM audit_entries WHERE leaf_index = 17');
    });
    const gap = audit(await exportText(store, 0, 60), saved);
    expect(gap.firstBadEntry).toBe(17);
    expect(gap.checks.find((c) => !c.ok)?.message).toBe('entry 17 is missing');

    // Covering it up: the tree rebuilt without the entry, so the export is consistent again and
    // the service signs it. Only the checkpoint saved before gives it away.
    const kept = (await store.entries(0, 60)).map((e) => ({
      ...e.record,
      payload: JSON.parse(e.payloadText) as never,
    }));
    await asSuperuser(url, async (client) => {
      await client.query('SET session_replication_role = replica');
      await client.query('DELETE FROM audit_entries');
      await client.query('DELETE FROM audit_leaves');
      await client.query('DELETE FROM audit_tree_nodes');
      await client.query(`UPDATE audit_tree_head SET tree_size = 0, frontier = '{}'`);
    });
    await store.appendNow(kept.map(({ appendedAt: _a, ...rest }) => rest));
    await store.appendNow([input(100, { eventId: uuidv7() }), input(101, { eventId: uuidv7() })]);
    const resigned = await sign(store);
    expect(resigned.treeSize).toBe(61);
    expect(audit(await exportText(store, 0, 61), resigned).ok).toBe(true);

    const proof = (await store.consistencyProof(saved.treeSize, resigned.treeSize)).map(toHex);
    const report = verifyAudit({
      checkpoint: resigned,
      previous: [saved],
      publicKey,
      consistency: [{ fromSize: 60, toSize: 61, proof, from: saved, to: resigned }],
    });
    expect(report.ok).toBe(false);
    expect(report.checks.find((c) => !c.ok)?.message).toMatch(
      /^consistency proof from size 60 to 61 does not verify: the log was rewritten/,
    );
  });
});
