// How a message type is declared (schema, version, upcasters, topic) and how raw messages are
// decoded against the declarations: upcast old versions, and say plainly what cannot be decoded.
import { z } from 'zod';
import { Envelope, EventMetadata, wireEnvelopeSchema } from '../envelope';
import type { TopicDefinition } from '../topics';

export type Upcaster = (data: unknown) => unknown;

export interface MessageDefinition<T extends string = string, S extends z.ZodType = z.ZodType> {
  readonly type: T;
  /** The current version; `schema` describes it. */
  readonly version: number;
  readonly schema: S;
  readonly aggregateType: string;
  readonly topic: TopicDefinition;
  /** `upcasters[n]` turns the data of version n into version n + 1. */
  readonly upcasters: Readonly<Record<number, Upcaster>>;
  /**
   * A version newer than this build knows comes from a producer that was upgraded first:
   * `park` keeps it for replay after this consumer is upgraded, `skip` drops it with a log line.
   */
  readonly onNewerVersion: 'park' | 'skip';
}

export function defineMessage<const T extends string, S extends z.ZodType>(definition: {
  type: T;
  version?: number;
  schema: S;
  aggregateType: string;
  topic: TopicDefinition;
  upcasters?: Record<number, Upcaster>;
  onNewerVersion?: 'park' | 'skip';
}): MessageDefinition<T, S> {
  const version = definition.version ?? 1;
  const upcasters = definition.upcasters ?? {};
  for (let v = 1; v < version; v++) {
    if (!upcasters[v]) throw new Error(`${definition.type} v${version} has no upcaster from v${v}`);
  }
  return { ...definition, version, upcasters, onNewerVersion: definition.onNewerVersion ?? 'park' };
}

// Distributes over a union of definitions, giving a discriminated union of envelopes.
export type MessageOf<D extends MessageDefinition> = D extends MessageDefinition
  ? Envelope<D['type'], z.infer<D['schema']>>
  : never;

export type DecodeResult<M extends Envelope = Envelope> =
  | { status: 'ok'; message: M }
  | { status: 'unknown-type'; type: string }
  | {
      status: 'newer-version';
      type: string;
      version: number;
      known: number;
      action: 'park' | 'skip';
    }
  | { status: 'invalid'; error: string };

export class MessageCatalog<M extends Envelope = Envelope> {
  private readonly byType = new Map<string, MessageDefinition>();

  constructor(definitions: readonly MessageDefinition[]) {
    for (const d of definitions) {
      if (this.byType.has(d.type)) throw new Error(`message type ${d.type} is declared twice`);
      this.byType.set(d.type, d);
    }
  }

  definition(type: string): MessageDefinition | undefined {
    return this.byType.get(type);
  }

  /** Validates the data of a message being produced; throws naming the bad field. */
  validate<D extends MessageDefinition>(
    definition: D,
    data: z.input<D['schema']>,
  ): z.infer<D['schema']> {
    const result = definition.schema.safeParse(data);
    if (!result.success)
      throw new Error(`invalid ${definition.type}: ${describeIssues(result.error)}`);
    return result.data as z.infer<D['schema']>;
  }

  /** Parses a wire message (already JSON-decoded) into the current version of its type. */
  decode(raw: unknown): DecodeResult<M> {
    const envelope = wireEnvelopeSchema.safeParse(raw);
    if (!envelope.success)
      return { status: 'invalid', error: `envelope: ${describeIssues(envelope.error)}` };
    const { type, data, metadata } = envelope.data;
    const definition = this.byType.get(type);
    if (!definition) return { status: 'unknown-type', type };
    if (metadata.type !== type) {
      return {
        status: 'invalid',
        error: `metadata.type ${metadata.type} differs from type ${type}`,
      };
    }
    if (metadata.version > definition.version) {
      return {
        status: 'newer-version',
        type,
        version: metadata.version,
        known: definition.version,
        action: definition.onNewerVersion,
      };
    }
    let upcast = data;
    try {
      for (let v = metadata.version; v < definition.version; v++)
        upcast = definition.upcasters[v](upcast);
    } catch (error) {
      return {
        status: 'invalid',
        error: `upcasting ${type} v${metadata.version}: ${String(error)}`,
      };
    }
    const parsed = definition.schema.safeParse(upcast);
    if (!parsed.success)
      return { status: 'invalid', error: `${type} data: ${describeIssues(parsed.error)}` };
    const current: EventMetadata = { ...metadata, version: definition.version };
    return { status: 'ok', message: { type, data: parsed.data, metadata: current } as M };
  }
}

export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}
