// The post-trade saga as the integration tests run it (short timeouts), and participant handlers
// whose effects are rows in `effects`, so a test can count exactly what ran and in which order.
import type { DataSource, MigrationInterface, QueryRunner } from 'typeorm';
import { defineSaga, type StepDefinitionInput } from '../src/definition/define-saga';
import { StepFailedError } from '../src/participant/errors';
import { SagaParticipant, type StepContext } from '../src/participant/saga-participant';

import { POST_TRADE_STEPS } from '../src/definitions/post-trade';

export { POST_TRADE_STEPS };

/** Input flags that make a participant misbehave for one saga. */
export interface Scenario {
  /** Step whose EXECUTE the participant refuses (a business failure). */
  fail?: string;
  /** Step whose compensation fails until the test repairs it. */
  brokenCompensation?: string;
  /** Step whose EXECUTE commands the test's consumer drops, so it never answers. */
  silent?: string;
  /** Step whose EXECUTE takes effect and defers its answer until the test gives it. */
  defer?: string;
}

const POST_TRADE_STEP_DEFINITIONS: StepDefinitionInput<(typeof POST_TRADE_STEPS)[number]>[] = [
  { name: 'create-order', participant: 'trading', timeoutMs: 1_500, maxAttempts: 3 },
  { name: 'validate-risk', participant: 'risk', timeoutMs: 1_500, maxAttempts: 3 },
  {
    name: 'process-settlement',
    participant: 'settlement',
    timeoutMs: 1_500,
    maxAttempts: 3,
    maxCompensationAttempts: 3,
  },
  // A read-only check: nothing to undo.
  {
    name: 'compliance-check',
    participant: 'compliance',
    timeoutMs: 1_500,
    maxAttempts: 3,
    compensate: false,
  },
];

export const postTrade = defineSaga({
  name: 'post-trade',
  backoff: { initialMs: 100, maxMs: 400 },
  steps: POST_TRADE_STEP_DEFINITIONS,
});

/** The same flow with settlement waiting for its cycle: a test answers it long before it times out. */
export const postTradeSettledLater = defineSaga({
  name: 'post-trade-settled-later',
  backoff: { initialMs: 100, maxMs: 400 },
  steps: POST_TRADE_STEP_DEFINITIONS.map((step) =>
    step.name === 'process-settlement' ? { ...step, timeoutMs: 120_000 } : step,
  ),
});

export class SagaTestEffects1764028800001 implements MigrationInterface {
  name = 'SagaTestEffects1764028800001';

  async up(db: QueryRunner): Promise<void> {
    // No unique constraint on purpose: a second effect must show up as a second row.
    await db.query(`
      CREATE TABLE effects (
        id       bigserial PRIMARY KEY,
        saga_id  text      NOT NULL,
        step     text      NOT NULL,
        action   text      NOT NULL,
        attempt  integer   NOT NULL
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE effects');
  }
}

/** Sagas whose broken compensation an operator has since repaired. */
export type Repairs = Set<string>;

export function postTradeParticipant(
  repairs: Repairs = new Set(),
  topicPrefix = '',
): SagaParticipant {
  const participant = new SagaParticipant({ topicPrefix });
  const record = (ctx: StepContext, action: string) =>
    ctx.manager.query(
      'INSERT INTO effects (saga_id, step, action, attempt) VALUES ($1, $2, $3, $4)',
      [ctx.sagaId, ctx.step, action, ctx.attempt],
    );
  for (const definition of [postTrade, postTradeSettledLater]) {
    for (const step of POST_TRADE_STEPS) {
      participant.register(definition, step, {
        async execute(ctx) {
          // Written before the refusal so the test sees the savepoint undo it.
          await record(ctx, 'EXECUTE');
          const scenario = ctx.payload as Scenario;
          if (scenario.fail === step) {
            throw new StepFailedError('TEST_REFUSED', `${step} refused by the test scenario`);
          }
          if (scenario.defer === step) return ctx.defer();
          return { step, by: 'test' };
        },
        async compensate(ctx) {
          // Tells apart the undo of a step whose answer was still pending.
          await record(ctx, ctx.pending ? 'COMPENSATE_PENDING' : 'COMPENSATE');
          const scenario = ctx.payload as Scenario;
          if (scenario.brokenCompensation === step && !repairs.has(ctx.sagaId)) {
            throw new StepFailedError('TEST_UNDO_BROKEN', `${step} cannot be undone yet`);
          }
        },
      });
    }
  }
  return participant;
}

export interface EffectRow {
  step: string;
  action: string;
}

export async function effectsOf(dataSource: DataSource, sagaId: string): Promise<EffectRow[]> {
  return (await dataSource.query(
    'SELECT step, action FROM effects WHERE saga_id = $1 ORDER BY id',
    [sagaId],
  )) as EffectRow[];
}
