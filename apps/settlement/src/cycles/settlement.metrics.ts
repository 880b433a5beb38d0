// Settlement's state for Prometheus, read from its tables on each scrape (each an indexed read or a
// read of few rows): open obligations and fails, trades unwound, and the last cycle.
import { Gauge, register } from 'prom-client';
import type { DataSource } from 'typeorm';

export function registerSettlementMetrics(db: DataSource): void {
  if (register.getSingleMetric('settlement_obligations_open')) return;
  new Gauge({
    name: 'settlement_obligations_open',
    help: 'Trades not settled yet; failing: those that failed at least one cycle (carried over)',
    labelNames: ['status'],
    async collect() {
      const [row]: Array<{ open: number; failing: number }> = await db.query(
        `SELECT count(*)::int AS open, count(*) FILTER (WHERE failed_cycles > 0)::int AS failing
           FROM settlement_obligations WHERE state = 'OPEN'`,
      );
      this.set({ status: 'due_or_pending' }, row.open - row.failing);
      this.set({ status: 'failing' }, row.failing);
    },
  });
  new Gauge({
    name: 'settlement_oldest_fail_age_seconds',
    help: 'How long ago the oldest trade still open first failed to settle (0 without one)',
    async collect() {
      const [row]: Array<{ age: number | null }> = await db.query(
        `SELECT extract(epoch FROM clock_timestamp() - min(first_failed_at))::float8 AS age
           FROM settlement_obligations WHERE state = 'OPEN' AND first_failed_at IS NOT NULL`,
      );
      this.set(row.age ?? 0);
    },
  });
  countGauge(
    db,
    'settlement_trades_unwound',
    'Trades closed as FAILED after their last allowed cycle, and unwound',
    `SELECT count(*)::int AS n FROM settlement_obligations WHERE state = 'FAILED'`,
  );
  new Gauge({
    name: 'settlement_last_cycle',
    help: 'The latest cycle: trades settled and failed, seconds it took, and when it posted (unix time)',
    labelNames: ['field'],
    async collect() {
      const [row]: Array<{
        settled: number;
        failed: number;
        seconds: number | null;
        posted: number | null;
      }> = await db.query(
        `SELECT trades_settled AS settled, trades_failed AS failed,
                extract(epoch FROM posted_at - started_at)::float8 AS seconds,
                extract(epoch FROM posted_at)::float8 AS posted
           FROM settlement_cycles ORDER BY sequence DESC LIMIT 1`,
      );
      this.reset();
      if (!row) return;
      this.set({ field: 'trades_settled' }, row.settled);
      this.set({ field: 'trades_failed' }, row.failed);
      if (row.seconds !== null) this.set({ field: 'duration_seconds' }, row.seconds);
      if (row.posted !== null) this.set({ field: 'posted_timestamp_seconds' }, row.posted);
    },
  });
  countGauge(
    db,
    'settlement_cycles_interrupted',
    'Cycles netted but not posted (an interrupted run, finished by the next request)',
    `SELECT count(*)::int AS n FROM settlement_cycles WHERE state = 'NETTED'`,
  );
}

/** A gauge set on each scrape to `n` from `sql`. */
function countGauge(db: DataSource, name: string, help: string, sql: string): void {
  new Gauge({
    name,
    help,
    async collect() {
      const [row]: Array<{ n: number }> = await db.query(sql);
      this.set(row.n);
    },
  });
}
