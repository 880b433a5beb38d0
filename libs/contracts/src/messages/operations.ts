// Saga step commands and replies, and the operations stream: operator actions, authorization
// denials and engine alerts, all of which compliance audits.
import { z } from 'zod';
import { SERVICE_NAMES } from '../services';
import { TOPICS } from '../topics';
import { defineMessage } from './catalog';
import * as f from './fields';

const step = {
  sagaId: f.id,
  /** The saga definition, e.g. `post-trade`. */
  saga: z.string().min(1),
  step: z.string().min(1),
  participant: z.enum(SERVICE_NAMES),
  /** Increases with every retry of the same step, so replies to stale attempts can be told apart. */
  attempt: z.number().int().min(1),
};

export const SagaStepRequested = defineMessage({
  type: 'SagaStepRequested',
  aggregateType: 'saga',
  topic: TOPICS.sagaCommands,
  schema: z.object({
    ...step,
    action: z.enum(['EXECUTE', 'COMPENSATE']),
    payload: z.record(z.string(), z.unknown()),
  }),
});

export const SagaStepCompleted = defineMessage({
  type: 'SagaStepCompleted',
  aggregateType: 'saga',
  topic: TOPICS.sagaReplies,
  schema: z.object({
    ...step,
    action: z.enum(['EXECUTE', 'COMPENSATE']),
    outcome: z.enum(['SUCCEEDED', 'FAILED']),
    reason: f.reason.optional(),
    result: z.record(z.string(), z.unknown()).optional(),
  }),
});

export const SagaParked = defineMessage({
  type: 'SagaParked',
  aggregateType: 'saga',
  topic: TOPICS.operationsEvents,
  schema: z.object({
    sagaId: f.id,
    saga: z.string().min(1),
    step: z.string().min(1),
    reason: f.reason,
    attempts: z.number().int().min(1),
  }),
});

/** Something an operator did through an admin API (retry, force-cancel, resolve with a note). */
export const OperatorActionRecorded = defineMessage({
  type: 'OperatorActionRecorded',
  aggregateType: 'operator-action',
  topic: TOPICS.operationsEvents,
  schema: z.object({
    actor: z.string().min(1),
    action: z.string().min(1),
    target: z.object({ kind: z.enum(['tcc', 'saga', 'ledger-transfer']), id: f.id }),
    note: z.string().max(2000).optional(),
    result: z.string().optional(),
  }),
});

/** A request the authorization policy refused. */
export const AuthorizationDenied = defineMessage({
  type: 'AuthorizationDenied',
  aggregateType: 'authorization',
  topic: TOPICS.operationsEvents,
  schema: z.object({
    service: z.enum(SERVICE_NAMES),
    principal: z.string().nullable(),
    method: z.string().min(1),
    path: z.string().min(1),
    reason: z.string(),
    status: z.number().int(),
  }),
});

export const OPERATIONS_MESSAGES = [
  SagaStepRequested,
  SagaStepCompleted,
  SagaParked,
  OperatorActionRecorded,
  AuthorizationDenied,
] as const;
