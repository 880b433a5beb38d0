// The service's own PostgreSQL database through TypeORM: connect with clear errors, migrate under a lock.
import type {
  EntityManager,
  EntitySubscriberInterface,
  QueryRunner,
  TransactionCommitEvent,
  TransactionRollbackEvent,
} from 'typeorm';
import { DataSource, EntitySchema, MixedList } from 'typeorm';
import { StartupError } from './errors';

// TypeORM accepts migration classes or instances; both are plain constructors here.
// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
export type MigrationList = MixedList<Function | string>;
// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
export type EntityList = MixedList<Function | string | EntitySchema>;

export interface DatabaseOptions {
  url: string;
  applicationName: string;
  poolSize: number;
  migrations: MigrationList;
  entities?: EntityList;
}

export function createDataSource(options: DatabaseOptions): DataSource {
  return new DataSource({
    type: 'postgres',
    url: options.url,
    applicationName: options.applicationName,
    entities: options.entities ?? [],
    migrations: options.migrations,
    migrationsTableName: 'schema_migrations',
    migrationsTransactionMode: 'each',
    synchronize: false,
    migrationsRun: false,
    logging: false,
    extra: { max: options.poolSize, connectionTimeoutMillis: 5_000 },
  });
}

/** host:port/database of a postgres URL, never its password. */
export function describeDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.username ? `${decodeURIComponent(parsed.username)}@` : ''}${parsed.hostname}:${parsed.port || '5432'}${parsed.pathname}`;
  } catch {
    return '(unparseable url)';
  }
}

interface PgLikeError {
  code?: string;
  message?: string;
}

export function explainDatabaseError(error: unknown, url: string): string {
  const where = describeDatabaseUrl(url);
  const { code, message } = (error ?? {}) as PgLikeError;
  switch (code) {
    case '28P01':
    case '28000':
      return `database authentication failed for ${where}: check the user and password in DATABASE_URL`;
    case '3D000':
      return `database does not exist at ${where}: create it or fix DATABASE_URL`;
    case 'ECONNREFUSED':
      return `database not reachable at ${where} (connection refused): is PostgreSQL running?`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `database host not found for ${where}`;
    default:
      return `database connection to ${where} failed: ${message ?? String(error)}`;
  }
}

export async function connectDatabase(dataSource: DataSource, url: string): Promise<void> {
  try {
    await dataSource.initialize();
  } catch (error) {
    throw new StartupError(explainDatabaseError(error, url));
  }
}

// Replicas starting together must not run the same migration twice.
const MIGRATION_LOCK_KEY = 7_210_431_001;

export async function runMigrations(dataSource: DataSource): Promise<string[]> {
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    return applied.map((m) => m.name);
  } finally {
    await runner
      .query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY])
      .catch(() => undefined);
    await runner.release();
  }
}

/** Creates, connects and migrates a data source in one step; errors are as in `connectDatabase`. */
export async function openDatabase(options: DatabaseOptions): Promise<DataSource> {
  const dataSource = createDataSource(options);
  await connectDatabase(dataSource, options.url);
  try {
    await runMigrations(dataSource);
    return dataSource;
  } catch (error) {
    await dataSource.destroy();
    throw error;
  }
}

// Callbacks waiting for their transaction (its query runner) to commit, with the savepoint depth
// they were registered at: rolling back a savepoint drops what was registered inside it.
const pending = new WeakMap<QueryRunner, Array<{ depth: number; run: () => void }>>();
const subscribed = new WeakSet<DataSource>();

function depth(runner: QueryRunner): number {
  // TypeORM keeps the savepoint depth in a protected field; 0 once the outermost one ended.
  return (runner as unknown as { transactionDepth?: number }).transactionDepth ?? 0;
}

class AfterCommit implements EntitySubscriberInterface {
  afterTransactionCommit({ queryRunner }: TransactionCommitEvent): void {
    if (depth(queryRunner) > 0) return; // a savepoint released, the transaction goes on
    const callbacks = pending.get(queryRunner);
    pending.delete(queryRunner);
    for (const callback of callbacks ?? []) callback.run();
  }

  afterTransactionRollback({ queryRunner }: TransactionRollbackEvent): void {
    const callbacks = pending.get(queryRunner);
    if (!callbacks) return;
    const left = callbacks.filter((callback) => callback.depth <= depth(queryRunner));
    if (left.length > 0) pending.set(queryRunner, left);
    else pending.delete(queryRunner);
  }
}

/**
 * Runs `run` once the caller's transaction commits, and never if it rolls back: for effects outside
 * the database that must match what committed, such as counting business events in metrics.
 * Outside a transaction it runs at once. `run` must not throw.
 */
export function afterCommit(manager: EntityManager, run: () => void): void {
  const runner = manager.queryRunner;
  if (!runner?.isTransactionActive) {
    run();
    return;
  }
  if (!subscribed.has(runner.connection)) {
    runner.connection.subscribers.push(new AfterCommit());
    subscribed.add(runner.connection);
  }
  const callbacks = pending.get(runner);
  const entry = { depth: depth(runner), run };
  if (callbacks) callbacks.push(entry);
  else pending.set(runner, [entry]);
}
