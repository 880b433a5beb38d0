// Prometheus metrics of the process: default Node.js metrics plus whatever libraries register.
import { Controller, Get, Header } from '@nestjs/common';
import { collectDefaultMetrics, Counter, register } from 'prom-client';

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
