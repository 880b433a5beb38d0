// The audit log's health for Prometheus, read on each scrape from the tree head, the latest
// checkpoint and the first entry after it (index lookups only): how many entries the log holds, how
// many no signed checkpoint covers yet, how old the latest checkpoint is, and how long the oldest
// entry has been waiting for one.
import { Gauge, Registry, register as defaultRegistry } from 'prom-client';
import type { DataSource } from 'typeorm';

interface HeadRow {
  size: number;
  signed: number;
  age: number;
  waiting: number;
}

export interface AuditMetricsOptions {
  /**
   * Entry types that never need a checkpoint of their own (the checkpoint events the signer
   * audits): an idle log whose only new entries are these is not waiting for a signature.
   */
  selfTypes?: readonly string[];
  registry?: Registry;
}

export function registerAuditMetrics(dataSource: DataSource, options: AuditMetricsOptions = {}) {
  const registry = options.registry ?? defaultRegistry;
  if (registry.getSingleMetric('audit_log_entries')) return;
  const selfTypes = [...(options.selfTypes ?? [])];
  // The gauges of one scrape share one read.
  let reading: Promise<HeadRow | undefined> | undefined;
  const head = () =>
    (reading ??= (
      dataSource.query(
        `SELECT h.tree_size::float8 AS size, coalesce(c.tree_size, 0)::float8 AS signed,
                -- With no checkpoint yet, since the first entry (0 for an empty log).
                extract(epoch FROM clock_timestamp() - coalesce(
                  c.signed_at,
                  (SELECT appended_at FROM audit_entries WHERE leaf_index = 0 LIMIT 1),
                  clock_timestamp()))::float8 AS age,
                coalesce(extract(epoch FROM clock_timestamp() - (
                  SELECT appended_at FROM audit_entries
                   WHERE leaf_index >= coalesce(c.tree_size, 0) AND type <> ALL($1::text[])
                   ORDER BY leaf_index LIMIT 1)), 0)::float8 AS waiting
           FROM audit_tree_head h
           LEFT JOIN LATERAL (SELECT tree_size, signed_at FROM audit_checkpoints
                               ORDER BY sequence DESC LIMIT 1) c ON true`,
        [selfTypes],
      ) as Promise<HeadRow[]>
    )
      .then(([row]) => row)
      .finally(() => setImmediate(() => (reading = undefined))));
  const gauge = (name: string, help: string, value: (row: HeadRow) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const row = await head();
        if (row) this.set(value(row));
      },
    });
  gauge('audit_log_entries', 'Entries in the audit log (its tree size)', (row) => row.size);
  gauge(
    'audit_entries_unsigned',
    'Audit log entries no signed checkpoint covers yet',
    (row) => row.size - row.signed,
  );
  gauge(
    'audit_checkpoint_age_seconds',
    'Time since the latest signed checkpoint (with none yet, since the first entry)',
    (row) => row.age,
  );
  gauge(
    'audit_unsigned_entry_age_seconds',
    'How long the oldest entry no checkpoint covers has waited (0 when every entry is covered)',
    (row) => row.waiting,
  );
}
