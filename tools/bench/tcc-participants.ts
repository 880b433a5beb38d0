// The TCC benchmark's participants in a process of their own (see `tcc.ts`): started with their
// configuration in BENCH_PARTICIPANTS, they print "ready" and run until SIGTERM.
import { createLogger } from '@finance/platform';
import { ParticipantsConfig, startParticipants } from './tcc';

async function main(): Promise<void> {
  const config = JSON.parse(process.env.BENCH_PARTICIPANTS ?? '') as ParticipantsConfig;
  const logger = createLogger('bench-participants', process.env.BENCH_LOG_LEVEL ?? 'warn');
  const participants = await startParticipants(config, logger);
  process.stdout.write('ready\n');
  process.once('SIGTERM', () => {
    participants.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}

main().catch((error: unknown) => {
  process.stderr.write(
    `participants failed: ${error instanceof Error ? error.stack : String(error)}\n`,
  );
  process.exit(1);
});
