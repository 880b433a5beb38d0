// Nest wiring of sagas for a service: the participant (token SAGA_PARTICIPANT) with its handler of
// saga.commands on the service's inbox transport, and the orchestrator (token SAGA_ORCHESTRATOR)
// with its handler of saga.replies, its timer and the operator API under /<service>/admin/saga.
import {
  Controller,
  DynamicModule,
  Inject,
  Injectable,
  Module,
  ModuleMetadata,
  OnApplicationBootstrap,
  OnApplicationShutdown,
  Type,
} from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { SagaStepCompleted, SagaStepRequested, type ServiceName } from '@finance/contracts';
import type { MessageOf } from '@finance/contracts';
import { INBOX_KAFKA_TRANSPORT, InboxRpcContext } from '@finance/messaging';
import { BaseConfig, SERVICE_CONFIG, SERVICE_LOGGER } from '@finance/platform';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { SAGA_ORCHESTRATOR, sagaAdminController } from '../admin/saga-admin';
import type { SagaDefinition } from '../definition/define-saga';
import { SagaOrchestrator } from '../orchestrator/saga-orchestrator';
import { SagaParticipant, type StepHandlers } from '../participant/saga-participant';

export const SAGA_PARTICIPANT = Symbol('SAGA_PARTICIPANT');

@Controller()
class SagaCommandsController {
  constructor(@Inject(SAGA_PARTICIPANT) private readonly participant: SagaParticipant) {}

  @EventPattern(SagaStepRequested.type, INBOX_KAFKA_TRANSPORT)
  async command(
    @Payload() message: MessageOf<typeof SagaStepRequested>,
    @Ctx() ctx: InboxRpcContext,
  ): Promise<void> {
    await this.participant.handle(message, ctx.manager);
  }
}

export interface SagaStepBinding {
  readonly definition: SagaDefinition;
  readonly step: string;
  /** A provider (from `imports` or listed here) that runs the step. */
  readonly handlers: Type<StepHandlers>;
}

@Module({})
export class SagaParticipantModule {
  static forService(options: {
    steps: readonly SagaStepBinding[];
    imports?: ModuleMetadata['imports'];
  }): DynamicModule {
    const handlerTypes = options.steps.map((s) => s.handlers);
    return {
      module: SagaParticipantModule,
      global: true,
      imports: options.imports ?? [],
      controllers: [SagaCommandsController],
      providers: [
        ...new Set(handlerTypes),
        {
          provide: SAGA_PARTICIPANT,
          inject: [SERVICE_CONFIG, SERVICE_LOGGER, ...handlerTypes],
          useFactory: (config: BaseConfig, logger: Logger, ...handlers: StepHandlers[]) => {
            const participant = new SagaParticipant({
              topicPrefix: config.KAFKA_TOPIC_PREFIX,
              logger: logger.child({ component: 'saga-participant' }),
            });
            options.steps.forEach((binding, i) =>
              participant.register(binding.definition, binding.step, handlers[i]),
            );
            return participant;
          },
        },
      ],
      exports: [SAGA_PARTICIPANT],
    };
  }
}

@Controller()
class SagaRepliesController {
  constructor(@Inject(SAGA_ORCHESTRATOR) private readonly orchestrator: SagaOrchestrator) {}

  @EventPattern(SagaStepCompleted.type, INBOX_KAFKA_TRANSPORT)
  async reply(
    @Payload() message: MessageOf<typeof SagaStepCompleted>,
    @Ctx() ctx: InboxRpcContext,
  ): Promise<void> {
    await this.orchestrator.onReply(message, ctx.manager);
  }
}

@Injectable()
class OrchestratorLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(@Inject(SAGA_ORCHESTRATOR) private readonly orchestrator: SagaOrchestrator) {}

  onApplicationBootstrap(): void {
    this.orchestrator.startTicking(); // timers of every open saga, including those before a restart
  }

  async onApplicationShutdown(): Promise<void> {
    await this.orchestrator.stopTicking();
  }
}

@Module({})
export class SagaOrchestratorModule {
  static forService(options: {
    service: ServiceName;
    definitions: readonly SagaDefinition[];
  }): DynamicModule {
    return {
      module: SagaOrchestratorModule,
      global: true,
      controllers: [SagaRepliesController, sagaAdminController(`${options.service}/admin/saga`)],
      providers: [
        {
          provide: SAGA_ORCHESTRATOR,
          inject: [DataSource, SERVICE_CONFIG, SERVICE_LOGGER],
          useFactory: (dataSource: DataSource, config: BaseConfig, logger: Logger) =>
            new SagaOrchestrator({
              dataSource,
              service: options.service,
              definitions: options.definitions,
              logger,
              topicPrefix: config.KAFKA_TOPIC_PREFIX,
            }),
        },
        OrchestratorLifecycle,
      ],
      exports: [SAGA_ORCHESTRATOR],
    };
  }
}
