import { trace, type Attributes, type Context, type Meter, type TextMapPropagator, type Tracer } from '@opentelemetry/api';
import { MeterProvider, MetricReader, type HistogramMetricData } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { UpstreamAttemptFigures, UpstreamCallFigures, UpstreamMetrics } from '../../src/telemetry/metrics';

/** A reader that exports nothing: tests call `collect()` themselves. */
class CollectingReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

/** An in-memory meter whose histograms a test can read back. */
export interface TestMeter {
  meter: Meter;
  /** Sum and count of a histogram over the label sets that include `attributes`. */
  histogram(name: string, attributes?: Attributes): Promise<{ sum: number; count: number }>;
  shutdown(): Promise<void>;
}

export function testMeter(): TestMeter {
  const reader = new CollectingReader();
  const provider = new MeterProvider({ readers: [reader] });
  return {
    meter: provider.getMeter('test'),
    async histogram(name, attributes = {}) {
      const { resourceMetrics } = await reader.collect();
      const metric = resourceMetrics.scopeMetrics
        .flatMap((scope) => scope.metrics)
        .find((candidate) => candidate.descriptor.name === name) as HistogramMetricData | undefined;
      const points = (metric?.dataPoints ?? []).filter((point) =>
        Object.entries(attributes).every(([key, value]) => point.attributes[key] === value),
      );
      return {
        sum: points.reduce((total, point) => total + (point.value.sum ?? 0), 0),
        count: points.reduce((total, point) => total + point.value.count, 0),
      };
    },
    shutdown: () => provider.shutdown(),
  };
}

/** Upstream metrics that keep what they were given. */
export function recordingMetrics(): UpstreamMetrics & { calls: UpstreamCallFigures[]; attempts: UpstreamAttemptFigures[] } {
  const calls: UpstreamCallFigures[] = [];
  const attempts: UpstreamAttemptFigures[] = [];
  return { calls, attempts, call: (figures) => calls.push(figures), attempt: (figures) => attempts.push(figures) };
}

/** A tracer whose finished spans a test can read. */
export function spanRecorder(): { tracer: Tracer; exporter: InMemorySpanExporter } {
  const exporter = new InMemorySpanExporter();
  const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer('test');
  return { tracer, exporter };
}

/** A minimal W3C `traceparent` propagator, enough to see what the transport injects. */
export const traceparentPropagator: TextMapPropagator = {
  inject(context: Context, carrier: unknown, setter) {
    const span = trace.getSpanContext(context);
    if (span) setter.set(carrier, 'traceparent', `00-${span.traceId}-${span.spanId}-01`);
  },
  extract: (context) => context,
  fields: () => ['traceparent'],
};
