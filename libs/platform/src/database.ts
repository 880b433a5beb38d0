// The service's own PostgreSQL database through TypeORM: connect with clear errors, migrate under a lock.
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
