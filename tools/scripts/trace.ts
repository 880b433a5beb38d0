// `npm run trace -- <id>`: shows the trace an order (or global transaction, message, or trace id)
// belongs to, from the JSON lines the services write with OTEL_TRACES_EXPORTER=file. No collector
// needed: `OTEL_TRACES_EXPORTER=file npm start`, place an order, then run this with its orderId.
import { readSpanFiles, renderTrace, tracesMatching } from '@finance/observability';
import { join } from 'node:path';
import { localDir } from '@finance/testing';

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const dirAt = args.indexOf('--dir');
  const dir = dirAt >= 0 ? args[dirAt + 1] : join(localDir(), 'traces');
  const id = args.find((arg, i) => !arg.startsWith('--') && (dirAt < 0 || i !== dirAt + 1));
  if (!id) {
    process.stderr.write(
      'usage: npm run trace -- <orderId|gtid|eventId|traceId> [--dir <dir>] [--json]\n',
    );
    return 2;
  }
  const spans = await readSpanFiles(dir);
  const traceIds = tracesMatching(spans, id);
  if (traceIds.length === 0) {
    process.stderr.write(
      `no span in ${dir} mentions ${id}` +
        (spans.length === 0
          ? ' (no spans at all: start the services with OTEL_TRACES_EXPORTER=file, e.g. `OTEL_TRACES_EXPORTER=file npm start`)\n'
          : '\n'),
    );
    return 1;
  }
  for (const traceId of traceIds) {
    if (json) {
      for (const span of spans.filter((s) => s.traceId === traceId)) {
        process.stdout.write(`${JSON.stringify(span)}\n`);
      }
    } else process.stdout.write(`${renderTrace(spans, traceId)}\n`);
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`trace failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
