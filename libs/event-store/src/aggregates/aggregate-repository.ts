// Runs a command against an aggregate: load (snapshot + later events), decide, append with the
// loaded version as the expectation, snapshot when due, and retry from fresh state on a conflict.
import type { Envelope, ServiceName } from '@finance/contracts';
import { createEnvelope } from '@finance/messaging';
import type { EntityManager } from 'typeorm';
import type { GlobalCheckpoint } from '../store/checkpoint';
import { WrongExpectedVersionError } from '../store/errors';
import type { EventStore } from '../store/event-store';
import {
  ExpectedVersion,
  matchesExpectedVersion,
  normaliseExpectedVersion,
} from '../store/expected-version';
import type { Aggregate } from './aggregate';

export interface CommandContext {
  producer: ServiceName;
  /** The business flow the command belongs to. */
  correlationId: string;
  /** The message that caused the command; null or absent for a request from outside. */
  causationId?: string | null;
}

export interface HandleOptions {
  context: CommandContext;
  /**
   * The version the caller based its command on (e.g. sent back by a client). When given, a
   * conflict is reported to the caller; when absent, the command is decided again on fresh state.
   */
  expectedVersion?: ExpectedVersion;
  /** How many times to decide again after losing a race (default 3; only without expectedVersion). */
  retries?: number;
  /** The caller's transaction, to change other state atomically with the events. */
  manager?: EntityManager;
  /** Enqueue the new events in the outbox (default: whether the store has one). */
  publish?: boolean;
}

export interface HandleResult<S, E extends Envelope> {
  /** The new events as stored (empty when the command changed nothing). */
  events: E[];
  /** The stream's version after the command. */
  version: number;
  state: S;
  positions: GlobalCheckpoint[];
}

export interface LoadedAggregate<S> {
  state: S;
  version: number;
  /** The stream version of the snapshot the state started from, if one was used. */
  snapshotVersion: number | undefined;
  /** How many events were folded on top of the snapshot (or of the initial state). */
  replayed: number;
}

const DEFAULT_RETRIES = 3;
const PAGE_SIZE = 1000;

export class AggregateRepository<S, C, E extends Envelope> {
  constructor(
    private readonly store: EventStore,
    private readonly aggregate: Aggregate<S, C, E>,
  ) {}

  async load(id: string, options: { manager?: EntityManager } = {}): Promise<LoadedAggregate<S>> {
    const { manager } = options;
    const streamId = this.aggregate.streamId(id);
    const policy = this.aggregate.snapshot;
    const snapshot = policy
      ? await this.store.readSnapshot(streamId, policy.stateVersion, { manager })
      : undefined;
    let state =
      snapshot && policy ? policy.fromSnapshot(snapshot.state) : this.aggregate.initialState();
    let version = snapshot?.streamVersion ?? 0;
    let replayed = 0;
    // Paged so a long stream without snapshots does not sit in memory at once.
    for (;;) {
      const page = await this.store.readStream(streamId, {
        fromVersion: version + 1,
        maxCount: PAGE_SIZE,
        manager,
        catalog: this.aggregate.catalog,
      });
      for (const recorded of page) {
        state = this.aggregate.evolve(state, recorded.event);
        version = recorded.streamVersion;
      }
      replayed += page.length;
      if (page.length < PAGE_SIZE) break;
    }
    return { state, version, snapshotVersion: snapshot?.streamVersion, replayed };
  }

  async handle(id: string, command: C, options: HandleOptions): Promise<HandleResult<S, E>> {
    const retries =
      options.expectedVersion === undefined ? (options.retries ?? DEFAULT_RETRIES) : 0;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.attempt(id, command, options);
      } catch (error) {
        if (!(error instanceof WrongExpectedVersionError) || attempt >= retries) throw error;
        // Someone else appended first: decide again on the state that includes their events.
      }
    }
  }

  private async attempt(
    id: string,
    command: C,
    options: HandleOptions,
  ): Promise<HandleResult<S, E>> {
    const { manager, context } = options;
    const streamId = this.aggregate.streamId(id);
    const loaded = await this.load(id, { manager });
    const expected = normaliseExpectedVersion(options.expectedVersion ?? loaded.version);
    if (!matchesExpectedVersion(expected, loaded.version)) {
      // The caller's assumption is already wrong: report it rather than decide on other state.
      throw new WrongExpectedVersionError(streamId, expected, loaded.version);
    }
    const drafts = this.aggregate.decide(command, loaded.state);
    if (drafts.length === 0) {
      return { events: [], version: loaded.version, state: loaded.state, positions: [] };
    }
    const events = drafts.map((draft, i) => {
      const definition = this.aggregate.catalog.definition(draft.type);
      if (!definition) {
        throw new Error(
          `aggregate ${this.aggregate.type} emitted ${draft.type}, which it does not declare`,
        );
      }
      // The definition is the one declared for draft.type, so the envelope is a member of E.
      return createEnvelope(definition, draft.data, {
        producer: context.producer,
        aggregateId: id,
        aggregateSequence: loaded.version + i + 1,
        correlationId: context.correlationId,
        causationId: context.causationId ?? null,
      }) as E;
    });
    const state = events.reduce((s, e) => this.aggregate.evolve(s, e), loaded.state);
    const version = loaded.version + events.length;
    const policy = this.aggregate.snapshot;
    const snapshotDue =
      policy !== undefined &&
      Math.floor(loaded.version / policy.every) < Math.floor(version / policy.every);

    const write = async (m: EntityManager | undefined): Promise<HandleResult<S, E>> => {
      const appended = await this.store.append(streamId, events, {
        expectedVersion: expected,
        manager: m,
        publish: options.publish,
      });
      const result = {
        events: appended.events,
        version: appended.nextExpectedVersion,
        state,
        positions: appended.positions,
      };
      // Only an explicit ANY or STREAM_EXISTS lets others' events land between load and append;
      // then the folded state is not the stream's: return a fresh load and take no snapshot.
      if (appended.nextExpectedVersion !== version) {
        const fresh = await this.load(id, { manager: m });
        return { ...result, state: fresh.state, version: fresh.version };
      }
      if (snapshotDue && policy) {
        await this.store.saveSnapshot(
          streamId,
          {
            streamVersion: version,
            state: policy.toSnapshot(state),
            stateVersion: policy.stateVersion,
          },
          { manager: m },
        );
      }
      return result;
    };
    // The snapshot must commit with the append it reflects, so it needs a transaction of its own
    // when the caller brought none.
    if (manager || !snapshotDue) return write(manager);
    return this.store.transaction(write);
  }
}
