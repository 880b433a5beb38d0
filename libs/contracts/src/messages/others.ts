// Events published by risk, settlement and compliance.
import { z } from 'zod';
import { TOPICS } from '../topics';
import { defineMessage } from './catalog';
import * as f from './fields';

export const RiskLimitChanged = defineMessage({
  type: 'RiskLimitChanged',
  aggregateType: 'risk-limits',
  topic: TOPICS.riskEvents,
  schema: z.object({
    scope: z.enum(['ACCOUNT', 'FIRM']),
    accountId: f.id.optional(),
    limit: z.string().min(1),
    value: z.union([f.decimal, z.array(z.string())]),
    changedBy: f.id,
    /** The scope's own value was removed (value is then []): the firm's or the default applies. */
    unset: z.literal(true).optional(),
  }),
});

export const KillSwitchChanged = defineMessage({
  type: 'KillSwitchChanged',
  aggregateType: 'kill-switch',
  topic: TOPICS.riskEvents,
  schema: z.object({
    engaged: z.boolean(),
    /** FIRM: everything; ACCOUNT: one account; SYMBOL: one instrument for every account. */
    scope: z.enum(['ACCOUNT', 'FIRM', 'SYMBOL']),
    accountId: f.id.optional(),
    symbol: f.symbol.optional(),
    reason: z.string().min(1),
    changedBy: f.id,
  }),
});

/**
 * A circuit breaker or a surveillance rule of risk fired: an account's loss beyond its limit, a
 * symbol's price out of its band, a burst of rejected orders (each also engages the kill switch of
 * its scope), or several large trades of one account in a short window (an alert only).
 */
export const RiskAlertRaised = defineMessage({
  type: 'RiskAlertRaised',
  aggregateType: 'risk-alert',
  topic: TOPICS.riskEvents,
  schema: z.object({
    alertId: f.id,
    kind: z.enum(['LOSS_LIMIT', 'PRICE_BAND', 'REJECTION_BURST', 'LARGE_TRADES']),
    severity: z.enum(['HIGH', 'MEDIUM']),
    scope: z.enum(['ACCOUNT', 'FIRM', 'SYMBOL']),
    accountId: f.id.optional(),
    symbol: f.symbol.optional(),
    message: z.string().min(1),
    /** Whether this alert engaged the kill switch of its scope. */
    killSwitchEngaged: z.boolean(),
    tradeIds: z.array(f.id).optional(),
    raisedAt: f.timestamp,
  }),
});

export const TradeSettled = defineMessage({
  type: 'TradeSettled',
  aggregateType: 'trade',
  topic: TOPICS.settlementEvents,
  schema: z.object({ tradeId: f.id, cycleId: f.id, settledAt: f.timestamp }),
});

export const SettlementFailed = defineMessage({
  type: 'SettlementFailed',
  aggregateType: 'trade',
  topic: TOPICS.settlementEvents,
  schema: z.object({
    tradeId: f.id,
    cycleId: f.id,
    reason: f.reason,
    failedCycles: z.number().int().min(1),
  }),
});

export const AuditCheckpointSigned = defineMessage({
  type: 'AuditCheckpointSigned',
  aggregateType: 'audit-log',
  topic: TOPICS.complianceEvents,
  schema: z.object({
    treeSize: z.number().int().min(0),
    rootHash: z.string().regex(/^[0-9a-f]{64}$/),
    signature: z.string().min(1),
    keyId: f.id,
    // Optional so earlier events still decode; with them the event alone carries everything its
    // Ed25519 signature covers (libs/merkle checkpointBody).
    timestamp: f.timestamp.optional(),
    origin: f.id.optional(),
  }),
});

/**
 * Compliance's surveillance (finance.compliance alerts) found a pattern over executed trades and
 * order lifecycles: wash trade, layering, marking the close. An alert for a person to review, never
 * an automatic action.
 */
export const ComplianceAlertRaised = defineMessage({
  type: 'ComplianceAlertRaised',
  aggregateType: 'compliance-alert',
  topic: TOPICS.complianceEvents,
  schema: z.object({
    alertId: f.id,
    rule: z.string().min(1),
    severity: z.enum(['high', 'medium', 'low']),
    message: z.string().min(1),
    owner: z.string().nullable(),
    symbol: z.string().nullable(),
    orderIds: z.array(z.string()),
    tradeIds: z.array(z.string()),
    raisedAt: f.timestamp,
  }),
});

export const RISK_EVENTS = [RiskLimitChanged, KillSwitchChanged, RiskAlertRaised] as const;
export const SETTLEMENT_EVENTS = [TradeSettled, SettlementFailed] as const;
export const COMPLIANCE_EVENTS = [AuditCheckpointSigned, ComplianceAlertRaised] as const;
