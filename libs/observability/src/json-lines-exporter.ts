// A span exporter that appends one JSON object per span to a file, so a trace can be looked at on
// a laptop without a collector (`npm run trace -- <id>` reads these files).
import { ExportResult, ExportResultCode } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { mkdirSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { toSpanRecord } from './span-record';

export class JsonLinesSpanExporter implements SpanExporter {
  // Writes go one after the other so lines of two batches never interleave.
  private writing: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly file: string) {
    mkdirSync(dirname(file), { recursive: true });
  }

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    if (this.stopped) {
      done({ code: ExportResultCode.FAILED, error: new Error('exporter is shut down') });
      return;
    }
    const text = spans.map((span) => `${JSON.stringify(toSpanRecord(span))}\n`).join('');
    this.writing = this.writing
      .then(() => appendFile(this.file, text))
      .then(
        () => done({ code: ExportResultCode.SUCCESS }),
        (error: unknown) =>
          done({
            code: ExportResultCode.FAILED,
            error: error instanceof Error ? error : new Error(String(error)),
          }),
      );
  }

  async forceFlush(): Promise<void> {
    await this.writing;
  }

  async shutdown(): Promise<void> {
    this.stopped = true;
    await this.writing;
  }
}
