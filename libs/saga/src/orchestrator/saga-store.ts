// SQL of the orchestrator: the saga row (pure state plus the columns queries filter on) and the
// attempt log. Every function runs on the caller's manager, inside the caller's transaction.
import type { ServiceName } from '@finance/contracts';
import type { EntityManager } from 'typeorm';
import type { JsonObject, StepAction } from '../definition/define-saga';
import type { AttemptOutcome, Reason, SagaEffect, SagaState, SagaStatus } from '../core/state';
import { SagaConcurrentUpdateError } from '../errors';

export interface SagaSummary {
  sagaId: string;
  saga: string;
  status: SagaStatus;
  /** The step in flight, or the parked one. */
  currentStep: string | null;
  correlationId: string;
  /** Why it compensates or is parked. */
  reason: Reason | null;
  version: number;
  /** Next deadline or retry time. */
  dueAt: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

export interface AttemptRecord {
  step: string;
  action: StepAction;
  attempt: number;
  participant: ServiceName;
  commandId: string;
  requestedAt: string;
  deadlineAt: string;
  /** null while the attempt waits for its reply. */
  outcome: AttemptOutcome | null;
  reason: Reason | null;
  result: JsonObject | null;
  replyId: string | null;
  settledAt: string | null;
  /** A reply that came after the attempt was given up on. */
  lateReply: JsonObject | null;
}

interface InstanceRow {
  saga_id: string;
  saga: string;
  status: SagaStatus;
  current_step: string | null;
  correlation_id: string;
  state: SagaState;
  reason: Reason | null;
  version: number;
  due_at: Date | null;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
}

interface AttemptRow {
  step: string;
  action: StepAction;
  attempt: number;
  participant: ServiceName;
  command_id: string;
  requested_at: Date;
  deadline_at: Date;
  outcome: AttemptOutcome | null;
  reason: Reason | null;
  result: JsonObject | null;
  reply_id: string | null;
  settled_at: Date | null;
  late_reply: JsonObject | null;
}

const SUMMARY_COLUMNS = `saga_id, saga, status, current_step, correlation_id, reason, version,
  due_at, created_at, updated_at, finished_at`;

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function json(value: unknown): string | null {
  return value === undefined || value === null ? null : JSON.stringify(value);
}

// The columns derived from the state, so list and tick never parse the jsonb.
function derived(state: SagaState) {
  const { cursor } = state;
  return {
    currentStep: cursor ? state.steps[cursor.step].name : (state.parked?.step ?? null),
    reason: state.parked?.reason ?? state.failure?.reason ?? null,
    dueAt: cursor ? iso(cursor.dueAt) : null,
    finishedAt: state.finishedAt !== undefined ? iso(state.finishedAt) : null,
  };
}

/** Inserts a new saga; returns the name of the saga already holding the id, if any. */
export async function insertInstance(
  manager: EntityManager,
  state: SagaState,
): Promise<{ inserted: true } | { inserted: false; existingSaga: string }> {
  const d = derived(state);
  const rows = (await manager.query(
    `INSERT INTO saga_instances
       (saga_id, saga, status, current_step, correlation_id, state, reason, version, due_at,
        created_at, updated_at, finished_at)
     VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9, $10, $10, $11)
     ON CONFLICT (saga_id) DO NOTHING
     RETURNING saga_id`,
    [
      state.sagaId,
      state.saga,
      state.status,
      d.currentStep,
      state.correlationId,
      JSON.stringify(state),
      json(d.reason),
      state.version,
      d.dueAt,
      iso(state.startedAt),
      d.finishedAt,
    ],
  )) as unknown[];
  if (rows.length === 1) return { inserted: true };
  const [existing] = (await manager.query('SELECT saga FROM saga_instances WHERE saga_id = $1', [
    state.sagaId,
  ])) as Array<{ saga: string }>;
  return { inserted: false, existingSaga: existing?.saga ?? state.saga };
}

/**
 * Locks the saga row for the rest of the transaction; concurrent replies and ticks queue behind it.
 * With `dueBy`, a row that is locked or not due is skipped instead.
 */
export async function lockInstance(
  manager: EntityManager,
  sagaId: string,
  dueBy?: number,
): Promise<SagaState | undefined> {
  const rows = (await (dueBy === undefined
    ? manager.query('SELECT state FROM saga_instances WHERE saga_id = $1 FOR UPDATE', [sagaId])
    : manager.query(
        `SELECT state FROM saga_instances WHERE saga_id = $1 AND due_at <= $2
            FOR UPDATE SKIP LOCKED`,
        [sagaId, iso(dueBy)],
      ))) as Array<{ state: SagaState }>;
  return rows[0]?.state;
}

export async function updateInstance(
  manager: EntityManager,
  previousVersion: number,
  state: SagaState,
): Promise<void> {
  const d = derived(state);
  const [, affected] = (await manager.query(
    `UPDATE saga_instances
        SET status = $3, current_step = $4, state = $5::jsonb, reason = $6::jsonb, version = $7,
            due_at = $8, updated_at = $9, finished_at = $10
      WHERE saga_id = $1 AND version = $2`,
    [
      state.sagaId,
      previousVersion,
      state.status,
      d.currentStep,
      JSON.stringify(state),
      json(d.reason),
      state.version,
      d.dueAt,
      iso(state.updatedAt),
      d.finishedAt,
    ],
  )) as [unknown, number];
  if (affected !== 1) throw new SagaConcurrentUpdateError(state.sagaId);
}

export async function insertAttempt(
  manager: EntityManager,
  sagaId: string,
  effect: Extract<SagaEffect, { type: 'StepRequested' }>,
  commandId: string,
): Promise<void> {
  await manager.query(
    `INSERT INTO saga_attempts
       (saga_id, step, action, attempt, participant, command_id, requested_at, deadline_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [
      sagaId,
      effect.step,
      effect.action,
      effect.attempt,
      effect.participant,
      commandId,
      iso(effect.requestedAt),
      iso(effect.deadlineAt),
    ],
  );
}

export async function settleAttempt(
  manager: EntityManager,
  sagaId: string,
  effect: Extract<SagaEffect, { type: 'AttemptSettled' }>,
  replyId: string | null,
): Promise<void> {
  await manager.query(
    `UPDATE saga_attempts
        SET outcome = $5, reason = $6::jsonb, result = $7::jsonb, reply_id = $8, settled_at = $9
      WHERE saga_id = $1 AND step = $2 AND action = $3 AND attempt = $4 AND outcome IS NULL`,
    [
      sagaId,
      effect.step,
      effect.action,
      effect.attempt,
      effect.outcome,
      json(effect.reason),
      json(effect.result),
      replyId,
      iso(effect.at),
    ],
  );
}

/** Keeps the first late reply of an attempt that was given up on (timed out or superseded). */
export async function recordLateReply(
  manager: EntityManager,
  sagaId: string,
  effect: Extract<SagaEffect, { type: 'ReplyIgnored' }>,
  replyId: string | null,
): Promise<void> {
  const { reply } = effect;
  await manager.query(
    `UPDATE saga_attempts SET late_reply = $5::jsonb
      WHERE saga_id = $1 AND step = $2 AND action = $3 AND attempt = $4
        AND outcome IN ('TIMED_OUT', 'SUPERSEDED') AND late_reply IS NULL`,
    [
      sagaId,
      reply.step,
      reply.action,
      reply.attempt,
      JSON.stringify({
        outcome: reply.outcome,
        ...(reply.reason ? { reason: reply.reason } : {}),
        ...(reply.result ? { result: reply.result } : {}),
        replyId,
        at: iso(effect.at),
      }),
    ],
  );
}

export async function dueSagaIds(
  manager: EntityManager,
  now: number,
  limit: number,
): Promise<string[]> {
  const rows = (await manager.query(
    `SELECT saga_id FROM saga_instances WHERE due_at <= $1 ORDER BY due_at LIMIT $2`,
    [iso(now), limit],
  )) as Array<{ saga_id: string }>;
  return rows.map((row) => row.saga_id);
}

export interface ListFilter {
  statuses?: readonly SagaStatus[];
  saga?: string;
  /** Only sagas whose last change is older than this instant. */
  updatedBefore?: number;
  limit: number;
}

export async function listInstances(
  manager: EntityManager,
  filter: ListFilter,
): Promise<SagaSummary[]> {
  const rows = (await manager.query(
    `SELECT ${SUMMARY_COLUMNS} FROM saga_instances
      WHERE ($1::text[] IS NULL OR status = ANY ($1::text[]))
        AND ($2::text IS NULL OR saga = $2)
        AND ($3::timestamptz IS NULL OR updated_at < $3)
      ORDER BY updated_at, saga_id
      LIMIT $4`,
    [
      filter.statuses ? [...filter.statuses] : null,
      filter.saga ?? null,
      filter.updatedBefore !== undefined ? iso(filter.updatedBefore) : null,
      filter.limit,
    ],
  )) as InstanceRow[];
  return rows.map(summary);
}

export async function readInstance(
  manager: EntityManager,
  sagaId: string,
): Promise<{ summary: SagaSummary; state: SagaState; attempts: AttemptRecord[] } | undefined> {
  const [row] = (await manager.query(
    `SELECT ${SUMMARY_COLUMNS}, state FROM saga_instances WHERE saga_id = $1`,
    [sagaId],
  )) as InstanceRow[];
  if (!row) return undefined;
  const attempts = (await manager.query(
    `SELECT step, action, attempt, participant, command_id, requested_at, deadline_at, outcome,
            reason, result, reply_id, settled_at, late_reply
       FROM saga_attempts WHERE saga_id = $1 ORDER BY requested_at, command_id`,
    [sagaId],
  )) as AttemptRow[];
  return { summary: summary(row), state: row.state, attempts: attempts.map(attempt) };
}

/** Deletes up to `limit` sagas finished before `before` (their attempts go by cascade). */
export async function deleteFinished(
  manager: EntityManager,
  before: number,
  limit: number,
): Promise<number> {
  const [{ n }] = (await manager.query(
    `WITH doomed AS (
       SELECT saga_id FROM saga_instances
        WHERE finished_at < $1
        ORDER BY finished_at
        LIMIT $2
          FOR UPDATE SKIP LOCKED),
     deleted AS (
       DELETE FROM saga_instances s USING doomed d WHERE s.saga_id = d.saga_id RETURNING 1)
     SELECT count(*)::int AS n FROM deleted`,
    [iso(before), limit],
  )) as Array<{ n: number }>;
  return n;
}

function summary(row: InstanceRow): SagaSummary {
  return {
    sagaId: row.saga_id,
    saga: row.saga,
    status: row.status,
    currentStep: row.current_step,
    correlationId: row.correlation_id,
    reason: row.reason,
    version: row.version,
    dueAt: row.due_at?.toISOString() ?? null,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    finishedAt: row.finished_at?.toISOString() ?? null,
  };
}

function attempt(row: AttemptRow): AttemptRecord {
  return {
    step: row.step,
    action: row.action,
    attempt: row.attempt,
    participant: row.participant,
    commandId: row.command_id,
    requestedAt: row.requested_at.toISOString(),
    deadlineAt: row.deadline_at.toISOString(),
    outcome: row.outcome,
    reason: row.reason,
    result: row.result,
    replyId: row.reply_id,
    settledAt: row.settled_at?.toISOString() ?? null,
    lateReply: row.late_reply,
  };
}
