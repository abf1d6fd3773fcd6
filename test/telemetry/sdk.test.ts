import { metrics, propagation, trace } from '@opentelemetry/api';
import { ConfigError, loadConfig } from '../../src/config';
import { startTelemetry } from '../../src/telemetry/sdk';

const telemetryOf = (env: Record<string, string>) => loadConfig(env, { dotenvPath: false }).telemetry;

describe('telemetry configuration (OTEL_* variables)', () => {
  it('defaults to enabled, no trace export, Prometheus metrics, service deepseek-graphql-gateway', () => {
    expect(telemetryOf({})).toEqual({
      enabled: true,
      serviceName: 'deepseek-graphql-gateway',
      traces: { exporter: 'none', otlpUrl: undefined, sampleRatio: 1 },
      metrics: { exporter: 'prometheus' },
    });
  });

  it('exports over OTLP when only an endpoint is set, to <endpoint>/v1/traces', () => {
    expect(telemetryOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318/' }).traces).toEqual({
      exporter: 'otlp',
      otlpUrl: 'http://127.0.0.1:4318/v1/traces',
      sampleRatio: 1,
    });
    expect(telemetryOf({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:9999/custom' }).traces.otlpUrl).toBe('http://collector:9999/custom');
    expect(telemetryOf({ OTEL_TRACES_EXPORTER: 'otlp' }).traces.otlpUrl).toBe('http://localhost:4318/v1/traces');
    expect(telemetryOf({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://x:1' }).traces.exporter).toBe('none');
  });

  it('reads OTEL_SDK_DISABLED, OTEL_SERVICE_NAME, the sampler ratio and the metrics exporter', () => {
    expect(telemetryOf({ OTEL_SDK_DISABLED: 'TRUE' }).enabled).toBe(false);
    expect(telemetryOf({ OTEL_SDK_DISABLED: 'false' }).enabled).toBe(true);
    expect(telemetryOf({ OTEL_SERVICE_NAME: 'gw-eu-1' }).serviceName).toBe('gw-eu-1');
    expect(telemetryOf({ OTEL_TRACES_SAMPLER_ARG: '0.25' }).traces.sampleRatio).toBe(0.25);
    expect(telemetryOf({ OTEL_METRICS_EXPORTER: 'none' }).metrics.exporter).toBe('none');
  });

  it('refuses invalid values, naming the variable and the accepted form', () => {
    let message = '';
    try {
      telemetryOf({
        OTEL_SDK_DISABLED: 'maybe',
        OTEL_TRACES_EXPORTER: 'zipkin',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'grpc://x',
        OTEL_TRACES_SAMPLER_ARG: '2',
        OTEL_METRICS_EXPORTER: 'statsd',
      });
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      message = (error as Error).message;
    }
    expect(message).toMatch(/OTEL_SDK_DISABLED: expected true or false/);
    expect(message).toMatch(/OTEL_TRACES_EXPORTER: expected one of otlp, console, none/);
    expect(message).toMatch(/OTEL_EXPORTER_OTLP_ENDPOINT: expected an http\(s\) URL/);
    expect(message).toMatch(/OTEL_TRACES_SAMPLER_ARG: expected a number from 0 to 1/);
    expect(message).toMatch(/OTEL_METRICS_EXPORTER: expected prometheus or none/);
  });
});

describe('startTelemetry', () => {
  it('with OTEL_SDK_DISABLED=true registers nothing: spans do not record, metrics are off', async () => {
    const telemetry = startTelemetry(telemetryOf({ OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1' }));
    expect(telemetry).toMatchObject({ enabled: false, tracing: false });
    expect(telemetry.scrapeMetrics).toBeUndefined();
    expect(trace.getTracer('t').startSpan('x').isRecording()).toBe(false);
    expect(propagation.fields()).toEqual([]);
    // The API's no-op meter: the provider is not an SDK one.
    expect(metrics.getMeterProvider().constructor.name).toBe('NoopMeterProvider');
    await telemetry.shutdown();
  });

  it('with an OTLP endpoint records spans and propagates W3C trace context; shutdown unregisters', async () => {
    // Delivery to the collector is checked against the real process in otlp-process.test.ts:
    // the OTLP exporter loads node:http with a dynamic import(), which jest's VM refuses.
    const telemetry = startTelemetry(telemetryOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' }));
    expect(telemetry).toMatchObject({ enabled: true, tracing: true });
    expect(telemetry.scrapeMetrics).toBeDefined();
    expect(propagation.fields()).toContain('traceparent');
    expect(trace.getTracer('t').startSpan('recorded').isRecording()).toBe(true);
    await telemetry.shutdown();
    expect(trace.getTracer('t2').startSpan('after').isRecording()).toBe(false);
    expect(propagation.fields()).toEqual([]);
  });
});
