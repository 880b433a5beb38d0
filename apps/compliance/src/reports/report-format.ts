// How a report page is written: JSON (one document: report, parameters, the signed checkpoint it was cut
// at, rows, next cursor) or CSV (RFC 4180 rows; the checkpoint and next cursor in response headers),
// both streamed row by row. Cursors pin the checkpoint, so every page of one pull is cut at the same one.
import type { CheckpointDocument } from '@finance/audit-log';
import { ProblemException } from '@finance/platform';
import { Readable } from 'node:stream';
import { z } from 'zod';

export type Cell = string | number | null;
export type ReportRow = { readonly [column: string]: Cell | { readonly [key: string]: unknown } };

export interface ReportPage {
  readonly report: string;
  readonly parameters: Readonly<Record<string, string | null>>;
  readonly checkpoint: CheckpointDocument;
  readonly columns: readonly string[];
  readonly rows: readonly ReportRow[];
  readonly nextCursor: string | null;
}

/** Where the next page starts: the checkpoint's size and the last leaf index served. */
export interface Cursor {
  readonly treeSize: number;
  readonly after: number;
}

const cursorSchema = z.strictObject({
  s: z.number().int().min(0),
  a: z.number().int().min(-1),
});

export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify({ s: cursor.treeSize, a: cursor.after })).toString('base64url');
}

export function decodeCursor(text: string): Cursor {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    value = undefined;
  }
  const parsed = cursorSchema.safeParse(value);
  if (!parsed.success || parsed.data.a >= parsed.data.s) {
    throw new ProblemException({
      status: 400,
      title: 'invalid request',
      detail: 'query.cursor: not a cursor this service issued',
      errors: [{ field: 'query.cursor', message: 'not a cursor this service issued' }],
    });
  }
  return { treeSize: parsed.data.s, after: parsed.data.a };
}

export type ReportFormat = 'json' | 'csv';

/** `?format=` wins; else `Accept: text/csv` asks for CSV; else JSON. */
export function negotiateFormat(format: ReportFormat | undefined, accept: unknown): ReportFormat {
  if (format) return format;
  return typeof accept === 'string' && /\btext\/csv\b/i.test(accept) ? 'csv' : 'json';
}

/** RFC 4180: quoted when it holds a comma, quote or line break; quotes doubled. */
export function csvCell(value: ReportRow[string]): string {
  if (value === null || value === undefined) return '';
  const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function csvLine(cells: readonly ReportRow[string][]): string {
  return `${cells.map(csvCell).join(',')}\r\n`;
}

/** The page as a stream of text chunks in the chosen format. */
export function renderPage(page: ReportPage, format: ReportFormat): Readable {
  return Readable.from(format === 'csv' ? csvChunks(page) : jsonChunks(page));
}

function* csvChunks(page: ReportPage): Generator<string> {
  yield csvLine(page.columns);
  for (const row of page.rows) yield csvLine(page.columns.map((c) => row[c] ?? null));
}

function* jsonChunks(page: ReportPage): Generator<string> {
  yield `{"report":${JSON.stringify(page.report)},"parameters":${JSON.stringify(page.parameters)},`;
  yield `"checkpoint":${JSON.stringify(page.checkpoint)},"columns":${JSON.stringify(page.columns)},"rows":[`;
  let first = true;
  for (const row of page.rows) {
    yield `${first ? '' : ','}${JSON.stringify(row)}`;
    first = false;
  }
  yield `],"nextCursor":${JSON.stringify(page.nextCursor)}}\n`;
}

/** The checkpoint (and paging) of a CSV page, which has no room for them in its body. */
export function pageHeaders(page: ReportPage): Record<string, string> {
  const { checkpoint } = page;
  return {
    'x-audit-checkpoint-origin': checkpoint.origin,
    'x-audit-checkpoint-tree-size': String(checkpoint.treeSize),
    'x-audit-checkpoint-root-hash': checkpoint.rootHash,
    'x-audit-checkpoint-timestamp': checkpoint.timestamp,
    'x-audit-checkpoint-key-id': checkpoint.keyId,
    'x-audit-checkpoint-signature': checkpoint.signature,
    ...(page.nextCursor ? { 'x-next-cursor': page.nextCursor } : {}),
  };
}
