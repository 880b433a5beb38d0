// One finished span as a plain JSON object: what the file exporter writes and the trace viewer reads.
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';

export type SpanKindName = 'INTERNAL' | 'SERVER' | 'CLIENT' | 'PRODUCER' | 'CONSUMER';

export interface SpanRecord {
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  name: string;
  kind: SpanKindName;
  /** service.name of the process that recorded it. */
  service: string;
  /** Start, in microseconds since the epoch. */
  startUs: number;
  durationUs: number;
  status: 'UNSET' | 'OK' | 'ERROR';
  statusMessage?: string;
  attributes: Record<string, unknown>;
  links: Array<{ traceId: string; spanId: string }>;
  scope: string;
}

// SpanKind and SpanStatusCode values of @opentelemetry/api, by number.
const KINDS: SpanKindName[] = ['INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'];
const STATUSES: SpanRecord['status'][] = ['UNSET', 'OK', 'ERROR'];

const micros = ([seconds, nanos]: [number, number]) => seconds * 1e6 + Math.round(nanos / 1e3);

export function toSpanRecord(span: ReadableSpan): SpanRecord {
  const context = span.spanContext();
  return {
    traceId: context.traceId,
    spanId: context.spanId,
    parentSpanId: span.parentSpanContext?.spanId ?? null,
    name: span.name,
    kind: KINDS[span.kind] ?? 'INTERNAL',
    service: String(span.resource.attributes['service.name'] ?? 'unknown'),
    startUs: micros(span.startTime),
    durationUs: micros(span.duration),
    status: STATUSES[span.status.code] ?? 'UNSET',
    ...(span.status.message ? { statusMessage: span.status.message } : {}),
    attributes: { ...span.attributes },
    links: span.links.map((link) => ({
      traceId: link.context.traceId,
      spanId: link.context.spanId,
    })),
    scope: span.instrumentationScope.name,
  };
}
