// The kill switch: engaged for the firm, one account or one symbol by a risk officer or a breaker,
// released only by an explicit call. Each change commits with its KillSwitchChanged event (trading
// cancels the resting orders in scope when it reads it); the rows are also the switch's history.
import { KillSwitchChanged, uuidv7 } from '@finance/contracts';
import type { EntityManager } from 'typeorm';
import { z } from 'zod';
import { publish } from '../risk-events';

export type KillScope =
  { scope: 'FIRM' } | { scope: 'ACCOUNT'; accountId: string } | { scope: 'SYMBOL'; symbol: string };

/** One engaged switch per target; also the aggregate id of its events. */
export function targetOf(s: KillScope): string {
  switch (s.scope) {
    case 'FIRM':
      return 'FIRM';
    case 'ACCOUNT':
      return `ACCOUNT:${s.accountId}`;
    case 'SYMBOL':
      return `SYMBOL:${s.symbol}`;
    default: {
      const never: never = s;
      throw new Error(`unknown scope ${JSON.stringify(never)}`);
    }
  }
}

const reason = z.string().trim().min(1, 'must say why').max(500);

/** POST /risk/kill-switch and /risk/kill-switch/release bodies. */
export const killScopeBody = z.discriminatedUnion('scope', [
  z.strictObject({ scope: z.literal('FIRM'), reason }),
  z.strictObject({
    scope: z.literal('ACCOUNT'),
    accountId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be an account id'),
    reason,
  }),
  z.strictObject({
    scope: z.literal('SYMBOL'),
    symbol: z.string().regex(/^[A-Z0-9.]{1,12}$/, 'must be an upper-case ticker'),
    reason,
  }),
]);
export const releaseBody = z.discriminatedUnion('scope', [
  z.strictObject({ scope: z.literal('FIRM'), reason: reason.optional() }),
  z.strictObject({
    scope: z.literal('ACCOUNT'),
    accountId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be an account id'),
    reason: reason.optional(),
  }),
  z.strictObject({
    scope: z.literal('SYMBOL'),
    symbol: z.string().regex(/^[A-Z0-9.]{1,12}$/, 'must be an upper-case ticker'),
    reason: reason.optional(),
  }),
]);

export interface SwitchRow {
  switch_id: string;
  scope: 'FIRM' | 'ACCOUNT' | 'SYMBOL';
  account_id: string | null;
  symbol: string | null;
  target: string;
  reason: string;
  source: string;
  engaged_by: string;
  engaged_at: Date;
  released_by: string | null;
  released_at: Date | null;
  release_reason: string | null;
}

export interface SwitchView {
  switchId: string;
  scope: 'FIRM' | 'ACCOUNT' | 'SYMBOL';
  accountId?: string;
  symbol?: string;
  engaged: boolean;
  reason: string;
  source: string;
  engagedBy: string;
  engagedAt: string;
  releasedBy?: string;
  releasedAt?: string;
  releaseReason?: string;
}

export function switchView(r: SwitchRow): SwitchView {
  return {
    switchId: String(r.switch_id),
    scope: r.scope,
    ...(r.account_id ? { accountId: r.account_id } : {}),
    ...(r.symbol ? { symbol: r.symbol } : {}),
    engaged: r.released_at === null,
    reason: r.reason,
    source: r.source,
    engagedBy: r.engaged_by,
    engagedAt: r.engaged_at.toISOString(),
    ...(r.released_at
      ? {
          releasedBy: r.released_by ?? undefined,
          releasedAt: r.released_at.toISOString(),
          releaseReason: r.release_reason ?? undefined,
        }
      : {}),
  };
}

const scopeFields = (s: KillScope) => ({
  ...(s.scope === 'ACCOUNT' ? { accountId: s.accountId } : {}),
  ...(s.scope === 'SYMBOL' ? { symbol: s.symbol } : {}),
});

/**
 * Engages the switch of a scope, inside the caller's transaction. An engaged switch stays as it is
 * (`engaged: false` says nothing changed), so a second officer or breaker adds no second event.
 */
export async function engageKillSwitch(
  manager: EntityManager,
  topicPrefix: string,
  change: {
    scope: KillScope;
    reason: string;
    source: string;
    by: string;
    correlationId?: string;
  },
): Promise<{ switch: SwitchView; engaged: boolean }> {
  const { scope } = change;
  const target = targetOf(scope);
  const inserted: SwitchRow[] = await manager.query(
    `INSERT INTO risk_kill_switches (scope, account_id, symbol, target, reason, source, engaged_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (target) WHERE released_at IS NULL DO NOTHING RETURNING *`,
    [
      scope.scope,
      scope.scope === 'ACCOUNT' ? scope.accountId : null,
      scope.scope === 'SYMBOL' ? scope.symbol : null,
      target,
      change.reason,
      change.source,
      change.by,
    ],
  );
  if (inserted.length === 0) {
    const [existing]: SwitchRow[] = await manager.query(
      `SELECT * FROM risk_kill_switches WHERE target = $1 AND released_at IS NULL`,
      [target],
    );
    return { switch: switchView(existing), engaged: false };
  }
  await publish(
    manager,
    topicPrefix,
    KillSwitchChanged,
    {
      engaged: true,
      scope: scope.scope,
      ...scopeFields(scope),
      reason: change.reason,
      changedBy: change.by,
    },
    { aggregateId: target, correlationId: change.correlationId ?? uuidv7() },
  );
  return { switch: switchView(inserted[0]), engaged: true };
}

/** Releases the engaged switch of a scope; undefined when none is engaged. */
export async function releaseKillSwitch(
  manager: EntityManager,
  topicPrefix: string,
  change: { scope: KillScope; reason?: string; by: string; correlationId?: string },
): Promise<SwitchView | undefined> {
  const target = targetOf(change.scope);
  const reason = change.reason ?? `released by ${change.by}`;
  const [released]: SwitchRow[] = await manager.query(
    `WITH released AS (
       UPDATE risk_kill_switches SET released_by = $2, released_at = clock_timestamp(), release_reason = $3
       WHERE target = $1 AND released_at IS NULL RETURNING *)
     SELECT * FROM released`,
    [target, change.by, reason],
  );
  if (!released) return undefined;
  await publish(
    manager,
    topicPrefix,
    KillSwitchChanged,
    {
      engaged: false,
      scope: change.scope.scope,
      ...scopeFields(change.scope),
      reason,
      changedBy: change.by,
    },
    { aggregateId: target, correlationId: change.correlationId ?? uuidv7() },
  );
  return switchView(released);
}
