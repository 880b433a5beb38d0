// Typed failures of the event store, each with a stable code a service maps to its own response.
import type { ExpectedVersion } from './expected-version';

export abstract class EventStoreError extends Error {
  abstract readonly code: string;
}

/** Another writer got there first (or the stream is not in the state the caller assumed). */
export class WrongExpectedVersionError extends EventStoreError {
  override readonly name = 'WrongExpectedVersionError';
  readonly code = 'WRONG_EXPECTED_VERSION';

  constructor(
    readonly streamId: string,
    readonly expected: ExpectedVersion,
    /** The stream's version when the conflict was seen; 0 if it does not exist, undefined if unknown. */
    readonly actual: number | undefined,
  ) {
    super(
      `stream ${streamId}: expected version ${String(expected)}, but it is at ${actual === undefined ? 'an unknown version' : actual}`,
    );
  }
}

/** An event with this id is already stored (an append was retried after it committed). */
export class DuplicateEventError extends EventStoreError {
  override readonly name = 'DuplicateEventError';
  readonly code = 'DUPLICATE_EVENT';

  constructor(
    readonly streamId: string,
    readonly detail: string,
  ) {
    super(`stream ${streamId}: an event with the same id is already stored (${detail})`);
  }
}

/** A stored event the configured catalog cannot turn into a current message. */
export class EventDecodingError extends EventStoreError {
  override readonly name = 'EventDecodingError';
  readonly code = 'EVENT_DECODING_FAILED';

  constructor(
    readonly streamId: string,
    readonly streamVersion: number,
    readonly globalPosition: string,
    readonly reason: string,
  ) {
    super(`event ${streamId}@${streamVersion} (position ${globalPosition}): ${reason}`);
  }
}
