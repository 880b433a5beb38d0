// Test transport for TCC: takes messages from the outbox of a real database and hands them to the
// coordinator or a participant in a transaction, as the inbox consumer would, but in whatever order,
// as many times or as few as the test says. Messages are copied, so a "dropped" one is just never
// delivered.
import { Envelope, SYSTEM_CATALOG, TccReply, TccReplyBatch } from '@finance/contracts';
import { MessagingTables1763769600000 } from '@finance/messaging';
import { openDatabase } from '@finance/platform';
import { createTestDatabase } from '@finance/testing';
import type { DataSource, EntityManager } from 'typeorm';
import { MigrationInterface, QueryRunner } from 'typeorm';
import { BranchRejected } from '../src/errors';
import { TccCoordinator } from '../src/coordinator/coordinator';
import { BranchHandlers, TccParticipant } from '../src/participant/participant';
import { TccTables1763942400000 } from '../src/migrations/tcc-tables';

class Reservations1763942400001 implements MigrationInterface {
  name = 'Reservations1763942400001';
  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE reservations (
        gtid text NOT NULL, branch_id text NOT NULL, status text NOT NULL,
        tries int NOT NULL DEFAULT 0, confirms int NOT NULL DEFAULT 0, cancels int NOT NULL DEFAULT 0,
        PRIMARY KEY (gtid, branch_id))`);
  }
  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE reservations');
  }
}

export const TEST_MIGRATIONS = [
  MessagingTables1763769600000,
  TccTables1763942400000,
  Reservations1763942400001,
];

/** A business resource that counts every effect, so a test can see a second Try or Confirm. */
export const countingHandlers: BranchHandlers = {
  async try(ctx, payload) {
    if (payload.refuse)
      throw new BranchRejected(String(payload.refuse), `refused by ${ctx.branchId}`);
    await ctx.manager.query(
      `INSERT INTO reservations (gtid, branch_id, status, tries) VALUES ($1, $2, 'RESERVED', 1)
       ON CONFLICT (gtid, branch_id) DO UPDATE SET tries = reservations.tries + 1`,
      [ctx.gtid, ctx.branchId],
    );
  },
  async confirm(ctx) {
    await ctx.manager.query(
      `UPDATE reservations SET status = 'CONFIRMED', confirms = confirms + 1 WHERE gtid = $1 AND branch_id = $2`,
      [ctx.gtid, ctx.branchId],
    );
  },
  async cancel(ctx) {
    await ctx.manager.query(
      `UPDATE reservations SET status = 'RELEASED', cancels = cancels + 1 WHERE gtid = $1 AND branch_id = $2`,
      [ctx.gtid, ctx.branchId],
    );
  },
};

/**
 * The same resource applying a whole run in one statement (`applyMany`): per branch, the counts of
 * each phase and the status the last of them leaves, upserted at once.
 */
export const setBasedCountingHandlers: BranchHandlers = {
  ...countingHandlers,
  async applyMany(manager, effects) {
    const refused = effects.find((e) => e.phase === 'TRY' && e.payload.refuse);
    if (refused) {
      throw new BranchRejected(
        String(refused.payload.refuse),
        `refused by ${refused.ctx.branchId}`,
      );
    }
    const rows = new Map<
      string,
      { gtid: string; branchId: string; status: string; n: Record<string, number> }
    >();
    for (const { phase, ctx } of effects) {
      const key = `${ctx.gtid}/${ctx.branchId}`;
      const row = rows.get(key) ?? {
        gtid: ctx.gtid,
        branchId: ctx.branchId,
        status: 'RESERVED',
        n: { TRY: 0, CONFIRM: 0, CANCEL: 0 },
      };
      row.n[phase] += 1;
      if (phase !== 'TRY') row.status = phase === 'CONFIRM' ? 'CONFIRMED' : 'RELEASED';
      rows.set(key, row);
    }
    const list = [...rows.values()];
    // A Try alone leaves an existing row's status as it is, as the one-by-one upsert does.
    await manager.query(
      `INSERT INTO reservations (gtid, branch_id, status, tries, confirms, cancels)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[], $6::int[])
       ON CONFLICT (gtid, branch_id) DO UPDATE SET
         tries = reservations.tries + excluded.tries,
         confirms = reservations.confirms + excluded.confirms,
         cancels = reservations.cancels + excluded.cancels,
         status = CASE WHEN excluded.confirms + excluded.cancels = 0 THEN reservations.status
                       ELSE excluded.status END`,
      [
        list.map((r) => r.gtid),
        list.map((r) => r.branchId),
        list.map((r) => r.status),
        list.map((r) => r.n.TRY),
        list.map((r) => r.n.CONFIRM),
        list.map((r) => r.n.CANCEL),
      ],
    );
  },
};

/** Three participants; risk applies its runs set-based, the others branch by branch. */
export function participants(): TccParticipant[] {
  return (['trading', 'risk', 'settlement'] as const).map(
    (service) =>
      new TccParticipant({
        service,
        resources: { quota: service === 'risk' ? setBasedCountingHandlers : countingHandlers },
      }),
  );
}

const isReply = (message: Envelope) =>
  message.type === TccReply.type || message.type === TccReplyBatch.type;

export async function tccDatabase(label: string): Promise<DataSource> {
  const { url } = await createTestDatabase(label);
  return openDatabase({
    url,
    applicationName: `tcc-${label}`,
    poolSize: 6,
    migrations: TEST_MIGRATIONS,
  });
}

export class ChaosBus {
  readonly pending: Envelope[] = [];
  /** How many messages of each type came out of the outbox. */
  readonly seen = new Map<string, number>();

  constructor(
    private readonly dataSource: DataSource,
    private readonly coordinator: TccCoordinator,
    private readonly nodes: TccParticipant[],
  ) {}

  /** Moves everything new in the outbox onto the bus, in commit order. */
  async collect(): Promise<number> {
    const rows: Array<{ payload: string }> = await this.dataSource.query(
      `WITH taken AS (
         UPDATE outbox SET published_at = clock_timestamp() WHERE published_at IS NULL RETURNING position, payload)
       SELECT payload::text AS payload FROM taken ORDER BY position`,
    );
    for (const row of rows) {
      const decoded = SYSTEM_CATALOG.decode(JSON.parse(row.payload));
      if (decoded.status !== 'ok')
        throw new Error(`undecodable message on the bus: ${decoded.status}`);
      if (!decoded.message.type.startsWith('Tcc')) continue;
      this.pending.push(decoded.message);
      this.seen.set(decoded.message.type, (this.seen.get(decoded.message.type) ?? 0) + 1);
    }
    return rows.length;
  }

  /** Delivers one message in its own transaction, like one inbox-consumer step. */
  async deliver(message: Envelope): Promise<void> {
    await this.dataSource.transaction(async (manager: EntityManager) => {
      if (isReply(message)) await this.coordinator.onReply(message, manager);
      else for (const node of this.nodes) await node.handle(message, manager);
    });
  }

  /**
   * Delivers messages of one topic as one consumer run: in one transaction through the run handlers
   * (`onReplies`, `handleRun`); if that fails, one by one, as the inbox consumer falls back.
   */
  async deliverRun(messages: Envelope[]): Promise<'run' | 'one-by-one'> {
    try {
      await this.dataSource.transaction(async (manager: EntityManager) => {
        const entries = messages.map((message) => ({ message }));
        await this.coordinator.onReplies(entries, manager);
        for (const node of this.nodes) await node.handleRun(entries, manager);
      });
      return 'run';
    } catch {
      for (const message of messages) await this.deliver(message);
      return 'one-by-one';
    }
  }

  /** Takes the message at `index` and up to `size - 1` more pending ones of its topic, in order. */
  takeRun(index: number, size: number): Envelope[] {
    const first = this.take(index);
    const replies = isReply(first);
    const run = [first];
    for (let i = 0; i < this.pending.length && run.length < size;) {
      if (isReply(this.pending[i]) === replies) run.push(...this.pending.splice(i, 1));
      else i++;
    }
    return run;
  }

  take(index: number): Envelope {
    const [message] = this.pending.splice(index % this.pending.length, 1);
    return message;
  }

  /** Delivers everything in runs of up to `size`, including what deliveries produce. */
  async drainRuns(size = 20): Promise<void> {
    for (;;) {
      await this.collect();
      if (this.pending.length === 0) return;
      await this.deliverRun(this.takeRun(0, size));
    }
  }

  /** Delivers everything, including what deliveries produce, until nothing is left. */
  async drain(filter: (m: Envelope) => boolean = () => true): Promise<void> {
    for (;;) {
      await this.collect();
      const next = this.pending.findIndex(filter);
      if (next < 0) return;
      await this.deliver(this.take(next));
    }
  }
}

export async function reservations(dataSource: DataSource, gtid: string) {
  const rows: Array<{
    branch_id: string;
    status: string;
    tries: number;
    confirms: number;
    cancels: number;
  }> = await dataSource.query(
    'SELECT branch_id, status, tries, confirms, cancels FROM reservations WHERE gtid = $1 ORDER BY branch_id',
    [gtid],
  );
  return rows;
}
