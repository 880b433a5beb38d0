// The compliance policy (finance.compliance in libs/policies) as OPA serves it: the pre-trade decision
// and the surveillance alerts. Any failure to get a well-formed answer is ComplianceUnavailable, so
// callers fail closed (the order is refused; a surveillance run is retried on the next tick).
import { z } from 'zod';

export class ComplianceUnavailable extends Error {
  override readonly name = 'ComplianceUnavailable';
}

const decisionSchema = z.object({
  allow: z.boolean(),
  reason: z.string(),
  violations: z.array(z.object({ rule: z.string(), message: z.string() })),
});
export type ComplianceDecision = z.infer<typeof decisionSchema>;

const alertSchema = z.object({
  rule: z.string().min(1),
  severity: z.enum(['high', 'medium', 'low']),
  message: z.string().min(1),
  subjects: z.object({
    owner: z.string().nullable().optional(),
    symbol: z.string().nullable().optional(),
    orderIds: z.array(z.string()).default([]),
    tradeIds: z.array(z.string()).default([]),
  }),
});
export type SurveillanceAlert = z.infer<typeof alertSchema>;

export interface PreTradeInput {
  readonly kind: 'pre-trade';
  readonly order: {
    readonly orderId: string;
    readonly accountId: string;
    readonly owner: string;
    readonly user: string;
    readonly symbol: string;
    readonly side: 'BUY' | 'SELL';
    readonly type: 'LIMIT' | 'MARKET';
    readonly price: string | null;
    readonly quantity: string;
    readonly notional: { readonly amount: string; readonly currency: string };
  };
  readonly history: { readonly ordersByUserLastHour: number };
  readonly config?: Readonly<Record<string, string>>;
}

export interface SurveillanceInput {
  readonly kind: 'surveillance';
  readonly trades: ReadonlyArray<{
    readonly tradeId: string;
    readonly symbol: string;
    readonly price: string;
    readonly quantity: string;
    readonly executedAt: string;
    readonly buy: { readonly owner: string; readonly accountId: string; readonly orderId: string };
    readonly sell: { readonly owner: string; readonly accountId: string; readonly orderId: string };
  }>;
  readonly orders: ReadonlyArray<{
    readonly orderId: string;
    readonly owner: string;
    readonly side: 'BUY' | 'SELL';
    readonly symbol: string;
    readonly quantity: string;
    readonly placedAt: string;
    readonly cancelledAt: string | null;
    readonly filledQuantity: string;
  }>;
  readonly session?: { readonly close: string };
}

export class CompliancePolicy {
  constructor(
    private readonly opaUrl: string,
    private readonly timeoutMs: number,
  ) {}

  async decide(input: PreTradeInput): Promise<ComplianceDecision> {
    return this.evaluate('decision', input, decisionSchema);
  }

  async alerts(input: SurveillanceInput): Promise<SurveillanceAlert[]> {
    return this.evaluate('alerts', input, z.array(alertSchema));
  }

  private async evaluate<T>(rule: string, input: unknown, schema: z.ZodType<T>): Promise<T> {
    let body: { result?: unknown };
    try {
      const response = await fetch(new URL(`/v1/data/finance/compliance/${rule}`, this.opaUrl), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ input }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      if (!response.ok) throw new Error(`OPA answered ${response.status}`);
      body = (await response.json()) as { result?: unknown };
    } catch (error) {
      throw new ComplianceUnavailable(`OPA: ${(error as Error).message}`);
    }
    if (body.result === undefined) {
      throw new ComplianceUnavailable(`OPA has no finance.compliance.${rule} (policy not loaded)`);
    }
    const parsed = schema.safeParse(body.result);
    if (!parsed.success) {
      throw new ComplianceUnavailable(`finance.compliance.${rule} answered an unexpected shape`);
    }
    return parsed.data;
  }
}

/** Nest token of the CompliancePolicy. */
export const COMPLIANCE_POLICY = Symbol('COMPLIANCE_POLICY');
