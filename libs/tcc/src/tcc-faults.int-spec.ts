// Each classic TCC fault, injected deterministically on a real database: every transaction must end
// with all branches in its final state and no business effect applied twice.
import { createLogger } from '@finance/platform';
import type { DataSource } from 'typeorm';
import { Registry } from 'prom-client';
import { ChaosBus, participants, reservations, tccDatabase } from '../test/chaos-bus';
import { BranchSpec, TccCoordinator, TccCoordinatorOptions } from './coordinator/coordinator';
import { purgeBarrier } from './participant/participant';

const BRANCHES: BranchSpec[] = [
  { branchId: 'funds', participant: 'trading', resource: 'quota', payload: { amount: '100.00' } },
  { branchId: 'risk', participant: 'risk', resource: 'quota', payload: {} },
  { branchId: 'clearing', participant: 'settlement', resource: 'quota', payload: {} },
];

describe('TCC under injected faults', () => {
  let db: DataSource;
  let now = Date.parse('2026-11-22T10:00:00Z');
  let coordinator: TccCoordinator;
  let bus: ChaosBus;

  beforeAll(async () => {
    db = await tccDatabase('tcc_faults');
    coordinator = newCoordinator();
    bus = new ChaosBus(db, coordinator, participants());
  });
  afterAll(() => db?.destroy());
  beforeEach(() => {
    bus.pending.length = 0;
  });

  const newCoordinator = (options: Partial<TccCoordinatorOptions> = {}) =>
    new TccCoordinator({
      dataSource: db,
      service: 'trading',
      logger: createLogger('tcc-test', 'silent'),
      clock: () => now,
      retryInitialMs: 1_000,
      registry: new Registry(),
      ...options,
    });

  const begin = (branches = BRANCHES) =>
    coordinator.begin({ kind: 'test', branches, timeoutMs: 10_000, correlationId: 'order-1' });

  it('confirms every branch exactly once on the happy path, with the outcome awaitable', async () => {
    const gtid = await begin();
    await bus.drain();
    expect(await coordinator.awaitOutcome(gtid, 1_000)).toEqual({ state: 'CONFIRMED', gtid });
    expect(
      (await reservations(db, gtid)).map((r) => [r.branch_id, r.status, r.tries, r.confirms]),
    ).toEqual([
      ['clearing', 'CONFIRMED', 1, 1],
      ['funds', 'CONFIRMED', 1, 1],
      ['risk', 'CONFIRMED', 1, 1],
    ]);
  });

  it('applies duplicated commands and replies once, and Confirm delivered three times once', async () => {
    const gtid = await begin();
    for (let round = 0; round < 6; round++) {
      await bus.collect();
      for (const message of [...bus.pending]) {
        const times = message.type === 'TccConfirm' ? 3 : 2;
        for (let i = 0; i < times; i++) await bus.deliver(message);
      }
      bus.pending.length = 0;
    }
    expect((await coordinator.outcome(gtid)).state).toBe('CONFIRMED');
    for (const r of await reservations(db, gtid))
      expect([r.tries, r.confirms, r.cancels]).toEqual([1, 1, 0]);
  });

  it('cancels every branch when a Try reply is lost and the deadline passes', async () => {
    const gtid = await begin();
    // The risk branch reserves, but its reply never arrives (not even for re-sent Tries).
    await bus.drain(
      (m) => !(m.type === 'TccReply' && (m.data as { branchId: string }).branchId === 'risk'),
    );
    expect((await coordinator.outcome(gtid)).state).toBe('PENDING');
    now += 11_000;
    await coordinator.tick();
    await bus.drain(
      (m) => !(m.type === 'TccReply' && (m.data as { phase: string }).phase === 'TRY'),
    );
    const outcome = await coordinator.outcome(gtid);
    expect(outcome).toMatchObject({ state: 'CANCELLED', failure: { code: 'TIMEOUT' } });
    for (const r of await reservations(db, gtid))
      expect([r.status, r.tries, r.cancels, r.confirms]).toEqual(['RELEASED', 1, 1, 0]);
  });

  it('records a Cancel that arrives before its Try as a no-op, and refuses the Try that comes after', async () => {
    const gtid = await begin();
    await bus.collect();
    const tries = bus.pending.splice(0); // held back: the network delays every Try
    now += 11_000;
    await coordinator.tick(); // deadline passed: cancel everything
    await bus.drain((m) => m.type !== 'TccTry');
    expect(await coordinator.outcome(gtid)).toMatchObject({ state: 'CANCELLED' });
    const [{ blocked }] = await db.query(
      `SELECT count(*)::int AS blocked FROM tcc_barrier WHERE gtid = $1 AND phase = 'TRY' AND outcome = 'BLOCKED'`,
      [gtid],
    );
    expect(blocked).toBe(3);
    for (const late of tries) await bus.deliver(late); // the hanging Tries finally arrive
    await bus.drain();
    expect(await reservations(db, gtid)).toEqual([]); // nothing reserved, nothing to leak
    expect((await coordinator.outcome(gtid)).state).toBe('CANCELLED');
  });

  it('returns the failing branch and its business reason, with the other branches released', async () => {
    const gtid = await begin([
      BRANCHES[0],
      { ...BRANCHES[1], payload: { refuse: 'RISK_LIMIT_EXCEEDED' } },
      BRANCHES[2],
    ]);
    await bus.drain();
    expect(await coordinator.awaitOutcome(gtid, 1_000)).toEqual({
      state: 'CANCELLED',
      gtid,
      failure: {
        branchId: 'risk',
        participant: 'risk',
        code: 'RISK_LIMIT_EXCEEDED',
        message: 'refused by risk',
      },
    });
    const rows = await reservations(db, gtid);
    // The refused branch's own changes were rolled back; the others were reserved then released once.
    expect(rows.map((r) => [r.branch_id, r.status, r.tries, r.cancels])).toEqual([
      ['clearing', 'RELEASED', 1, 1],
      ['funds', 'RELEASED', 1, 1],
    ]);
  });

  it('re-sends unanswered commands with backoff until they are acknowledged', async () => {
    const gtid = await begin();
    await bus.collect();
    bus.pending.length = 0; // every Try lost
    now += 1_500;
    expect((await coordinator.tick()).resent).toBe(3);
    expect((await coordinator.tick()).resent).toBe(0); // backoff: not due again yet
    await bus.drain();
    expect((await coordinator.outcome(gtid)).state).toBe('CONFIRMED');
    const log: Array<{ kind: string }> = await db.query(
      'SELECT kind FROM tcc_log WHERE gtid = $1 ORDER BY id',
      [gtid],
    );
    expect(log.filter((l) => l.kind === 'RESENT')).toHaveLength(3);
  });

  it('takes batched commands and replies: a duplicated batch, a refused branch in it and a lost reply batch', async () => {
    const batching = newCoordinator({ batchCommands: true });
    const batchBus = new ChaosBus(db, batching, participants());
    const refusedRisk = BRANCHES.map((b) =>
      b.branchId === 'risk' ? { ...b, payload: { refuse: 'LIMIT' } } : b,
    );
    // Begun in one turn of the event loop: recorded as one group, with one Try batch per participant.
    const [first, second, ok1, ok2, refused] = await Promise.all(
      [BRANCHES, BRANCHES, BRANCHES, BRANCHES, refusedRisk].map((branches) =>
        batching.begin({ kind: 'test', branches, timeoutMs: 10_000, correlationId: 'batch' }),
      ),
    );
    await batchBus.collect();
    expect(
      batchBus.pending.map((m) => [m.type, (m.data as { commands: unknown[] }).commands.length]),
    ).toEqual([
      ['TccCommandBatch', 5],
      ['TccCommandBatch', 5],
      ['TccCommandBatch', 5],
    ]);
    const batches = batchBus.pending.splice(0);
    // Each batch arrives twice, once as a consumer run; risk's refusal sends that run one by one.
    for (const batch of batches) {
      expect(await batchBus.deliverRun([batch, batch])).toBe(
        (batch.data as { participant: string }).participant === 'risk' ? 'one-by-one' : 'run',
      );
    }
    await batchBus.collect();
    // The run's replies went back as one batch; the one-by-one redo answered branch by branch.
    const replies = batchBus.pending.splice(0);
    expect(replies.filter((m) => m.type === 'TccReplyBatch')).toHaveLength(2);
    // Risk's replies are lost: the Tries are sent again (still batched) and answered again.
    for (const reply of replies)
      if ((reply.data as { participant: string }).participant !== 'risk')
        await batchBus.deliver(reply);
    now += 1_500;
    await batching.tick();
    await batchBus.drainRuns();
    for (const gtid of [first, second, ok1, ok2])
      expect((await batching.outcome(gtid)).state).toBe('CONFIRMED');
    expect(await batching.outcome(refused)).toMatchObject({
      state: 'CANCELLED',
      failure: { branchId: 'risk', code: 'LIMIT' },
    });
    for (const gtid of [first, second, ok1, ok2])
      for (const r of await reservations(db, gtid))
        expect([r.status, r.tries, r.confirms, r.cancels]).toEqual(['CONFIRMED', 1, 1, 0]);
    expect(
      (await reservations(db, refused)).map((r) => [r.branch_id, r.status, r.tries, r.cancels]),
    ).toEqual([
      ['clearing', 'RELEASED', 1, 1],
      ['funds', 'RELEASED', 1, 1],
    ]);
    expect(batchBus.seen.get('TccCommandBatch')).toBeGreaterThan(3); // re-sent and second phase
  });

  it('decides when the last replies arrive in a run that waited for another run on the same transaction', async () => {
    // Replies of one transaction can travel on different partitions (in batches keyed by another
    // transaction), so two consumer runs may apply them at the same time.
    const gtid = await begin();
    await bus.collect();
    for (const command of bus.pending.splice(0)) await bus.deliver(command);
    await bus.collect();
    const replies = bus.pending.splice(0);
    expect(replies.map((m) => m.type)).toEqual(['TccReply', 'TccReply', 'TccReply']);
    const first = db.createQueryRunner();
    await first.connect();
    try {
      await first.startTransaction();
      await coordinator.onReplies([{ message: replies[0] }], first.manager);
      const second = db.transaction((manager) =>
        coordinator.onReplies(
          replies.slice(1).map((message) => ({ message })),
          manager,
        ),
      );
      // The second run now waits for the first one's lock on the transaction.
      for (let waited = 0; ; waited += 20) {
        const [{ n }] = await db.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        );
        if (n > 0) break;
        if (waited > 5_000) throw new Error('the second run never waited for the lock');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await first.commitTransaction();
      await second;
    } finally {
      await first.release();
    }
    expect(await coordinator.outcome(gtid)).toEqual({
      state: 'PENDING',
      gtid,
      current: 'CONFIRMING',
    });
    await bus.drain();
    expect(await coordinator.outcome(gtid)).toEqual({ state: 'CONFIRMED', gtid });
  });

  it('purges finished transactions and old barrier rows in batches, leaving open ones alone', async () => {
    const finished = await begin();
    await bus.drain();
    const open = await begin();
    await bus.collect();
    bus.pending.length = 0; // `open` stays in Try
    now += 2 * 24 * 3600_000;
    expect(await coordinator.purgeFinished(24 * 3600_000, 1)).toBeGreaterThanOrEqual(1);
    await expect(coordinator.outcome(finished)).rejects.toThrow(/unknown global transaction/);
    expect((await coordinator.outcome(open)).state).toBe('PENDING');
    const [{ logs }] = await db.query('SELECT count(*)::int AS logs FROM tcc_log WHERE gtid = $1', [
      finished,
    ]);
    expect(logs).toBe(0);

    expect(await purgeBarrier(db, 60_000)).toBe(0); // all barrier rows are fresh
    await db.query(
      `UPDATE tcc_barrier SET created_at = created_at - interval '2 days' WHERE gtid = $1`,
      [finished],
    );
    // 3 branches x (TRY, CONFIRM), removed two at a time.
    expect(await purgeBarrier(db, 24 * 3600_000, 2)).toBe(6);
  });
});
