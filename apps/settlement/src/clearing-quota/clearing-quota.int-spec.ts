// The clearing-quota branch driven through a real TccParticipant on a real database migrated like the
// service's: what an order reserves on the firm's and its account's quota, when it is refused and
// why, and that concurrent orders never take more than either quota.
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
import { openDatabase } from '@finance/platform';
import { ParticipantOutcome, TccParticipant } from '@finance/tcc';
import { createTestDatabase } from '@finance/testing';
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { settlementService } from '../service';
import { readClearingQuota } from './clearing-quota';
import { ClearingQuotaBranch } from './clearing-quota.branch';

const config = {
  SETTLEMENT_DEFAULT_CLEARING_QUOTA: '10000000',
  SETTLEMENT_FIRM_CLEARING_QUOTA: '1000000000',
};
// Same tables, a firm quota small enough to reach; its tests use currencies no other test uses,
// because the firm row of a currency is shared by every account.
const tightConfig = { ...config, SETTLEMENT_FIRM_CLEARING_QUOTA: '30000' };

type Reply = Envelope<'TccReply', { outcome: string; reason?: { code: string; message: string } }>;

describe('clearing-quota branch of order placement', () => {
  let db: DataSource;
  const settlement = (quotas: typeof config) =>
    new TccParticipant({
      service: 'settlement',
      resources: { [PLACEMENT_RESOURCES.clearingQuota]: new ClearingQuotaBranch(quotas) },
    });
  const participant = settlement(config);
  const tightParticipant = settlement(tightConfig);

  beforeAll(async () => {
    const { url } = await createTestDatabase('clearing_quota');
    db = await openDatabase({
      url,
      applicationName: 'clearing-quota-test',
      poolSize: 22,
      migrations: settlementService.migrations,
    });
  });
  afterAll(() => db?.destroy());

  function order(
    accountId: string,
    notional: string,
    currency = 'USD',
    extra: Partial<OrderPlacementPayload> = {},
  ) {
    return {
      orderId: `ord-${randomUUID()}`,
      accountId,
      symbol: 'ACME',
      side: 'BUY',
      orderType: 'LIMIT',
      timeInForce: 'GTC',
      quantity: '100',
      price: '10.00',
      notional: { amount: notional, currency },
      fees: { amount: '0', currency },
      ...extra,
    } satisfies OrderPlacementPayload;
  }

  const branch = (gtid: string) => ({
    globalTransactionId: gtid,
    branchId: 'clearing',
    participant: 'settlement' as const,
    resource: PLACEMENT_RESOURCES.clearingQuota,
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
    via = participant,
  ): Promise<{ outcome: ParticipantOutcome; reply: Reply }> {
    const outcome = await db.transaction(async (manager) => {
      const result = await via.handle(command, manager);
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

  const tryOrder = (gtid: string, payload: Record<string, unknown>, via = participant) =>
    deliver(tryCommand(gtid, payload), via);
  const confirm = (gtid: string) => deliver(createEnvelope(TccConfirm, branch(gtid), meta(gtid)));
  const cancel = (gtid: string) => deliver(createEnvelope(TccCancel, branch(gtid), meta(gtid)));

  /** Used amounts of the account's and the firm's quota in one currency. */
  async function used(accountId: string, currency = 'USD', quotas = config) {
    const view = await readClearingQuota(db, quotas, accountId);
    const [{ firm = 'no usage row' } = {}]: Array<{ firm?: string }> = await db.query(
      'SELECT used_minor::text AS firm FROM clearing_firm_quota WHERE currency = $1',
      [currency],
    );
    return {
      account: view.account.find((q) => q.currency === currency)?.used ?? 'no usage row',
      firmMinor: firm,
    };
  }

  async function reservation(gtid: string) {
    const rows: Array<{ state: string; amount_minor: string }> = await db.query(
      'SELECT state, amount_minor FROM clearing_reservations WHERE gtid = $1',
      [gtid],
    );
    return rows;
  }

  it('reserves the notional on both quotas on Try, for SELL too, and keeps it after Confirm', async () => {
    const gtid = randomUUID();
    const placed = order('ACC-CONFIRM', '1000.00', 'USD', { side: 'SELL' });
    expect((await tryOrder(gtid, placed)).reply.data).toMatchObject({
      phase: 'TRY',
      outcome: 'SUCCEEDED',
    });
    expect(await reservation(gtid)).toEqual([{ state: 'RESERVED', amount_minor: '100000' }]);
    expect((await confirm(gtid)).reply.data).toMatchObject({
      phase: 'CONFIRM',
      outcome: 'SUCCEEDED',
    });
    const view = await readClearingQuota(db, config, 'ACC-CONFIRM');
    expect(view.account).toEqual([
      {
        currency: 'USD',
        quota: '10000000.00',
        used: '1000.00',
        available: '9999000.00',
        source: 'DEFAULT',
      },
    ]);
    expect(view.firm).toEqual([
      expect.objectContaining({ currency: 'USD', quota: '1000000000.00' }),
    ]);
    expect(view.reservations).toEqual([
      expect.objectContaining({
        gtid,
        orderId: placed.orderId,
        amount: '1000.00',
        state: 'CONFIRMED',
      }),
    ]);
  });

  it('gives both quotas back on Cancel, once', async () => {
    await tryOrder(randomUUID(), order('ACC-CANCEL', '250.00', 'SGD'));
    const before = await used('ACC-CANCEL', 'SGD');
    expect(before).toEqual({ account: '250.00', firmMinor: '25000' });

    const gtid = randomUUID();
    await tryOrder(gtid, order('ACC-CANCEL', '700.25', 'SGD'));
    expect(await used('ACC-CANCEL', 'SGD')).toEqual({ account: '950.25', firmMinor: '95025' });
    expect((await cancel(gtid)).outcome).toBe('executed');
    expect(await used('ACC-CANCEL', 'SGD')).toEqual(before);
    expect(await reservation(gtid)).toEqual([{ state: 'RELEASED', amount_minor: '70025' }]);
    expect((await cancel(gtid)).outcome).toBe('duplicate');
    expect(await used('ACC-CANCEL', 'SGD')).toEqual(before);
  });

  it("refuses an order its account's quota cannot hold, taking nothing from the firm's", async () => {
    await tryOrder(randomUUID(), order('ACC-FULL', '9000000', 'CNY'));
    const gtid = randomUUID();
    const { outcome, reply } = await tryOrder(gtid, order('ACC-FULL', '1000000.01', 'CNY'));
    expect(outcome).toBe('rejected');
    expect(reply.data).toMatchObject({
      outcome: 'FAILED',
      reason: {
        code: 'CLEARING_QUOTA_EXCEEDED',
        message:
          'notional 1000000.01 CNY exceeds what is left of the clearing quota 10000000.00 CNY of account ACC-FULL: ' +
          '9000000.00 CNY used, 1000000.00 CNY left',
      },
    });
    // The firm's share was taken first and rolled back with the refusal.
    expect(await used('ACC-FULL', 'CNY')).toEqual({
      account: '9000000.00',
      firmMinor: '900000000',
    });
    expect(await reservation(gtid)).toEqual([]);
    expect((await cancel(gtid)).outcome).toBe('nothing-to-cancel');
  });

  it('refuses a notional too large for any quota as a business refusal, not a retried error', async () => {
    // 20 digits is valid in the contract but beyond a bigint of minor units.
    const { outcome, reply } = await tryOrder(
      randomUUID(),
      order('ACC-HUGE', '99999999999999999999.99', 'USD'),
    );
    expect(outcome).toBe('rejected');
    expect(reply.data.reason).toMatchObject({
      code: 'CLEARING_QUOTA_EXCEEDED',
      message: expect.stringContaining('the firm clearing quota 1000000000.00 USD'),
    });
  });

  it("refuses an order the firm's quota cannot hold, naming the firm quota", async () => {
    expect(
      (await tryOrder(randomUUID(), order('ACC-F1', '20000', 'EUR'), tightParticipant)).reply.data
        .outcome,
    ).toBe('SUCCEEDED');
    const gtid = randomUUID();
    const { reply } = await tryOrder(gtid, order('ACC-F2', '15000', 'EUR'), tightParticipant);
    expect(reply.data).toMatchObject({
      outcome: 'FAILED',
      reason: {
        code: 'CLEARING_QUOTA_EXCEEDED',
        message:
          'notional 15000.00 EUR exceeds what is left of the firm clearing quota 30000.00 EUR: ' +
          '20000.00 EUR used, 10000.00 EUR left',
      },
    });
    // Nothing of the refused Try is left, not even the account's usage row.
    expect(await used('ACC-F2', 'EUR', tightConfig)).toEqual({
      account: 'no usage row',
      firmMinor: '2000000',
    });
    expect(await reservation(gtid)).toEqual([]);
  });

  it('never lets 20 concurrent Tries on one account take more than its quota', async () => {
    // Account quota 10,000,000.00: room for 16 orders of 600,000.00, starting from no rows at all.
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        tryOrder(randomUUID(), order('ACC-RACE', '600000', 'HKD')).then((r) => r.reply.data),
      ),
    );
    expect(results.filter((r) => r.outcome === 'SUCCEEDED')).toHaveLength(16);
    expect(results.filter((r) => r.reason?.code === 'CLEARING_QUOTA_EXCEEDED')).toHaveLength(4);
    expect(await used('ACC-RACE', 'HKD')).toEqual({
      account: '9600000.00',
      firmMinor: '960000000',
    });
  });

  it('never lets 20 concurrent Tries on different accounts take more than the firm quota', async () => {
    // Firm quota 30,000.00: room for 15 orders of 2,000.00 across the accounts.
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        tryOrder(randomUUID(), order(`ACC-FIRM-${i}`, '2000', 'CHF'), tightParticipant).then(
          (r) => r.reply.data,
        ),
      ),
    );
    expect(results.filter((r) => r.outcome === 'SUCCEEDED')).toHaveLength(15);
    expect(results.filter((r) => r.reason?.code === 'CLEARING_QUOTA_EXCEEDED')).toHaveLength(5);
    const [{ firm, accounts }] = await db.query(
      `SELECT (SELECT used_minor FROM clearing_firm_quota WHERE currency = 'CHF')::text AS firm,
              (SELECT sum(used_minor) FROM clearing_quota WHERE currency = 'CHF')::text AS accounts`,
    );
    expect({ firm, accounts }).toEqual({ firm: '3000000', accounts: '3000000' });
  });

  it('has no second effect when the same Try arrives again', async () => {
    const gtid = randomUUID();
    const command = tryCommand(gtid, order('ACC-DUP', '100', 'GBP'));
    expect((await deliver(command)).outcome).toBe('executed');
    expect(await deliver(command)).toMatchObject({
      outcome: 'duplicate',
      reply: { data: { outcome: 'SUCCEEDED' } },
    });
    expect((await tryOrder(gtid, order('ACC-DUP', '100', 'GBP'))).outcome).toBe('duplicate');
    expect(await used('ACC-DUP', 'GBP')).toEqual({ account: '100.00', firmMinor: '10000' });
    expect(await reservation(gtid)).toHaveLength(1);
  });

  it('records a Cancel before its Try as a no-op and refuses the late Try', async () => {
    const gtid = randomUUID();
    expect((await cancel(gtid)).outcome).toBe('null-compensation');
    const late = await tryOrder(gtid, order('ACC-HANG', '100', 'KWD'));
    expect(late.reply.data).toMatchObject({
      outcome: 'FAILED',
      reason: { code: 'TRY_AFTER_CANCEL' },
    });
    expect(await reservation(gtid)).toEqual([]);
    expect(await used('ACC-HANG', 'KWD')).toEqual({
      account: 'no usage row',
      firmMinor: 'no usage row',
    });
  });

  it('refuses a payload that does not match the contract with INVALID_PAYLOAD naming the field', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...order('ACC-BAD', '10', 'JPY'), accountId: undefined }, /^accountId: /],
      [order('ACC-BAD', '-10', 'JPY'), /^notional\.amount: must be > 0$/],
      [order('ACC-BAD', '10.5', 'JPY'), /^notional\.amount: JPY has 0 decimal places/],
      [order('ACC-BAD', '10', 'XYZ'), /^notional\.currency: unsupported currency$/],
      [{ ...order('ACC-BAD', '10', 'JPY'), quantity: '1.5' }, /^quantity: /],
    ];
    for (const [payload, message] of cases) {
      const { reply } = await tryOrder(randomUUID(), payload);
      expect(reply.data).toMatchObject({ outcome: 'FAILED', reason: { code: 'INVALID_PAYLOAD' } });
      expect(reply.data.reason?.message).toMatch(message);
    }
    expect(await used('ACC-BAD', 'JPY')).toEqual({
      account: 'no usage row',
      firmMinor: 'no usage row',
    });
  });
});
