// `npm run bench -- <scenario> [--flag value ...]`: runs a benchmark on the real stack and prints
// its figures with the machine they ran on.
import { auditBenchmark } from './audit';
import { eventStoreBenchmark } from './event-store';
import { matchingBenchmark } from './matching';
import { ordersBenchmark } from './orders';
import { riskBenchmark } from './risk';
import { settlementBenchmark } from './settlement';
import { machine } from './stats';
import { tccBenchmark } from './tcc';

const SCENARIOS: Record<string, (flags: Record<string, string>) => Promise<void>> = {
  audit: auditBenchmark,
  'event-store': eventStoreBenchmark,
  matching: matchingBenchmark,
  orders: ordersBenchmark,
  risk: riskBenchmark,
  settlement: settlementBenchmark,
  tcc: tccBenchmark,
};

function parseFlags(args: string[]): Record<string, string> {
  const flags: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(args[i]);
    if (!match) throw new Error(`unexpected argument '${args[i]}'`);
    // A flag followed by another flag (or nothing) is a switch.
    const takesValue =
      match[2] === undefined && args[i + 1] !== undefined && !args[i + 1].startsWith('--');
    flags[match[1]] = match[2] ?? (takesValue ? args[++i] : '');
  }
  return flags;
}

async function main(): Promise<void> {
  const [scenario, ...rest] = process.argv.slice(2);
  const run = scenario ? SCENARIOS[scenario] : undefined;
  if (!run) {
    process.stderr.write(
      `usage: npm run bench -- <${Object.keys(SCENARIOS).join('|')}> [--flag value]\n`,
    );
    process.exit(2);
  }
  process.stdout.write(`machine: ${machine()}\n`);
  await run(parseFlags(rest));
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
