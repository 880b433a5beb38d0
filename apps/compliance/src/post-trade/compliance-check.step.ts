// Compliance's step of the post-trade saga (compliance-check), once the trade has settled: both of
// its executions must be in the tamper-evident audit log. The log is appended a moment after the
// events arrive, so a trade not in it yet is not an answer: the command is retried until it is.
import { ExecutionContext, StepHandlers } from '@finance/saga';
import { Injectable } from '@nestjs/common';

export const COMPLIANCE_CHECK = 'compliance-check';

@Injectable()
export class PostTradeComplianceStep implements StepHandlers {
  async execute(ctx: ExecutionContext) {
    const tradeId = String(ctx.payload.tradeId);
    const rows: Array<{ type: string; leaf_index: string }> = await ctx.manager.query(
      `SELECT type, leaf_index FROM audit_entries
        WHERE correlation_id = $1 AND type IN ('OrderExecuted', 'TradeSettled')
        ORDER BY leaf_index`,
      [tradeId],
    );
    const executions = rows.filter((r) => r.type === 'OrderExecuted');
    if (executions.length < 2) {
      throw new Error(
        `trade ${tradeId}: ${executions.length} of its 2 executions are in the audit log`,
      );
    }
    return {
      auditedExecutions: executions.length,
      leafIndexes: rows.map((r) => String(r.leaf_index)),
    };
  }
}
