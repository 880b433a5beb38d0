// Public API of the inbox consumer: exactly-once effects from at-least-once Kafka delivery.
export { DEFAULT_RETRY, backoffDelay, retryPolicy, type RetryPolicy } from './backoff';
export {
  HandlerFailedError,
  PermanentMessageError,
  describeError,
  isUnavailableError,
} from './errors';
export {
  InboxConsumer,
  defaultDeadLetterTopic,
  type HandledInfo,
  type InboxConsumerOptions,
  type InboxConsumerState,
  type InboxContext,
  type InboxHandler,
  type InboxOutcome,
  type InboxRunEntry,
  type InboxRunHandler,
} from './inbox-consumer';
export { InboxExceptionFilter } from './inbox-exception.filter';
export {
  INBOX_KAFKA_TRANSPORT,
  InboxKafkaServer,
  type InboxKafkaEvents,
  type InboxKafkaServerOptions,
  type InboxKafkaStatus,
} from './inbox-kafka.server';
export { InboxRpcContext } from './inbox-rpc.context';
export {
  DEAD_LETTER_CONSUMER_HEADER,
  classify,
  deadLetterHeaders,
  headerText,
  type Classified,
  type DeadLetterFailure,
} from './kafka-message';
export { TRACER_NAME, extractTraceContext } from './tracing';
