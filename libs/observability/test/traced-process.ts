// A process that starts tracing the way a service does, serves one HTTP request to itself with a
// log line inside it, flushes and prints what it saw: the tracing spec runs it as a child process.
import { shutdownTracing, startTracingOrExit, traceLogFields } from '../src';

const status = startTracingOrExit('fixture');

async function main(): Promise<void> {
  /* eslint-disable @typescript-eslint/no-require-imports -- after tracing started, as a service */
  const http = require('node:http') as typeof import('node:http');
  const pino = require('pino') as typeof import('pino');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const lines: string[] = [];
  const logger = pino.pino(
    { base: null, mixin: traceLogFields },
    { write: (line: string) => lines.push(line) },
  );
  const server = http.createServer((request, response) => {
    logger.info({ url: request.url }, 'handled');
    response.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve, reject) => {
    http
      .get(`http://127.0.0.1:${port}/orders`, (response) => {
        response.resume();
        response.on('end', resolve);
      })
      .on('error', reject);
  });
  server.close();
  await shutdownTracing();
  const sdkLoaded = Object.keys(require.cache).some((file) =>
    file.includes(`${'@opentelemetry'}/sdk-node`),
  );
  process.stdout.write(
    `${JSON.stringify({ status, sdkLoaded, logs: lines.map((l) => JSON.parse(l)) })}\n`,
  );
}

void main();
