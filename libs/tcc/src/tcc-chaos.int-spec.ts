// Property: whatever the network does to TCC messages (reorder, duplicate, drop) and whenever time
// passes, every global transaction ends all-confirmed or all-cancelled, and the business effects are
// exactly one Try plus one Confirm per branch, or none at all.
import fc from 'fast-check';
import { createLogger } from '@finance/platform';
import { Registry } from 'prom-client';
import type { DataSource } from 'typeorm';
import { ChaosBus, participants, reservations, tccDatabase } from '../test/chaos-bus';
import { TccCoordinator } from './coordinator/coordinator';

type Step =
  | { op: 'deliver' | 'duplicate' | 'drop'; pick: number }
  | { op: 'run'; pick: number; size: number }
  | { op: 'tick' }
  | { op: 'advance'; ms: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('deliver' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('duplicate' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('drop' as const), pick: fc.nat() }) },
  // Several messages of one topic in one transaction, as a consumer run applies them.
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('run' as const),
      pick: fc.nat(),
      size: fc.integer({ min: 2, max: 8 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('tick' as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('advance' as const),
      ms: fc.integer({ min: 100, max: 4_000 }),
    }),
  },
);

// Per transaction, per branch: does the participant refuse its Try?
const refusal = fc.constantFrom(undefined, undefined, undefined, 'LIMIT');
const transaction = fc.tuple(refusal, refusal, refusal);

describe('TCC under random message chaos', () => {
  let db: DataSource;

  beforeAll(async () => {
    db = await tccDatabase('tcc_chaos');
  });
  afterAll(() => db?.destroy());

  it('ends every transaction all-confirmed or all-cancelled with exactly-once effects', async () => {
    const seen = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.array(transaction, { minLength: 1, maxLength: 4 }),
        fc.array(step, { maxLength: 60 }),
        // Commands that leave together travel as one TccCommandBatch per participant.
        fc.boolean(),
        async (transactions, steps, batchCommands) => {
          let now = Date.parse('2026-11-22T10:00:00Z');
          const coordinator = new TccCoordinator({
            dataSource: db,
            service: 'trading',
            logger: createLogger('tcc-chaos', 'silent'),
            clock: () => now,
            retryInitialMs: 1_000,
            retryMaxMs: 4_000,
            registry: new Registry(),
            batchCommands,
          });
          const bus = new ChaosBus(db, coordinator, participants());
          await bus.collect(); // leave earlier runs' leftovers behind
          bus.pending.length = 0;
          bus.seen.clear();

          // Begun at once, so they are recorded (and their Tries sent) as one group.
          const gtids = await Promise.all(
            transactions.map((refusals) =>
              coordinator.begin({
                kind: 'chaos',
                timeoutMs: 5_000,
                correlationId: 'chaos',
                branches: ['funds', 'risk', 'clearing'].map((branchId, i) => ({
                  branchId,
                  participant: (['trading', 'risk', 'settlement'] as const)[i],
                  resource: 'quota',
                  payload: refusals[i] ? { refuse: refusals[i] } : {},
                })),
              }),
            ),
          );
          const refused = new Map(gtids.map((gtid, i) => [gtid, transactions[i].some(Boolean)]));

          for (const s of steps) {
            await bus.collect();
            if (s.op === 'tick') await coordinator.tick();
            else if (s.op === 'advance') now += s.ms;
            else if (s.op === 'run') {
              if (bus.pending.length > 0) await bus.deliverRun(bus.takeRun(s.pick, s.size));
            } else if (bus.pending.length > 0) {
              const message = bus.take(s.pick);
              if (s.op === 'deliver') await bus.deliver(message);
              if (s.op === 'duplicate') {
                await bus.deliver(message);
                bus.pending.push(message); // delivered again later, out of order
              }
            }
          }

          // Then the network heals: everything is delivered and time moves on until all finish.
          for (let round = 0; round < 30; round++) {
            await bus.drainRuns();
            await bus.drain();
            const open = await db.query(
              `SELECT count(*)::int AS n FROM tcc_transactions WHERE gtid = ANY($1) AND finished_at IS NULL`,
              [gtids],
            );
            if (open[0].n === 0) break;
            now += 60_000;
            await coordinator.tick();
          }

          for (const gtid of gtids) {
            const outcome = await coordinator.outcome(gtid);
            expect(['CONFIRMED', 'CANCELLED']).toContain(outcome.state);
            if (refused.get(gtid)) expect(outcome.state).toBe('CANCELLED');
            const branches: Array<{ settled: boolean }> = await db.query(
              'SELECT settled FROM tcc_branches WHERE gtid = $1',
              [gtid],
            );
            expect(branches.every((b) => b.settled)).toBe(true);
            const rows = await reservations(db, gtid);
            for (const r of rows) {
              expect(r.tries).toBe(1);
              if (outcome.state === 'CONFIRMED')
                expect([r.status, r.confirms, r.cancels]).toEqual(['CONFIRMED', 1, 0]);
              else expect([r.status, r.confirms, r.cancels]).toEqual(['RELEASED', 0, 1]);
            }
            if (outcome.state === 'CONFIRMED') expect(rows).toHaveLength(3);
          }
          for (const [type, n] of bus.seen) seen.set(type, (seen.get(type) ?? 0) + n);
        },
      ),
      { numRuns: 100 },
    );
    // The runs did exercise both forms of commands and replies.
    for (const type of ['TccTry', 'TccConfirm', 'TccCancel', 'TccReply'])
      expect(seen.get(type)).toBeGreaterThan(0);
    for (const type of ['TccCommandBatch', 'TccReplyBatch'])
      expect(seen.get(type)).toBeGreaterThan(0);
  });
});
