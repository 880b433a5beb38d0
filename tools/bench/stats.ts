// Throughput and latency figures for benchmark reports.
import { cpus, totalmem } from 'node:os';

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)];
}

export interface Summary {
  count: number;
  seconds: number;
  perSecond: number;
  p50Ms?: number;
  p99Ms?: number;
  maxMs?: number;
}

export function summarize(count: number, seconds: number, latenciesMs?: number[]): Summary {
  const summary: Summary = { count, seconds, perSecond: count / seconds };
  if (latenciesMs && latenciesMs.length > 0) {
    const sorted = [...latenciesMs].sort((a, b) => a - b);
    summary.p50Ms = percentile(sorted, 50);
    summary.p99Ms = percentile(sorted, 99);
    summary.maxMs = sorted[sorted.length - 1];
  }
  return summary;
}

export function formatSummary(label: string, s: Summary): string {
  const rate = `${Math.round(s.perSecond).toLocaleString('en-US')} events/s`;
  const latency =
    s.p50Ms === undefined
      ? ''
      : `  p50 ${s.p50Ms.toFixed(1)} ms  p99 ${s.p99Ms!.toFixed(1)} ms  max ${s.maxMs!.toFixed(1)} ms`;
  return `${label.padEnd(34)} ${rate.padStart(18)}  (${s.count.toLocaleString('en-US')} in ${s.seconds.toFixed(2)} s)${latency}`;
}

export function machine(): string {
  const cpu = cpus();
  return `${cpu.length} × ${cpu[0]?.model ?? 'unknown cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
}
