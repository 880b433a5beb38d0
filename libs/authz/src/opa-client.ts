// Asks OPA for the `finance.authz` decision over one kept-alive connection pool, with a short
// deadline; anything but a well-formed decision is "unavailable", which the guard turns into 503.
import { HttpClient, HttpTransportError } from '@finance/platform';
import { OnApplicationShutdown } from '@nestjs/common';
import { z } from 'zod';
import type { AuthzInput } from './authz-input';
import { authzOpaDuration } from './authz-metrics';

export const DECISION_PATH = '/v1/data/finance/authz/decision';

export interface AuthzDecision {
  allow: boolean;
  reason: string;
  caller: string;
  /** OPA's id of this decision in its decision log (present when decision logging is on). */
  decisionId?: string;
}

export type UnavailableKind = 'timeout' | 'unreachable' | 'bad-response' | 'no-decision';

export class AuthorizationUnavailableError extends Error {
  override readonly name = 'AuthorizationUnavailableError';
  constructor(
    readonly kind: UnavailableKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const responseSchema = z.object({
  decision_id: z.string().optional(),
  // Undefined when the policy is not loaded: no decision is not a "no".
  result: z.object({ allow: z.boolean(), reason: z.string(), caller: z.string() }).optional(),
});

export class OpaClient implements OnApplicationShutdown {
  private readonly http: HttpClient;
  private readonly url: URL;

  constructor(options: { url: string; timeoutMs: number }) {
    this.url = new URL(DECISION_PATH, options.url);
    // A decision is a pure query, so a request lost on a stale kept-alive connection is retried.
    this.http = new HttpClient({
      timeoutMs: options.timeoutMs,
      retryStaleConnection: true,
      maxSockets: 128,
    });
  }

  async decide(input: AuthzInput): Promise<AuthzDecision> {
    const stop = authzOpaDuration.startTimer();
    let status: number;
    let body: string;
    try {
      ({ status, body } = await this.http.request(this.url, { method: 'POST', body: { input } }));
    } catch (error) {
      if (!(error instanceof HttpTransportError)) throw error;
      const kind = error.code === 'TIMEOUT' ? 'timeout' : 'unreachable';
      throw new AuthorizationUnavailableError(kind, `OPA ${kind}: ${error.message}`, {
        cause: error,
      });
    } finally {
      stop();
    }
    if (status !== 200) {
      throw new AuthorizationUnavailableError('bad-response', `OPA answered ${status}`);
    }
    let parsed: z.infer<typeof responseSchema>;
    try {
      parsed = responseSchema.parse(JSON.parse(body));
    } catch {
      throw new AuthorizationUnavailableError('bad-response', 'OPA answered an unexpected body');
    }
    if (!parsed.result) {
      throw new AuthorizationUnavailableError(
        'no-decision',
        `OPA has no ${DECISION_PATH}: is the finance.authz policy loaded?`,
      );
    }
    return { ...parsed.result, decisionId: parsed.decision_id };
  }

  onApplicationShutdown(): void {
    this.http.close();
  }
}
