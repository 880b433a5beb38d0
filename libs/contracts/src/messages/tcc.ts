// Commands a TCC coordinator sends to participants, and their replies (design: order placement).
import { z } from 'zod';
import { SERVICE_NAMES } from '../services';
import { TOPICS } from '../topics';
import { defineMessage } from './catalog';
import * as f from './fields';

const branch = {
  globalTransactionId: f.id,
  branchId: f.id,
  /** The service that runs the branch. */
  participant: z.enum(SERVICE_NAMES),
  /** What the branch reserves, e.g. `risk-quota`, `clearing-quota`, `funds`. */
  resource: z.string().min(1),
};

const command = { aggregateType: 'global-transaction', topic: TOPICS.tccCommands } as const;

export const TccTry = defineMessage({
  type: 'TccTry',
  ...command,
  schema: z.object({
    ...branch,
    deadline: f.timestamp,
    payload: z.record(z.string(), z.unknown()),
  }),
});

export const TccConfirm = defineMessage({
  type: 'TccConfirm',
  ...command,
  schema: z.object(branch),
});

export const TccCancel = defineMessage({ type: 'TccCancel', ...command, schema: z.object(branch) });

export const TccReply = defineMessage({
  type: 'TccReply',
  aggregateType: 'global-transaction',
  topic: TOPICS.tccReplies,
  schema: z.object({
    ...branch,
    phase: z.enum(['TRY', 'CONFIRM', 'CANCEL']),
    outcome: z.enum(['SUCCEEDED', 'FAILED']),
    reason: f.reason.optional(),
  }),
});

// A coordinator may send a participant many commands in one record, and the participant then answers
// them in one record: one outbox row, Kafka record and inbox row for many branches. Each element is a
// complete TccTry / TccConfirm / TccCancel (or TccReply) envelope, handled exactly as if it had come
// alone; the receiver decodes and checks every one.
const envelopes = z.array(z.record(z.string(), z.unknown())).min(1).max(1_000);

export const TccCommandBatch = defineMessage({
  type: 'TccCommandBatch',
  ...command,
  schema: z.object({ participant: z.enum(SERVICE_NAMES), commands: envelopes }),
});

export const TccReplyBatch = defineMessage({
  type: 'TccReplyBatch',
  aggregateType: 'global-transaction',
  topic: TOPICS.tccReplies,
  schema: z.object({ participant: z.enum(SERVICE_NAMES), replies: envelopes }),
});

export const TCC_MESSAGES = [
  TccTry,
  TccConfirm,
  TccCancel,
  TccReply,
  TccCommandBatch,
  TccReplyBatch,
] as const;
