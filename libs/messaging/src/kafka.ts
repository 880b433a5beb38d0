// kafkajs clients for the services, logging through the service's pino logger.
import { Kafka, logLevel, LogEntry } from 'kafkajs';
import type { Logger } from 'pino';

const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

export function createKafka(options: {
  brokers: string[];
  clientId: string;
  logger: Logger;
}): Kafka {
  return new Kafka({
    clientId: options.clientId,
    brokers: options.brokers,
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ level, log }: LogEntry) => {
        const { message, ...rest } = log;
        options.logger[LEVELS[level] ?? 'info']({ kafka: rest }, message);
      },
  });
}

/** Kafka header names carrying the envelope's routing fields and the W3C trace context. */
export const HEADERS = {
  eventId: 'event-id',
  type: 'event-type',
  version: 'event-version',
  producer: 'producer',
  contentType: 'content-type',
  traceparent: 'traceparent',
  tracestate: 'tracestate',
  error: 'dead-letter-error',
  originalTopic: 'dead-letter-topic',
  originalPartition: 'dead-letter-partition',
  originalOffset: 'dead-letter-offset',
} as const;
