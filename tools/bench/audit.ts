// The compliance audit log on real PostgreSQL: batched appends/s (each batch one transaction under
// the tree-head lock), the same entries appended the way the consumer does (one call per message,
// 200 per transaction), the export streamed from the database, offline verification of 1,000,000
// entries (leaf hashes and root recomputed from the file, checked against a signed checkpoint), and
// inclusion proofs generated from the stored subtrees and verified.
import {
  AuditInput,
  AuditLogStore,
  AuditLogTables1764288000000,
  entryLine,
  EXPORT_FORMAT,
  headerLine,
  recordLeafText,
  verifyAudit,
  verifyExportFile,
} from '@finance/audit-log';
import { uuidv7 } from '@finance/contracts';
import {
  canonicalJson,
  CompactRange,
  leafHash,
  parseHash,
  signCheckpoint,
  toHex,
  verifyInclusion,
} from '@finance/merkle';
import { openDatabase } from '@finance/platform';
import { localDir } from '@finance/testing';
import { generateKeyPairSync, KeyObject } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatSummary, machine, percentile, summarize, Summary } from './stats';
import { provisionBench } from './support';

const ORIGIN = 'bench/compliance-audit';

/** An envelope like the services publish (an order placed), about 600 bytes as canonical JSON. */
function input(i: number): AuditInput {
  const eventId = uuidv7();
  const occurredAt = '2026-11-22T10:00:00.123456Z';
  const envelope = {
    type: 'OrderCreated',
    data: {
      orderId: `ord-${i}`,
      clientOrderId: `c-${i}`,
      accountId: `ACC-${i % 1000}`,
      symbol: 'AAPL',
      side: i % 2 === 0 ? 'BUY' : 'SELL',
      type: 'LIMIT',
      price: { amount: `${150 + (i % 100)}.25`, currency: 'USD' },
      quantity: `${1 + (i % 50)}`,
      timeInForce: 'GTC',
    },
    metadata: {
      eventId,
      type: 'OrderCreated',
      version: 1,
      aggregateType: 'order',
      aggregateId: `ord-${i}`,
      aggregateSequence: 1,
      occurredAt,
      correlationId: `ord-${i}`,
      causationId: null,
      producer: 'trading',
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    },
  };
  return {
    source: `bench.trading.events/${i % 10}/${i}`,
    eventId,
    type: 'OrderCreated',
    producer: 'trading',
    aggregateId: `ord-${i}`,
    correlationId: `ord-${i}`,
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    occurredAt,
    payload: envelope,
  };
}

async function appendBatches(
  store: AuditLogStore,
  total: number,
  batch: number,
  writers: number,
): Promise<{ seconds: number; latencies: number[] }> {
  let next = 0;
  const latencies: number[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: writers }, async () => {
      while (next < total) {
        const first = next;
        next = Math.min(total, next + batch);
        const inputs = Array.from({ length: next - first }, (_, k) => input(first + k));
        const t0 = performance.now();
        await store.appendNow(inputs);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return { seconds: (performance.now() - started) / 1000, latencies };
}

/** As the compliance consumer does: one call per message, `perTransaction` in one transaction. */
async function appendLikeConsumer(
  store: AuditLogStore,
  dataSource: Awaited<ReturnType<typeof openDatabase>>,
  total: number,
  perTransaction: number,
  concurrency: number,
  offset: number,
): Promise<{ seconds: number }> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const first = next;
        const end = Math.min(total, next + perTransaction);
        next = end;
        await dataSource.transaction(async (manager) => {
          for (let i = first; i < end; i++) store.appendOnCommit(manager, [input(offset + i)]);
        });
      }
    }),
  );
  return { seconds: (performance.now() - started) / 1000 };
}

/** An export of `count` entries in the service's format, written without a database. */
async function synthesizeExport(
  file: string,
  count: number,
  key: KeyObject,
): Promise<ReturnType<typeof signCheckpoint>> {
  const out = createWriteStream(file);
  const write = (text: string) =>
    out.write(text) ? Promise.resolve() : new Promise<void>((r) => out.once('drain', () => r()));
  await write(
    `${headerLine({ format: EXPORT_FORMAT, origin: ORIGIN, from: 0, to: count, treeSize: count, left: [], right: [] })}\n`,
  );
  const range = new CompactRange();
  let page = '';
  for (let i = 0; i < count; i++) {
    const { payload, ...rest } = input(i);
    const text = recordLeafText(
      { ...rest, appendedAt: '2026-11-22T10:00:01.000001Z' },
      canonicalJson(payload),
    );
    const leaf = leafHash(Buffer.from(text));
    range.appendLeaf(leaf);
    page += `${entryLine(i, toHex(leaf), text)}\n`;
    if (page.length > 1 << 20) {
      await write(page);
      page = '';
    }
  }
  await write(page);
  await new Promise<void>((resolve, reject) =>
    out.end((error?: Error | null) => (error ? reject(error) : resolve())),
  );
  return signCheckpoint(
    {
      origin: ORIGIN,
      treeSize: count,
      rootHash: toHex(range.root()),
      timestamp: new Date().toISOString(),
    },
    key,
  );
}

async function verifyFile(
  file: string,
  checkpoint: ReturnType<typeof signCheckpoint>,
  publicKey: KeyObject,
): Promise<{ seconds: number; entries: number }> {
  const t0 = performance.now();
  const exported = await verifyExportFile(file);
  const report = verifyAudit({ checkpoint, publicKey, export: exported });
  const seconds = (performance.now() - t0) / 1000;
  if (!report.ok) {
    throw new Error(
      `verification failed: ${report.checks
        .filter((c) => !c.ok)
        .map((c) => c.message)
        .join('; ')}`,
    );
  }
  return { seconds, entries: exported.entries };
}

export async function auditBenchmark(flags: Record<string, string>): Promise<void> {
  const total = Number(flags.appends ?? 200_000);
  const batch = Number(flags.batch ?? 1_000);
  const writers = Number(flags.writers ?? 4);
  const consumerLike = Number(flags['consumer-like'] ?? 20_000);
  const verifyCount = Number(flags.verify ?? 1_000_000);
  const proofs = Number(flags.proofs ?? 1_000);
  process.stdout.write(
    `audit: ${total.toLocaleString('en-US')} appends in batches of ${batch} from ${writers} writers; ` +
      `${consumerLike.toLocaleString('en-US')} queued one by one and appended on commit, 200 per transaction; ` +
      `verify ${verifyCount.toLocaleString('en-US')}; ${proofs} inclusion proofs\n`,
  );
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  await provisionBench(['audit'], async ({ id, urls }) => {
    const dir = join(localDir(), 'bench', id);
    await mkdir(dir, { recursive: true });
    const dataSource = await openDatabase({
      url: urls[0],
      applicationName: 'bench-audit',
      poolSize: writers + 4,
      migrations: [AuditLogTables1764288000000],
    });
    const results: Record<string, Summary | number> = {};
    const report = (label: string, s: Summary) => {
      results[label] = s;
      process.stdout.write(`${formatSummary(label, s).replace('events/s', 'entries/s')}\n`);
    };
    try {
      const store = new AuditLogStore(dataSource);
      await store.ensurePartitions(new Date(), 1);

      const appended = await appendBatches(store, total, batch, writers);
      report(
        `append, ${batch} per transaction`,
        summarize(total, appended.seconds, appended.latencies),
      );
      if (consumerLike > 0) {
        const consumer = await appendLikeConsumer(store, dataSource, consumerLike, 200, 4, total);
        report('append on commit, 200 calls per tx', summarize(consumerLike, consumer.seconds));
      }

      const size = total + consumerLike;
      const head = await store.head();
      if (head.treeSize !== size)
        throw new Error(`tree has ${head.treeSize} entries, expected ${size}`);
      const checkpoint = signCheckpoint(
        {
          origin: ORIGIN,
          treeSize: size,
          rootHash: toHex(await store.rootAt(size)),
          timestamp: new Date().toISOString(),
        },
        privateKey,
      );

      // The export streamed out of the database, then checked offline like an auditor would.
      const exportFile = join(dir, 'export.jsonl');
      const t0 = performance.now();
      const out = createWriteStream(exportFile);
      for await (const chunk of store.exportLines({
        origin: ORIGIN,
        from: 0,
        to: size,
        treeSize: size,
      })) {
        if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
      }
      await new Promise<void>((resolve) => out.end(() => resolve()));
      report('export from the database', summarize(size, (performance.now() - t0) / 1000));
      const fromDb = await verifyFile(exportFile, checkpoint, publicKey);
      report('verify the database export', summarize(fromDb.entries, fromDb.seconds));

      // A million entries in the same format (appending a million first would take minutes).
      let big = { file: exportFile, checkpoint };
      if (verifyCount !== size) {
        const file = join(dir, 'synthetic.jsonl');
        big = { file, checkpoint: await synthesizeExport(file, verifyCount, privateKey) };
      }
      const bytes = (await stat(big.file)).size;
      const verified =
        big.file === exportFile ? fromDb : await verifyFile(big.file, big.checkpoint, publicKey);
      report(
        `verify ${verified.entries.toLocaleString('en-US')} entries (${(bytes / 2 ** 20).toFixed(0)} MiB)`,
        summarize(verified.entries, verified.seconds),
      );
      results.verifySeconds = verified.seconds;

      // Inclusion proofs against the checkpoint: generated from the stored subtrees, then verified.
      const generation: number[] = [];
      const verification: number[] = [];
      const root = parseHash(checkpoint.rootHash);
      for (let p = 0; p < proofs; p++) {
        const index = Math.floor(Math.random() * size);
        const g0 = performance.now();
        const [path, leaf] = await Promise.all([
          store.inclusionProof(index, size),
          store.leafHash(index),
        ]);
        generation.push(performance.now() - g0);
        const v0 = performance.now();
        const ok = verifyInclusion(parseHash(leaf!), index, size, path, root);
        verification.push(performance.now() - v0);
        if (!ok) throw new Error(`inclusion proof of entry ${index} does not verify`);
      }
      const ms = (values: number[], p: number) =>
        percentile(
          [...values].sort((a, b) => a - b),
          p,
        );
      process.stdout.write(
        `inclusion proof, generate from db        p50 ${ms(generation, 50).toFixed(2)} ms  p99 ${ms(generation, 99).toFixed(2)} ms\n` +
          `inclusion proof, verify                  p50 ${(ms(verification, 50) * 1000).toFixed(0)} µs  p99 ${(ms(verification, 99) * 1000).toFixed(0)} µs\n`,
      );
      results.proofGenerateP50Ms = ms(generation, 50);
      results.proofGenerateP99Ms = ms(generation, 99);
      results.proofVerifyP50Ms = ms(verification, 50);
      results.proofVerifyP99Ms = ms(verification, 99);

      const reports = join(localDir(), 'reports');
      await mkdir(reports, { recursive: true });
      await writeFile(
        join(reports, 'bench-audit.json'),
        JSON.stringify(
          { machine: machine(), total, batch, writers, consumerLike, verifyCount, proofs, results },
          null,
          2,
        ),
      );
    } finally {
      await dataSource.destroy();
      // Exports of a million entries are near a GiB each.
      await rm(dir, { recursive: true, force: true });
    }
  });
}
