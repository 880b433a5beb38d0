// Kafka for the stack: a single-node KRaft broker run from the official Maven Central jars, plus topic helpers.
import { pathExists } from './files';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Kafka, logLevel, type Admin, type ITopicConfig } from 'kafkajs';
import { StackStartAbortedError } from './errors';
import { requireTool, toolsCacheDir } from './prerequisites';
import {
  lastLines,
  runToCompletion,
  sleep,
  spawnDetached,
  tailFile,
  type ProcessRecord,
} from './processes';

export const KAFKA_VERSION = '3.9.1';
export const KAFKA_POM = resolve(__dirname, '..', '..', 'kafka', 'pom.xml');
const BROKER_JAR = `kafka_2.13-${KAFKA_VERSION}.jar`;
// Inside the libs dir so the jars and the marker appear together in one rename.
const LIBS_COMPLETE_MARKER = '.complete';

export interface TopicSpec {
  name: string;
  partitions: number;
  replicationFactor?: number;
  configs?: Record<string, string>;
}

export function parseBrokers(value: string | undefined): string[] | undefined {
  const brokers = (value ?? '')
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean);
  return brokers.length > 0 ? brokers : undefined;
}

// 16 random bytes as unpadded base64url (22 chars), like Kafka's own Uuid. A leading '-' would be read
// as an option by the storage tool's argument parser, which is why Kafka skips those ids too.
export function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

export interface BrokerConfig {
  port: number;
  controllerPort: number;
  logDir: string;
  nodeId?: number;
}

export function renderServerProperties(config: BrokerConfig): string {
  const nodeId = config.nodeId ?? 1;
  const lines = [
    '# Written by @finance/local-stack on every start; edits are overwritten.',
    'process.roles=broker,controller',
    `node.id=${nodeId}`,
    `controller.quorum.voters=${nodeId}@127.0.0.1:${config.controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${config.port},CONTROLLER://127.0.0.1:${config.controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${config.port}`,
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    // Windows paths need escaped backslashes in a properties file.
    `log.dirs=${config.logDir.replace(/\\/g, '\\\\')}`,
    // Topics are created explicitly by the services' provisioning, never implicitly by a typo.
    'auto.create.topics.enable=false',
    'num.partitions=1',
    'default.replication.factor=1',
    'offsets.topic.replication.factor=1',
    // Fewer internal partitions than the default 50 keep the first consumer-group join fast.
    'offsets.topic.num.partitions=10',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=10',
    'group.initial.rebalance.delay.ms=0',
    '',
  ];
  return lines.join('\n');
}

export function renderLog4jProperties(logFile: string): string {
  const file = logFile.replace(/\\/g, '\\\\');
  return [
    '# Written by @finance/local-stack: broker logs go to a file, not stdout.',
    'log4j.rootLogger=INFO, file',
    'log4j.appender.file=org.apache.log4j.RollingFileAppender',
    `log4j.appender.file.File=${file}`,
    'log4j.appender.file.MaxFileSize=20MB',
    'log4j.appender.file.MaxBackupIndex=2',
    'log4j.appender.file.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
    // Per-request and state-change chatter buries the useful lines.
    'log4j.logger.kafka.request.logger=WARN',
    'log4j.logger.state.change.logger=WARN',
    'log4j.logger.org.apache.kafka.controller=INFO',
    '',
  ].join('\n');
}

export function kafkaLibsDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(toolsCacheDir(env), `kafka-${KAFKA_VERSION}`, 'libs');
}

export async function kafkaLibsReady(env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const libs = kafkaLibsDir(env);
  return (
    (await pathExists(join(libs, LIBS_COMPLETE_MARKER))) &&
    (await pathExists(join(libs, BROKER_JAR)))
  );
}

// Downloads the broker jars with Maven once per machine into <cache>/kafka-3.9.1/libs.
export async function ensureKafkaLibs(
  options: { env?: NodeJS.ProcessEnv; log?: (line: string) => void } = {},
): Promise<string> {
  const env = options.env ?? process.env;
  const libs = kafkaLibsDir(env);
  const home = dirname(libs);
  if (await kafkaLibsReady(env)) return libs;

  const mvn = await requireTool('mvn', process.env);
  options.log?.(
    `kafka: downloading Kafka ${KAFKA_VERSION} jars from Maven Central into ${libs} (first run only)`,
  );
  await mkdir(home, { recursive: true });
  // Download next to the final dir, then swap it in, so an interrupted download is never mistaken for a complete one.
  const partial = join(home, `libs.partial-${process.pid}-${randomBytes(3).toString('hex')}`);
  try {
    const result = await runToCompletion(mvn, [
      '-B',
      '-q',
      '-f',
      KAFKA_POM,
      'dependency:copy-dependencies',
      '-DincludeScope=runtime',
      `-DoutputDirectory=${partial}`,
    ]);
    if (result.code !== 0) {
      throw new Error(
        `kafka: \`mvn dependency:copy-dependencies\` failed (exit ${result.code}):\n${lastLines(result.output)}`,
      );
    }
    if (!(await pathExists(join(partial, BROKER_JAR)))) {
      throw new Error(`kafka: Maven finished but ${BROKER_JAR} is missing from ${partial}`);
    }
    const jars = (await readdir(partial)).filter((f) => f.endsWith('.jar')).length;
    await writeFile(
      join(partial, LIBS_COMPLETE_MARKER),
      `${jars} jars, ${new Date().toISOString()}\n`,
    );
    await rm(libs, { recursive: true, force: true });
    try {
      await rename(partial, libs);
    } catch (error) {
      // A concurrent bootstrap got there first; its result is as good as ours.
      if (!(await pathExists(join(libs, LIBS_COMPLETE_MARKER)))) throw error;
    }
  } finally {
    await rm(partial, { recursive: true, force: true });
  }
  return libs;
}

function jvmArgs(libs: string, log4jFile: string): string[] {
  return [
    '-Xms256m',
    '-Xmx512m',
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-Djava.awt.headless=true',
    `-Dlog4j.configuration=${pathToFileURL(log4jFile).href}`,
    '-cp',
    // the JVM expands the wildcard itself (no shell involved)
    join(libs, '*'),
  ];
}

export interface LocalKafkaOptions {
  dir: string;
  port: number;
  controllerPort: number;
  java: string;
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
  signal: AbortSignal;
  onSpawn: (state: { dataDir: string; logFile: string; process: ProcessRecord }) => Promise<void>;
}

export interface LocalKafka {
  brokers: string[];
  dataDir: string;
  logFile: string;
  process: ProcessRecord;
}

export async function startLocalKafka(options: LocalKafkaOptions): Promise<LocalKafka> {
  const base = join(options.dir, 'kafka');
  const dataDir = join(base, 'data');
  const propertiesFile = join(base, 'server.properties');
  const log4jFile = join(base, 'log4j.properties');
  const logFile = join(options.dir, 'logs', 'kafka.log');
  const stdoutFile = join(options.dir, 'logs', 'kafka-stdout.log');

  const libs = await ensureKafkaLibs({ env: options.env, log: options.log });
  await mkdir(base, { recursive: true });
  await writeFile(
    propertiesFile,
    renderServerProperties({
      port: options.port,
      controllerPort: options.controllerPort,
      logDir: dataDir,
    }),
  );
  await writeFile(log4jFile, renderLog4jProperties(logFile));

  // meta.properties is written by the format step; without it the log dir is (re)formatted from scratch.
  if (!(await pathExists(join(dataDir, 'meta.properties')))) {
    await rm(dataDir, { recursive: true, force: true });
    const clusterId = newClusterId();
    options.log(`kafka: formatting storage (cluster id ${clusterId})`);
    const result = await runToCompletion(options.java, [
      ...jvmArgs(libs, log4jFile),
      'kafka.tools.StorageTool',
      'format',
      '-t',
      clusterId,
      '-c',
      propertiesFile,
    ]);
    if (result.code !== 0) {
      throw new Error(
        `kafka: storage format failed (exit ${result.code}):\n${lastLines(result.output)}`,
      );
    }
  }

  if (options.signal.aborted) throw new StackStartAbortedError('kafka');
  const spawned = await spawnDetached(
    options.java,
    [...jvmArgs(libs, log4jFile), 'kafka.Kafka', propertiesFile],
    {
      logFile: stdoutFile,
    },
  );
  await options.onSpawn({ dataDir, logFile, process: spawned.record });

  const brokers = [`127.0.0.1:${options.port}`];
  const deadline = Date.now() + 90_000;
  const failure = async (what: string): Promise<Error> =>
    new Error(
      `kafka ${what}; ${logFile} ends with:\n${await tailFile(logFile)}\n${stdoutFile} ends with:\n${await tailFile(stdoutFile, 10)}`,
    );
  for (;;) {
    const exit = spawned.exited();
    if (exit)
      throw await failure(`exited during startup (code ${exit.code}, signal ${exit.signal})`);
    if (options.signal.aborted) throw new StackStartAbortedError('kafka');
    if (await brokerAnswers(brokers)) break;
    if (Date.now() > deadline) throw await failure('did not become ready within 90s');
    await sleep(500);
  }
  return { brokers, dataDir, logFile, process: spawned.record };
}

function client(brokers: string[], quick: boolean): Kafka {
  return new Kafka({
    clientId: 'finance-local-stack',
    brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: quick ? 1_000 : 5_000,
    requestTimeout: quick ? 5_000 : 30_000,
    retry: quick ? { retries: 0 } : { retries: 5, initialRetryTime: 200 },
  });
}

async function brokerAnswers(brokers: string[]): Promise<boolean> {
  const admin = client(brokers, true).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0 && cluster.controller !== null;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

async function withAdmin<T>(brokers: string[], work: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = client(brokers, false).admin();
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

// Creates the topics that do not exist yet; returns the names it created.
export async function ensureTopics(brokers: string[], topics: TopicSpec[]): Promise<string[]> {
  for (const topic of topics) {
    if (!topic.name) throw new Error('ensureTopics: empty topic name');
    if (!Number.isInteger(topic.partitions) || topic.partitions < 1) {
      throw new Error(`ensureTopics: topic ${topic.name} needs a positive integer partition count`);
    }
  }
  return withAdmin(brokers, async (admin) => {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t.name));
    if (missing.length === 0) return [];
    const brokerCount = (await admin.describeCluster()).brokers.length;
    const defaultReplication = Math.max(1, Math.min(3, brokerCount));
    const specs: ITopicConfig[] = missing.map((t) => ({
      topic: t.name,
      numPartitions: t.partitions,
      replicationFactor: t.replicationFactor ?? defaultReplication,
      configEntries: Object.entries(t.configs ?? {}).map(([name, value]) => ({ name, value })),
    }));
    // kafkajs resolves (false) rather than failing when a concurrent caller created them first.
    await admin.createTopics({ topics: specs, waitForLeaders: true });
    return missing.map((t) => t.name);
  });
}

// Deletes every non-internal topic whose name starts with prefix; returns the deleted names.
export async function deleteTopicsWithPrefix(brokers: string[], prefix: string): Promise<string[]> {
  if (!prefix)
    throw new Error(
      'deleteTopicsWithPrefix: refusing an empty prefix (it would delete every topic)',
    );
  return withAdmin(brokers, async (admin) => {
    const doomed = (await admin.listTopics()).filter(
      (t) => t.startsWith(prefix) && !t.startsWith('__'),
    );
    if (doomed.length === 0) return [];
    await admin.deleteTopics({ topics: doomed, timeout: 30_000 });
    // Deletion completes asynchronously; wait so callers can recreate the same names right away.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const left = new Set(await admin.listTopics());
      if (!doomed.some((t) => left.has(t))) break;
      if (Date.now() > deadline)
        throw new Error(
          `deleteTopicsWithPrefix: topics still listed after 30s: ${doomed.filter((t) => left.has(t)).join(', ')}`,
        );
      await sleep(200);
    }
    return doomed;
  });
}
