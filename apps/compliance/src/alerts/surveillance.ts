// Post-trade surveillance: on an interval, the trades and order lifecycles of the audit log in the
// window go to finance.compliance alerts; new findings become alerts. OPA down or any other failure:
// logged, and the next tick tries again (the window overlaps, and raising is idempotent).
import { uuidv7 } from '@finance/contracts';
import { SERVICE_CONFIG, SERVICE_LOGGER } from '@finance/platform';
import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { DataSource } from 'typeorm';
import type { ComplianceConfig } from '../config';
import { COMPLIANCE_POLICY, CompliancePolicy } from '../pre-trade/compliance-policy';
import { ComplianceAlert, ComplianceAlerts } from './compliance-alerts';
import {
  accountsOf,
  buildSurveillanceInput,
  sessionCloseOn,
  WindowEntry,
} from './surveillance-input';

export type SurveillanceConfig = Pick<
  ComplianceConfig,
  | 'COMPLIANCE_SURVEILLANCE_INTERVAL_MS'
  | 'COMPLIANCE_SURVEILLANCE_WINDOW_MINUTES'
  | 'COMPLIANCE_SESSION_CLOSE'
>;

export interface SurveillanceRun {
  readonly from: string;
  readonly to: string;
  readonly trades: number;
  readonly orders: number;
  readonly findings: number;
  readonly raised: ComplianceAlert[];
}

const WINDOW_TYPES = ['OrderCreated', 'OrderCancelled', 'OrderExecuted'];

@Injectable()
export class Surveillance implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;

  constructor(
    private readonly dataSource: DataSource,
    private readonly alerts: ComplianceAlerts,
    @Inject(COMPLIANCE_POLICY) private readonly policy: CompliancePolicy,
    @Inject(SERVICE_CONFIG) private readonly config: SurveillanceConfig,
    @Inject(SERVICE_LOGGER) private readonly logger: Logger,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => {
      this.running ??= this.tick().finally(() => (this.running = undefined));
    }, this.config.COMPLIANCE_SURVEILLANCE_INTERVAL_MS);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One run over the window ending now; throws ComplianceUnavailable when OPA cannot answer. */
  async runOnce(now = new Date()): Promise<SurveillanceRun> {
    const from = new Date(
      now.getTime() - this.config.COMPLIANCE_SURVEILLANCE_WINDOW_MINUTES * 60_000,
    );
    const rows: Array<{ type: string; occurred_at: Date; data: Record<string, unknown> }> =
      await this.dataSource.query(
        `SELECT type, occurred_at, payload::jsonb -> 'data' AS data FROM audit_entries
          WHERE type = ANY($1) AND occurred_at >= $2 AND occurred_at <= $3
          ORDER BY occurred_at, leaf_index`,
        [WINDOW_TYPES, from, now],
      );
    const entries: WindowEntry[] = rows
      .filter((r) => r.data !== null && typeof r.data === 'object')
      .map((r) => ({ type: r.type, occurredAt: r.occurred_at.toISOString(), data: r.data }));
    const input = buildSurveillanceInput(
      entries,
      await this.owners(accountsOf(entries)),
      this.config.COMPLIANCE_SESSION_CLOSE
        ? sessionCloseOn(now, this.config.COMPLIANCE_SESSION_CLOSE)
        : undefined,
    );
    const findings =
      input.trades.length === 0 && input.orders.length === 0 ? [] : await this.policy.alerts(input);
    const raised = await this.alerts.raise(findings, `surveillance-${uuidv7()}`);
    const run = {
      from: from.toISOString(),
      to: now.toISOString(),
      trades: input.trades.length,
      orders: input.orders.length,
      findings: findings.length,
      raised,
    };
    if (raised.length > 0) {
      this.logger.warn(
        { ...run, raised: raised.map((a) => ({ id: a.id, rule: a.rule })) },
        'surveillance raised alerts',
      );
    }
    return run;
  }

  // The beneficial owner of each account, from its AccountOpened entry (whenever it was opened).
  private async owners(accountIds: string[]): Promise<Map<string, string>> {
    if (accountIds.length === 0) return new Map();
    const rows: Array<{ account_id: string; owner: string }> = await this.dataSource.query(
      `SELECT DISTINCT ON (account_id) account_id, owner FROM (
         SELECT payload::jsonb -> 'data' ->> 'accountId' AS account_id,
                payload::jsonb -> 'data' ->> 'owner' AS owner, leaf_index
           FROM audit_entries WHERE type = 'AccountOpened') a
        WHERE account_id = ANY($1) AND owner IS NOT NULL
        ORDER BY account_id, leaf_index`,
      [accountIds],
    );
    return new Map(rows.map((r) => [r.account_id, r.owner]));
  }

  private async tick(): Promise<void> {
    try {
      await this.runOnce();
    } catch (error) {
      this.logger.error({ err: error }, 'surveillance run failed; retrying on the next interval');
    }
  }
}
