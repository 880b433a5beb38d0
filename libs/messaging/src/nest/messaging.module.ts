// Messaging for a Nest service: one Kafka client and the outbox relay running for the service's lifetime.
import {
  BeforeApplicationShutdown,
  DynamicModule,
  Injectable,
  Module,
  OnApplicationBootstrap,
} from '@nestjs/common';
import { BaseConfig, SERVICE_CONFIG, SERVICE_LOGGER } from '@finance/platform';
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { createKafka } from '../kafka';
import { OutboxRelay } from '../outbox/relay';

export const KAFKA_CLIENT = Symbol('KAFKA_CLIENT');

@Injectable()
class RelayLifecycle implements OnApplicationBootstrap, BeforeApplicationShutdown {
  constructor(private readonly relay: OutboxRelay) {}

  onApplicationBootstrap(): void {
    this.relay.start();
  }

  // Before the database pool closes, so the batch in flight is marked sent.
  async beforeApplicationShutdown(): Promise<void> {
    await this.relay.stop();
  }
}

@Module({})
export class MessagingModule {
  static forService(): DynamicModule {
    return {
      module: MessagingModule,
      global: true,
      providers: [
        {
          provide: KAFKA_CLIENT,
          inject: [SERVICE_CONFIG, SERVICE_LOGGER],
          useFactory: (config: BaseConfig, logger: Logger): Kafka =>
            createKafka({
              brokers: config.KAFKA_BROKERS,
              clientId: String(logger.bindings().service ?? 'finance-service'),
              logger,
            }),
        },
        {
          provide: OutboxRelay,
          inject: [DataSource, KAFKA_CLIENT, SERVICE_LOGGER],
          useFactory: (dataSource: DataSource, kafka: Kafka, logger: Logger) =>
            new OutboxRelay({
              dataSource,
              kafka,
              logger: logger.child({ component: 'outbox-relay' }),
            }),
        },
        RelayLifecycle,
      ],
      exports: [KAFKA_CLIENT, OutboxRelay],
    };
  }
}
