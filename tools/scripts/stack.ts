// `npm run stack` starts PostgreSQL, Kafka and OPA in the background; `npm run stack:down` stops them.
import {
  maskUrl,
  readStackState,
  StackAlreadyRunningError,
  StackPrerequisiteError,
  startStack,
  stopStack,
} from '@finance/local-stack';
import { naming, POLICY_DIR, provision, STACK_DIR, STACK_PORTS } from './local-system';

async function up(): Promise<void> {
  const stack = await startStack({ dir: STACK_DIR, policyDir: POLICY_DIR, ports: STACK_PORTS });
  const addresses = {
    postgresAdminUrl: stack.postgres.adminUrl,
    kafkaBrokers: stack.kafka.brokers,
    opaUrl: stack.opa.url,
  };
  await provision(addresses, naming());
  process.stdout.write(
    [
      'stack is running (stop it with `npm run stack:down`, add `-- --reset` to wipe its data)',
      `  postgres  ${maskUrl(addresses.postgresAdminUrl)}`,
      `  kafka     ${addresses.kafkaBrokers.join(',')}`,
      `  opa       ${addresses.opaUrl}`,
      `  logs      ${STACK_DIR}/logs`,
      '',
    ].join('\n'),
  );
}

async function down(reset: boolean): Promise<void> {
  const running = await readStackState(STACK_DIR);
  await stopStack(STACK_DIR, { reset });
  process.stdout.write(
    `${running ? 'stack stopped' : 'no stack was running'}${reset ? '; data wiped' : ''}\n`,
  );
}

async function main(): Promise<void> {
  const [command = 'up', ...flags] = process.argv.slice(2);
  if (command === 'up') return up();
  if (command === 'down') return down(flags.includes('--reset'));
  throw new Error(`unknown command '${command}': use up or down [--reset]`);
}

main().catch((error: unknown) => {
  if (error instanceof StackAlreadyRunningError || error instanceof StackPrerequisiteError) {
    process.stderr.write(`${error.message}\n`);
  } else {
    process.stderr.write(`stack: ${error instanceof Error ? error.stack : String(error)}\n`);
  }
  process.exit(1);
});
