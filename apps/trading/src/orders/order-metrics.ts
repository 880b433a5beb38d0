// Trading's business metrics. Orders placed, accepted and rejected (by branch and reason) and fills
// are counted once the transaction that decided them commits; the matching engine's queue and the
// kill switches trading holds engaged are read from the database when Prometheus scrapes.
import { Counter, Gauge, register } from 'prom-client';
import type { DataSource } from 'typeorm';

function counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []) {
  return (
    (register.getSingleMetric(name) as Counter<L> | undefined) ??
    new Counter<L>({ name, help, labelNames })
  );
}

export const ordersPlaced = counter(
  'trading_orders_placed_total',
  'Orders taken in for placement (a retry of the same clientOrderId is not counted again)',
  ['side', 'type'],
);

export const ordersAccepted = counter(
  'trading_orders_accepted_total',
  'Orders every placement branch reserved for, sent to the book',
);

/** branch: the participant that refused (coordinator for a timeout); code: its reason. */
export const ordersRejected = counter(
  'trading_orders_rejected_total',
  'Orders rejected by the placement, by the branch that refused and its reason code',
  ['branch', 'code'],
);

export const fills = counter('trading_fills_total', 'Trades the matching engine executed', [
  'symbol',
]);

/** Gauges read from trading's database on each scrape; registered once per process. */
export function registerTradingGauges(db: DataSource): void {
  if (register.getSingleMetric('trading_matching_queue_commands')) return;
  new Gauge({
    name: 'trading_matching_queue_commands',
    help: 'Accepted orders, cancels and replaces waiting for the matching engine',
    async collect() {
      const [row] = await db.query(
        'SELECT count(*)::int AS n FROM matching_commands WHERE done_at IS NULL',
      );
      this.set(row.n);
    },
  });
  new Gauge({
    name: 'trading_kill_switches_engaged',
    help: 'Kill switches trading holds engaged (as risk last announced them), by scope',
    labelNames: ['scope'],
    async collect() {
      const rows: Array<{ scope: string; n: number }> = await db.query(
        `SELECT s.scope, count(k.scope)::int AS n
           FROM unnest(ARRAY['FIRM', 'ACCOUNT', 'SYMBOL']) AS s(scope)
           LEFT JOIN kill_switches k ON k.scope = s.scope AND k.engaged
          GROUP BY s.scope`,
      );
      for (const row of rows) this.set({ scope: row.scope }, row.n);
    },
  });
}
