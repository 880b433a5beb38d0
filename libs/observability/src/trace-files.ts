// Reads the spans the file exporter wrote and shows one trace as an indented tree, with each span's
// service, start offset and duration: what `npm run trace -- <id>` prints.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SpanRecord } from './span-record';

/** Every span in the `.jsonl` files of `dir` (lines that do not parse are skipped). */
export async function readSpanFiles(dir: string): Promise<SpanRecord[]> {
  if (!existsSync(dir)) return [];
  const files = (await readdir(dir)).filter((name) => name.endsWith('.jsonl')).sort();
  const spans: SpanRecord[] = [];
  for (const name of files) {
    for (const line of (await readFile(join(dir, name), 'utf8')).split('\n')) {
      if (!line.trim()) continue;
      try {
        spans.push(JSON.parse(line) as SpanRecord);
      } catch {
        // A line cut short by a process that was killed mid-write.
      }
    }
  }
  return spans;
}

/**
 * Ids of the traces that `id` belongs to: a trace id itself, or any span attribute with that value
 * (an order id, a global transaction id, a correlation or message id), oldest trace first.
 */
export function tracesMatching(spans: readonly SpanRecord[], id: string): string[] {
  const started = new Map<string, number>();
  for (const span of spans) {
    const hit = span.traceId === id || Object.values(span.attributes).some((value) => value === id);
    if (hit) {
      const first = started.get(span.traceId);
      if (first === undefined || span.startUs < first) started.set(span.traceId, span.startUs);
    }
  }
  return [...started].sort((a, b) => a[1] - b[1]).map(([traceId]) => traceId);
}

export interface TraceNode {
  span: SpanRecord;
  children: TraceNode[];
}

/** The spans of one trace as trees: roots are spans whose parent is not in the files. */
export function traceTree(spans: readonly SpanRecord[], traceId: string): TraceNode[] {
  const own = spans
    .filter((span) => span.traceId === traceId)
    .sort((a, b) => a.startUs - b.startUs);
  const nodes = new Map(own.map((span) => [span.spanId, { span, children: [] as TraceNode[] }]));
  const roots: TraceNode[] = [];
  for (const node of nodes.values()) {
    const parent = node.span.parentSpanId ? nodes.get(node.span.parentSpanId) : undefined;
    if (parent) parent.children.push(node);
    else roots.push(node);
  }
  return roots;
}

const ms = (us: number) => (us / 1000).toFixed(1).padStart(8);
// Span names made from SQL can span lines.
const oneLine = (text: string) => text.replace(/\s+/g, ' ');

/** The trace as text: offset from its first span, duration, service, kind and name, as a tree. */
export function renderTrace(spans: readonly SpanRecord[], traceId: string): string {
  const roots = traceTree(spans, traceId);
  const own = spans.filter((span) => span.traceId === traceId);
  if (own.length === 0) return `trace ${traceId}: no spans\n`;
  const start = Math.min(...own.map((span) => span.startUs));
  const end = Math.max(...own.map((span) => span.startUs + span.durationUs));
  const services = [...new Set(own.map((span) => span.service))].sort();
  const width = Math.max(...services.map((service) => service.length));
  const lines = [
    `trace ${traceId}: ${own.length} spans, ${services.length} services (${services.join(', ')}), ${((end - start) / 1000).toFixed(1)} ms`,
    `${'start ms'.padStart(8)} ${'took ms'.padStart(8)}  ${'service'.padEnd(width)}  span`,
  ];
  const walk = (node: TraceNode, prefix: string, last: boolean, root: boolean) => {
    const { span } = node;
    const branch = root ? '' : last ? '└─ ' : '├─ ';
    const kind = span.kind === 'INTERNAL' ? '' : ` [${span.kind.toLowerCase()}]`;
    const error = span.status === 'ERROR' ? ` ERROR ${span.statusMessage ?? ''}`.trimEnd() : '';
    lines.push(
      `${ms(span.startUs - start)} ${ms(span.durationUs)}  ${span.service.padEnd(width)}  ${prefix}${branch}${oneLine(span.name)}${kind}${error}`,
    );
    const next = root ? prefix : `${prefix}${last ? '   ' : '│  '}`;
    node.children.forEach((child, i) => walk(child, next, i === node.children.length - 1, false));
  };
  roots.forEach((root) => walk(root, '', true, true));
  return `${lines.join('\n')}\n`;
}
