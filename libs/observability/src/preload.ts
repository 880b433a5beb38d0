// `node -r` preload that starts tracing ahead of a service's main module, so the instrumentations
// are in place before it requires Nest, pg or kafkajs. The service is named by the main module's
// path (apps/<service>/src/main.ts); any other script runs untraced.
import { startTracingOrExit } from './tracing';

const entry = /apps[\\/]([a-z][a-z0-9-]*)[\\/]src[\\/]main\.[jt]s$/.exec(process.argv[1] ?? '');
if (entry) startTracingOrExit(entry[1]);
