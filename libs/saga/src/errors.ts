// Typed failures of the saga library, each with a stable code and the HTTP status an admin API maps it to.

export type SagaErrorCode =
  | 'INVALID_SAGA_DEFINITION'
  | 'UNKNOWN_SAGA'
  | 'SAGA_NOT_FOUND'
  | 'SAGA_ID_CONFLICT'
  | 'SAGA_NOT_PARKED'
  | 'SAGA_FINISHED'
  | 'SAGA_CONCURRENT_UPDATE';

export abstract class SagaError extends Error {
  abstract readonly code: SagaErrorCode;
  /** What a REST layer answers with (problem details status). */
  abstract readonly status: number;
}

export class InvalidSagaDefinitionError extends SagaError {
  override readonly name = 'InvalidSagaDefinitionError';
  readonly code = 'INVALID_SAGA_DEFINITION';
  readonly status = 500;
}

/** A saga name this orchestrator has no definition for (not registered, or removed by a deploy). */
export class UnknownSagaError extends SagaError {
  override readonly name = 'UnknownSagaError';
  readonly code = 'UNKNOWN_SAGA';
  readonly status = 400;
  constructor(readonly saga: string) {
    super(`no saga named ${saga} is defined here`);
  }
}

export class SagaNotFoundError extends SagaError {
  override readonly name = 'SagaNotFoundError';
  readonly code = 'SAGA_NOT_FOUND';
  readonly status = 404;
  constructor(readonly sagaId: string) {
    super(`saga ${sagaId} does not exist`);
  }
}

/** start() with an id that already belongs to a saga of another definition. */
export class SagaIdConflictError extends SagaError {
  override readonly name = 'SagaIdConflictError';
  readonly code = 'SAGA_ID_CONFLICT';
  readonly status = 409;
  constructor(
    readonly sagaId: string,
    readonly existing: string,
  ) {
    super(`saga id ${sagaId} is already used by a ${existing} saga`);
  }
}

/** An operator action that the saga's status does not allow. */
export class SagaStateError extends SagaError {
  override readonly name = 'SagaStateError';
  readonly status = 409;
  constructor(
    readonly code: 'SAGA_NOT_PARKED' | 'SAGA_FINISHED',
    message: string,
  ) {
    super(message);
  }
}

/** The saga row changed under a transition that held its lock: a bug, never a normal race. */
export class SagaConcurrentUpdateError extends SagaError {
  override readonly name = 'SagaConcurrentUpdateError';
  readonly code = 'SAGA_CONCURRENT_UPDATE';
  readonly status = 500;
  constructor(readonly sagaId: string) {
    super(`saga ${sagaId} was updated concurrently`);
  }
}
