// Unit tests for the stack's pure helpers: broker config rendering, ids, parsing and prerequisite messages.
import { createServer, type Server } from 'node:net';
import { StackAlreadyRunningError, StackPrerequisiteError } from './errors';
import { newClusterId, parseBrokers, renderLog4jProperties, renderServerProperties } from './kafka';
import { choosePort } from './ports';
import { databaseUrl, maskUrl } from './postgres';
import {
  parseJavaMajor,
  prerequisiteMessage,
  requireJava,
  requireTool,
  toolsCacheDir,
} from './prerequisites';
import { parseProcStat } from './processes';

function parseProperties(text: string): Map<string, string> {
  const entries = text
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => {
      const at = line.indexOf('=');
      return [line.slice(0, at), line.slice(at + 1)] as [string, string];
    });
  return new Map(entries);
}

describe('renderServerProperties', () => {
  const props = parseProperties(
    renderServerProperties({ port: 19092, controllerPort: 19093, logDir: '/data/kafka' }),
  );

  it('describes a single-node KRaft broker+controller on 127.0.0.1', () => {
    expect(props.get('process.roles')).toBe('broker,controller');
    expect(props.get('node.id')).toBe('1');
    expect(props.get('controller.quorum.voters')).toBe('1@127.0.0.1:19093');
    expect(props.get('listeners')).toBe('PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093');
    expect(props.get('advertised.listeners')).toBe('PLAINTEXT://127.0.0.1:19092');
    expect(props.get('controller.listener.names')).toBe('CONTROLLER');
    expect(props.get('listener.security.protocol.map')).toBe(
      'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    );
    expect(props.get('log.dirs')).toBe('/data/kafka');
  });

  it('uses replication factor 1 for internal topics and never auto-creates topics', () => {
    expect(props.get('offsets.topic.replication.factor')).toBe('1');
    expect(props.get('transaction.state.log.replication.factor')).toBe('1');
    expect(props.get('transaction.state.log.min.isr')).toBe('1');
    expect(props.get('auto.create.topics.enable')).toBe('false');
    expect(props.get('group.initial.rebalance.delay.ms')).toBe('0');
  });

  it('escapes backslashes in the log dir', () => {
    const text = renderServerProperties({ port: 1, controllerPort: 2, logDir: 'C:\\kafka\\data' });
    expect(text).toContain('log.dirs=C:\\\\kafka\\\\data');
  });
});

describe('renderLog4jProperties', () => {
  it('sends broker logs to the given file and not to stdout', () => {
    const text = renderLog4jProperties('/stack/logs/kafka.log');
    const props = parseProperties(text);
    expect(props.get('log4j.rootLogger')).toBe('INFO, file');
    expect(props.get('log4j.appender.file.File')).toBe('/stack/logs/kafka.log');
    expect(text).not.toMatch(/ConsoleAppender|System\.out/);
  });
});

describe('newClusterId', () => {
  it('is 16 random bytes as 22 base64url characters, never starting with "-"', () => {
    const ids = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const id = newClusterId();
      expect(id).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
      expect(Buffer.from(id, 'base64url')).toHaveLength(16);
      ids.add(id);
    }
    expect(ids.size).toBe(500);
  });
});

describe('prerequisites', () => {
  it.each([
    ['java', 'KAFKA_BROKERS'],
    ['mvn', 'KAFKA_BROKERS'],
    ['go', 'OPA_URL'],
    ['postgres', 'POSTGRES_URL'],
  ] as const)('the %s message is one line naming what to install or %s', (tool, variable) => {
    const message = prerequisiteMessage(tool);
    expect(message).not.toContain('\n');
    expect(message).toMatch(/install/i);
    expect(message).toContain(variable);
  });

  it('throws a StackPrerequisiteError when a tool is not on PATH', async () => {
    const missing = requireTool('go', { PATH: '/nonexistent' });
    await expect(missing).rejects.toBeInstanceOf(StackPrerequisiteError);
    await expect(missing).rejects.toMatchObject({ tool: 'go', message: prerequisiteMessage('go') });
    await expect(requireTool('mvn', { PATH: '' })).rejects.toMatchObject({ tool: 'mvn' });
    await expect(requireJava({ PATH: '/nonexistent' })).rejects.toMatchObject({
      tool: 'java',
      message: prerequisiteMessage('java'),
    });
  });

  it('reads the Java major version from `java -version` output', () => {
    expect(
      parseJavaMajor('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment'),
    ).toBe(17);
    expect(parseJavaMajor('java version "1.8.0_392"')).toBe(8);
    expect(parseJavaMajor('openjdk version "21" 2023-09-19')).toBe(21);
    expect(parseJavaMajor('no version here')).toBeUndefined();
  });

  it('puts the tools cache in FINANCE_TOOLS_CACHE or ~/.cache/finance-core', () => {
    expect(toolsCacheDir({ FINANCE_TOOLS_CACHE: '/opt/cache' })).toBe('/opt/cache');
    expect(toolsCacheDir({})).toMatch(/[/\\]\.cache[/\\]finance-core$/);
  });
});

describe('small parsers', () => {
  it('takes the state and start time from /proc/<pid>/stat, even with ") " in the command name', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
    fields[0] = 'S';
    const stat = `1234 (odd) name) ${fields.join(' ')}`;
    expect(parseProcStat(stat)).toEqual({ state: 'S', startTime: '22' });
    expect(parseProcStat('garbage')).toBeUndefined();
  });

  it('splits KAFKA_BROKERS', () => {
    expect(parseBrokers(' a:1, b:2 ,')).toEqual(['a:1', 'b:2']);
    expect(parseBrokers('')).toBeUndefined();
    expect(parseBrokers(undefined)).toBeUndefined();
  });

  it('derives per-database URLs from the admin URL', () => {
    const admin = 'postgres://app:s3cr%40t@db.local:5433/postgres?sslmode=require';
    expect(databaseUrl(admin, 'trading')).toBe(
      'postgres://app:s3cr%40t@db.local:5433/trading?sslmode=require',
    );
    expect(databaseUrl(admin, 'odd name')).toContain('/odd%20name?');
    expect(maskUrl(admin)).toBe('postgres://app:***@db.local:5433/postgres?sslmode=require');
  });

  it('tells how to stop a stack that is already running', () => {
    const error = new StackAlreadyRunningError('/repo/.local/stack', [10, 11]);
    expect(error.message).toContain('/repo/.local/stack');
    expect(error.message).toContain('npm run stack:down');
  });
});

describe('choosePort', () => {
  let server: Server;
  let busy: number;

  beforeAll(async () => {
    server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    busy = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('refuses a requested port that is in use and avoids it when picking', async () => {
    await expect(choosePort('kafka', busy, undefined, new Set())).rejects.toThrow(/already in use/);
    const taken = new Set<number>();
    const picked = await choosePort('kafka', undefined, busy, taken);
    expect(picked).not.toBe(busy);
    expect(taken.has(picked)).toBe(true);
  });
});
