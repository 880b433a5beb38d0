// Observability end to end: the four services run as processes with the file exporter; one order's
// placement is one trace across all of them, linked through the Kafka headers, and after a short
// scenario every service's /metrics shows its business and engine metrics with real values.
import { topicName, TOPICS } from '@finance/contracts';
import { createKafka } from '@finance/messaging';
import {
  readSpanFiles,
  renderTrace,
  SpanRecord,
  tracesMatching,
  traceTree,
} from '@finance/observability';
import { createLogger } from '@finance/platform';
import {
  callService as call,
  produceRecords,
  queryDatabase as query,
  RunningService,
  startSystemService,
  testStack,
  waitFor,
} from '@finance/testing';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const NAMES = ['trading', 'risk', 'settlement', 'compliance'] as const;
type Name = (typeof NAMES)[number];

const services = {} as Record<Name, RunningService>;
const traces = mkdtempSync(join(tmpdir(), 'e2e-traces-'));
const run = randomUUID().slice(0, 8);

interface OrderView {
  orderId: string;
  status: string;
  globalTransactionId: string;
  rejection: { branch: string | null; code: string } | null;
}

beforeAll(async () => {
  const tracing = (name: Name) => ({
    OTEL_TRACES_EXPORTER: 'file',
    TRACES_FILE: join(traces, `${name}.jsonl`),
    OTEL_BSP_SCHEDULE_DELAY: '200',
  });
  const trading = { TRADING_PLACEMENT_TIMEOUT_MS: '10000', TRADING_RESPONSE_TIMEOUT_MS: '15000' };
  const started = await Promise.all(
    NAMES.map((name) =>
      startSystemService(name, {
        label: 'observability',
        env: { ...tracing(name), ...(name === 'trading' ? trading : {}) },
      }),
    ),
  );
  NAMES.forEach((name, i) => (services[name] = started[i]));
});

afterAll(async () => {
  await Promise.all(Object.values(services).map((s) => s?.process.stop()));
  rmSync(traces, { recursive: true, force: true });
});

async function openFunded(id: string, deposit: Record<string, string>): Promise<string> {
  const accountId = `${id}-${run}`;
  await call(services.trading, 'POST', '/trading/accounts', {
    as: 'order-service',
    body: { accountId, owner: `${id}-owner-${run}` },
    expect: [201],
  });
  await call(services.trading, 'POST', `/trading/accounts/${accountId}/deposits`, {
    as: 'settlement-service',
    body: { requestId: `dep-${accountId}`, ...deposit },
    expect: [201],
  });
  return accountId;
}

const place = async (body: Record<string, unknown>) =>
  (
    await call<OrderView>(services.trading, 'POST', '/trading/orders', {
      as: 'order-service',
      body: { type: 'LIMIT', timeInForce: 'GTC', symbol: 'AAPL', ...body },
      expect: [201],
    })
  ).body;

/** Parses Prometheus' text format into samples. */
function samples(
  text: string,
): Array<{ name: string; labels: Record<string, string>; value: number }> {
  const out = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels = Object.fromEntries(
      [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    out.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return out;
}

async function metrics(name: Name) {
  const { body } = await services[name].process.request('/metrics', { as: 'prometheus' });
  return samples(body);
}

/** Sum of a metric's samples whose labels include `labels`. */
function total(
  all: ReturnType<typeof samples>,
  name: string,
  labels: Record<string, string | RegExp> = {},
): number | undefined {
  const matching = all.filter(
    (s) =>
      s.name === name &&
      Object.entries(labels).every(([k, v]) =>
        typeof v === 'string' ? s.labels[k] === v : v.test(s.labels[k] ?? ''),
      ),
  );
  return matching.length === 0 ? undefined : matching.reduce((sum, s) => sum + s.value, 0);
}

describe('observability across the four services', () => {
  let buy: OrderView;

  it('traces one order placement as a single trace through all four services and Kafka', async () => {
    const seller = await openFunded('seller', { symbol: 'AAPL', quantity: '1000' });
    const buyer = await openFunded('buyer', { currency: 'USD', amount: '100000.00' });
    const sell = await place({
      clientOrderId: 's-1',
      accountId: seller,
      side: 'SELL',
      price: '150.00',
      quantity: '100',
    });
    expect(sell.status).toBe('NEW');
    buy = await place({
      clientOrderId: 'b-1',
      accountId: buyer,
      side: 'BUY',
      price: '150.50',
      quantity: '60',
    });
    expect(buy.status).toBe('FILLED');

    // The spans reach the files within the exporters' batch delay.
    const complete = (spans: SpanRecord[]) => {
      const ids = tracesMatching(spans, buy.orderId);
      if (ids.length !== 1) return false;
      const own = spans.filter((s) => s.traceId === ids[0]);
      const known = new Set(own.map((s) => s.spanId));
      return (
        NAMES.every((name) => own.some((s) => s.service === name && s.kind === 'CONSUMER')) &&
        own.filter((s) => s.parentSpanId === null).length === 1 &&
        own.every((s) => s.parentSpanId === null || known.has(s.parentSpanId))
      );
    };
    const spans = await waitFor('the order trace', () => readSpanFiles(traces), complete, 60_000);

    // One trace: every span that names the order, its transaction or its messages belongs to it.
    const ids = tracesMatching(spans, buy.orderId);
    expect(ids).toHaveLength(1);
    expect(tracesMatching(spans, buy.globalTransactionId)).toEqual(ids);
    const own = spans.filter((s) => s.traceId === ids[0]);
    const byId = new Map(own.map((s) => [s.spanId, s]));
    const parent = (s: SpanRecord) => (s.parentSpanId ? byId.get(s.parentSpanId) : undefined);

    // It starts at the client's request, and every span hangs below it.
    const roots = traceTree(spans, ids[0]);
    expect(roots).toHaveLength(1);
    expect(roots[0].span).toMatchObject({
      service: 'trading',
      kind: 'SERVER',
      name: 'POST /trading/orders',
      attributes: expect.objectContaining({
        'http.route': '/trading/orders',
        'http.request.method': 'POST',
        'url.path': '/trading/orders',
      }),
    });
    expect(new Set(own.map((s) => s.service))).toEqual(new Set(NAMES));

    // Trading's Try commands: a send span per branch, each the child of the context stored with
    // its outbox row, and each branch's process span the child of that send span.
    const tries = own.filter(
      (s) => s.kind === 'PRODUCER' && s.attributes['finance.message.type'] === 'TccTry',
    );
    expect(tries).toHaveLength(4);
    const stored = await query<{ event_id: string; traceparent: string }>(
      services.trading.databaseUrl,
      `SELECT event_id::text, headers->>'traceparent' AS traceparent FROM outbox
        WHERE headers->>'event-type' = 'TccTry' AND payload->'data'->>'globalTransactionId' = $1`,
      [buy.globalTransactionId],
    );
    expect(stored).toHaveLength(4);
    for (const send of tries) {
      expect(send).toMatchObject({
        service: 'trading',
        name: expect.stringMatching(/tcc\.commands send$/),
      });
      const row = stored.find((r) => r.event_id === send.attributes['messaging.message.id'])!;
      expect(row.traceparent).toBe(`00-${send.traceId}-${send.parentSpanId}-01`);
      expect(parent(send)?.service).toBe('trading');
    }
    for (const name of ['risk', 'settlement', 'compliance', 'trading'] as const) {
      const processed = own.find(
        (s) =>
          s.service === name &&
          s.kind === 'CONSUMER' &&
          s.attributes['finance.message.type'] === 'TccTry',
      );
      expect(processed).toBeDefined();
      expect(tries).toContain(parent(processed!));
      expect(processed!.attributes['messaging.destination.name']).toBe(
        parent(processed!)!.attributes['messaging.destination.name'],
      );
    }
    // And back: each participant's reply is sent by its own relay and processed by trading's
    // coordinator under that send span.
    for (const name of ['risk', 'settlement', 'compliance'] as const) {
      const reply = own.find(
        (s) =>
          s.service === name &&
          s.kind === 'PRODUCER' &&
          s.attributes['finance.message.type'] === 'TccReply',
      );
      expect(reply).toBeDefined();
      // (Compliance's audit consumer reads the reply too, as it reads every topic.)
      const processed = own.filter(
        (s) => s.kind === 'CONSUMER' && s.parentSpanId === reply!.spanId,
      );
      expect(processed.map((s) => s.service).sort()).toEqual(['compliance', 'trading']);
    }
    // The database work of the participants is in it too.
    for (const name of NAMES) {
      expect(
        own.some(
          (s) =>
            s.service === name &&
            s.kind === 'CLIENT' &&
            s.attributes['db.system.name'] === 'postgresql',
        ),
      ).toBe(true);
    }
    if (process.env.E2E_TRACE_OUT)
      writeFileSync(process.env.E2E_TRACE_OUT, renderTrace(spans, ids[0]));
  });

  it('shows the business and engine metrics on every service after a short scenario', async () => {
    // A rejection: more than the account holds.
    const poor = await openFunded('poor', { currency: 'USD', amount: '100.00' });
    const rejected = await place({
      clientOrderId: 'r-1',
      accountId: poor,
      side: 'BUY',
      price: '150.00',
      quantity: '10',
    });
    expect(rejected.status).toBe('REJECTED');
    // A kill switch on a symbol nobody trades here.
    await call(services.risk, 'POST', '/risk/kill-switch', {
      as: 'risk-officer',
      body: { scope: 'SYMBOL', symbol: 'MSFT', reason: `observability e2e ${run}` },
      expect: [200, 201],
    });
    // A signed checkpoint of the audit log.
    await call(services.compliance, 'POST', '/compliance/audit/checkpoints', {
      as: 'compliance-officer',
      expect: [200, 201],
    });
    // A poison record on the TCC commands, which every service consumes: it goes to the DLQ.
    const stack = testStack();
    const kafka = createKafka({
      brokers: stack.kafkaBrokers,
      clientId: `observability-e2e-${run}`,
      logger: createLogger('e2e', 'silent'),
    });
    await produceRecords(kafka, topicName(TOPICS.tccCommands, stack.topicPrefix), [
      { key: `poison-${run}`, value: 'not json' },
    ]);
    // A refused request on every service.
    for (const name of NAMES) {
      expect(
        (await services[name].process.request('/metrics', { as: 'order-service' })).status,
      ).toBe(403);
    }

    const commands = topicName(TOPICS.tccCommands, stack.topicPrefix);
    for (const name of NAMES) {
      const all = await waitFor(
        `${name}: the poison record dead-lettered`,
        () => metrics(name),
        (m) => (total(m, 'inbox_messages_total', { outcome: 'dead-lettered' }) ?? 0) > 0,
        60_000,
      );
      // RED metrics of the HTTP routes, the outbox, the inbox, Kafka and the guard.
      expect(
        total(all, 'http_requests_total', { route: '/metrics', status_code: '403' }),
      ).toBeGreaterThan(0);
      expect(total(all, 'http_request_duration_seconds_count')).toBeGreaterThan(0);
      expect(total(all, 'outbox_published_total')).toBeGreaterThan(0);
      expect(total(all, 'outbox_lag_events')).toBeGreaterThanOrEqual(0);
      expect(total(all, 'outbox_lag_seconds')).toBeGreaterThanOrEqual(0);
      expect(
        total(all, 'inbox_messages_total', { outcome: 'handled', topic: commands }),
      ).toBeGreaterThan(0);
      expect(
        total(all, 'kafka_dead_letter_messages', { topic: `${commands}.dlq` }),
      ).toBeGreaterThan(0);
      const lag = all.filter(
        (s) => s.name === 'kafka_consumer_lag_messages' && s.labels.topic === commands,
      );
      expect(lag.length).toBeGreaterThan(0);
      expect(lag.every((s) => s.value >= 0 && /^\d+$/.test(s.labels.partition))).toBe(true);
      expect(total(all, 'authz_decisions_total', { outcome: 'denied' })).toBeGreaterThan(0);
    }

    // The rejected order's transaction finishes once every branch acknowledged its Cancel.
    const trading = await waitFor(
      'trading to hold the kill switch engaged and every transaction finished',
      () => metrics('trading'),
      (m) =>
        total(m, 'trading_kill_switches_engaged', { scope: 'SYMBOL' }) === 1 &&
        total(m, 'tcc_transactions_finished_total', { state: 'CANCELLED' }) === 1 &&
        total(m, 'tcc_transactions_finished_total', { state: 'CONFIRMED' }) === 2,
      30_000,
    );
    expect(total(trading, 'trading_orders_placed_total')).toBe(3);
    expect(total(trading, 'trading_orders_accepted_total')).toBe(2);
    expect(
      total(trading, 'trading_orders_rejected_total', {
        branch: rejected.rejection!.branch!,
        code: rejected.rejection!.code,
      }),
    ).toBe(1);
    expect(total(trading, 'trading_fills_total', { symbol: 'AAPL' })).toBe(1);
    expect(total(trading, 'trading_matching_queue_commands')).toBe(0);
    expect(total(trading, 'tcc_transactions_finished_total', { state: 'CONFIRMED' })).toBe(2);
    expect(total(trading, 'tcc_transactions_finished_total', { state: 'CANCELLED' })).toBe(1);
    expect(total(trading, 'tcc_transaction_duration_seconds_count')).toBe(3);
    expect(total(trading, 'tcc_transaction_duration_seconds_sum')).toBeGreaterThan(0);
    expect(total(trading, 'tcc_transactions_open', { state: 'TRYING' })).toBe(0);
    expect(total(trading, 'tcc_transactions_open_by_age', { age: 'over_5m' })).toBe(0);
    expect(total(trading, 'tcc_transaction_oldest_open_seconds', { state: 'TRYING' })).toBe(0);

    const risk = await metrics('risk');
    expect(total(risk, 'risk_kill_switches_engaged', { scope: 'SYMBOL' })).toBe(1);
    expect(total(risk, 'risk_kill_switches_engaged', { scope: 'FIRM' })).toBe(0);

    const compliance = await metrics('compliance');
    expect(total(compliance, 'audit_log_entries')).toBeGreaterThan(0);
    expect(total(compliance, 'audit_checkpoint_age_seconds')).toBeGreaterThan(0);
    expect(total(compliance, 'audit_entries_unsigned')).toBeGreaterThanOrEqual(0);
  });
});
