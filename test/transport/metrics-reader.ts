import { MeterProvider, MetricReader, type HistogramMetricData } from '@opentelemetry/sdk-metrics';
import type { Meter } from '@opentelemetry/api';

/** A reader that exports nothing: tests call `collect()` themselves. */
class CollectingReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

/** An in-memory meter whose histograms a test can read back. */
export interface TestMeter {
  meter: Meter;
  /** Sum and count of a histogram over all its label sets (0 when nothing was recorded). */
  histogram(name: string): Promise<{ sum: number; count: number }>;
  shutdown(): Promise<void>;
}

export function testMeter(): TestMeter {
  const reader = new CollectingReader();
  const provider = new MeterProvider({ readers: [reader] });
  return {
    meter: provider.getMeter('test'),
    async histogram(name) {
      const { resourceMetrics } = await reader.collect();
      const metric = resourceMetrics.scopeMetrics
        .flatMap((scope) => scope.metrics)
        .find((candidate) => candidate.descriptor.name === name) as HistogramMetricData | undefined;
      const points = metric?.dataPoints ?? [];
      return {
        sum: points.reduce((total, point) => total + (point.value.sum ?? 0), 0),
        count: points.reduce((total, point) => total + point.value.count, 0),
      };
    },
    shutdown: () => provider.shutdown(),
  };
}
