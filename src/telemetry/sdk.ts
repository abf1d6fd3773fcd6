import { context, diag, DiagLogLevel, metrics, propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import type * as OtlpTraceExporterModule from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import {
  BatchSpanProcessor,
  ConsoleSpanExporter,
  NodeTracerProvider,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-node';
import type { TelemetryConfig } from '../config';
import { aggregateHistograms, HistogramProducer } from './histograms';
import { INSTRUMENTATION_SCOPE, noopInstruments, type Instruments } from './instruments';
import type { Logger } from './logger';

/**
 * The ONE place the OpenTelemetry SDK is wired (start-up only; library code uses
 * `@opentelemetry/api` alone). What gets registered globally:
 *
 * | config                          | propagator | tracer provider + context manager | meter provider |
 * |---------------------------------|------------|-----------------------------------|----------------|
 * | OTEL_SDK_DISABLED=true          | –          | –                                 | –              |
 * | traces `none` (the default)     | W3C        | –                                 | Prometheus     |
 * | traces `otlp` / `console`       | W3C        | NodeTracerProvider (AsyncLocalStorage) | Prometheus |
 *
 * With traces `none` no span is recorded, yet an incoming `traceparent` still reaches
 * DeepSeek: the API's non-recording spans carry the caller's span context and the gateway
 * passes contexts explicitly (no context manager needed).
 */
export interface Telemetry {
  /** False when `OTEL_SDK_DISABLED=true`: the API stays a no-op. */
  readonly enabled: boolean;
  /** True when spans are recorded and exported. */
  readonly tracing: boolean;
  /** The tracer and meter the composition root hands every layer (no-ops where a signal is off). */
  readonly instruments: Instruments;
  /**
   * A tracer and meter of the same SDK classes as `instruments`, that export and report
   * nothing: for the warm-up's DeepSeek stand-in (src/warmup-stand-in.ts), so the code it
   * compiles calls the same methods real traffic will, and none of its figures is seen.
   */
  shadowInstruments(): Instruments;
  /** Prometheus exposition text of the current metrics; undefined when metrics are off. */
  readonly scrapeMetrics?: () => Promise<string>;
  /** Flushes pending spans, stops the providers and unregisters them; idempotent. */
  shutdown(): Promise<void>;
}

export interface TelemetryOptions {
  /** Where the SDK reports its own problems (an unreachable collector, a dropped export). */
  logger?: Logger;
  /**
   * Tests: spans go synchronously to this exporter, whatever `traces.exporter` says.
   * Register one telemetry per process (per jest file): module-level tracers bind to the
   * first provider they meet.
   */
  spanExporter?: SpanExporter;
}

/** Builds and registers the SDK from the config; call before the gateway is built. */
export function startTelemetry(config: TelemetryConfig, options: TelemetryOptions = {}): Telemetry {
  if (!config.enabled) {
    return { enabled: false, tracing: false, instruments: noopInstruments(), shadowInstruments: noopInstruments, shutdown: async () => undefined };
  }
  if (options.logger) diag.setLogger(diagLogger(options.logger), DiagLogLevel.WARN);

  const resource = defaultResource().merge(resourceFromAttributes({ 'service.name': config.serviceName }));
  const propagator = new W3CTraceContextPropagator();
  propagation.setGlobalPropagator(propagator);

  let tracerProvider: NodeTracerProvider | undefined;
  const processor = spanProcessor(config, options.spanExporter);
  const sampler = new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.traces.sampleRatio) });
  if (processor) {
    tracerProvider = new NodeTracerProvider({ resource, sampler, spanProcessors: [processor] });
    // Also installs the AsyncLocalStorage context manager, so spans started by code that
    // relies on the active context (cache round trips) nest under the right parent.
    tracerProvider.register({ propagator });
  }

  let meterProvider: MeterProvider | undefined;
  let scrapeMetrics: (() => Promise<string>) | undefined;
  // The gateway's histograms are aggregated with their series bound once (src/telemetry/histograms.ts)
  // and read by the exporter with the SDK's own metrics.
  const histograms = new HistogramProducer(resource);
  if (config.metrics.exporter === 'prometheus') {
    // Served by our own Fastify route (GET /metrics), not by the exporter's own server.
    const reader = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true, metricProducers: [histograms] });
    const serializer = new PrometheusSerializer(undefined, false, undefined, false, true);
    meterProvider = new MeterProvider({ resource, readers: [reader] });
    metrics.setGlobalMeterProvider(meterProvider);
    scrapeMetrics = async () => {
      const { resourceMetrics, errors } = await reader.collect();
      if (errors.length > 0) diag.warn('metrics collection errors', ...errors);
      return serializer.serialize(resourceMetrics);
    };
  }

  const noop = noopInstruments();
  const instruments: Instruments = {
    // Without a tracer provider the no-op tracer still carries an incoming span context on.
    tracer: tracerProvider?.getTracer(INSTRUMENTATION_SCOPE) ?? noop.tracer,
    meter: meterProvider?.getMeter(INSTRUMENTATION_SCOPE) ?? noop.meter,
  };
  if (meterProvider) aggregateHistograms(instruments.meter, histograms);

  let stopping: Promise<void> | undefined;
  return {
    enabled: true,
    tracing: tracerProvider !== undefined,
    instruments,
    // Neither provider is registered, read or exported: what they record is dropped.
    shadowInstruments: () => {
      const meter = meterProvider ? new MeterProvider({ resource }).getMeter(INSTRUMENTATION_SCOPE) : noop.meter;
      // Its histograms take the same path as the real ones, into a producer nobody reads.
      if (meterProvider) aggregateHistograms(meter, new HistogramProducer(resource));
      return { tracer: tracerProvider ? new NodeTracerProvider({ resource, sampler }).getTracer(INSTRUMENTATION_SCOPE) : noop.tracer, meter };
    },
    scrapeMetrics,
    shutdown: () => {
      stopping ??= (async () => {
        await Promise.allSettled([tracerProvider?.shutdown(), meterProvider?.shutdown()]);
        trace.disable();
        metrics.disable();
        propagation.disable();
        context.disable();
        diag.disable();
      })();
      return stopping;
    },
  };
}

function spanProcessor(config: TelemetryConfig, testExporter: SpanExporter | undefined): SpanProcessor | undefined {
  if (testExporter) return new SimpleSpanProcessor(testExporter);
  switch (config.traces.exporter) {
    case 'none':
      return undefined;
    case 'console':
      return new BatchSpanProcessor(new ConsoleSpanExporter());
    case 'otlp': {
      // OTLP/HTTP with JSON bodies; headers and timeouts still come from the exporter's own
      // OTEL_EXPORTER_OTLP_* variables (e.g. OTEL_EXPORTER_OTLP_HEADERS for a collector token).
      // Loaded only when traces go to a collector (`require`: see the simulator's loading in src/app.ts).
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http') as typeof OtlpTraceExporterModule;
      return new BatchSpanProcessor(new OTLPTraceExporter({ url: config.traces.otlpUrl }));
    }
  }
}

/** OpenTelemetry's internal diagnostics (warnings and errors only) into the service log. */
function diagLogger(logger: Logger) {
  const child = logger.child({ component: 'opentelemetry' });
  const format = (message: string, args: unknown[]): string =>
    [message, ...args.map((arg) => (arg instanceof Error ? arg.message : typeof arg === 'string' ? arg : ''))].filter(Boolean).join(' ');
  return {
    error: (message: string, ...args: unknown[]) => child.error(format(message, args)),
    warn: (message: string, ...args: unknown[]) => child.warn(format(message, args)),
    info: () => undefined,
    debug: () => undefined,
    verbose: () => undefined,
  };
}
