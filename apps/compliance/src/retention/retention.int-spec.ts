// Retention of the audit log on real PostgreSQL, with a fake clock: entries over sixteen months, a
// legal hold, and runs of retention. Months older than the retention are archived, verified and
// dropped; the held month stays; the archives verify offline with the auditors' CLI as a process; a
// corrupted archive stops the drop; proofs and a verifiable export keep working after the drop; and
// the database refuses to drop or detach a month any other way.
import {
  ArchivedObject,
  ArchiveTarget,
  AuditInput,
  AuditLogStore,
  CheckpointDocument,
  ConsistencyProofDocument,
  FilesystemArchiveTarget,
  InclusionProofDocument,
} from '@finance/audit-log';
import { uuidv7 } from '@finance/contracts';
import {
  canonicalJson,
  leafHash,
  parseHash,
  verifyConsistency,
  verifyInclusion,
} from '@finance/merkle';
import {
  createLogger,
  openDatabase,
  ProblemDetailsFilter,
  SERVICE_CONFIG,
  SERVICE_LOGGER,
} from '@finance/platform';
import { createTestDatabase, repoRoot } from '@finance/testing';
import { DynamicModule, Global, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { AuditLogModule } from '../audit/audit-log.module';
import { complianceService } from '../service';
import type { RetentionRun } from './audit-retention';
import { RetentionModule } from './retention.module';

/** `npm run audit-verify -- <args>`, as its own process. */
function auditVerify(...args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['-r', '@swc-node/register', 'apps/compliance/src/cli/audit-verify.ts', ...args],
      {
        cwd: repoRoot(),
        env: { ...process.env, SWC_NODE_PROJECT: join(repoRoot(), 'tsconfig.json') },
      },
      (error, stdout) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout }),
    );
  });
}

/** The filesystem target, except that it flips a byte of the months it is told to, once written. */
class CorruptingTarget implements ArchiveTarget {
  readonly corrupt = new Set<string>();
  constructor(private readonly inner: FilesystemArchiveTarget) {}
  async put(key: string, data: Buffer): Promise<ArchivedObject> {
    const stored = await this.inner.put(key, data);
    if (key.endsWith('/entries.jsonl') && this.corrupt.has(key.split('/')[0])) {
      const path = this.inner.locate(key);
      await chmod(path, 0o644);
      const bytes = await readFile(path);
      bytes[bytes.length - 20] ^= 0x01;
      await writeFile(path, bytes);
    }
    return stored;
  }
  get(key: string) {
    return this.inner.get(key);
  }
  list(prefix?: string) {
    return this.inner.list(prefix);
  }
  locate(key: string) {
    return this.inner.locate(key);
  }
}

const OFFICER = 'spiffe://cluster.local/ns/finance/sa/compliance-officer';
const logger = createLogger('compliance-retention-test', process.env.TEST_LOG_LEVEL ?? 'silent');
const DAY = 86_400_000;

@Global()
@Module({})
class TestRoot {
  static register(
    db: DataSource,
    config: Record<string, unknown>,
    retention: DynamicModule,
  ): DynamicModule {
    return {
      module: TestRoot,
      imports: [AuditLogModule, retention],
      providers: [
        { provide: DataSource, useValue: db },
        { provide: SERVICE_CONFIG, useValue: config },
        { provide: SERVICE_LOGGER, useValue: logger },
      ],
      exports: [DataSource, SERVICE_CONFIG, SERVICE_LOGGER],
    };
  }
}

const monthStart = (base: Date, months: number) =>
  new Date(Date.UTC(base.getUTCFullYear(), base.getUTCMonth() + months, 1));
const partitionOf = (at: Date) =>
  `audit_entries_y${at.getUTCFullYear()}m${String(at.getUTCMonth() + 1).padStart(2, '0')}`;
const micros = (at: Date) => at.toISOString().replace(/Z$/, '000Z');

describe('audit retention', () => {
  const origin = 'test/compliance-retention';
  let db: DataSource;
  let app: NestFastifyApplication;
  let dir: string;
  let target: CorruptingTarget;
  // Sixteen months, starting 30 months before today, so everything is in the past of the database.
  const now = new Date();
  const base = monthStart(now, -30);
  const month = (m: number) => partitionOf(monthStart(base, m));
  let fakeNow = new Date(monthStart(base, 16).getTime() + 5 * DAY);
  let appendAt = base;
  const leavesOf = new Map<number, number[]>();

  const call = (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: unknown) =>
    app
      .getHttpAdapter()
      .getInstance()
      .inject({ method, url, payload: payload as never, headers: { 'x-request-id': 'req-ret' } });

  async function ok<T>(
    method: 'GET' | 'POST' | 'DELETE',
    url: string,
    payload?: unknown,
    status = method === 'POST' ? 201 : 200,
  ): Promise<T> {
    const response = await call(method, url, payload);
    expect({
      url,
      status: response.statusCode,
      body: response.statusCode === status ? null : response.body,
    }).toEqual({ url, status, body: null });
    return response.json<T>();
  }

  const runRetention = () => ok<RetentionRun>('POST', '/compliance/retention/run', undefined, 200);

  async function partitions(): Promise<string[]> {
    const rows: Array<{ name: string }> = await db.query(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'audit_entries'::regclass ORDER BY 1`,
    );
    return rows.map((r) => r.name);
  }

  function entry(m: number, i: number, data: Record<string, unknown>): AuditInput {
    const type = 'buy' in data ? 'OrderExecuted' : 'OrderPlaced';
    return {
      source: `test.trading/0/${m * 10 + i}`,
      eventId: uuidv7(),
      type,
      producer: 'trading',
      aggregateId: `order-${m}-${i}`,
      correlationId: `corr-${m}-${i}`,
      traceId: null,
      occurredAt: micros(appendAt),
      payload: { type, data: data as never, metadata: { producer: 'trading' } },
    };
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'audit-retention-'));
    const { url } = await createTestDatabase('compliance_retention');
    db = await openDatabase({
      url,
      applicationName: 'compliance-retention-test',
      poolSize: 8,
      migrations: complianceService.migrations,
    });
    // The appender with a clock of its own writes the past months, three entries each.
    const past = new AuditLogStore(db, { clock: () => appendAt });
    for (let m = 0; m < 16; m++) {
      appendAt = new Date(monthStart(base, m).getTime() + 10 * DAY);
      const inputs = [0, 1, 2].map((i) =>
        m === 1 && i === 1
          ? entry(m, i, {
              buy: { orderId: 'o-b', accountId: 'ACC-HELD' },
              sell: { orderId: 'o-s', accountId: 'ACC-2' },
            })
          : entry(m, i, { accountId: `ACC-${m}`, quantity: '10' }),
      );
      const { indexes } = await past.appendNow(inputs);
      leavesOf.set(m, indexes.map(Number));
    }
    target = new CorruptingTarget(new FilesystemArchiveTarget(join(dir, 'archive')));
    const config = {
      AUDIT_CHECKPOINT_INTERVAL_MS: 3_600_000,
      AUDIT_LOG_ORIGIN: origin,
      AUDIT_RETENTION_DAYS: 365,
      AUDIT_RETENTION_INTERVAL_MS: 3_600_000,
      KAFKA_TOPIC_PREFIX: 'retention-test.',
    };
    const retention = RetentionModule.register({ clock: { now: () => fakeNow }, archive: target });
    app = await NestFactory.create<NestFastifyApplication>(
      TestRoot.register(db, config, retention),
      new FastifyAdapter(),
      { logger: false },
    );
    app.useGlobalFilters(new ProblemDetailsFilter(logger));
    app
      .getHttpAdapter()
      .getInstance()
      .addHook('onRequest', async (request) => {
        (request as { principal?: string }).principal = OFFICER;
      });
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
  });
  afterAll(async () => {
    await app?.close();
    await db?.destroy();
  });

  let before: CheckpointDocument;
  let holdId: string;
  let firstRun: RetentionRun;

  it('places legal holds through the API, refusing bad input with 400 naming the field', async () => {
    before = await ok<CheckpointDocument>('POST', '/compliance/audit/checkpoints');
    expect(before.treeSize).toBe(16 * 3 + 1);

    const bad = await call('POST', '/compliance/legal-holds', {
      scope: 'FIRM',
      id: '',
      reason: 'x',
    });
    expect(bad.statusCode).toBe(400);
    expect(
      bad
        .json<{ errors: Array<{ field: string }> }>()
        .errors.map((e) => e.field)
        .filter((field, i, all) => all.indexOf(field) === i)
        .sort(),
    ).toEqual(['body.id', 'body.scope']);
    const missing = await call('POST', '/compliance/legal-holds', { scope: 'ACCOUNT', id: 'A-1' });
    expect(missing.json<{ errors: Array<{ field: string }> }>().errors.map((e) => e.field)).toEqual(
      ['body.reason'],
    );
    expect((await call('DELETE', '/compliance/legal-holds/not-a-uuid')).statusCode).toBe(400);
    expect((await call('DELETE', `/compliance/legal-holds/${uuidv7()}`)).statusCode).toBe(404);

    const hold = await ok<{ id: string; active: boolean; placedBy: string }>(
      'POST',
      '/compliance/legal-holds',
      {
        scope: 'ACCOUNT',
        id: 'ACC-HELD',
        reason: 'SEC inquiry 2024-17',
      },
    );
    expect(hold).toMatchObject({ active: true, placedBy: OFFICER });
    holdId = hold.id;
    const { holds } = await ok<{ holds: Array<{ id: string }> }>(
      'GET',
      '/compliance/legal-holds?active=true',
    );
    expect(holds.map((h) => h.id)).toEqual([holdId]);
    const recorded: Array<{ payload: string }> = await db.query(
      `SELECT payload FROM audit_entries WHERE type = 'LegalHoldPlaced' AND aggregate_id = $1`,
      [holdId],
    );
    expect(JSON.parse(recorded[0].payload)).toMatchObject({
      actor: OFFICER,
      scope: 'ACCOUNT',
      subjectId: 'ACC-HELD',
    });
  });

  it('archives, verifies and drops months older than 365 days, keeps the held one, and refuses a corrupted archive', async () => {
    // Today (fake) is 16 months and 5 days after the first month: months 0 to 3 are due.
    target.corrupt.add(month(3));
    firstRun = await runRetention();
    expect(firstRun.archived.map((a) => a.partition)).toEqual([month(0), month(2)]);
    expect(firstRun.kept).toEqual([{ partition: month(1), reason: 'LEGAL_HOLD', holds: [holdId] }]);
    expect(firstRun.failed.map((f) => f.partition)).toEqual([month(3)]);
    expect(firstRun.failed[0].problems.join('\n')).toMatch(
      /does not verify; not dropping[\s\S]*SHA-256 differs/,
    );
    expect(firstRun.archived[0]).toMatchObject({
      entryCount: 3,
      firstLeaf: leavesOf.get(0)![0],
      lastLeaf: leavesOf.get(0)![2],
    });
    const left = await partitions();
    expect(left).not.toContain(month(0));
    expect(left).not.toContain(month(2));
    expect(left).toEqual(expect.arrayContaining([month(1), month(3), month(4), month(15)]));

    // Once the target stores what it is given, the month goes on the next run.
    target.corrupt.clear();
    const second = await runRetention();
    expect(second.archived.map((a) => a.partition)).toEqual([month(3)]);
    expect(second.kept.map((k) => k.partition)).toEqual([month(1)]);
    expect(second.failed).toEqual([]);
    expect(await partitions()).not.toContain(month(3));

    const rows: Array<{
      partition_name: string;
      entry_count: string;
      first_leaf: string;
      last_leaf: string;
      checkpoint_size: string;
    }> = await db.query('SELECT * FROM audit_archives ORDER BY first_leaf');
    expect(
      rows.map((r) => [
        r.partition_name,
        Number(r.entry_count),
        Number(r.first_leaf),
        Number(r.last_leaf),
      ]),
    ).toEqual([0, 2, 3].map((m) => [month(m), 3, leavesOf.get(m)![0], leavesOf.get(m)![2]]));
    // Each run is in the audit log, the kept month and its hold with it.
    const runs: Array<{ payload: string }> = await db.query(
      `SELECT payload FROM audit_entries WHERE type = 'AuditRetentionRun' ORDER BY leaf_index`,
    );
    expect(runs).toHaveLength(2);
    expect(JSON.parse(runs[0].payload)).toMatchObject({
      actor: OFFICER,
      kept: [{ partition: month(1), holds: [holdId] }],
      failed: [{ partition: month(3) }],
    });
  });

  it('leaves archives that verify offline with npm run audit-verify, and the corrupted one that does not', async () => {
    const archives: Array<{ location: string }> = await db.query(
      'SELECT location FROM audit_archives',
    );
    for (const { location } of archives) {
      const result = await auditVerify(
        join(location, 'entries.jsonl'),
        '--checkpoint',
        join(location, 'checkpoint.json'),
      );
      expect(result.stdout).toContain('VERIFIED');
      expect(result.code).toBe(0);
    }
    const keys = await target.list(`${month(3)}/`);
    const bundles = [...new Set(keys.map((k) => k.split('/').slice(0, 2).join('/')))];
    expect(bundles).toHaveLength(2);
    const verdicts = await Promise.all(
      bundles.map((b) =>
        auditVerify(
          target.locate(`${b}/entries.jsonl`),
          '--checkpoint',
          target.locate(`${b}/checkpoint.json`),
        ),
      ),
    );
    expect(verdicts.map((v) => v.code).sort()).toEqual([0, 1]);
    expect(verdicts.find((v) => v.code === 1)!.stdout).toMatch(
      /TAMPERED: the first bad entry is \d+/,
    );
  });

  it('still serves inclusion proofs, a consistency proof and a verifiable export after the drop', async () => {
    const latest = await ok<CheckpointDocument>('POST', '/compliance/audit/checkpoints');
    const root = parseHash(latest.rootHash);
    for (const index of [leavesOf.get(4)![1], leavesOf.get(0)![1]]) {
      const proof = await ok<InclusionProofDocument>(
        'GET',
        `/compliance/audit/proof/inclusion?entry=${index}&checkpoint=${latest.treeSize}`,
      );
      const leaf =
        proof.entry === null
          ? parseHash(proof.leafHash)
          : leafHash(Buffer.from(canonicalJson(proof.entry as never)));
      expect(
        verifyInclusion(leaf, index, latest.treeSize, proof.auditPath.map(parseHash), root),
      ).toBe(true);
      // The archived entry's content is in the archive, not here.
      expect(proof.entry === null).toBe(index === leavesOf.get(0)![1]);
    }
    const consistency = await ok<ConsistencyProofDocument>(
      'GET',
      `/compliance/audit/proof/consistency?from=${before.treeSize}&to=${latest.treeSize}`,
    );
    expect(
      verifyConsistency(
        before.treeSize,
        latest.treeSize,
        consistency.proof.map(parseHash),
        parseHash(before.rootHash),
        root,
      ),
    ).toBe(true);

    // The whole log: the archived months count by their hashes, the rest entry by entry.
    const exported = await call('GET', `/compliance/audit/entries?checkpoint=${latest.treeSize}`);
    expect(exported.statusCode).toBe(200);
    const file = join(dir, 'live.jsonl');
    await writeFile(file, exported.body);
    await writeFile(join(dir, 'latest.json'), JSON.stringify(latest));
    const result = await auditVerify(file, '--checkpoint', join(dir, 'latest.json'));
    expect(result.stdout).toMatch(/archived by retention/);
    expect(result.stdout).toContain('VERIFIED');
    expect(result.code).toBe(0);
  });

  it('refuses to drop or detach a month other than through retention', async () => {
    await expect(db.query(`DROP TABLE ${month(4)}`)).rejects.toThrow(
      /append-only: DROP TABLE .*refused/,
    );
    await expect(
      db.query(`ALTER TABLE audit_entries DETACH PARTITION ${month(4)}`),
    ).rejects.toThrow(/append-only: ALTER TABLE .*refused/);
    await expect(
      db.query('ALTER TABLE audit_entries DISABLE TRIGGER audit_append_only'),
    ).rejects.toThrow(/append-only: ALTER TABLE/);
    // The drop function re-checks holds itself: with a record claiming month 1 archived, it is
    // still refused while the hold stands (and the record goes with the rolled-back transaction).
    await expect(
      db.transaction(async (manager) => {
        const [{ id }]: Array<{ id: string }> = await manager.query(
          `INSERT INTO audit_archives (partition_name, range_start, range_end, entry_count, first_leaf,
             last_leaf, location, checksum, checkpoint_size, archived_at)
           VALUES ($1, now(), now() + interval '1 day', 3, $2, $3, 'nowhere', repeat('0', 64), $4, now())
           RETURNING id::text AS id`,
          [month(1), leavesOf.get(1)![0], leavesOf.get(1)![2], before.treeSize],
        );
        await manager.query('SELECT audit_drop_archived_partition($1)', [id]);
      }),
    ).rejects.toThrow(/under legal hold/);
    expect(await partitions()).toContain(month(1));
  });

  it('archives the held month once the hold is released, and the next month when time moves on', async () => {
    const released = await ok<{ active: boolean; releasedBy: string }>(
      'DELETE',
      `/compliance/legal-holds/${holdId}`,
    );
    expect(released).toMatchObject({ active: false, releasedBy: OFFICER });
    expect((await call('DELETE', `/compliance/legal-holds/${holdId}`)).statusCode).toBe(409);
    const afterRelease = await runRetention();
    expect(afterRelease.archived.map((a) => a.partition)).toEqual([month(1)]);
    expect(afterRelease.kept).toEqual([]);

    fakeNow = new Date(fakeNow.getTime() + 31 * DAY);
    const later = await runRetention();
    expect(later.archived.map((a) => a.partition)).toEqual([month(4)]);
    expect(await partitions()).not.toContain(month(4));
    expect(await partitions()).toContain(month(5));
  });
});
