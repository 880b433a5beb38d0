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
import { parseMoney } from '@finance/money';
import { openDatabase } from '@finance/platform';
import { ParticipantOutcome, TccParticipant } from '@finance/tcc';
import { createTestDatabase } from '@finance/testing';
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { riskService } from '../service';
import { readAccountLimits, setAccountLimits } from './risk-limits';
import { RiskQuotaBranch } from './risk-quota.branch';

const config = {
  RISK_DEFAULT_MAX_ORDER_VALUE: '1000000',
  RISK_DEFAULT_QUOTA: '5000000',
  KAFKA_TOPIC_PREFIX: '',
};

type Reply = Envelope<'TccReply', { outcome: string; reason?: { code: string; message: string } }>;

describe('risk-quota branch of order placement', () => {
  let db: DataSource;
  const participant = new TccParticipant({
    service: 'risk',
    resources: { [PLACEMENT_RESOURCES.riskQuota]: new RiskQuotaBranch(config) },
  });

  beforeAll(async () => {
    const { url } = await createTestDatabase('risk_quota');
    db = await openDatabase({
      url,
      applicationName: 'risk-quota-test',
      poolSize: 22,
      migrations: riskService.migrations,
    });
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

  async function used(accountId: string, currency = 'USD'): Promise<string> {
    const view = await readAccountLimits(db, config, accountId);
    return view.limits.find((l) => l.currency === currency)?.used ?? 'no usage row';
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
    const view = await readAccountLimits(db, config, 'ACC-CONFIRM');
    expect(view.limits).toEqual([
      expect.objectContaining({
        currency: 'USD',
        maxOrderValue: '1000000.00',
        quota: '5000000.00',
        used: '1000.00',
        available: '4999000.00',
        source: 'DEFAULT',
      }),
    ]);
    expect(view.reservations).toEqual([
      expect.objectContaining({
        gtid,
        orderId: placed.orderId,
        amount: '1000.00',
        currency: 'USD',
        state: 'CONFIRMED',
      }),
    ]);
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

  it('refuses an order above the max order value, naming the limit, and reserves nothing', async () => {
    const gtid = randomUUID();
    const { outcome, reply } = await tryOrder(gtid, order('ACC-BIG', '1500000.00'));
    expect(outcome).toBe('rejected');
    expect(reply.data).toMatchObject({
      outcome: 'FAILED',
      reason: {
        code: 'ORDER_VALUE_LIMIT',
        message:
          'order value 1500000.00 USD exceeds the max order value 1000000.00 USD of account ACC-BIG',
      },
    });
    expect(await reservation(gtid)).toEqual([]);
    expect(await used('ACC-BIG')).toBe('no usage row');
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
    await setAccountLimits(db, config, {
      accountId: 'ACC-OWN',
      limits: {
        currency: 'EUR',
        maxOrderValue: parseMoney('EUR', '500'),
        quota: parseMoney('EUR', '800'),
      },
      changedBy: 'risk-officer',
    });
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
    await setAccountLimits(db, config, {
      accountId: 'ACC-QUOTA',
      limits: {
        currency: 'USD',
        maxOrderValue: parseMoney('USD', '1000'),
        quota: parseMoney('USD', '1000'),
      },
      changedBy: 'risk-officer',
    });
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
          'order value 400.01 USD exceeds what is left of the risk quota 1000.00 USD of account ACC-QUOTA: ' +
          '600.00 USD used, 400.00 USD left',
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
    await setAccountLimits(db, config, {
      accountId: 'ACC-LOWER',
      limits: {
        currency: 'USD',
        maxOrderValue: parseMoney('USD', '1000'),
        quota: parseMoney('USD', '500'),
      },
      changedBy: 'risk-officer',
    });
    const view = await readAccountLimits(db, config, 'ACC-LOWER');
    expect(view.limits[0]).toMatchObject({ quota: '500.00', used: '900.00', available: '0.00' });
    const refused = await tryOrder(randomUUID(), order('ACC-LOWER', '1'));
    expect(refused.reply.data.reason?.message).toContain('900.00 USD used, 0.00 USD left');
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
});
