// `npm start`: the whole system on this machine. Brings up (or reuses) the stack, provisions
// databases and topics, issues fresh dev certificates, runs the four services with mutual TLS until
// Ctrl-C, then stops everything it started.
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SERVICE_NAMES } from '@finance/contracts';
import { writeDevCertificates } from '@finance/dev-ca';
import {
  isPidAlive,
  maskUrl,
  readStackState,
  RunningStack,
  StackAlreadyRunningError,
  StackPrerequisiteError,
  startStack,
  syncPolicies,
} from '@finance/local-stack';
import { launchService, ServiceProcess, waitUntilReady } from '@finance/testing';
import {
  Addresses,
  CERT_DIR,
  LOCAL_DIR,
  naming,
  POLICY_DIR,
  provision,
  servicePorts,
  STACK_DIR,
  STACK_PORTS,
} from './local-system';

const LOCK_FILE = join(LOCAL_DIR, 'start.json');
const LOG_DIR = join(LOCAL_DIR, 'logs');

interface Lock {
  pid: number;
  /** Service name -> URL, once ready. */
  services: Record<string, string>;
  /** Every process this run started (services and, if it started one, the stack). */
  pids: number[];
}

function runningInstance(): Lock | undefined {
  if (!existsSync(LOCK_FILE)) return undefined;
  try {
    const lock = JSON.parse(readFileSync(LOCK_FILE, 'utf8')) as Lock;
    return lock.pid !== process.pid && isPidAlive(lock.pid) ? lock : undefined;
  } catch {
    return undefined;
  }
}

const say = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<number> {
  const other = runningInstance();
  if (other) {
    process.stderr.write(
      `npm start is already running (pid ${other.pid}: ${Object.values(other.services).join(' ')}); ` +
        'stop it with Ctrl-C in its terminal first\n',
    );
    return 1;
  }
  const ports = servicePorts();
  const names = naming();
  await mkdir(LOG_DIR, { recursive: true });
  await writeFile(
    LOCK_FILE,
    JSON.stringify({ pid: process.pid, services: {}, pids: [] } satisfies Lock),
  );

  let stack: RunningStack | undefined;
  const services: ServiceProcess[] = [];
  let stopping: Promise<number> | undefined;

  const shutdown = (code: number): Promise<number> => {
    stopping ??= (async () => {
      say('stopping services...');
      await Promise.all(services.map((s) => s.stop('SIGTERM')));
      if (stack) {
        say('stopping the stack...');
        await stack.stop();
      }
      await rm(LOCK_FILE, { force: true });
      say('stopped');
      return code;
    })();
    return stopping;
  };
  const onSignal = () => void shutdown(0).then((code) => process.exit(code));
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    let addresses: Addresses;
    const shared = await readStackState(STACK_DIR);
    if (shared) {
      say('using the stack already running in .local/stack (npm run stack)');
      addresses = shared.addresses;
      // Its OPA may have loaded the policies before they were last edited.
      if (shared.opa && !shared.opa.external && shared.opa.policyDir === POLICY_DIR) {
        const { updated, removed } = await syncPolicies(addresses.opaUrl, POLICY_DIR);
        if (updated.length + removed.length > 0) say('loaded the current policies into its OPA');
      }
    } else {
      stack = await startStack({
        dir: STACK_DIR,
        policyDir: POLICY_DIR,
        ports: STACK_PORTS,
        log: (line) => say(`[stack] ${line}`),
      });
      addresses = {
        postgresAdminUrl: stack.postgres.adminUrl,
        kafkaBrokers: stack.kafka.brokers,
        opaUrl: stack.opa.url,
      };
    }
    const databases = await provision(addresses, names);
    const certificates = await writeDevCertificates({ dir: CERT_DIR });

    for (const name of SERVICE_NAMES) {
      const service = launchService(name, {
        port: ports[name],
        env: {
          DATABASE_URL: databases[name],
          KAFKA_BROKERS: addresses.kafkaBrokers.join(','),
          KAFKA_TOPIC_PREFIX: names.topicPrefix,
          OPA_URL: addresses.opaUrl,
          MESH_MODE: 'false',
          NODE_ENV: 'development',
          // The demo settles trades the day they are made; reconciliation reads this trading.
          ...(name === 'settlement'
            ? { SETTLEMENT_PERIOD: 'T+0', TRADING_URL: `https://127.0.0.1:${ports.trading}` }
            : {}),
        },
        certificates,
        echo: createWriteStream(join(LOG_DIR, `${name}.log`), { flags: 'a' }),
      });
      services.push(service);
      void service.exited.then(({ code, signal }) => {
        if (stopping) return;
        process.stderr.write(
          `${name} exited unexpectedly (${signal ?? `code ${code}`}):\n${service.output().slice(-3000)}\n`,
        );
        void shutdown(1).then((c) => process.exit(c));
      });
    }
    await Promise.all(services.map((s) => waitUntilReady(s, 120_000)));
    const state = stack ? await readStackState(STACK_DIR) : undefined;
    const stackPids = [state?.postgres, state?.kafka, state?.opa].flatMap((c) =>
      c?.process ? [c.process.pid] : [],
    );
    const lock: Lock = {
      pid: process.pid,
      services: Object.fromEntries(services.map((s) => [s.name, s.url])),
      pids: [...services.map((s) => s.child.pid ?? 0), ...stackPids],
    };
    await writeFile(LOCK_FILE, JSON.stringify(lock));

    const file = (name: string) => join(CERT_DIR, name);
    say('');
    say('ready: all four services answer /health/ready (mutual TLS, client certificate required)');
    for (const s of services) say(`  ${s.name.padEnd(11)} ${s.url}`);
    say(`  postgres    ${maskUrl(addresses.postgresAdminUrl)}`);
    say(`  kafka       ${addresses.kafkaBrokers.join(',')}`);
    say(`  opa         ${addresses.opaUrl}`);
    say(
      `  certs       ${CERT_DIR}/ (ca.crt, <identity>.crt/.key, valid until ${certificates.notAfter})`,
    );
    say(`  logs        ${LOG_DIR}/<service>.log${stack ? `, ${STACK_DIR}/logs` : ''}`);
    say('call a service as an identity, e.g. the client gateway:');
    say(
      `  curl --cacert ${file('ca.crt')} --cert ${file('order-service.crt')} ` +
        `--key ${file('order-service.key')} ${services[0].url}/trading/orders`,
    );
    say('press Ctrl-C to stop everything');
    return await new Promise<number>(() => undefined); // runs until a signal or a service failure
  } catch (error) {
    if (error instanceof StackAlreadyRunningError || error instanceof StackPrerequisiteError) {
      process.stderr.write(`${error.message}\n`);
    } else {
      process.stderr.write(
        `npm start failed: ${error instanceof Error ? error.message : String(error)}\n`,
      );
    }
    return shutdown(1);
  }
}

main().then((code) => process.exit(code));
