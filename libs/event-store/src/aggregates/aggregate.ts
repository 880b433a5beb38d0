// An aggregate as pure functions: decide(command, state) says what happened, evolve(state, event)
// folds it into state. No I/O here; the repository loads, appends and snapshots around them.
import { Envelope, MessageCatalog, MessageDefinition, MessageOf } from '@finance/contracts';
import type { JsonValue } from '../store/json';

/** What decide returns for each new event; the repository wraps it in an envelope. */
export type EventDraft<E extends Envelope> = E extends Envelope
  ? { type: E['type']; data: E['data'] }
  : never;

export interface SnapshotPolicy<S> {
  /** Take a snapshot when an append crosses a multiple of this many events. */
  every: number;
  /** Bump when the state's shape changes: snapshots of another version are ignored. */
  stateVersion: number;
  /** State may hold what JSON cannot (bigint, Date): convert it explicitly. */
  toSnapshot(state: S): JsonValue;
  fromSnapshot(json: JsonValue): S;
}

export interface Aggregate<S, C, E extends Envelope> {
  /** The aggregate type of its events' metadata; also the stream id prefix. */
  readonly type: string;
  /** Decodes (and upcasts) the aggregate's events and builds new ones. */
  readonly catalog: MessageCatalog<E>;
  readonly snapshot: SnapshotPolicy<S> | undefined;
  initialState(): S;
  evolve(state: S, event: E): S;
  decide(command: C, state: S): readonly EventDraft<E>[];
  streamId(id: string): string;
}

export interface AggregateDefinition<S, C, D extends readonly MessageDefinition[]> {
  type: string;
  /** Every event type the aggregate emits; each must be declared with this aggregate type. */
  events: D;
  initialState: () => S;
  evolve: (state: S, event: MessageOf<D[number]>) => S;
  decide: (command: C, state: S) => readonly EventDraft<MessageOf<D[number]>>[];
  snapshot?: SnapshotPolicy<S>;
  /** Stream id of an aggregate id; default `<type>-<id>`. */
  streamId?: (id: string) => string;
}

export function defineAggregate<S, C, const D extends readonly MessageDefinition[]>(
  definition: AggregateDefinition<S, C, D>,
): Aggregate<S, C, MessageOf<D[number]>> {
  const { type, events, snapshot } = definition;
  for (const event of events) {
    if (event.aggregateType !== type) {
      throw new Error(
        `aggregate ${type}: event ${event.type} is declared for aggregate ${event.aggregateType}`,
      );
    }
  }
  if (snapshot && (!Number.isSafeInteger(snapshot.every) || snapshot.every < 1)) {
    throw new RangeError(`aggregate ${type}: snapshot.every must be a whole number >= 1`);
  }
  return {
    type,
    catalog: new MessageCatalog<MessageOf<D[number]>>(events),
    snapshot,
    initialState: definition.initialState,
    evolve: definition.evolve,
    decide: definition.decide,
    streamId: definition.streamId ?? ((id) => `${type}-${id}`),
  };
}
