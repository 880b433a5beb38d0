// Compliance end to end over a scripted trading day: trading, risk, settlement and compliance run as
// processes. Compliance refuses an order in the placement TCC; afterwards the auditor's reports,
// built from the audit log alone, show one order's trail from all four services in log order, a
// blotter equal to trading's executed trades, CSV equal to JSON, and a checkpoint the offline verifier
// accepts with an inclusion proof of a trail entry.
import { parseMoney } from '@finance/money';
import {
  callService as call,
  privateTopicPrefix,
  queryDatabase as query,
  RunningService,
  startSystemService,
  waitFor,
} from '@finance/testing';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

type TradingDayServices = Record<'trading' | 'risk' | 'settlement' | 'compliance', RunningService>;

// Its own topics: the blotter must hold this day's trades and nothing another test file traded.
let topicPrefix = '';
const startService = (name: keyof TradingDayServices, env: Record<string, string> = {}) =>
  startSystemService(name, { label: 'day', env: { KAFKA_TOPIC_PREFIX: topicPrefix, ...env } });

const services = {} as TradingDayServices;
const run = randomUUID().slice(0, 8);
const dayStart = new Date(Date.now() - 60_000).toISOString();

interface OrderView {
  orderId: string;
  status: string;
  rejection: { branch: string | null; code: string; message: string } | null;
}

interface Checkpoint {
  origin: string;
  treeSize: number;
  rootHash: string;
  timestamp: string;
  keyId: string;
  signature: string;
}

interface Report<Row> {
  report: string;
  checkpoint: Checkpoint;
  columns: string[];
  rows: Row[];
  nextCursor: string | null;
}

interface TrailRow {
  leafIndex: number;
  producer: string;
  type: string;
  occurredAt: string;
  traceId: string | null;
  details: Record<string, unknown>;
}

interface BlotterRow {
  leafIndex: number;
  tradeId: string;
  symbol: string;
  price: string;
  quantity: string;
  buyOrderId: string;
  sellOrderId: string;
}

beforeAll(async () => {
  topicPrefix = await privateTopicPrefix(`day-${run}`);
  [services.trading, services.risk, services.settlement, services.compliance] = await Promise.all([
    startService('trading', {
      TRADING_PLACEMENT_TIMEOUT_MS: '8000',
      TRADING_RESPONSE_TIMEOUT_MS: '15000',
    }),
    startService('risk'),
    startService('settlement'),
    // A low single-order limit, so compliance (not risk, whose default is 1,000,000) refuses first.
    startService('compliance', {
      COMPLIANCE_MAX_ORDER_NOTIONAL: '50000',
      AUDIT_CHECKPOINT_INTERVAL_MS: '500',
    }),
  ]);
});

afterAll(async () => {
  await Promise.all(Object.values(services).map((s) => s?.process.stop()));
});

let orders = 0;
const place = async (accountId: string, order: Record<string, unknown>) =>
  (
    await call<OrderView>(services.trading, 'POST', '/trading/orders', {
      as: 'order-service',
      body: {
        clientOrderId: `day-${run}-${++orders}`,
        accountId,
        symbol: 'AAPL',
        type: 'LIMIT',
        timeInForce: 'GTC',
        ...order,
      },
      expect: [200, 201],
    })
  ).body;

async function openFunded(name: string, owner: string): Promise<string> {
  const accountId = `${name}-${run}`;
  await call(services.trading, 'POST', '/trading/accounts', {
    as: 'order-service',
    body: { accountId, owner: `${owner}-${run}` },
    expect: [201],
  });
  for (const body of [
    { requestId: `usd-${accountId}`, currency: 'USD', amount: '100000.00' },
    { requestId: `aapl-${accountId}`, symbol: 'AAPL', quantity: '1000' },
  ]) {
    await call(services.trading, 'POST', `/trading/accounts/${accountId}/deposits`, {
      as: 'settlement-service',
      body,
      expect: [201],
    });
  }
  return accountId;
}

const report = async <Row>(path: string, as = 'auditor') =>
  (await call<Report<Row>>(services.compliance, 'GET', path, { as, expect: [200] })).body;

const reportCsv = async (path: string) => {
  const response = await services.compliance.process.request(path, {
    as: 'auditor',
    headers: { accept: 'text/csv' },
    timeoutMs: 30_000,
  });
  expect(response.status).toBe(200);
  return response;
};

/** RFC 4180 rows (quoted cells with doubled quotes, CRLF line ends). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += c;
  }
  return rows;
}

describe('a scripted trading day, as the auditor sees it', () => {
  let buy: OrderView;
  let refused: OrderView;

  it('runs the day: crossing orders fill, compliance refuses an order above its limit, a cancel', async () => {
    const buyer = await openFunded('buyer', 'alice');
    const seller = await openFunded('seller', 'bob');

    const sell = await place(seller, { side: 'SELL', price: '150.00', quantity: '100' });
    expect(sell.status).toBe('NEW');
    buy = await place(buyer, { side: 'BUY', price: '150.50', quantity: '60' });
    expect(buy.status).toBe('FILLED');
    expect((await place(buyer, { side: 'BUY', price: '150.00', quantity: '40' })).status).toBe(
      'FILLED',
    );

    // 400 × 150.00 = 60,000 USD > the 50,000 configured: refused by the compliance branch.
    refused = await place(buyer, { side: 'BUY', price: '150.00', quantity: '400' });
    expect(refused.status).toBe('REJECTED');
    expect(refused.rejection).toMatchObject({
      branch: 'compliance',
      code: 'COMPLIANCE_MAX_ORDER_NOTIONAL',
    });
    expect(refused.rejection!.message).toContain('exceeds the single-order limit of 50000 USD');

    const resting = await place(seller, { side: 'SELL', price: '200.00', quantity: '10' });
    expect(resting.status).toBe('NEW');
    await call(services.trading, 'DELETE', `/trading/orders/${resting.orderId}`, {
      as: 'order-service',
      expect: [200],
    });

    // The check of each placed order counts toward its owner's hour; the refused one does not.
    // (Confirms arrive after the HTTP answer: wait for them.)
    const checks = await waitFor(
      'every placed order confirmed in compliance',
      () =>
        query<{ owner: string; state: string; n: number }>(
          services.compliance.databaseUrl,
          `SELECT owner, state, count(*)::int AS n FROM compliance_checks GROUP BY owner, state ORDER BY owner, state`,
        ),
      (rows) => rows.every((r) => r.state === 'CONFIRMED'),
    );
    expect(checks).toEqual([
      { owner: `alice-${run}`, state: 'CONFIRMED', n: 2 },
      { owner: `bob-${run}`, state: 'CONFIRMED', n: 2 },
    ]);
  });

  it("shows one filled order's trail from all four services, in log order, with trace ids", async () => {
    const path = `/compliance/reports/orders/${buy.orderId}/trail`;
    const trail = await waitFor(
      'the trail from every service',
      () => report<TrailRow>(path),
      (r) =>
        ['trading', 'risk', 'settlement', 'compliance'].every((p) =>
          r.rows.some((row) => row.producer === p),
        ) && r.rows.some((row) => row.type === 'OrderExecuted'),
    );
    const indexes = trail.rows.map((r) => r.leafIndex);
    expect(indexes).toEqual([...indexes].sort((a, b) => a - b));
    expect(new Set(indexes).size).toBe(indexes.length);
    expect(trail.rows.every((r) => r.leafIndex < trail.checkpoint.treeSize)).toBe(true);
    const types = trail.rows.map((r) => `${r.producer}:${r.type}`);
    for (const expected of [
      'trading:OrderCreated',
      'trading:TccTry',
      'risk:TccReply',
      'settlement:TccReply',
      'compliance:TccReply',
      'trading:TccConfirm',
      'trading:OrderAccepted',
      'trading:OrderExecuted',
    ]) {
      expect(types).toContain(expected);
    }
    // The order's own events are in the order trading produced them.
    const lifecycle = types.filter((t) => /^trading:Order/.test(t));
    expect(lifecycle.indexOf('trading:OrderCreated')).toBeLessThan(
      lifecycle.indexOf('trading:OrderAccepted'),
    );
    expect(lifecycle.indexOf('trading:OrderAccepted')).toBeLessThan(
      lifecycle.indexOf('trading:OrderExecuted'),
    );
    // When, and the trace to follow.
    // (Null where the producer had no active span, as in these processes without a tracer.)
    for (const row of trail.rows) {
      expect(row.traceId === null || /^[0-9a-f]{32}$/.test(row.traceId)).toBe(true);
      expect(Date.parse(row.occurredAt)).not.toBeNaN();
    }

    // The refused order's trail carries compliance's refusal with its code.
    const refusedTrail = await report<TrailRow>(
      `/compliance/reports/orders/${refused.orderId}/trail`,
    );
    expect(
      refusedTrail.rows.find((r) => r.producer === 'compliance' && r.type === 'TccReply')?.details,
    ).toMatchObject({
      outcome: 'FAILED',
      reason: { code: 'COMPLIANCE_MAX_ORDER_NOTIONAL' },
    });
  });

  it("gives a blotter equal to trading's executed trades, and the same rows as CSV", async () => {
    const trades = await query<{
      trade_id: string;
      price_minor: string;
      quantity: string;
      buy_order_id: string;
      sell_order_id: string;
    }>(
      services.trading.databaseUrl,
      'SELECT trade_id, price_minor, quantity::text, buy_order_id, sell_order_id FROM trades ORDER BY sequence',
    );
    expect(trades).toHaveLength(2);
    const range = `from=${encodeURIComponent(dayStart)}&to=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`;
    const blotter = await waitFor(
      'both trades in the blotter',
      () => report<BlotterRow>(`/compliance/reports/blotter?${range}`),
      (r) => r.rows.length >= trades.length,
    );
    expect(
      blotter.rows.map((r) => ({
        trade_id: r.tradeId,
        price_minor: parseMoney('USD', r.price).minor.toString(),
        quantity: r.quantity,
        buy_order_id: r.buyOrderId,
        sell_order_id: r.sellOrderId,
      })),
    ).toEqual(trades);

    // Paged one row at a time, with the cursor pinning the same checkpoint.
    const first = await report<BlotterRow>(`/compliance/reports/blotter?${range}&limit=1`);
    expect(first.rows).toHaveLength(1);
    expect(first.nextCursor).not.toBeNull();
    const second = await report<BlotterRow>(
      `/compliance/reports/blotter?${range}&limit=1&cursor=${first.nextCursor}`,
    );
    expect(second.checkpoint).toEqual(first.checkpoint);
    expect([...first.rows, ...second.rows].map((r) => r.tradeId)).toEqual(
      trades.map((t) => t.trade_id),
    );

    const csv = await reportCsv(`/compliance/reports/blotter?${range}`);
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    const checkpointSize = Number(csv.headers['x-audit-checkpoint-tree-size']);
    expect(checkpointSize).toBeGreaterThanOrEqual(blotter.checkpoint.treeSize);
    const [header, ...rows] = parseCsv(csv.body);
    expect(header).toEqual(blotter.columns);
    expect(rows).toEqual(
      blotter.rows.map((row) =>
        blotter.columns.map((c) => {
          const value = (row as unknown as Record<string, unknown>)[c];
          return value === null || value === undefined ? '' : String(value);
        }),
      ),
    );
  });

  it('cuts each report at a signed checkpoint the offline verifier accepts, and audits the pull', async () => {
    const trail = await report<TrailRow>(`/compliance/reports/orders/${buy.orderId}/trail`);
    const size = trail.checkpoint.treeSize;
    const entry = trail.rows[0]!.leafIndex;
    const get = async (path: string) =>
      (
        await services.compliance.process.request(path, {
          as: 'auditor',
          timeoutMs: 30_000,
        })
      ).body;
    const dir = await mkdtemp(join(tmpdir(), 'compliance-day-'));
    try {
      const files = {
        checkpoint: join(dir, 'checkpoint.json'),
        export: join(dir, 'export.jsonl'),
        key: join(dir, 'key.pem'),
        inclusion: join(dir, 'inclusion.json'),
      };
      await writeFile(files.checkpoint, JSON.stringify(trail.checkpoint));
      await writeFile(files.export, await get(`/compliance/audit/entries?checkpoint=${size}`));
      const key = JSON.parse(
        await get(`/compliance/audit/public-key?keyId=${trail.checkpoint.keyId}`),
      ) as { publicKey: string };
      await writeFile(files.key, key.publicKey);
      await writeFile(
        files.inclusion,
        await get(`/compliance/audit/proof/inclusion?entry=${entry}&checkpoint=${size}`),
      );
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [
          '-r',
          '@swc-node/register',
          'apps/compliance/src/cli/audit-verify.ts',
          files.export,
          '--checkpoint',
          files.checkpoint,
          '--public-key',
          files.key,
          '--inclusion',
          files.inclusion,
        ],
        { cwd: join(__dirname, '../../..') },
      );
      expect(stdout).toMatch(/verified|OK/i);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }

    // Each pull is in the log, with who pulled which report.
    const pulls = await query<{ payload: string }>(
      services.compliance.databaseUrl,
      `SELECT payload FROM audit_entries WHERE type = 'ComplianceReportPulled' AND aggregate_id = 'report:order-trail'`,
    );
    expect(pulls.map((p) => JSON.parse(p.payload) as Record<string, unknown>)).toContainEqual(
      expect.objectContaining({
        actor: 'spiffe://cluster.local/ns/finance/sa/auditor',
        report: 'order-trail',
        parameters: expect.objectContaining({ orderId: buy.orderId }),
      }),
    );
  });

  it('answers 400 naming the field for a bad query', async () => {
    const { status, body } = await call<{ errors: Array<{ field: string }> }>(
      services.compliance,
      'GET',
      '/compliance/reports/blotter?from=yesterday',
      { as: 'auditor' },
    );
    expect(status).toBe(400);
    expect(body.errors.map((e) => e.field)).toContain('query.from');
  });
});
