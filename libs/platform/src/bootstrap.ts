// Starts one bounded-context service: validated config, its identity, database + migrations, Nest
// on Fastify (mutual TLS off the mesh), health, problem details, and a graceful SIGTERM that drains
// in-flight requests.
import { DynamicModule, Global, INestApplication, Module, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { CustomTransportStrategy } from '@nestjs/microservices';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { ServiceName } from '@finance/contracts';
import { shutdownTracing, tracingStatus } from '@finance/observability';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { z } from 'zod';
import { BaseConfig, baseConfigSchema, ConfigError, loadConfig } from './config';
import {
  connectDatabase,
  createDataSource,
  EntityList,
  MigrationList,
  runMigrations,
} from './database';
import { StartupError } from './errors';
import { HealthController, KAFKA_PROBE, ReadinessService } from './health';
import {
  AUTHORIZATION_GUARD,
  loadServiceIdentity,
  SERVICE_IDENTITY,
  ServiceIdentity,
} from './identity';
import { KafkaProbe } from './kafka-probe';
import { createLogger, NestPinoLogger } from './logger';
import {
  enableDefaultMetrics,
  MetricsController,
  observeHttpRequests,
  tlsHandshakeFailures,
} from './metrics';
import { ProblemDetailsFilter } from './problem-details';
import { mutualTlsServerOptions } from './tls';

export const SERVICE_CONFIG = Symbol('SERVICE_CONFIG');
export const SERVICE_LOGGER = Symbol('SERVICE_LOGGER');

export interface ServiceDefinition<C extends BaseConfig = BaseConfig> {
  name: ServiceName;
  /** Port used when PORT is not set. */
  defaultPort: number;
  configSchema?: z.ZodType<C>;
  /** The bounded context's root module. */
  module: Type<unknown>;
  migrations: MigrationList;
  entities?: EntityList;
  /**
   * Message transports whose `@EventPattern` handlers the module declares (e.g. the inbox consumer),
   * taken from the built application. They start after the HTTP listener and stop before it.
   */
  transports?: (app: INestApplication) => CustomTransportStrategy[];
}

/** A transport that can say why it is not ready yet (null when it is). */
export interface ReadinessReporter {
  readinessProblem(): string | null;
}

export interface ServiceHandle<C extends BaseConfig = BaseConfig> {
  app: NestFastifyApplication;
  config: C;
  identity: ServiceIdentity;
  logger: Logger;
  /** Stops taking work, drains in-flight requests, closes database and Kafka clients. */
  close(): Promise<void>;
}

@Global()
@Module({})
class ServiceRootModule {
  static register(parts: {
    feature: Type<unknown>;
    dataSource: DataSource;
    probe: KafkaProbe;
    config: BaseConfig;
    identity: ServiceIdentity;
    logger: Logger;
  }): DynamicModule {
    return {
      module: ServiceRootModule,
      imports: [
        TypeOrmModule.forRootAsync({
          useFactory: () => parts.dataSource.options,
          // Already connected and migrated before Nest starts, so start-up errors stay readable.
          dataSourceFactory: async () => parts.dataSource,
        }),
        parts.feature,
      ],
      controllers: [HealthController, MetricsController],
      providers: [
        ReadinessService,
        { provide: KAFKA_PROBE, useValue: parts.probe },
        { provide: SERVICE_CONFIG, useValue: parts.config },
        { provide: SERVICE_LOGGER, useValue: parts.logger },
        { provide: SERVICE_IDENTITY, useValue: parts.identity },
      ],
      exports: [SERVICE_CONFIG, SERVICE_LOGGER, SERVICE_IDENTITY, ReadinessService],
    };
  }
}

/** Builds the service without listening, so tests can drive it in-process. */
export async function createService<C extends BaseConfig>(
  definition: ServiceDefinition<C>,
  env: Record<string, string | undefined> = process.env,
): Promise<ServiceHandle<C>> {
  const schema = (definition.configSchema ?? baseConfigSchema) as z.ZodType<C>;
  const config = loadConfig(schema, { PORT: String(definition.defaultPort), ...env });
  const identity = loadServiceIdentity(definition.name, config);
  const logger = createLogger(definition.name, config.LOG_LEVEL);
  enableDefaultMetrics(definition.name);

  const dataSource = createDataSource({
    url: config.DATABASE_URL,
    applicationName: `${definition.name}-service`,
    poolSize: config.DATABASE_POOL_SIZE,
    migrations: definition.migrations,
    entities: definition.entities,
  });
  await connectDatabase(dataSource, config.DATABASE_URL);
  const probe = new KafkaProbe(config.KAFKA_BROKERS, `${definition.name}-service`, logger);
  try {
    if (config.DATABASE_MIGRATIONS_RUN) {
      const applied = await runMigrations(dataSource);
      if (applied.length > 0) logger.info({ migrations: applied }, 'database migrated');
    }
    const { transport } = identity;
    const app = await NestFactory.create<NestFastifyApplication>(
      ServiceRootModule.register({
        feature: definition.module,
        dataSource,
        probe,
        config,
        identity,
        logger,
      }),
      new FastifyAdapter({
        bodyLimit: 1024 * 1024,
        ...(transport.mode === 'mutual-tls'
          ? { https: mutualTlsServerOptions(transport.material) }
          : {}),
      }),
      { logger: new NestPinoLogger(logger), abortOnError: false },
    );
    observeHttpRequests(app.getHttpAdapter().getInstance());
    try {
      app.get(AUTHORIZATION_GUARD, { strict: false });
    } catch {
      await app.close();
      throw new StartupError(
        `no authorization guard: ${definition.name}'s module must import AuthzModule.forService()`,
      );
    }
    if (transport.mode === 'mutual-tls') {
      // A refused handshake never reaches Nest; say who was refused and why.
      app
        .getHttpServer()
        .on('tlsClientError', (error: NodeJS.ErrnoException, socket: TLSSocket) => {
          // A certificate that fails verification only shows in authorizationError: Node closes
          // the connection at the end of the handshake and reports a hang-up.
          const reason = String(socket.authorizationError ?? error.code ?? 'TLS_ERROR');
          tlsHandshakeFailures.inc({ reason });
          logger.warn({ reason, remote: socket.remoteAddress }, 'TLS handshake refused');
        });
    }
    app.useGlobalFilters(new ProblemDetailsFilter(logger));
    const readiness = app.get(ReadinessService);
    for (const [i, strategy] of (definition.transports?.(app) ?? []).entries()) {
      app.connectMicroservice({ strategy }, { inheritAppConfig: true });
      // A service whose consumer has not joined its group cannot finish the work it accepts.
      const reports = strategy as Partial<ReadinessReporter>;
      if (typeof reports.readinessProblem === 'function') {
        readiness.addCheck(i === 0 ? 'consumer' : `consumer${i + 1}`, () =>
          reports.readinessProblem!(),
        );
      }
    }
    return {
      app,
      config,
      identity,
      logger,
      async close() {
        readiness.markShuttingDown();
        // Consumers first: the batch in flight commits while the database pool is still open.
        await Promise.all(app.getMicroservices().map((service) => service.close()));
        await app.close(); // Fastify waits for in-flight requests; TypeORM closes the pool.
        await probe.close();
        if (dataSource.isInitialized) await dataSource.destroy();
      },
    };
  } catch (error) {
    await probe.close();
    if (dataSource.isInitialized) await dataSource.destroy();
    throw error;
  }
}

/** Process entry point of a service: exits non-zero with one line on a start-up problem. */
export async function runService<C extends BaseConfig>(
  definition: ServiceDefinition<C>,
): Promise<void> {
  let handle: ServiceHandle<C>;
  try {
    handle = await createService(definition);
    await handle.app.listen({ port: handle.config.PORT, host: handle.config.HOST });
    // Not awaited: a transport keeps trying while Kafka is down, and the service serves meanwhile.
    handle.app.startAllMicroservices().catch((error: unknown) => {
      handle.logger.error({ err: error }, 'message transport failed to start');
    });
  } catch (error) {
    if (error instanceof ConfigError || error instanceof StartupError) {
      process.stderr.write(`${definition.name}: ${error.message}\n`);
    } else {
      process.stderr.write(
        `${definition.name}: failed to start: ${error instanceof Error ? error.stack : String(error)}\n`,
      );
    }
    process.exit(1);
  }

  const { logger, config, identity } = handle;
  const scheme = identity.transport.mode === 'mutual-tls' ? 'https' : 'http';
  const tracing = tracingStatus();
  logger.info(
    {
      url: `${scheme}://${config.HOST}:${config.PORT}`,
      principal: identity.principal,
      transport: identity.transport.mode,
      tracing: tracing.enabled ? tracing.exporters.join(',') : 'off',
      ...(identity.transport.mode === 'mutual-tls'
        ? { certificateExpires: identity.transport.notAfter.toISOString() }
        : {}),
    },
    `${definition.name} service listening`,
  );

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: draining in-flight work');
    const deadline = setTimeout(() => {
      logger.error({ timeoutMs: config.SHUTDOWN_TIMEOUT_MS }, 'shutdown timed out, exiting');
      process.exit(1);
    }, config.SHUTDOWN_TIMEOUT_MS);
    deadline.unref();
    handle
      .close()
      .then(
        () => {
          logger.info('shutdown complete');
          return 0;
        },
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          return 1;
        },
      )
      // The spans of the last requests are still buffered in the exporter.
      .then(async (code) => {
        await shutdownTracing().catch((error: unknown) =>
          logger.warn({ err: error }, 'flushing traces failed'),
        );
        process.exit(code);
      });
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
