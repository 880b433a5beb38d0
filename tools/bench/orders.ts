// End-to-end order placement: trading, risk and settlement as processes (mutual TLS, OPA), orders
// over HTTP through the placement TCC and the matching engine. Prints placements/s and latency, then
// waits for every transaction to finish and checks the invariants (conservation, nothing negative,
// every reservation accounted for).
import { ALL_TOPICS, topicName } from '@finance/contracts';
import { writeDevCertificates } from '@finance/dev-ca';
import { ensureTopics } from '@finance/local-stack';
import {
  freePort,
  invariantViolations,
  launchService,
  localDir,
  runTradingSession,
  ServiceProcess,
  settle,
  waitUntilReady,
} from '@finance/testing';
import { createReadStream } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { provisionBench } from './support';
import { formatSummary, summarize } from './stats';

export async function ordersBenchmark(flags: Record<string, string>): Promise<void> {
  const orders = Number(flags.orders ?? 10_000);
  const accounts = Number(flags.accounts ?? 50);
  const concurrency = Number(flags.concurrency ?? 50);
  const rate = flags.rate ? Number(flags.rate) : undefined;
  // --trace [file|otlp|console]: the services trace every request and message (default: off).
  const tracing = flags.trace === undefined ? undefined : flags.trace || 'file';
  process.stdout.write(
    `orders: ${orders.toLocaleString('en-US')} orders from ${accounts} accounts, ` +
      (rate
        ? `offered at ${rate}/s (open loop, ${concurrency} clients)\n`
        : `${concurrency} in flight\n`) +
      `tracing: ${tracing ?? 'off'}\n`,
  );
  // Compliance is the placement TCC's 4th branch: without it every order would wait out its deadline.
  const labels = ['trading', 'risk', 'settlement', 'compliance'] as const;
  await provisionBench([...labels], async ({ id, urls, kafkaBrokers, opaUrl, prefix }) => {
    await ensureTopics(
      kafkaBrokers,
      ALL_TOPICS.map((t) => ({ name: topicName(t, prefix), partitions: t.partitions })),
    );
    const certificates = await writeDevCertificates({
      dir: join(localDir(), 'bench', id, 'certs'),
    });
    const running: ServiceProcess[] = [];
    const traces = join(localDir(), 'bench', id, 'traces');
    try {
      for (const [i, name] of labels.entries()) {
        running.push(
          launchService(name, {
            port: await freePort(),
            env: {
              DATABASE_URL: urls[i],
              KAFKA_BROKERS: kafkaBrokers.join(','),
              KAFKA_TOPIC_PREFIX: prefix,
              OPA_URL: opaUrl,
              LOG_LEVEL: 'warn',
              DATABASE_POOL_SIZE: flags.pool ?? '20',
              TRADING_RESPONSE_TIMEOUT_MS: '30000',
              TRADING_PLACEMENT_TIMEOUT_MS: '30000',
              // The random walk around 100.00 would trip risk's 5% price band and halt the symbols.
              RISK_PRICE_BAND_PERCENT: '0',
              ...(tracing
                ? {
                    OTEL_TRACES_EXPORTER: tracing,
                    TRACES_FILE: join(traces, `${name}.jsonl`),
                  }
                : { OTEL_TRACES_EXPORTER: 'none' }),
            },
            certificates,
            // --profile <dir>: a V8 CPU profile per service, written when it stops.
            ...(flags.profile
              ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${join(flags.profile, name)}`] }
              : {}),
          }),
        );
      }
      await Promise.all(running.map((s) => waitUntilReady(s, 120_000)));
      const trading = running[0];
      const latencies: number[] = [];
      const answered: Record<number, number> = {};
      const cpuBefore = await Promise.all(running.map((s) => cpuSeconds(s.child.pid)));
      const result = await runTradingSession(trading, {
        orders,
        accounts,
        concurrency,
        seed: Number(flags.seed ?? 1),
        tag: id,
        ratePerSecond: rate,
        onPlaced: (ms, status) => {
          latencies.push(ms);
          answered[status] = (answered[status] ?? 0) + 1;
        },
      });
      process.stdout.write(
        `${formatSummary('placements (HTTP + TCC + matching)', summarize(orders, result.elapsedMs / 1000, latencies)).replace('events/s', 'orders/s')}\n`,
      );
      process.stdout.write(
        `HTTP answers ${JSON.stringify(answered)}; order states ${JSON.stringify(result.statuses)}; cancels ${result.cancels}\n`,
      );
      // What the services themselves spent, which other work on the machine does not change much.
      const cpuAfter = await Promise.all(running.map((s) => cpuSeconds(s.child.pid)));
      const used = labels.map((name, i) => ({
        name,
        seconds: (cpuAfter[i] ?? NaN) - (cpuBefore[i] ?? NaN),
      }));
      if (used.every((u) => Number.isFinite(u.seconds))) {
        const all = used.reduce((sum, u) => sum + u.seconds, 0);
        process.stdout.write(
          `service CPU: ${used.map((u) => `${u.name} ${u.seconds.toFixed(1)} s`).join(', ')}; ` +
            `${all.toFixed(1)} s in all, ${((all * 1000) / orders).toFixed(1)} ms per order\n`,
        );
      }
      await settle(urls[0]);
      const violations = await invariantViolations({
        trading: urls[0],
        risk: urls[1],
        settlement: urls[2],
      });
      if (violations.length > 0) {
        throw new Error(`invariants violated:\n${violations.join('\n')}`);
      }
      process.stdout.write(
        'invariants: cash and shares conserved, pending settlement equals the trades, no negative balance, ' +
          'frozen equals open reservations, every transaction finished, risk and clearing usage equal their reservations\n',
      );
    } finally {
      await Promise.all(running.map((s) => s.stop()));
    }
    if (tracing === 'file') {
      const { spans, bytes } = await countLines(traces);
      process.stdout.write(
        `traces: ${spans.toLocaleString('en-US')} spans written (${(bytes / 2 ** 20).toFixed(0)} MiB in ${traces})\n`,
      );
      // BENCH_KEEP=1 keeps them for `npm run trace -- <id> --dir <that folder>`.
      if (process.env.BENCH_KEEP !== '1') await rm(traces, { recursive: true, force: true });
    }
  });
}

// CPU seconds (user + system) a process has used so far, from Linux's /proc; undefined elsewhere.
async function cpuSeconds(pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name; utime and stime are the 14th and 15th, in USER_HZ (100) ticks.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

// Spans are one per line; the files of a long run are too big to parse just to count them.
async function countLines(dir: string): Promise<{ spans: number; bytes: number }> {
  let spans = 0;
  let bytes = 0;
  for (const file of await readdir(dir).catch(() => [] as string[])) {
    for await (const chunk of createReadStream(join(dir, file)) as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      for (const byte of chunk) if (byte === 10) spans++;
    }
  }
  return { spans, bytes };
}
