import type { ExecutionContext } from '@nestjs/common';
import { ProblemException, ServiceIdentity } from '@finance/platform';
import pino from 'pino';
import type { AuthzInput } from './authz-input';
import { AuthorizationGuard, AuthorizedRequest } from './authorization.guard';
import type { Denial, DenialAudit } from './denial-audit';
import { AuthorizationUnavailableError, AuthzDecision, OpaClient } from './opa-client';

const trading = 'spiffe://cluster.local/ns/finance/sa/trading-service';
const gateway = 'spiffe://cluster.local/ns/finance/sa/order-service';

const identity: ServiceIdentity = {
  service: 'trading',
  principal: trading,
  transport: { mode: 'mesh' },
};

// OPA stand-in: answers from a function of the input, or fails like an unreachable server.
class FakeOpa {
  asked: AuthzInput[] = [];
  constructor(private readonly answer: (input: AuthzInput) => AuthzDecision | Error) {}
  async decide(input: AuthzInput): Promise<AuthzDecision> {
    this.asked.push(input);
    const result = this.answer(input);
    if (result instanceof Error) throw result;
    return result;
  }
}

class RecordingAudit {
  denials: Denial[] = [];
  async record(denial: Denial): Promise<void> {
    this.denials.push(denial);
  }
}

function http(method: string, url: string, headers: Record<string, string> = {}) {
  const request = {
    method,
    url,
    raw: {
      method,
      url,
      httpVersion: '1.1',
      headers,
      socket: { remoteAddress: '127.0.0.1', remotePort: 1 },
    },
  };
  const context = {
    getType: () => 'http',
    switchToHttp: () => ({ getRequest: () => request }),
  } as unknown as ExecutionContext;
  return { request: request as typeof request & AuthorizedRequest, context };
}

function guardWith(opa: FakeOpa) {
  const audit = new RecordingAudit();
  const guard = new AuthorizationGuard(
    identity,
    pino({ level: 'silent' }),
    opa as unknown as OpaClient,
    audit as unknown as DenialAudit,
  );
  return { guard, audit };
}

const xfcc = { 'x-forwarded-client-cert': `By=${trading};URI=${gateway}` };

async function problemOf(work: Promise<unknown>): Promise<Record<string, unknown>> {
  const error = await work.catch((e: unknown) => e);
  expect(error).toBeInstanceOf(ProblemException);
  return (error as ProblemException).getResponse() as Record<string, unknown>;
}

describe('authorization guard', () => {
  it('lets an allowed request through and tells handlers who the caller is', async () => {
    const opa = new FakeOpa(() => ({
      allow: true,
      reason: 'allowed by x',
      caller: 'order-service',
    }));
    const { guard, audit } = guardWith(opa);
    const { request, context } = http('POST', '/trading/orders', xfcc);
    expect(await guard.canActivate(context)).toBe(true);
    expect(request.principal).toBe(gateway);
    expect(opa.asked[0].attributes.source.principal).toBe(gateway);
    expect(audit.denials).toEqual([]);
  });

  it('answers a denial with 403 and records it once, without the query string', async () => {
    const opa = new FakeOpa(() => ({
      allow: false,
      reason: 'denied: no rule lets order-service GET /risk/limits',
      caller: 'order-service',
      decisionId: 'd-7',
    }));
    const { guard, audit } = guardWith(opa);
    const { request, context } = http('GET', '/risk/limits?token=secret', {
      ...xfcc,
      'x-request-id': 'req-1',
    });
    expect(await problemOf(guard.canActivate(context))).toMatchObject({
      status: 403,
      title: 'forbidden',
      decisionId: 'd-7',
      detail: `${gateway} may not GET /risk/limits`,
    });
    expect(request.principal).toBeUndefined();
    expect(audit.denials).toEqual([
      {
        principal: gateway,
        method: 'GET',
        path: '/risk/limits',
        reason: 'denied: no rule lets order-service GET /risk/limits',
        status: 403,
        correlationId: 'req-1',
      },
    ]);
  });

  it('fails closed with 503 when OPA cannot be asked, and records that too', async () => {
    const opa = new FakeOpa(
      () => new AuthorizationUnavailableError('unreachable', 'OPA unreachable'),
    );
    const { guard, audit } = guardWith(opa);
    const { context } = http('POST', '/trading/orders', xfcc);
    expect(await problemOf(guard.canActivate(context))).toMatchObject({
      status: 503,
      title: 'authorization unavailable',
    });
    expect(audit.denials).toMatchObject([{ principal: gateway, status: 503 }]);
  });

  it('answers health probes without OPA, and nothing else', async () => {
    const opa = new FakeOpa(() => new AuthorizationUnavailableError('unreachable', 'down'));
    const { guard } = guardWith(opa);
    expect(await guard.canActivate(http('GET', '/health/live').context)).toBe(true);
    expect(await guard.canActivate(http('GET', '/health/ready?verbose=1').context)).toBe(true);
    expect(opa.asked).toEqual([]);
    await expect(guard.canActivate(http('HEAD', '/health/live').context)).rejects.toThrow();
    await expect(guard.canActivate(http('GET', '/health/live/x').context)).rejects.toThrow();
  });

  it('leaves Kafka handlers to the broker and refuses any other kind of context', async () => {
    const { guard } = guardWith(new FakeOpa(() => new Error('not asked')));
    const of = (type: string) => ({ getType: () => type }) as unknown as ExecutionContext;
    expect(await guard.canActivate(of('rpc'))).toBe(true);
    expect(await guard.canActivate(of('ws'))).toBe(false);
  });
});
