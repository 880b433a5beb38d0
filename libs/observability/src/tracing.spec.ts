// Tracing as a service process gets it: off by default without loading the SDK, spans of an HTTP
// exchange in the JSON lines file when asked for, log lines with the trace's ids, and a bad setting
// refused with one line.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readSpanFiles } from './trace-files';

const ROOT = join(__dirname, '..', '..', '..');

function runFixture(env: Record<string, string>) {
  const result = spawnSync(
    process.execPath,
    ['-r', '@swc-node/register', join('libs', 'observability', 'test', 'traced-process.ts')],
    {
      cwd: ROOT,
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH,
        SWC_NODE_PROJECT: join(ROOT, 'tsconfig.json'),
        ...env,
      },
      timeout: 60_000,
    },
  );
  return result;
}

describe('startTracing', () => {
  it('is off by default and does not even load the SDK', () => {
    const result = runFixture({});
    expect(result.status).toBe(0);
    const out = JSON.parse(result.stdout);
    expect(out.status).toEqual({ enabled: false, exporters: [] });
    expect(out.sdkLoaded).toBe(false);
    expect(out.logs[0]).not.toHaveProperty('trace_id');
  });

  it('with the file exporter writes the span of a served request, and a log line in it carries its ids', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'traces-'));
    const file = join(dir, 'fixture.jsonl');
    const result = runFixture({ OTEL_TRACES_EXPORTER: 'file', TRACES_FILE: file });
    expect(result.stderr).toBe('');
    const out = JSON.parse(result.stdout);
    expect(out.status).toEqual({ enabled: true, exporters: ['file'], file });

    const spans = await readSpanFiles(dir);
    // The client call has no parent span, so only the server side is traced (a root span).
    const server = spans.find((s) => s.kind === 'SERVER');
    expect(server).toMatchObject({
      service: 'fixture',
      name: 'GET',
      parentSpanId: null,
      attributes: expect.objectContaining({ 'http.response.status_code': 200 }),
    });
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(spans.length);
    expect(out.logs[0]).toMatchObject({
      msg: 'handled',
      trace_id: server!.traceId,
      span_id: server!.spanId,
      trace_flags: '01',
    });
  });

  it('refuses an unknown exporter with one line naming the variable', () => {
    const result = runFixture({ OTEL_TRACES_EXPORTER: 'jaeger' });
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      'fixture: invalid configuration: OTEL_TRACES_EXPORTER is invalid (each must be one of none, otlp, console, file)\n',
    );
  });
});
