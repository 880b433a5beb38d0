// The guard in front of every route: asks OPA (finance.authz) about each request, denies by default,
// answers 503 when OPA cannot be asked (fail closed), and audits every refusal.
import { CanActivate, ExecutionContext, Inject, Injectable, OnModuleInit } from '@nestjs/common';
import {
  ProblemException,
  SERVICE_IDENTITY,
  SERVICE_LOGGER,
  ServiceIdentity,
} from '@finance/platform';
import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { authzInput, callerOf } from './authz-input';
import { authzDecisions, authzOpaUnavailable } from './authz-metrics';
import { DenialAudit } from './denial-audit';
import { isOpenProbe } from './open-probes';
import { AuthorizationUnavailableError, AuthzDecision, OpaClient } from './opa-client';

const PROBLEM_BASE = 'https://finance-core.dev/problems';

/** What handlers may read after the guard let a request through (see `requestActor`). */
export interface AuthorizedRequest {
  principal?: string;
}

@Injectable()
export class AuthorizationGuard implements CanActivate, OnModuleInit {
  constructor(
    @Inject(SERVICE_IDENTITY) private readonly identity: ServiceIdentity,
    @Inject(SERVICE_LOGGER) private readonly logger: Logger,
    private readonly opa: OpaClient,
    private readonly audit: DenialAudit,
  ) {}

  onModuleInit(): void {
    this.logger.info(
      { principal: this.identity.principal, transport: this.identity.transport.mode },
      'authorization guard active (finance.authz, deny by default)',
    );
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const type = context.getType();
    // Kafka handlers: the broker authenticates producers, and every message is itself audited.
    if (type === 'rpc') return true;
    if (type !== 'http') return false;

    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const method = request.method;
    if (isOpenProbe(method, request.url)) {
      authzDecisions.inc({ outcome: 'open' });
      return true;
    }
    const raw = request.raw;
    const caller = callerOf(raw, this.identity);
    const path = request.url.split('?', 1)[0];
    if (caller.forgedForwardedCert) {
      this.logger.warn(
        { principal: caller.principal, method, path },
        'ignored x-forwarded-client-cert: this service is not behind the mesh',
      );
    }
    const requestId =
      typeof raw.headers['x-request-id'] === 'string' ? raw.headers['x-request-id'] : undefined;
    const principal = caller.principal ?? null;

    let decision: AuthzDecision;
    try {
      decision = await this.opa.decide(authzInput(raw, this.identity, caller));
    } catch (error) {
      if (!(error instanceof AuthorizationUnavailableError)) throw error;
      authzDecisions.inc({ outcome: 'unavailable' });
      authzOpaUnavailable.inc({ kind: error.kind });
      this.logger.error(
        { principal, method, path, err: error },
        'authorization unavailable: request refused',
      );
      await this.audit.record({
        principal,
        method,
        path,
        reason: `authorization unavailable: ${error.message}`,
        status: 503,
        correlationId: requestId,
      });
      throw new ProblemException({
        type: `${PROBLEM_BASE}/authorization-unavailable`,
        title: 'authorization unavailable',
        status: 503,
        detail:
          'The authorization service did not answer, so the request was refused and nothing was done. Retry later.',
      });
    }

    if (decision.allow) {
      authzDecisions.inc({ outcome: 'allowed' });
      // Handlers record who acted (operator APIs) from this, never from anything the client sent.
      (request as AuthorizedRequest).principal = caller.principal;
      return true;
    }
    authzDecisions.inc({ outcome: 'denied' });
    this.logger.warn(
      { principal, method, path, reason: decision.reason, decisionId: decision.decisionId },
      'request denied',
    );
    await this.audit.record({
      principal,
      method,
      path,
      reason: decision.reason,
      status: 403,
      correlationId: requestId ?? decision.decisionId,
    });
    throw new ProblemException({
      type: `${PROBLEM_BASE}/forbidden`,
      title: 'forbidden',
      status: 403,
      detail: `${principal ?? 'an unauthenticated caller'} may not ${method} ${path}`,
      ...(decision.decisionId ? { decisionId: decision.decisionId } : {}),
    });
  }
}
