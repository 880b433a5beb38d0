// The active span's ids for a log line, so logs and traces of one request find each other.
import { isSpanContextValid, trace, TraceFlags } from '@opentelemetry/api';

export interface TraceLogFields {
  trace_id?: string;
  span_id?: string;
  trace_flags?: string;
}

/** trace_id, span_id and trace_flags of the active span; nothing outside a trace (or tracing off). */
export function traceLogFields(): TraceLogFields {
  const span = trace.getActiveSpan();
  if (!span) return {};
  const context = span.spanContext();
  if (!isSpanContextValid(context)) return {};
  return {
    trace_id: context.traceId,
    span_id: context.spanId,
    trace_flags: (context.traceFlags & TraceFlags.SAMPLED ? 1 : 0).toString(16).padStart(2, '0'),
  };
}
