import { parseTracingConfig, TracingConfigError } from './tracing-config';

describe('parseTracingConfig', () => {
  it('is off without OTEL_TRACES_EXPORTER, with none, with an empty value or when the SDK is disabled', () => {
    for (const env of [
      {},
      { OTEL_TRACES_EXPORTER: 'none' },
      { OTEL_TRACES_EXPORTER: '' },
      { OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' },
    ]) {
      expect(parseTracingConfig(env).exporters).toEqual([]);
    }
  });

  it('takes a list of exporters, the OTLP protocol (traces first) and the file', () => {
    expect(
      parseTracingConfig({
        OTEL_TRACES_EXPORTER: 'otlp, file,otlp',
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
        TRACES_FILE: '/tmp/t.jsonl',
      }),
    ).toEqual({ exporters: ['otlp', 'file'], otlpProtocol: 'http/json', file: '/tmp/t.jsonl' });
    expect(parseTracingConfig({ OTEL_TRACES_EXPORTER: 'console' }).otlpProtocol).toBe(
      'http/protobuf',
    );
  });

  it('names every bad variable in one message', () => {
    const parse = () =>
      parseTracingConfig({
        OTEL_TRACES_EXPORTER: 'none,otlp',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4317',
        OTEL_TRACES_SAMPLER: 'sometimes',
        OTEL_TRACES_SAMPLER_ARG: '2',
        OTEL_RESOURCE_ATTRIBUTES: 'deployment',
      });
    expect(parse).toThrow(TracingConfigError);
    expect(parse).toThrow(
      'invalid configuration: OTEL_TRACES_EXPORTER is invalid (none cannot be combined with an exporter); ' +
        'OTEL_EXPORTER_OTLP_ENDPOINT is invalid (must be an http(s) URL); ' +
        'OTEL_RESOURCE_ATTRIBUTES is invalid (must be key=value[,key=value...]); ' +
        'OTEL_TRACES_SAMPLER is invalid (Invalid option: expected one of "always_on"|"always_off"|"traceidratio"|"parentbased_always_on"|"parentbased_always_off"|"parentbased_traceidratio"); ' +
        'OTEL_TRACES_SAMPLER_ARG is invalid (Too big: expected number to be <=1)',
    );
  });
});
