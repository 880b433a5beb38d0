// The kill switch's state for Prometheus: engaged switches by scope and by what engaged them, read
// from the switch rows on each scrape (engaged ones are few and have their own index).
import { Gauge, register } from 'prom-client';
import type { DataSource } from 'typeorm';

export function registerKillSwitchMetrics(db: DataSource): void {
  if (register.getSingleMetric('risk_kill_switches_engaged')) return;
  new Gauge({
    name: 'risk_kill_switches_engaged',
    help: 'Kill switches engaged now, by scope and source (MANUAL or the breaker that tripped it)',
    labelNames: ['scope', 'source'],
    async collect() {
      const rows: Array<{ scope: string; source: string; n: number }> = await db.query(
        `SELECT scope, source, count(*)::int AS n FROM risk_kill_switches
          WHERE released_at IS NULL GROUP BY scope, source`,
      );
      this.reset();
      // A scope with nothing engaged reads 0 rather than vanishing from the dashboard.
      for (const scope of ['FIRM', 'ACCOUNT', 'SYMBOL']) this.set({ scope, source: 'MANUAL' }, 0);
      for (const row of rows) this.set({ scope: row.scope, source: row.source }, row.n);
    },
  });
}
