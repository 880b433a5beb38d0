// The risk-quota branch driven through a real TccParticipant on a real database migrated like the
// service's: what an order reserves, when it is refused and why, and that usage never passes the quota.
import {
  Envelope,
  OrderPlacementPayload,
  PLACEMENT_RESOURCES,
  TccCancel,
  TccConfirm,
  TccReply,
  TccTry,
} from '@finance/contracts';
import { createEnvelope } from '@finance/messaging';
import { openDatabase, parseOrProblem } from '@finance/platform';
import { ParticipantOutcome, TccParticipant } from '@finance/tcc';
import { createTestDatabase } from '@finance/testing';
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { riskService } from '../service';
import { limitsBody, setLimits } from '../limits/limits';
import { engageKillSwitch, releaseKillSwitch } from '../kill-switch/kill-switch';
import { WasmRiskPolicy } from '../pre-trade/risk-policy';
import { RiskQuotaBranch } from './risk-quota.branch';

const config = {
  RISK_DEFAULT_MAX_ORDER_VALUE: '1000000',
  RISK_DEFAULT_QUOTA: '5000000',
  KAFKA_TOPIC_PREFIX: '',
  RISK_REJECTION_BURST_COUNT: 5,
  RISK_REJECTION_BURST_WINDOW_SECONDS: 10,
};

type Reply = Envelope<'TccReply', { outcome: string; reason?: { code: string; message: string } }>;

describe('risk-quota branch of order placement', () => {
  let db: DataSource;
  let participant: TccParticipant;

  beforeAll(async () => {
    const { url } = await createTestDatabase('risk_quota');
    db = await openDatabase({
      url,
      applicationName: 'risk-quota-test',
      poolSize: 44,
      migrations: riskService.migrations,
    });
    participant = new TccParticipant({
      service: 'risk',
      resources: {
        [PLACEMENT_RESOURCES.riskQuota]: new RiskQuotaBranch(config, db, new WasmRiskPolicy()),
      },
    });
  });

  const setAccountLimits = (accountId: string, body: Record<string, unknown>) =>
    setLimits(db, config, {
      scope: { scope: 'ACCOUNT', accountId },
      changes: parseOrProblem(limitsBody, body, 'body'),
      changedBy: 'risk-officer',
    });
  afterAll(() => db?.destroy());

  function order(accountId: string, notional: string, extra: Partial<OrderPlacementPayload> = {}) {
    return {
      orderId: `ord-${randomUUID()}`,
      accountId,
      symbol: 'ACME',
      side: 'BUY',
      orderType: 'LIMIT',
      timeInForce: 'GTC',
      quantity: '100',
      price: '10.00',
      notional: { amount: notional, currency: 'USD' },
      fees: { amount: '1.50', currency: 'USD' },
      ...extra,
    } satisfies OrderPlacementPayload;
  }

  const branch = (gtid: string) => ({
    globalTransactionId: gtid,
    branchId: 'risk',
    participant: 'risk' as const,
    resource: PLACEMENT_RESOURCES.riskQuota,
  });
  const meta = (gtid: string) => ({
    producer: 'trading' as const,
    aggregateId: gtid,
    aggregateSequence: 1,
    correlationId: gtid,
  });

  function tryCommand(gtid: string, payload: Record<string, unknown>) {
    const deadline = new Date(Date.now() + 60_000).toISOString();
    return createEnvelope(TccTry, { ...branch(gtid), deadline, payload }, meta(gtid));
  }

  /** Delivers a command in its own transaction, as the inbox consumer does; returns the reply. */
  async function deliver(
    command: Envelope,
  ): Promise<{ outcome: ParticipantOutcome; reply: Reply }> {
    const outcome = await db.transaction(async (manager) => {
      const result = await participant.handle(command, manager);
      // The newest reply to this very message: a redelivered command is answered again.
      const rows: Array<{ payload: Reply }> = await manager.query(
        `SELECT payload FROM outbox WHERE payload->>'type' = $1
         AND payload->'metadata'->>'causationId' = $2 ORDER BY position DESC LIMIT 1`,
        [TccReply.type, command.metadata.eventId],
      );
      return { result, reply: rows[0]?.payload };
    });
    expect(outcome.reply).toBeDefined();
    return { outcome: outcome.result, reply: outcome.reply };
  }

  const tryOrder = (gtid: string, payload: Record<string, unknown>) =>
    deliver(tryCommand(gtid, payload));
  const confirm = (gtid: string) => deliver(createEnvelope(TccConfirm, branch(gtid), meta(gtid)));
  const cancel = (gtid: string) => deliver(createEnvelope(TccCancel, branch(gtid), meta(gtid)));

  /** What the account's placements hold in risk (its usage row), in major units. */
  async function used(accountId: string, currency = 'USD'): Promise<string> {
    const [row]: Array<{ used: string }> = await db.query(
      `SELECT (used_minor / 100.0)::numeric(30, 2)::text AS used FROM risk_limits WHERE account_id = $1 AND currency = $2`,
      [accountId, currency],
    );
    return row?.used ?? 'no usage row';
  }

  async function openOrder(orderId: string) {
    const rows: Array<{ state: string; open_minor: string }> = await db.query(
      'SELECT state, open_minor FROM risk_orders WHERE order_id = $1',
      [orderId],
    );
    return rows[0];
  }

  async function reservation(gtid: string) {
    const rows: Array<{ state: string; amount_minor: string }> = await db.query(
      'SELECT state, amount_minor FROM risk_reservations WHERE gtid = $1',
      [gtid],
    );
    return rows;
  }

  it('reserves the order value on Try and keeps it used after Confirm', async () => {
    const gtid = randomUUID();
    const placed = order('ACC-CONFIRM', '1000.00');
    const tried = await tryOrder(gtid, placed);
    expect(tried.reply.data).toMatchObject({ phase: 'TRY', outcome: 'SUCCEEDED' });
    expect(await reservation(gtid)).toEqual([{ state: 'RESERVED', amount_minor: '100000' }]);
    expect(await used('ACC-CONFIRM')).toBe('1000.00');

    const confirmed = await confirm(gtid);
    expect(confirmed.reply.data).toMatchObject({ phase: 'CONFIRM', outcome: 'SUCCEEDED' });
    expect(await reservation(gtid)).toEqual([{ state: 'CONFIRMED', amount_minor: '100000' }]);
    expect(await openOrder(placed.orderId)).toEqual({ state: 'OPEN', open_minor: '100000' });
  });

  it('gives the quota back on Cancel, once, leaving other orders reserved', async () => {
    const other = randomUUID();
    await tryOrder(other, order('ACC-CANCEL', '250.00'));
    const before = await used('ACC-CANCEL');

    const gtid = randomUUID();
    await tryOrder(gtid, order('ACC-CANCEL', '700.25'));
    expect(await used('ACC-CANCEL')).toBe('950.25');
    const cancelled = await cancel(gtid);
    expect(cancelled).toMatchObject({
      outcome: 'executed',
      reply: { data: { phase: 'CANCEL', outcome: 'SUCCEEDED' } },
    });
    expect(await used('ACC-CANCEL')).toBe(before);
    expect(await reservation(gtid)).toEqual([{ state: 'RELEASED', amount_minor: '70025' }]);

    expect((await cancel(gtid)).outcome).toBe('duplicate');
    expect(await used('ACC-CANCEL')).toBe('250.00');
  });

  it('refuses an order above the max order value, naming the limit, reserves nothing and records the breach', async () => {
    const gtid = randomUUID();
    const big = order('ACC-BIG', '1500000.00');
    const { outcome, reply } = await tryOrder(gtid, big);
    expect(outcome).toBe('rejected');
    expect(reply.data).toMatchObject({
      outcome: 'FAILED',
      reason: {
        code: 'ORDER_VALUE_LIMIT',
        message: 'order value 1500000.00 USD exceeds the max order value 1000000.00 USD firm-wide',
      },
    });
    expect(await reservation(gtid)).toEqual([]);
    expect(await used('ACC-BIG')).toBe('no usage row');
    expect(await openOrder(big.orderId)).toBeUndefined();
    const breaches: Array<{ code: string; violations: Array<{ code: string }> }> = await db.query(
      'SELECT code, violations FROM risk_limit_breaches WHERE gtid = $1',
      [gtid],
    );
    expect(breaches).toEqual([
      { code: 'ORDER_VALUE_LIMIT', violations: [expect.objectContaining({ scope: 'FIRM' })] },
    ]);
    // Its Cancel (the coordinator cancels every branch) has nothing to undo.
    expect((await cancel(gtid)).outcome).toBe('nothing-to-cancel');

    // 20 digits is valid in the contract but beyond a bigint of minor units: still a refusal.
    const huge = await tryOrder(randomUUID(), order('ACC-BIG', '99999999999999999999.99'));
    expect(huge).toMatchObject({
      outcome: 'rejected',
      reply: { data: { reason: { code: 'ORDER_VALUE_LIMIT' } } },
    });

    // Exactly the max passes: only an order above it is refused. Fees do not count.
    const atLimit = await tryOrder(randomUUID(), order('ACC-BIG', '1000000.00'));
    expect(atLimit.reply.data.outcome).toBe('SUCCEEDED');
  });

  it("applies an account's own limits in their currency instead of the defaults", async () => {
    await setAccountLimits('ACC-OWN', { currency: 'EUR', maxOrderValue: '500', quota: '800' });
    const eur = (notional: string) =>
      order('ACC-OWN', notional, { notional: { amount: notional, currency: 'EUR' } });
    const refused = await tryOrder(randomUUID(), eur('500.01'));
    expect(refused.reply.data.reason).toEqual({
      code: 'ORDER_VALUE_LIMIT',
      message: 'order value 500.01 EUR exceeds the max order value 500.00 EUR of account ACC-OWN',
    });
    // The same amount in USD still falls under the defaults.
    expect((await tryOrder(randomUUID(), order('ACC-OWN', '500.01'))).reply.data.outcome).toBe(
      'SUCCEEDED',
    );
  });

  it('refuses an order the remaining quota cannot hold, naming quota and usage', async () => {
    await setAccountLimits('ACC-QUOTA', { currency: 'USD', maxOrderValue: '1000', quota: '1000' });
    expect((await tryOrder(randomUUID(), order('ACC-QUOTA', '600'))).reply.data.outcome).toBe(
      'SUCCEEDED',
    );
    const gtid = randomUUID();
    const { reply } = await tryOrder(gtid, order('ACC-QUOTA', '400.01'));
    expect(reply.data).toMatchObject({
      outcome: 'FAILED',
      reason: {
        code: 'RISK_QUOTA_EXCEEDED',
        message:
          'order value 400.01 USD on top of an exposure of 600.00 USD exceeds the risk quota 1000.00 USD of account ACC-QUOTA',
      },
    });
    expect(await reservation(gtid)).toEqual([]);
    expect(await used('ACC-QUOTA')).toBe('600.00');
    expect((await tryOrder(randomUUID(), order('ACC-QUOTA', '400'))).reply.data.outcome).toBe(
      'SUCCEEDED',
    );
  });

  it('lets an officer lower the quota below usage: open orders stay, new ones wait for room', async () => {
    const open = randomUUID();
    await tryOrder(open, order('ACC-LOWER', '900'));
    await setAccountLimits('ACC-LOWER', { currency: 'USD', maxOrderValue: '1000', quota: '500' });
    const refused = await tryOrder(randomUUID(), order('ACC-LOWER', '1'));
    expect(refused.reply.data.reason?.message).toContain('on top of an exposure of 900.00 USD');
    await cancel(open);
    expect((await tryOrder(randomUUID(), order('ACC-LOWER', '500'))).reply.data.outcome).toBe(
      'SUCCEEDED',
    );
  });

  it('never lets 20 concurrent Tries on one account take more than its quota', async () => {
    // Default quota 5,000,000.00: room for 16 orders of 300,000.00, starting from no row at all.
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        tryOrder(randomUUID(), order('ACC-RACE', '300000.00')).then((r) => r.reply.data),
      ),
    );
    const succeeded = results.filter((r) => r.outcome === 'SUCCEEDED');
    expect(succeeded).toHaveLength(16);
    expect(results.filter((r) => r.reason?.code === 'RISK_QUOTA_EXCEEDED')).toHaveLength(4);
    expect(await used('ACC-RACE')).toBe('4800000.00');
    const [{ sum }] = await db.query(
      `SELECT sum(amount_minor)::text AS sum FROM risk_reservations WHERE account_id = 'ACC-RACE' AND state = 'RESERVED'`,
    );
    expect(sum).toBe('480000000');
  });

  it('has no second effect when the same Try arrives again', async () => {
    const gtid = randomUUID();
    const command = tryCommand(gtid, order('ACC-DUP', '100'));
    expect((await deliver(command)).outcome).toBe('executed');
    const again = await deliver(command);
    expect(again).toMatchObject({
      outcome: 'duplicate',
      reply: { data: { outcome: 'SUCCEEDED' } },
    });
    // A re-sent Try is a new message for the same branch: still one reservation.
    expect((await tryOrder(gtid, order('ACC-DUP', '100'))).outcome).toBe('duplicate');
    expect(await used('ACC-DUP')).toBe('100.00');
    expect(await reservation(gtid)).toHaveLength(1);
  });

  it('records a Cancel before its Try as a no-op and refuses the late Try', async () => {
    const gtid = randomUUID();
    expect((await cancel(gtid)).outcome).toBe('null-compensation');
    const late = await tryOrder(gtid, order('ACC-HANG', '100'));
    expect(late.reply.data).toMatchObject({
      outcome: 'FAILED',
      reason: { code: 'TRY_AFTER_CANCEL' },
    });
    expect(await reservation(gtid)).toEqual([]);
    expect(await used('ACC-HANG')).toBe('no usage row');
  });

  it('refuses a payload that does not match the contract with INVALID_PAYLOAD naming the field', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...order('ACC-BAD', '10'), accountId: undefined }, /^accountId: /],
      [order('ACC-BAD', '-10'), /^notional\.amount: must be > 0$/],
      [order('ACC-BAD', '0'), /^notional\.amount: must be > 0$/],
      [order('ACC-BAD', '10.001'), /^notional\.amount: USD has 2 decimal places/],
      [
        order('ACC-BAD', '10', { notional: { amount: '10', currency: 'XYZ' } }),
        /^notional\.currency: unsupported currency$/,
      ],
      [order('ACC-BAD', '10', { fees: { amount: '-1', currency: 'USD' } }), /^fees\.amount: /],
      [{ ...order('ACC-BAD', '10'), side: 'SHORT' }, /^side: /],
    ];
    for (const [payload, message] of cases) {
      const { reply } = await tryOrder(randomUUID(), payload);
      expect(reply.data).toMatchObject({ outcome: 'FAILED', reason: { code: 'INVALID_PAYLOAD' } });
      expect(reply.data.reason?.message).toMatch(message);
    }
    expect(await used('ACC-BAD')).toBe('no usage row');
  });

  it('counts each reserved order against the throttle at once, and an identical order as a duplicate', async () => {
    await setAccountLimits('ACC-RATE', { ordersPerSecond: '3', duplicateWindowSeconds: '60' });
    const results = [];
    for (let i = 0; i < 4; i++) {
      results.push(
        (await tryOrder(randomUUID(), order('ACC-RATE', `${100 + i}`, { quantity: `${10 + i}` })))
          .reply.data,
      );
    }
    expect(results.map((r) => r.reason?.code ?? r.outcome)).toEqual([
      'SUCCEEDED',
      'SUCCEEDED',
      'SUCCEEDED',
      'ORDER_RATE_PER_SECOND',
    ]);
    await setAccountLimits('ACC-RATE', { ordersPerSecond: null });
    const again = await tryOrder(randomUUID(), order('ACC-RATE', '100', { quantity: '10' }));
    expect(again.reply.data.reason).toMatchObject({ code: 'DUPLICATE_ORDER' });
    expect(again.reply.data.reason?.message).toMatch(
      /^an identical order \(BUY 10 ACME at 10\.00\) was placed \d+ ms ago, within the duplicate-order window of 60 s of account ACC-RATE$/,
    );
  });

  it('counts open orders on the side an order adds to against the max position', async () => {
    await setAccountLimits('ACC-POS', { maxPosition: '150' });
    expect(
      (await tryOrder(randomUUID(), order('ACC-POS', '1000', { quantity: '100' }))).reply.data
        .outcome,
    ).toBe('SUCCEEDED');
    const over = await tryOrder(randomUUID(), order('ACC-POS', '510', { quantity: '51' }));
    expect(over.reply.data.reason).toMatchObject({
      code: 'POSITION_LIMIT',
      message:
        'buying 51 ACME with a position of 0 and 100 open to buy exceeds the max position 150 of account ACC-POS',
    });
    // Selling is the other side: nothing open there.
    const sell = await tryOrder(
      randomUUID(),
      order('ACC-POS', '1500', { quantity: '150', side: 'SELL' }),
    );
    expect(sell.reply.data.outcome).toBe('SUCCEEDED');
  });

  it('refuses every order in the scope of an engaged kill switch until it is released', async () => {
    await db.transaction((m) =>
      engageKillSwitch(m, '', {
        scope: { scope: 'SYMBOL', symbol: 'HALT' },
        reason: 'news pending',
        source: 'MANUAL',
        by: 'risk-officer',
      }),
    );
    const halted = await tryOrder(randomUUID(), order('ACC-KS', '10', { symbol: 'HALT' }));
    expect(halted.reply.data.reason).toEqual({
      code: 'KILL_SWITCH_ACTIVE',
      message: 'the kill switch of symbol HALT is engaged: news pending',
    });
    expect((await tryOrder(randomUUID(), order('ACC-KS', '10'))).reply.data.outcome).toBe(
      'SUCCEEDED',
    );
    await db.transaction((m) =>
      releaseKillSwitch(m, '', { scope: { scope: 'SYMBOL', symbol: 'HALT' }, by: 'risk-officer' }),
    );
    expect(
      (await tryOrder(randomUUID(), order('ACC-KS', '11', { symbol: 'HALT' }))).reply.data.outcome,
    ).toBe('SUCCEEDED');
  });

  it('stops an account whose orders are refused in a burst, with an alert', async () => {
    await setAccountLimits('ACC-BURST', { maxOrderQuantity: '1' });
    for (let i = 0; i < 5; i++) {
      const { reply } = await tryOrder(randomUUID(), order('ACC-BURST', `${10 + i}`));
      expect(reply.data.reason?.code).toBe('ORDER_QUANTITY_LIMIT');
    }
    const [ks]: Array<{ source: string; reason: string }> = await db.query(
      `SELECT source, reason FROM risk_kill_switches WHERE target = 'ACCOUNT:ACC-BURST' AND released_at IS NULL`,
    );
    expect(ks).toMatchObject({ source: 'REJECTION_BURST' });
    expect(ks.reason).toMatch(/^5 orders of account ACC-BURST refused within 10 s \(limit 5\)/);
    const events: Array<{ type: string }> = await db.query(
      `SELECT payload->>'type' AS type FROM outbox WHERE message_key = 'ACCOUNT:ACC-BURST' ORDER BY position`,
    );
    expect(events.map((e) => e.type)).toEqual(['KillSwitchChanged', 'RiskAlertRaised']);
    const next = await tryOrder(randomUUID(), order('ACC-BURST', '1', { quantity: '1' }));
    expect(next.reply.data.reason?.code).toBe('KILL_SWITCH_ACTIVE');
  });
});
