// The auditor reports as queries over the audit log (audit_entries), never over another service's
// tables: what a report shows is what the log holds, each row with its leaf index so its inclusion
// under the report's checkpoint can be proven (GET /compliance/audit/proof/inclusion).
import type { EntityManager } from 'typeorm';
import type { ReportRow } from './report-format';

export interface PageWindow {
  /** Entries below this leaf index only: the report's checkpoint. */
  readonly treeSize: number;
  /** Entries after this leaf index (-1: from the start). */
  readonly after: number;
  readonly limit: number;
  /** occurred_at (or executedAt for the blotter) from, inclusive; to, exclusive. */
  readonly from?: string;
  readonly to?: string;
}

export interface EntryFilter {
  /** SQL over the columns of audit_entries and `data` (the envelope's data as jsonb), $5.. params. */
  readonly where: string;
  readonly params: readonly unknown[];
}

interface EntryRow {
  leaf_index: string;
  appended_at: Date;
  occurred_at: Date;
  source: string;
  event_id: string;
  type: string;
  producer: string;
  aggregate_id: string;
  correlation_id: string;
  trace_id: string | null;
  payload: string;
}

export const ENTRY_COLUMNS = [
  'leafIndex',
  'appendedAt',
  'occurredAt',
  'producer',
  'type',
  'actor',
  'aggregateId',
  'correlationId',
  'traceId',
  'eventId',
  'details',
] as const;

/** Reports of audited entries: one row per entry matching the filter, in log order. */
export const ENTRY_REPORTS = {
  /** Every entry about one order, from every service: its events and the TCC commands and replies. */
  trail: (orderId: string): EntryFilter => ({
    where: '(e.aggregate_id = $5 OR e.correlation_id = $5)',
    params: [orderId],
  }),
  /** Compliance alerts, their reviews and closes; risk's alerts. */
  alerts: (): EntryFilter => ({
    where: `e.type IN ('ComplianceAlertRaised', 'ComplianceAlertReviewStarted', 'ComplianceAlertClosed',
                       'RiskAlertRaised')`,
    params: [],
  }),
  /** Limit changes, kill switches, breakers, and every order risk or compliance refused (with its code). */
  limitBreaches: (): EntryFilter => ({
    where: `(e.type IN ('RiskLimitChanged', 'KillSwitchChanged', 'RiskAlertRaised')
             OR (e.type = 'TccReply' AND e.producer IN ('risk', 'compliance')
                 AND (e.payload::jsonb -> 'data' ->> 'outcome') = 'FAILED'))`,
    params: [],
  }),
  authorizationDenials: (): EntryFilter => ({
    where: `e.type = 'AuthorizationDenied'`,
    params: [],
  }),
} as const;

export async function entryPage(
  db: EntityManager,
  filter: EntryFilter,
  window: PageWindow,
): Promise<ReportRow[]> {
  const rows: EntryRow[] = await db.query(
    `SELECT e.leaf_index, e.appended_at, e.occurred_at, e.source, e.event_id, e.type, e.producer,
            e.aggregate_id, e.correlation_id, e.trace_id, e.payload
       FROM audit_entries e
      WHERE e.leaf_index < $1 AND e.leaf_index > $2
        AND ($3::timestamptz IS NULL OR e.occurred_at >= $3)
        AND ($4::timestamptz IS NULL OR e.occurred_at < $4)
        AND ${filter.where}
      ORDER BY e.leaf_index
      LIMIT ${window.limit + 1}`,
    [window.treeSize, window.after, window.from ?? null, window.to ?? null, ...filter.params],
  );
  return rows.map(entryRow);
}

function entryRow(row: EntryRow): ReportRow {
  const payload = parseObject(row.payload);
  const data = isObject(payload['data']) ? payload['data'] : {};
  return {
    leafIndex: Number(row.leaf_index),
    appendedAt: row.appended_at.toISOString(),
    occurredAt: row.occurred_at.toISOString(),
    producer: row.producer,
    type: row.type,
    actor: actorOf(payload, data),
    aggregateId: row.aggregate_id,
    correlationId: row.correlation_id,
    traceId: row.trace_id,
    eventId: row.event_id,
    // An envelope's data; compliance's own entries are the action itself.
    details: isObject(payload['data']) ? data : payload,
  };
}

// Who did it, where the entry says: a local action's actor, or the person or service an event names.
function actorOf(payload: Record<string, unknown>, data: Record<string, unknown>): string | null {
  for (const value of [
    payload['actor'],
    data['changedBy'],
    data['openedBy'],
    data['principal'],
    data['reviewer'],
  ]) {
    if (typeof value === 'string' && value.length > 0) return value;
  }
  return null;
}

export const BLOTTER_COLUMNS = [
  'leafIndex',
  'tradeId',
  'executedAt',
  'symbol',
  'price',
  'quantity',
  'currency',
  'buyOrderId',
  'buyAccountId',
  'sellOrderId',
  'sellAccountId',
  'traceId',
] as const;

interface BlotterRow {
  leaf_index: string;
  trace_id: string | null;
  data: {
    tradeId: string;
    symbol: string;
    price: string;
    quantity: string;
    currency: string;
    executedAt: string;
    buy: { orderId: string; accountId: string };
    sell: { orderId: string; accountId: string };
  };
}

/**
 * One row per trade executed in [from, to): trading publishes OrderExecuted once per side, both with
 * the trade's id; the first entry of each trade in the log stands for it (across pages too, since the
 * choice is made over the whole checkpoint before paging).
 */
export async function blotterPage(db: EntityManager, window: PageWindow): Promise<ReportRow[]> {
  const rows: BlotterRow[] = await db.query(
    `SELECT leaf_index, trace_id, data FROM (
       SELECT DISTINCT ON (data ->> 'tradeId') e.leaf_index, e.trace_id, data
         FROM audit_entries e, LATERAL (SELECT e.payload::jsonb -> 'data' AS data) d
        WHERE e.type = 'OrderExecuted' AND e.leaf_index < $1
          AND ($3::timestamptz IS NULL OR (data ->> 'executedAt')::timestamptz >= $3)
          AND ($4::timestamptz IS NULL OR (data ->> 'executedAt')::timestamptz < $4)
        ORDER BY data ->> 'tradeId', e.leaf_index) first_entry
      WHERE leaf_index > $2
      ORDER BY leaf_index
      LIMIT ${window.limit + 1}`,
    [window.treeSize, window.after, window.from ?? null, window.to ?? null],
  );
  return rows.map(({ leaf_index, trace_id, data }) => ({
    leafIndex: Number(leaf_index),
    tradeId: data.tradeId,
    executedAt: data.executedAt,
    symbol: data.symbol,
    price: data.price,
    quantity: data.quantity,
    currency: data.currency,
    buyOrderId: data.buy.orderId,
    buyAccountId: data.buy.accountId,
    sellOrderId: data.sell.orderId,
    sellAccountId: data.sell.accountId,
    traceId: trace_id,
  }));
}

function parseObject(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return isObject(value) ? value : {};
  } catch {
    return {};
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
