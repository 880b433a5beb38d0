// Prometheus metrics of the authorization guard: decisions, OPA latency and OPA being unavailable.
import { Counter, Histogram, register } from 'prom-client';

function counter(name: string, help: string, labelNames: string[] = []): Counter {
  return (
    (register.getSingleMetric(name) as Counter | undefined) ??
    new Counter({ name, help, labelNames })
  );
}

/** outcome: allowed, denied, unavailable (OPA did not decide: answered 503), open (a probe). */
export const authzDecisions = counter(
  'authz_decisions_total',
  'Requests the authorization guard decided, by outcome',
  ['outcome'],
);

/** The fail-closed alarm: every increment is a request refused with 503 because OPA did not answer. */
export const authzOpaUnavailable = counter(
  'authz_opa_unavailable_total',
  'Requests refused with 503 because OPA could not be asked, by kind of failure',
  ['kind'],
);

export const authzAuditFailures = counter(
  'authz_audit_failures_total',
  'Denials whose AuthorizationDenied event could not be written to the outbox',
);

export const authzOpaDuration =
  (register.getSingleMetric('authz_opa_request_duration_seconds') as Histogram | undefined) ??
  new Histogram({
    name: 'authz_opa_request_duration_seconds',
    help: 'Time to get a decision from OPA',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
  });
