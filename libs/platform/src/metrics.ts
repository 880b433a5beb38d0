// Prometheus metrics of the process: default Node.js metrics, the HTTP requests it served (rate,
// errors and duration per route), plus whatever libraries and the service register.
import { Controller, Get, Header } from '@nestjs/common';
import { trace } from '@opentelemetry/api';
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Histogram, register } from 'prom-client';

let defaultsCollected = false;

export function enableDefaultMetrics(service: string): void {
  if (defaultsCollected) return;
  defaultsCollected = true;
  register.setDefaultLabels({ service });
  collectDefaultMetrics();
}

@Controller()
export class MetricsController {
  @Get('metrics')
  @Header('content-type', register.contentType)
  metrics(): Promise<string> {
    return register.metrics();
  }
}

/** Connections refused before any request: no client certificate, an unknown CA, an old protocol. */
export const tlsHandshakeFailures = new Counter({
  name: 'tls_handshake_failures_total',
  help: 'TLS handshakes the service refused, by OpenSSL reason',
  labelNames: ['reason'],
});

const HTTP_LABELS = ['method', 'route', 'status_code'] as const;

export const httpRequests = new Counter({
  name: 'http_requests_total',
  help: 'HTTP requests answered, by method, route pattern and status code',
  labelNames: HTTP_LABELS,
});

export const httpRequestDuration = new Histogram({
  name: 'http_request_duration_seconds',
  help: 'Time from receiving an HTTP request to sending its answer, by method, route and status code',
  labelNames: HTTP_LABELS,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
});

/**
 * Counts and times every answered request, and names its trace span after the route. The route is
 * Fastify's pattern (`/trading/orders/:id`), never the raw URL, so ids do not become label values.
 */
export function observeHttpRequests(fastify: FastifyInstance): void {
  // The request's server span (when traced) is named after the route too, not just the method.
  fastify.addHook('onRequest', (request, _reply, done) => {
    const span = trace.getActiveSpan();
    const route = request.routeOptions.url;
    if (route && span?.isRecording()) {
      span.setAttribute('http.route', route);
      span.updateName(`${request.method} ${route}`);
    }
    done();
  });
  fastify.addHook('onResponse', (request, reply, done) => {
    const labels = {
      method: request.method,
      route: request.routeOptions.url ?? 'unmatched',
      status_code: String(reply.statusCode),
    };
    httpRequests.inc(labels);
    httpRequestDuration.observe(labels, reply.elapsedTime / 1000);
    done();
  });
}
