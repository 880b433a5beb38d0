// afterCommit on a real PostgreSQL transaction: callbacks run once it commits, never when it rolls
// back, and a rolled-back savepoint takes only its own callbacks with it.
import { databaseUrl, ensureDatabases } from '@finance/local-stack';
import type { DataSource } from 'typeorm';
import { afterCommit, openDatabase } from './database';

describe('afterCommit', () => {
  let db: DataSource;

  beforeAll(async () => {
    // The run's stack from the jest global setup (the testing library depends on this one).
    const stack = JSON.parse(process.env.FINANCE_TEST_STACK ?? '{}') as {
      runId: string;
      postgresAdminUrl: string;
    };
    const name = `t_${stack.runId}_after_commit_${process.pid}`;
    await ensureDatabases(stack.postgresAdminUrl, [name]);
    db = await openDatabase({
      url: databaseUrl(stack.postgresAdminUrl, name),
      applicationName: 'after-commit',
      poolSize: 2,
      migrations: [],
    });
  });

  afterAll(async () => {
    await db?.destroy();
  });

  it('runs callbacks after the commit, in order, and not before', async () => {
    const ran: string[] = [];
    await db.transaction(async (manager) => {
      afterCommit(manager, () => ran.push('first'));
      await manager.query('SELECT 1');
      afterCommit(manager, () => ran.push('second'));
      expect(ran).toEqual([]);
    });
    expect(ran).toEqual(['first', 'second']);
  });

  it('drops them when the transaction rolls back', async () => {
    const ran: string[] = [];
    await expect(
      db.transaction(async (manager) => {
        afterCommit(manager, () => ran.push('lost'));
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    // The same pooled connection's next transaction starts clean.
    await db.transaction(async (manager) => afterCommit(manager, () => ran.push('next')));
    expect(ran).toEqual(['next']);
  });

  it("keeps the outer transaction's callbacks when a savepoint inside it rolls back", async () => {
    const ran: string[] = [];
    const runner = db.createQueryRunner();
    await runner.connect();
    try {
      await runner.startTransaction();
      afterCommit(runner.manager, () => ran.push('outer'));
      await runner.startTransaction(); // a savepoint
      afterCommit(runner.manager, () => ran.push('inner, rolled back'));
      await runner.rollbackTransaction();
      await runner.startTransaction();
      afterCommit(runner.manager, () => ran.push('inner, released'));
      await runner.commitTransaction();
      expect(ran).toEqual([]);
      await runner.commitTransaction();
    } finally {
      await runner.release();
    }
    expect(ran).toEqual(['outer', 'inner, released']);
  });

  it('runs at once outside a transaction', () => {
    const ran: string[] = [];
    afterCommit(db.manager, () => ran.push('now'));
    expect(ran).toEqual(['now']);
  });
});
