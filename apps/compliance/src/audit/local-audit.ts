// Compliance's own actions (checkpoint requests, exports, report pulls) go into the audit log
// through the same appender as the events it consumes, with source `local`.
import { utcNowMicros, uuidv7 } from '@finance/contracts';
import { AuditInput, AuditLogStore, LOCAL_SOURCE, traceIdOf } from '@finance/audit-log';
import { currentTraceContext } from '@finance/messaging';
import type { JsonValue } from '@finance/merkle';
import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';

export interface LocalAction {
  /** What happened, e.g. `AuditLogExported`. */
  readonly type: string;
  /** Who did it: the caller the authorization guard verified. */
  readonly actor: string;
  /** What it was done to. */
  readonly aggregateId: string;
  /** The request's id, when it has one, to find its logs. */
  readonly correlationId?: string;
  readonly details: { readonly [key: string]: JsonValue };
}

@Injectable()
export class LocalAudit {
  constructor(private readonly store: AuditLogStore) {}

  /** Appends the action in a transaction of its own; returns its leaf index. */
  async record(action: LocalAction): Promise<number> {
    const { indexes } = await this.store.appendNow([inputOf(action)]);
    return indexes[0]!;
  }

  /** Appends the action in the caller's transaction, so it is recorded exactly when its change is. */
  async recordIn(manager: EntityManager, action: LocalAction): Promise<number> {
    const { indexes } = await this.store.append(manager, [inputOf(action)]);
    return indexes[0]!;
  }
}

function inputOf(action: LocalAction): AuditInput {
  const eventId = uuidv7();
  return {
    source: LOCAL_SOURCE,
    eventId,
    type: action.type,
    producer: 'compliance',
    aggregateId: action.aggregateId,
    correlationId: action.correlationId ?? eventId,
    traceId: traceIdOf(currentTraceContext().traceparent),
    occurredAt: utcNowMicros(),
    payload: { type: action.type, actor: action.actor, ...action.details },
  };
}
