// The relay's Kafka send spans. Each outbox row carries the trace context of the transaction that
// wrote it (the traceparent header set from the envelope); its send span is a child of that
// context, and the record leaves with the send span's own traceparent, so the consumer's process
// span hangs below it. A relay batch mixes many traces, which is why this is done per row and not
// by a kafkajs instrumentation (that one would parent every send to the relay's loop).
import { SpanKind, SpanStatusCode, TextMapSetter, propagation, trace } from '@opentelemetry/api';
import type { Span } from '@opentelemetry/api';
import { extractTraceContext, TRACER_NAME } from '../consumer/tracing';
import { HEADERS } from '../kafka';

const setter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

export interface PublishRow {
  position: string;
  topic: string;
  message_key: string;
  headers: Record<string, string>;
}

export interface SendSpans {
  /** The headers to send with each row (the row's own when it is not traced). */
  headers: Array<Record<string, string>>;
  /** Ends every span, marked failed when the batch was not sent. */
  end(error?: unknown): void;
}

export function startSendSpans(rows: readonly PublishRow[]): SendSpans {
  const tracer = trace.getTracer(TRACER_NAME);
  const spans: Span[] = [];
  const headers = rows.map((row) => {
    const parent = extractTraceContext(row.headers);
    // A row written outside any trace (or with tracing off) goes out as it is.
    if (!trace.getSpanContext(parent)) return row.headers;
    const span = tracer.startSpan(
      `${row.topic} send`,
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          'messaging.system': 'kafka',
          'messaging.operation.type': 'send',
          'messaging.operation.name': 'send',
          'messaging.destination.name': row.topic,
          'messaging.kafka.message.key': row.message_key,
          'messaging.message.id': row.headers[HEADERS.eventId],
          'finance.message.type': row.headers[HEADERS.type],
          'finance.outbox.position': row.position,
        },
      },
      parent,
    );
    spans.push(span);
    const sent = { ...row.headers };
    propagation.inject(trace.setSpan(parent, span), sent, setter);
    return sent;
  });
  return {
    headers,
    end(error?: unknown) {
      for (const span of spans) {
        if (error !== undefined) {
          span.recordException(error instanceof Error ? error : String(error));
          span.setStatus({
            code: SpanStatusCode.ERROR,
            message: error instanceof Error ? error.message : String(error),
          });
        }
        span.end();
      }
    },
  };
}
