// Service configuration read from the environment and validated once, at start-up.
import { tracingEnvShape } from '@finance/observability';
import { z } from 'zod';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const brokerList = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((b) => b.trim())
      .filter(Boolean),
  )
  .pipe(
    z
      .array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'each broker must be host:port'))
      .min(1, 'at least one broker host:port is required'),
  );

const booleanFlag = z.enum(['true', 'false']).transform((v) => v === 'true');

// Off the mesh a service terminates mutual TLS itself; behind it Envoy does and these are unused.
const TLS_FILES = ['TLS_CERT_FILE', 'TLS_KEY_FILE', 'TLS_CA_FILE'] as const;

export const baseConfigSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
    HOST: z.string().min(1).default('127.0.0.1'),
    PORT: z.coerce
      .number({ error: 'must be a port number (1-65535)' })
      .int('must be a port number (1-65535)')
      .min(1, 'must be a port number (1-65535)')
      .max(65535, 'must be a port number (1-65535)'),
    DATABASE_URL: z
      .string()
      .regex(
        /^postgres(ql)?:\/\/[^/]+\/[^/?]+/,
        'must be postgres://user:password@host:port/database',
      ),
    DATABASE_POOL_SIZE: z.coerce.number().int().min(1).max(200).default(10),
    DATABASE_MIGRATIONS_RUN: booleanFlag.default(true),
    KAFKA_BROKERS: brokerList,
    KAFKA_TOPIC_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9._-]*$/, 'may contain only letters, digits, ".", "_" and "-"')
      .default(''),
    LOG_LEVEL: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info'),
    SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).max(120_000).default(10_000),
    /** A TCC coordinator packs commands that leave together into one record per participant. */
    TCC_BATCH_COMMANDS: booleanFlag.default(false),
    /** Behind Istio: plain HTTP from the sidecar, caller identity from x-forwarded-client-cert. */
    MESH_MODE: booleanFlag.default(false),
    TLS_CERT_FILE: z.string().optional(),
    TLS_KEY_FILE: z.string().optional(),
    TLS_CA_FILE: z.string().optional(),
    /** The OPA server (the sidecar in the mesh) that decides every request; no default on purpose. */
    OPA_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
    OPA_TIMEOUT_MS: z.coerce.number().int().min(10).max(10_000).default(500),
    // Tracing (OTEL_TRACES_EXPORTER and the rest), read before anything else by startTracing.
    ...tracingEnvShape,
  })
  .superRefine(
    (config, ctx) => {
      if (config.MESH_MODE) return;
      for (const variable of TLS_FILES) {
        if (config[variable] === undefined) {
          ctx.addIssue({ code: 'custom', path: [variable], message: 'unless MESH_MODE=true' });
        }
      }
    },
    // Also when other variables are wrong, so one start-up reports every problem at once.
    { when: () => true },
  );

export type BaseConfig = z.infer<typeof baseConfigSchema>;

/**
 * Parses `env` with `schema`. Every problem is reported in one line that names the variable,
 * e.g. `invalid configuration: DATABASE_URL is required; PORT must be ...`.
 */
export function loadConfig<S extends z.ZodType<BaseConfig>>(
  schema: S,
  env: Record<string, string | undefined>,
): z.infer<S> {
  // Empty strings count as unset so `FOO= npm start` does not sneak an empty URL through.
  const cleaned = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ''),
  );
  const result = schema.safeParse(cleaned);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const variable = String(issue.path[0] ?? '(root)');
    if (cleaned[variable] !== undefined) return `${variable} is invalid (${issue.message})`;
    // Conditionally required variables say when they are required.
    return issue.code === 'custom'
      ? `${variable} is required (${issue.message})`
      : `${variable} is required`;
  });
  throw new ConfigError(`invalid configuration: ${[...new Set(problems)].join('; ')}`);
}
