// The risk side of `npm run bench -- risk`, run as its own process by tools/bench/risk.ts (the bench
// may not import an app): pre-trade decision latency of the policy alone (Wasm in-process, and the
// OPA sidecar's round trip for comparison) and of the whole Try through a real TccParticipant on a
// real database. Prints one line per figure.
import { PLACEMENT_RESOURCES, TccTry, type OrderPlacementPayload } from '@finance/contracts';
import { createEnvelope } from '@finance/messaging';
import { openDatabase } from '@finance/platform';
import { TccParticipant } from '@finance/tcc';
import { randomUUID } from 'node:crypto';
import { RiskPolicyInput, SidecarRiskPolicy, WasmRiskPolicy } from '../src/pre-trade/risk-policy';
import { RiskQuotaBranch } from '../src/risk-quota/risk-quota.branch';
import { riskService } from '../src/service';

const env = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};

function line(label: string, samplesMs: number[], seconds?: number): string {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const at = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
  const rate = seconds ? `  ${Math.round(sorted.length / seconds).toLocaleString('en-US')}/s` : '';
  return `${label.padEnd(44)} n=${sorted.length.toLocaleString('en-US').padEnd(7)} p50 ${at(50).toFixed(3)} ms  p99 ${at(99).toFixed(3)} ms  max ${sorted[sorted.length - 1].toFixed(3)} ms${rate}\n`;
}

function input(i: number): RiskPolicyInput {
  const deny = i % 4 === 0; // a quarter break several limits, so both paths are measured
  return {
    order: {
      orderId: `o-${i}`,
      accountId: `ACC-${i % 50}`,
      symbol: i % 2 ? 'AAPL' : 'MSFT',
      side: i % 3 ? 'BUY' : 'SELL',
      type: 'LIMIT',
      quantity: `${1 + (i % 500)}`,
      price: deny ? '180.00' : '150.25',
      notional: { amount: `${(1 + (i % 500)) * 150}.25`, currency: 'USD' },
    },
    limits: {
      account: deny ? { maxOrderQuantity: '10', restrictedSymbols: ['MSFT'] } : {},
      firm: {
        maxOrderValue: '1000000.00',
        quota: '5000000.00',
        maxPosition: '100000',
        priceCollarPercent: '5',
        ordersPerSecond: '50',
        ordersPerMinute: '1000',
        duplicateWindowSeconds: '2',
      },
    },
    killSwitches: deny ? [{ scope: 'ACCOUNT', accountId: `ACC-${i % 50}`, reason: 'bench' }] : [],
    exposure: { gross: '125000.50' },
    position: { net: `${i % 300}`, openBuy: '20', openSell: '0' },
    throttle: { lastSecond: '3', lastMinute: '40' },
    ...(i % 5 === 0 ? { duplicate: { ageMs: '5000' } } : {}),
    referencePrice: '150.00',
  };
}

async function main(): Promise<void> {
  const evaluations = Number(process.env.BENCH_EVALUATIONS ?? 20_000);
  const sidecarCalls = Number(process.env.BENCH_SIDECAR ?? 2_000);
  const tries = Number(process.env.BENCH_TRIES ?? 3_000);

  const wasm = new WasmRiskPolicy();
  for (let i = 0; i < 2_000; i++) wasm.decideNow(input(i)); // warm up
  const inputs = Array.from({ length: evaluations }, (_, i) => input(i));
  const wasmMs: number[] = [];
  const wasmStart = performance.now();
  for (const x of inputs) {
    const t = performance.now();
    wasm.decideNow(x);
    wasmMs.push(performance.now() - t);
  }
  process.stdout.write(
    line('policy alone, Wasm in-process', wasmMs, (performance.now() - wasmStart) / 1000),
  );

  const sidecar = new SidecarRiskPolicy(env('OPA_URL'), 5_000);
  for (let i = 0; i < 200; i++) await sidecar.decide(input(i));
  const sidecarMs: number[] = [];
  for (let i = 0; i < sidecarCalls; i++) {
    const t = performance.now();
    await sidecar.decide(inputs[i]);
    sidecarMs.push(performance.now() - t);
  }
  process.stdout.write(line('policy alone, OPA sidecar (HTTP round trip)', sidecarMs));

  const db = await openDatabase({
    url: env('DATABASE_URL'),
    applicationName: 'risk-bench',
    poolSize: 10,
    migrations: riskService.migrations,
  });
  try {
    const config = {
      RISK_DEFAULT_MAX_ORDER_VALUE: '1000000',
      RISK_DEFAULT_QUOTA: '5000000000',
      KAFKA_TOPIC_PREFIX: 'bench.',
      RISK_REJECTION_BURST_COUNT: 0,
      RISK_REJECTION_BURST_WINDOW_SECONDS: 10,
    };
    const participant = new TccParticipant({
      service: 'risk',
      resources: { [PLACEMENT_RESOURCES.riskQuota]: new RiskQuotaBranch(config, db, wasm) },
    });
    const tryOnce = async (i: number): Promise<number> => {
      const gtid = randomUUID();
      const payload: OrderPlacementPayload = {
        orderId: `bench-${gtid}`,
        accountId: `BENCH-${i % 50}`,
        symbol: i % 2 ? 'AAPL' : 'MSFT',
        side: 'BUY',
        orderType: 'LIMIT',
        timeInForce: 'GTC',
        quantity: `${1 + (i % 20)}`,
        price: `${100 + (i % 7)}.00`,
        notional: { amount: `${(1 + (i % 20)) * (100 + (i % 7))}.00`, currency: 'USD' },
        fees: { amount: '0.00', currency: 'USD' },
      };
      const command = createEnvelope(
        TccTry,
        {
          globalTransactionId: gtid,
          branchId: 'risk',
          participant: 'risk',
          resource: PLACEMENT_RESOURCES.riskQuota,
          deadline: new Date(Date.now() + 60_000).toISOString(),
          payload,
        },
        { producer: 'trading', aggregateId: gtid, aggregateSequence: 1, correlationId: gtid },
      );
      const t = performance.now();
      await db.transaction((manager) => participant.handle(command, manager));
      return performance.now() - t;
    };
    for (let i = 0; i < 200; i++) await tryOnce(i);
    const tryMs: number[] = [];
    const tryStart = performance.now();
    for (let i = 0; i < tries; i++) tryMs.push(await tryOnce(i));
    process.stdout.write(
      line('whole Try, one at a time (committed)', tryMs, (performance.now() - tryStart) / 1000),
    );
    const concurrentMs: number[] = [];
    let next = 0;
    const concurrentStart = performance.now();
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < tries) concurrentMs.push(await tryOnce(next++));
      }),
    );
    process.stdout.write(
      line(
        'whole Try, 8 at once over 50 accounts',
        concurrentMs,
        (performance.now() - concurrentStart) / 1000,
      ),
    );
  } finally {
    await db.destroy();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
