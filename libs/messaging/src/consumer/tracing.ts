// Continues the producer's W3C trace in a CONSUMER span that is active while the handler runs.
import {
  Attributes,
  Context,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  TextMapGetter,
  Tracer,
  context,
  propagation,
  trace,
} from '@opentelemetry/api';
import { HEADERS } from '../kafka';

export const TRACER_NAME = '@finance/messaging';

const getter: TextMapGetter<Record<string, string>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};

/**
 * The producer's context from the record's headers, else from the envelope metadata (which the
 * outbox copies into headers anyway). Starts from ROOT so nothing leaks in from the poll loop.
 */
export function extractTraceContext(
  headers: Readonly<Record<string, string>>,
  metadata?: { traceparent?: string; tracestate?: string },
): Context {
  const traceparent = headers[HEADERS.traceparent] ?? metadata?.traceparent;
  const tracestate = headers[HEADERS.tracestate] ?? metadata?.tracestate;
  const carrier: Record<string, string> = {};
  if (traceparent) carrier.traceparent = traceparent;
  if (traceparent && tracestate) carrier.tracestate = tracestate;
  return propagation.extract(ROOT_CONTEXT, carrier, getter);
}

export function consumerTracer(): Tracer {
  return trace.getTracer(TRACER_NAME);
}

/** Runs fn under a `<topic> process` CONSUMER span that is a child of `parent`. */
export function inConsumerSpan<T>(
  tracer: Tracer,
  topic: string,
  parent: Context,
  attributes: Attributes,
  fn: () => Promise<T>,
): Promise<T> {
  return context.with(parent, () =>
    tracer.startActiveSpan(
      `${topic} process`,
      { kind: SpanKind.CONSUMER, attributes },
      async (span) => {
        try {
          return await fn();
        } catch (error) {
          span.recordException(error instanceof Error ? error : String(error));
          span.setStatus({
            code: SpanStatusCode.ERROR,
            message: error instanceof Error ? error.message : String(error),
          });
          throw error;
        } finally {
          span.end();
        }
      },
    ),
  );
}
