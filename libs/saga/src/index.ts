// Public API of @finance/saga: durable saga orchestration over the outbox and inbox, and the
// participant side with its idempotency barrier.
export {
  DEFAULT_BACKOFF,
  backoffDelay,
  defineSaga,
  type BackoffPolicy,
  type JsonObject,
  type PayloadContext,
  type SagaDefinition,
  type StepAction,
  type StepDefinition,
  type StepDefinitionInput,
} from './definition/define-saga';
export { decide, startSaga, type StartInput } from './core/decide';
export {
  ACTIVE_STATUSES,
  FINISHED_STATUSES,
  SAGA_STATUSES,
  isActive,
  isFinished,
  type AttemptOutcome,
  type Cursor,
  type IgnoredBecause,
  type Reason,
  type SagaEffect,
  type SagaEvent,
  type SagaState,
  type SagaStatus,
  type StepReply,
  type StepState,
  type StepStatus,
  type Transition,
} from './core/state';
export {
  InvalidSagaDefinitionError,
  SagaConcurrentUpdateError,
  SagaError,
  SagaIdConflictError,
  SagaNotFoundError,
  SagaStateError,
  UnknownSagaError,
  type SagaErrorCode,
} from './errors';
export {
  SagaOrchestrator,
  type ListQuery,
  type OperatorInput,
  type PurgeResult,
  type ReplyHandling,
  type SagaDetails,
  type SagaOrchestratorOptions,
  type StartOptions,
  type StartedSaga,
} from './orchestrator/saga-orchestrator';
export type { AttemptRecord, SagaSummary } from './orchestrator/saga-store';
export {
  SagaParticipant,
  type CompensationContext,
  type DeferredAnswer,
  type DeferredCompletion,
  type ExecutionContext,
  type ParticipantOutcome,
  type SagaCommandMessage,
  type SagaParticipantOptions,
  type SagaReplyMessage,
  type StepContext,
  type StepHandlers,
} from './participant/saga-participant';
export { StepFailedError } from './participant/errors';
export {
  ALREADY_COMPENSATED,
  barrierDecision,
  COMPENSATED_WHILE_PENDING,
  type BarrierDecision,
  type BarrierRecord,
  type BarrierRecords,
  type PendingRecord,
} from './participant/barrier-rules';
export { purgeBarrier, type PurgeOptions } from './participant/barrier-purge';
export { SagaTables1764028800000 } from './migrations/saga-tables';
export { SagaDeferredAnswers1765238400000 } from './migrations/saga-deferred-answers';
export * from './admin/saga-admin';
export {
  SAGA_PARTICIPANT,
  SagaOrchestratorModule,
  SagaParticipantModule,
  type SagaStepBinding,
} from './nest/saga.modules';
export { POST_TRADE_STEPS, postTradeSaga, type PostTradeInput } from './definitions/post-trade';
