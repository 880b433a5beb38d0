// TCC in a Nest service: the participant side as `@EventPattern` handlers on the inbox transport, and
// the coordinator with its reply handler, tick loop and operator API. Commands and replies run in the
// inbox consumer's transaction, so the barrier, the business effect and the reply commit together.
import {
  Controller,
  DynamicModule,
  Inject,
  Injectable,
  Module,
  ModuleMetadata,
  OnApplicationBootstrap,
  OnApplicationShutdown,
  OnModuleInit,
  Type,
} from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import type { Envelope, ServiceName } from '@finance/contracts';
import { InboxKafkaServer, InboxRpcContext, KAFKA_CLIENT } from '@finance/messaging';
import {
  BaseConfig,
  SERVICE_CONFIG,
  SERVICE_IDENTITY,
  SERVICE_LOGGER,
  ServiceIdentity,
} from '@finance/platform';
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { DataSource, EntityManager } from 'typeorm';
import { tccAdminController, TCC_COORDINATOR } from '../admin/tcc-admin';
import { Decision, TccCoordinator, TccCoordinatorOptions } from '../coordinator/coordinator';
import { BranchHandlers, TccParticipant } from '../participant/participant';

export const TCC_PARTICIPANT = Symbol('TCC_PARTICIPANT');

/**
 * TCC commands and replies run on an inbox server of their own (consumer group
 * `<prefix><service>-tcc`): a reservation never waits behind a batch of the service's other traffic
 * that the same fetch brought. The service definition connects it (`TCC_INBOX_SERVER`).
 */
export const TCC_TRANSPORT = Symbol('TCC_TRANSPORT');
export const TCC_INBOX_SERVER = Symbol('TCC_INBOX_SERVER');

@Module({
  providers: [
    {
      provide: TCC_INBOX_SERVER,
      inject: [SERVICE_CONFIG, SERVICE_IDENTITY, DataSource, KAFKA_CLIENT, SERVICE_LOGGER],
      useFactory: (
        config: BaseConfig,
        identity: ServiceIdentity,
        dataSource: DataSource,
        kafka: Kafka,
        logger: Logger,
      ) =>
        new InboxKafkaServer({
          name: `${config.KAFKA_TOPIC_PREFIX}${identity.service}-tcc`,
          transportId: TCC_TRANSPORT,
          kafka,
          dataSource,
          logger: logger.child({ component: 'tcc-consumer' }),
          topicPrefix: config.KAFKA_TOPIC_PREFIX,
          retryStart: true,
        }),
    },
  ],
  exports: [TCC_INBOX_SERVER],
})
export class TccTransportModule {}

@Controller()
class TccCommandsController {
  constructor(@Inject(TCC_PARTICIPANT) private readonly participant: TccParticipant) {}

  @EventPattern('TccTry', TCC_TRANSPORT)
  async try(@Payload() message: Envelope, @Ctx() ctx: InboxRpcContext): Promise<void> {
    await this.participant.handle(message, ctx.manager);
  }

  @EventPattern('TccConfirm', TCC_TRANSPORT)
  async confirm(@Payload() message: Envelope, @Ctx() ctx: InboxRpcContext): Promise<void> {
    await this.participant.handle(message, ctx.manager);
  }

  @EventPattern('TccCancel', TCC_TRANSPORT)
  async cancel(@Payload() message: Envelope, @Ctx() ctx: InboxRpcContext): Promise<void> {
    await this.participant.handle(message, ctx.manager);
  }

  /** Any coordinator may pack commands (`batchCommands`), so every participant takes batches. */
  @EventPattern('TccCommandBatch', TCC_TRANSPORT)
  async batch(@Payload() message: Envelope, @Ctx() ctx: InboxRpcContext): Promise<void> {
    await this.participant.handle(message, ctx.manager);
  }
}

// A consumer run of commands goes to the participant in one call (the barrier read and written once
// for the run); the @EventPattern handlers above take over one by one if the run fails.
@Injectable()
class ParticipantRuns implements OnModuleInit {
  constructor(
    @Inject(TCC_PARTICIPANT) private readonly participant: TccParticipant,
    @Inject(TCC_INBOX_SERVER) private readonly server: InboxKafkaServer,
  ) {}

  onModuleInit(): void {
    const types = ['TccTry', 'TccConfirm', 'TccCancel', 'TccCommandBatch'];
    this.server.addRunHandler(types, async (entries) => {
      await this.participant.handleRun(entries, entries[0].ctx.manager);
    });
  }
}

export interface TccParticipantModuleOptions {
  service: ServiceName;
  /** Resource name → the provider (from `imports`) that runs its Try, Confirm and Cancel. */
  resources: Record<string, Type<BranchHandlers>>;
  imports?: ModuleMetadata['imports'];
}

@Module({})
export class TccParticipantModule {
  static forService(options: TccParticipantModuleOptions): DynamicModule {
    return {
      module: TccParticipantModule,
      imports: [TccTransportModule, ...(options.imports ?? [])],
      controllers: [TccCommandsController],
      providers: [
        {
          provide: TCC_PARTICIPANT,
          // The handler providers are injected (not looked up) so Nest builds them first.
          inject: [SERVICE_CONFIG, ...Object.values(options.resources)],
          useFactory: (config: BaseConfig, ...handlers: BranchHandlers[]) =>
            new TccParticipant({
              service: options.service,
              topicPrefix: config.KAFKA_TOPIC_PREFIX,
              resources: Object.fromEntries(
                Object.keys(options.resources).map((resource, i) => [resource, handlers[i]]),
              ),
            }),
        },
        ParticipantRuns,
      ],
      exports: [TCC_PARTICIPANT, TccTransportModule],
    };
  }
}

@Controller()
class TccRepliesController {
  constructor(@Inject(TCC_COORDINATOR) private readonly coordinator: TccCoordinator) {}

  @EventPattern('TccReply', TCC_TRANSPORT)
  async reply(@Payload() message: Envelope, @Ctx() ctx: InboxRpcContext): Promise<void> {
    await this.coordinator.onReply(message, ctx.manager);
  }

  @EventPattern('TccReplyBatch', TCC_TRANSPORT)
  async replies(@Payload() message: Envelope, @Ctx() ctx: InboxRpcContext): Promise<void> {
    await this.coordinator.onReply(message, ctx.manager);
  }
}

@Injectable()
class CoordinatorLifecycle implements OnModuleInit, OnApplicationBootstrap, OnApplicationShutdown {
  constructor(
    @Inject(TCC_COORDINATOR) private readonly coordinator: TccCoordinator,
    @Inject(TCC_INBOX_SERVER) private readonly server: InboxKafkaServer,
  ) {}

  onModuleInit(): void {
    // A consumer run of replies is applied in one call; TccRepliesController takes over if it fails.
    this.server.addRunHandler(['TccReply', 'TccReplyBatch'], (entries) =>
      this.coordinator.onReplies(entries, entries[0].ctx.manager),
    );
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.coordinator.start(); // resumes every unfinished transaction on its first tick
  }

  async onApplicationShutdown(): Promise<void> {
    await this.coordinator.stop();
  }
}

export interface TccCoordinatorModuleOptions extends Pick<
  TccCoordinatorOptions,
  'retryInitialMs' | 'retryMaxMs' | 'tickIntervalMs' | 'batchCommands'
> {
  service: ServiceName;
  /** A provider (from `imports`) whose `onDecided` learns each decision in its transaction. */
  decisions?: Type<DecisionListener>;
  imports?: ModuleMetadata['imports'];
}

export interface DecisionListener {
  onDecided(decision: Decision, manager: EntityManager): Promise<void>;
}

@Module({})
export class TccCoordinatorModule {
  /** The coordinator (token `TCC_COORDINATOR`), its reply handler and `/<service>/admin/tcc/...`. */
  static forService(options: TccCoordinatorModuleOptions): DynamicModule {
    return {
      module: TccCoordinatorModule,
      global: true,
      imports: [TccTransportModule, ...(options.imports ?? [])],
      controllers: [TccRepliesController, tccAdminController(`${options.service}/admin/tcc`)],
      providers: [
        {
          provide: TCC_COORDINATOR,
          inject: [
            DataSource,
            SERVICE_CONFIG,
            SERVICE_LOGGER,
            ...(options.decisions ? [options.decisions] : []),
          ],
          useFactory: (
            dataSource: DataSource,
            config: BaseConfig,
            logger: Logger,
            listener?: DecisionListener,
          ) => {
            return new TccCoordinator({
              retryInitialMs: options.retryInitialMs,
              retryMaxMs: options.retryMaxMs,
              tickIntervalMs: options.tickIntervalMs,
              batchCommands: options.batchCommands ?? config.TCC_BATCH_COMMANDS,
              service: options.service,
              onDecided: listener && ((decision, manager) => listener.onDecided(decision, manager)),
              dataSource,
              topicPrefix: config.KAFKA_TOPIC_PREFIX,
              logger: logger.child({ component: 'tcc-coordinator' }),
            });
          },
        },
        CoordinatorLifecycle,
      ],
      exports: [TCC_COORDINATOR, TccTransportModule],
    };
  }
}
