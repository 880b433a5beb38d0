// The file exporter and the viewer together: spans recorded by a real tracer provider, written as
// JSON lines, read back and shown as one tree per trace.
import { context, ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { appendFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonLinesSpanExporter } from './json-lines-exporter';
import { readSpanFiles, renderTrace, tracesMatching, traceTree } from './trace-files';

function provider(service: string, file: string) {
  return new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': service }),
    spanProcessors: [new SimpleSpanProcessor(new JsonLinesSpanExporter(file))],
  });
}

describe('trace files', () => {
  it('writes spans of two services and shows the trace an order id belongs to as one tree', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'trace-files-'));
    const trading = provider('trading', join(dir, 'trading.jsonl'));
    const risk = provider('risk', join(dir, 'risk.jsonl'));

    const request = trading
      .getTracer('t')
      .startSpan('POST /trading/orders', { kind: SpanKind.SERVER }, ROOT_CONTEXT);
    request.setAttribute('finance.order_id', 'order-1');
    const inRequest = trace.setSpan(ROOT_CONTEXT, request);
    const send = trading
      .getTracer('t')
      .startSpan('tcc.commands send', { kind: SpanKind.PRODUCER }, inRequest);
    send.end();
    // The consumer continues from the send span, as a Kafka header would carry it.
    const process = risk
      .getTracer('r')
      .startSpan(
        'tcc.commands process',
        { kind: SpanKind.CONSUMER },
        trace.setSpan(context.active(), send),
      );
    process.end();
    request.end();
    const other = trading.getTracer('t').startSpan('GET /trading/orders', {}, ROOT_CONTEXT);
    other.end();
    await Promise.all([trading.shutdown(), risk.shutdown()]);
    appendFileSync(join(dir, 'risk.jsonl'), '{"cut short');

    const spans = await readSpanFiles(dir);
    expect(spans).toHaveLength(4);
    const [traceId] = tracesMatching(spans, 'order-1');
    expect(tracesMatching(spans, 'order-1')).toEqual([request.spanContext().traceId]);
    expect(tracesMatching(spans, traceId)).toEqual([traceId]);

    const [root] = traceTree(spans, traceId);
    expect(root.span).toMatchObject({ name: 'POST /trading/orders', kind: 'SERVER' });
    expect(root.children[0].span).toMatchObject({ service: 'trading', kind: 'PRODUCER' });
    expect(root.children[0].children[0].span).toMatchObject({
      service: 'risk',
      kind: 'CONSUMER',
      parentSpanId: send.spanContext().spanId,
    });

    const text = renderTrace(spans, traceId).split('\n');
    expect(text[0]).toMatch(
      new RegExp(`^trace ${traceId}: 3 spans, 2 services \\(risk, trading\\), [\\d.]+ ms$`),
    );
    expect(text.slice(2, 5).map((line) => line.slice(19))).toEqual([
      'trading  POST /trading/orders [server]',
      'trading  └─ tcc.commands send [producer]',
      'risk        └─ tcc.commands process [consumer]',
    ]);
  });
});
