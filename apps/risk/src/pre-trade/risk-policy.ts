// The pre-trade decision of finance.risk (libs/policies/risk), evaluated either in-process from the
// policy compiled to Wasm (the default: no network in the Try, well under the 1 ms budget) or by the
// OPA sidecar over HTTP (same policy, kept to compare and as a fallback). Either way a failure to
// decide is a refusal: risk fails closed.
import { loadPolicySync, type LoadedPolicy } from '@open-policy-agent/opa-wasm';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { z } from 'zod';
import { RISK_POLICY_WASM } from './risk-policy.wasm.generated';

/** What the policy is asked (see the input comment at the top of libs/policies/risk/risk.rego). */
export interface RiskPolicyInput {
  order: {
    orderId: string;
    accountId: string;
    symbol: string;
    side: 'BUY' | 'SELL';
    type: 'LIMIT' | 'MARKET';
    quantity: string;
    price?: string;
    notional: { amount: string; currency: string };
  };
  limits: { account: LimitLevel; firm: LimitLevel };
  killSwitches: Array<{
    scope: 'FIRM' | 'ACCOUNT' | 'SYMBOL';
    accountId?: string;
    symbol?: string;
    reason: string;
  }>;
  exposure: { gross: string };
  position: { net: string; openBuy: string; openSell: string };
  throttle: { lastSecond: string; lastMinute: string };
  duplicate?: { ageMs: string };
  referencePrice?: string;
}

/** One level's limits as the policy reads them: decimal or whole strings, a list of symbols. */
export interface LimitLevel {
  maxOrderValue?: string;
  quota?: string;
  maxOrderQuantity?: string;
  maxPosition?: string;
  priceCollarPercent?: string;
  ordersPerSecond?: string;
  ordersPerMinute?: string;
  duplicateWindowSeconds?: string;
  restrictedSymbols?: string[];
}

const violation = z.object({
  code: z.string().min(1),
  limit: z.string(),
  scope: z.string(),
  message: z.string(),
});
export type RiskViolation = z.infer<typeof violation>;

const decisionSchema = z.union([
  z.object({ allow: z.literal(true), violations: z.array(violation).length(0) }),
  z.object({
    allow: z.literal(false),
    code: z.string().min(1),
    message: z.string(),
    violations: z.array(violation).min(1),
  }),
]);
export type RiskDecision = z.infer<typeof decisionSchema>;

/** The policy could not decide (no answer, an error, an answer of the wrong shape). */
export class RiskPolicyUnavailable extends Error {
  override readonly name = 'RiskPolicyUnavailable';
}

export interface RiskPolicy {
  readonly engine: 'wasm' | 'sidecar';
  decide(input: RiskPolicyInput): Promise<RiskDecision>;
}

function checked(result: unknown, engine: string): RiskDecision {
  const parsed = decisionSchema.safeParse(result);
  if (!parsed.success) {
    throw new RiskPolicyUnavailable(
      `${engine}: finance.risk.decision has an unexpected shape: ${JSON.stringify(result)?.slice(0, 300)}`,
    );
  }
  return parsed.data;
}

/** The embedded Wasm module, checked against the digest it was generated with. */
export function embeddedRiskPolicyWasm(): Buffer {
  const wasm = gunzipSync(Buffer.from(RISK_POLICY_WASM.gzipBase64, 'base64'));
  const digest = createHash('sha256').update(wasm).digest('hex');
  if (digest !== RISK_POLICY_WASM.wasmSha256) {
    throw new Error(`embedded risk policy is corrupt: sha256 ${digest}`);
  }
  return wasm;
}

export class WasmRiskPolicy implements RiskPolicy {
  readonly engine = 'wasm' as const;
  private readonly policy: LoadedPolicy;

  constructor(wasm: Buffer = embeddedRiskPolicyWasm()) {
    this.policy = loadPolicySync(wasm);
  }

  /** Synchronous underneath (a few tens of microseconds on the event loop). */
  decide(input: RiskPolicyInput): Promise<RiskDecision> {
    return Promise.resolve(this.decideNow(input));
  }

  decideNow(input: RiskPolicyInput): RiskDecision {
    let results: unknown;
    try {
      results = this.policy.evaluate(input);
    } catch (error) {
      // The SDK throws strings as well as Errors (a builtin it lacks, an abort in the module).
      throw new RiskPolicyUnavailable(
        `wasm: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    const first = Array.isArray(results)
      ? (results[0] as { result?: unknown } | undefined)
      : undefined;
    return checked(first?.result, 'wasm');
  }
}

/** POST /v1/data/finance/risk/decision on OPA: one network round trip per order. */
export class SidecarRiskPolicy implements RiskPolicy {
  readonly engine = 'sidecar' as const;
  private readonly url: URL;

  constructor(
    opaUrl: string,
    private readonly timeoutMs: number,
  ) {
    this.url = new URL('/v1/data/finance/risk/decision', opaUrl);
  }

  async decide(input: RiskPolicyInput): Promise<RiskDecision> {
    let body: { result?: unknown };
    try {
      const response = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ input }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      if (!response.ok) throw new Error(`OPA answered ${response.status}`);
      body = (await response.json()) as { result?: unknown };
    } catch (error) {
      throw new RiskPolicyUnavailable(`sidecar: ${(error as Error).message}`);
    }
    if (body.result === undefined) {
      throw new RiskPolicyUnavailable(
        'sidecar: OPA has no finance.risk.decision (policy not loaded)',
      );
    }
    return checked(body.result, 'sidecar');
  }
}

/** Nest token of the RiskPolicy the Try uses (chosen by RISK_POLICY_ENGINE). */
export const RISK_POLICY = Symbol('RISK_POLICY');
