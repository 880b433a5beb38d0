// Tracing of the services (OpenTelemetry) and the local tools to look at what it recorded. Only
// light modules load here; the SDK itself loads when startTracing finds an exporter configured.
export * from './log-fields';
export type { SpanKindName, SpanRecord } from './span-record';
export * from './trace-files';
export * from './tracing';
export * from './tracing-config';
