// Raising a risk alert: the row behind the alerts report, its RiskAlertRaised event, and for a
// breaker the kill switch of its scope, all in the caller's transaction.
import { RiskAlertRaised, uuidv7 } from '@finance/contracts';
import type { EntityManager } from 'typeorm';
import { engageKillSwitch, KillScope, targetOf } from '../kill-switch/kill-switch';
import { publish } from '../risk-events';

export type AlertKind = 'LOSS_LIMIT' | 'PRICE_BAND' | 'REJECTION_BURST' | 'LARGE_TRADES';

/** The identity breakers act as, in the kill-switch history and events. */
export const BREAKER_ACTOR = 'risk-service';

export interface Alert {
  kind: AlertKind;
  scope: KillScope;
  message: string;
  /** Trip the kill switch of the scope (circuit breakers) or only alert (surveillance). */
  engage: boolean;
  tradeIds?: string[];
}

export async function raiseAlert(
  manager: EntityManager,
  topicPrefix: string,
  alert: Alert,
  causationId?: string,
): Promise<{ alertId: string; killSwitchEngaged: boolean }> {
  const alertId = uuidv7();
  let switchId: string | null = null;
  let engaged = false;
  if (alert.engage) {
    const result = await engageKillSwitch(manager, topicPrefix, {
      scope: alert.scope,
      reason: alert.message,
      source: alert.kind,
      by: BREAKER_ACTOR,
      correlationId: alertId,
    });
    switchId = result.switch.switchId;
    engaged = result.engaged;
  }
  const accountId = alert.scope.scope === 'ACCOUNT' ? alert.scope.accountId : undefined;
  const symbol = alert.scope.scope === 'SYMBOL' ? alert.scope.symbol : undefined;
  const [{ raised_at }]: Array<{ raised_at: Date }> = await manager.query(
    `INSERT INTO risk_alerts (alert_id, kind, severity, scope, account_id, symbol, message, switch_id, trade_ids)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING raised_at`,
    [
      alertId,
      alert.kind,
      alert.engage ? 'HIGH' : 'MEDIUM',
      alert.scope.scope,
      accountId ?? null,
      symbol ?? null,
      alert.message,
      switchId,
      JSON.stringify(alert.tradeIds ?? []),
    ],
  );
  await publish(
    manager,
    topicPrefix,
    RiskAlertRaised,
    {
      alertId,
      kind: alert.kind,
      severity: alert.engage ? 'HIGH' : 'MEDIUM',
      scope: alert.scope.scope,
      ...(accountId ? { accountId } : {}),
      ...(symbol ? { symbol } : {}),
      message: alert.message,
      killSwitchEngaged: engaged,
      ...(alert.tradeIds ? { tradeIds: alert.tradeIds } : {}),
      raisedAt: raised_at.toISOString(),
    },
    {
      aggregateId: targetOf(alert.scope),
      correlationId: alertId,
      causationId: causationId ?? null,
    },
  );
  return { alertId, killSwitchEngaged: engaged };
}
