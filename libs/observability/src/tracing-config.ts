// The tracing settings a service reads at start-up: the standard OTEL_* variables it honours, and
// TRACES_FILE for the local JSON lines exporter. Validated before anything else loads, so a typo
// stops the process with one line instead of silently turning tracing off.
import { z } from 'zod';

export const TRACE_EXPORTERS = ['none', 'otlp', 'console', 'file'] as const;
export type TraceExporterName = (typeof TRACE_EXPORTERS)[number];

const OTLP_PROTOCOLS = ['grpc', 'http/protobuf', 'http/json'] as const;
const SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;

const list = (value: string) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);

const exporterList = z
  .string()
  .transform(list)
  .pipe(
    z
      .array(
        z.enum(TRACE_EXPORTERS, { error: `each must be one of ${TRACE_EXPORTERS.join(', ')}` }),
      )
      .refine((names) => !(names.includes('none') && names.length > 1), {
        message: 'none cannot be combined with an exporter',
      }),
  );

const otlpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

/** Environment variables of tracing, as the platform's config schema also lists them. */
export const tracingEnvShape = {
  /** Comma-separated: otlp, console, file; `none` (the default) leaves tracing off. */
  OTEL_TRACES_EXPORTER: exporterList.optional(),
  OTEL_SDK_DISABLED: z.enum(['true', 'false']).optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: otlpUrl.optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: otlpUrl.optional(),
  OTEL_EXPORTER_OTLP_PROTOCOL: z.enum(OTLP_PROTOCOLS).optional(),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: z.enum(OTLP_PROTOCOLS).optional(),
  OTEL_EXPORTER_OTLP_HEADERS: z.string().optional(),
  OTEL_SERVICE_NAME: z.string().min(1).optional(),
  OTEL_RESOURCE_ATTRIBUTES: z
    .string()
    .regex(/^\s*[^=,\s]+=[^,]*(,\s*[^=,\s]+=[^,]*)*$/, 'must be key=value[,key=value...]')
    .optional(),
  OTEL_TRACES_SAMPLER: z.enum(SAMPLERS).optional(),
  OTEL_TRACES_SAMPLER_ARG: z.coerce.number().min(0).max(1).optional(),
  OTEL_BSP_SCHEDULE_DELAY: z.coerce.number().int().min(0).max(60_000).optional(),
  /** Where OTEL_TRACES_EXPORTER=file appends spans (default .local/traces/<service>.jsonl). */
  TRACES_FILE: z.string().min(1).optional(),
};

const tracingConfigSchema = z.object(tracingEnvShape);

export interface TracingConfig {
  /** Exporters to run; empty when tracing is off. */
  exporters: Exclude<TraceExporterName, 'none'>[];
  otlpProtocol: (typeof OTLP_PROTOCOLS)[number];
  file: string | undefined;
}

export class TracingConfigError extends Error {
  override readonly name = 'TracingConfigError';
}

/** Reads the tracing settings; throws one message naming every bad variable. */
export function parseTracingConfig(env: Record<string, string | undefined>): TracingConfig {
  // Empty strings count as unset, as in the rest of the configuration.
  const cleaned = Object.fromEntries(
    Object.entries(env).filter(([, value]) => value !== undefined && value !== ''),
  );
  const result = tracingConfigSchema.safeParse(cleaned);
  if (!result.success) {
    const problems = result.error.issues.map(
      (issue) => `${String(issue.path[0])} is invalid (${issue.message})`,
    );
    throw new TracingConfigError(`invalid configuration: ${[...new Set(problems)].join('; ')}`);
  }
  const config = result.data;
  const disabled = config.OTEL_SDK_DISABLED === 'true';
  const exporters = disabled
    ? []
    : (config.OTEL_TRACES_EXPORTER ?? []).filter(
        (name): name is TracingConfig['exporters'][number] => name !== 'none',
      );
  return {
    exporters: [...new Set(exporters)],
    otlpProtocol:
      config.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ??
      config.OTEL_EXPORTER_OTLP_PROTOCOL ??
      'http/protobuf',
    file: config.TRACES_FILE,
  };
}
