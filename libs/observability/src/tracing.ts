// Starts OpenTelemetry tracing in a service process. It has to run before Nest, pg and kafkajs are
// required, because the instrumentations patch modules as they load: each service's main.ts imports
// its tracing file first. With no exporter configured (the default) the SDK is not even loaded, so
// tracing off costs nothing but a few no-op API calls.
import type { NodeSDK } from '@opentelemetry/sdk-node';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { IncomingMessage } from 'node:http';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { parseTracingConfig, TracingConfig, TracingConfigError } from './tracing-config';

export interface TracingStatus {
  enabled: boolean;
  exporters: TracingConfig['exporters'];
  /** The JSON lines file spans go to, with the file exporter. */
  file?: string;
}

/** The product the four services make up (resource attribute service.namespace). */
export const SERVICE_NAMESPACE = 'finance-core';

// Probes and scrapes would otherwise each start a trace of their own every few seconds.
const UNTRACED_PATHS = /^\/(health\/(live|ready)|metrics)(\?|$)/;

let sdk: NodeSDK | undefined;
let status: TracingStatus = { enabled: false, exporters: [] };

export function tracingStatus(): TracingStatus {
  return status;
}

/** Where the file exporter writes by default: `<FINANCE_LOCAL_DIR or ./.local>/traces/<service>.jsonl`. */
export function defaultTraceFile(
  service: string,
  env: Record<string, string | undefined> = process.env,
): string {
  return join(traceDir(env), `${service}.jsonl`);
}

/** The folder of the local trace files (what `npm run trace` reads). */
export function traceDir(env: Record<string, string | undefined> = process.env): string {
  return join(env.FINANCE_LOCAL_DIR || join(process.cwd(), '.local'), 'traces');
}

/**
 * Starts the SDK when OTEL_TRACES_EXPORTER names an exporter (otlp, console, file). Throws
 * TracingConfigError on a bad variable. Call once, before anything else is required.
 */
export function startTracing(
  service: string,
  env: Record<string, string | undefined> = process.env,
  version = env.npm_package_version,
): TracingStatus {
  if (sdk) throw new Error('tracing is already started');
  const config = parseTracingConfig(env);
  if (config.exporters.length === 0) return status;

  /* eslint-disable @typescript-eslint/no-require-imports -- loaded only when tracing is on */
  const { NodeSDK } =
    require('@opentelemetry/sdk-node') as typeof import('@opentelemetry/sdk-node');
  const { BatchSpanProcessor, ConsoleSpanExporter } =
    require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base');
  const { defaultResource, resourceFromAttributes } =
    require('@opentelemetry/resources') as typeof import('@opentelemetry/resources');
  const { HttpInstrumentation } =
    require('@opentelemetry/instrumentation-http') as typeof import('@opentelemetry/instrumentation-http');
  const { NestInstrumentation } =
    require('@opentelemetry/instrumentation-nestjs-core') as typeof import('@opentelemetry/instrumentation-nestjs-core');
  const { PgInstrumentation } =
    require('@opentelemetry/instrumentation-pg') as typeof import('@opentelemetry/instrumentation-pg');

  // The stable HTTP and database semantic conventions (http.request.method, db.query.text, ...),
  // unless the environment chose otherwise; the instrumentations read this when created.
  if (process.env.OTEL_SEMCONV_STABILITY_OPT_IN === undefined) {
    process.env.OTEL_SEMCONV_STABILITY_OPT_IN = 'http,database';
  }
  const file = config.exporters.includes('file')
    ? (config.file ?? defaultTraceFile(service, env))
    : undefined;
  const exporters: SpanExporter[] = config.exporters.map((name) => {
    switch (name) {
      case 'otlp':
        return otlpExporter(config.otlpProtocol);
      case 'console':
        return new ConsoleSpanExporter();
      case 'file': {
        const { JsonLinesSpanExporter } =
          require('./json-lines-exporter') as typeof import('./json-lines-exporter');
        return new JsonLinesSpanExporter(file!);
      }
      default: {
        const never: never = name;
        throw new TracingConfigError(`unknown exporter ${String(never)}`);
      }
    }
  });
  /* eslint-enable @typescript-eslint/no-require-imports */

  sdk = new NodeSDK({
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (the env detector) override these.
    resource: defaultResource().merge(
      resourceFromAttributes({
        'service.name': service,
        'service.namespace': SERVICE_NAMESPACE,
        'service.version': version ?? 'unknown',
        'service.instance.id': randomUUID(),
      }),
    ),
    // Batches with the OTEL_BSP_* settings; the sampler comes from OTEL_TRACES_SAMPLER.
    spanProcessors: exporters.map((exporter) => new BatchSpanProcessor(exporter)),
    // Traces only: metrics are Prometheus' (prom-client) and logs go to stdout.
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (request: IncomingMessage) =>
          UNTRACED_PATHS.test(request.url ?? ''),
        // Outgoing calls (OPA, other services) belong to the request or message that made them.
        requireParentforOutgoingSpans: true,
      }),
      new NestInstrumentation(),
      // Only statements of a traced request or message, without their parameters (amounts, ids).
      new PgInstrumentation({
        requireParentSpan: true,
        enhancedDatabaseReporting: false,
        ignoreConnectSpans: true,
      }),
    ],
  });
  sdk.start();
  status = { enabled: true, exporters: config.exporters, ...(file ? { file } : {}) };
  return status;
}

/**
 * startTracing for a service's entry point: a bad variable stops the process with one line. The
 * image's entry point passes the version it was built as; locally npm's package version applies.
 */
export function startTracingOrExit(service: string, version?: string): TracingStatus {
  try {
    return startTracing(service, process.env, version);
  } catch (error) {
    if (!(error instanceof TracingConfigError)) throw error;
    process.stderr.write(`${service}: ${error.message}\n`);
    process.exit(1);
  }
}

/** Exports the spans still buffered and stops the SDK; a no-op when tracing is off. */
export async function shutdownTracing(): Promise<void> {
  const running = sdk;
  sdk = undefined;
  await running?.shutdown();
}

function otlpExporter(protocol: TracingConfig['otlpProtocol']): SpanExporter {
  // Each reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT and _HEADERS itself.
  /* eslint-disable @typescript-eslint/no-require-imports -- only the one the protocol needs */
  switch (protocol) {
    case 'grpc':
      return new (
        require('@opentelemetry/exporter-trace-otlp-grpc') as typeof import('@opentelemetry/exporter-trace-otlp-grpc')
      ).OTLPTraceExporter();
    case 'http/json':
      return new (
        require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http')
      ).OTLPTraceExporter();
    case 'http/protobuf':
      return new (
        require('@opentelemetry/exporter-trace-otlp-proto') as typeof import('@opentelemetry/exporter-trace-otlp-proto')
      ).OTLPTraceExporter();
  }
  /* eslint-enable @typescript-eslint/no-require-imports */
}
