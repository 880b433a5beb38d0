// Messaging for a Nest service: one Kafka client, the outbox relay running for the service's lifetime,
// and the inbox transport that runs its `@EventPattern` handlers (the service definition connects it).
import {
  BeforeApplicationShutdown,
  DynamicModule,
  Injectable,
  Module,
  OnApplicationBootstrap,
} from '@nestjs/common';
import {
  BaseConfig,
  SERVICE_CONFIG,
  SERVICE_IDENTITY,
  SERVICE_LOGGER,
  ServiceIdentity,
} from '@finance/platform';
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import { InboxKafkaServer } from '../consumer/inbox-kafka.server';
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
        {
          provide: InboxKafkaServer,
          inject: [SERVICE_CONFIG, SERVICE_IDENTITY, DataSource, KAFKA_CLIENT, SERVICE_LOGGER],
          useFactory: (
            config: BaseConfig,
            identity: ServiceIdentity,
            dataSource: DataSource,
            kafka: Kafka,
            logger: Logger,
          ) =>
            new InboxKafkaServer({
              // The prefix separates deployments (and test runs) sharing one cluster.
              name: `${config.KAFKA_TOPIC_PREFIX}${identity.service}`,
              kafka,
              dataSource,
              logger: logger.child({ component: 'inbox-consumer' }),
              topicPrefix: config.KAFKA_TOPIC_PREFIX,
              retryStart: true,
            }),
        },
      ],
      exports: [KAFKA_CLIENT, OutboxRelay, InboxKafkaServer],
    };
  }
}
