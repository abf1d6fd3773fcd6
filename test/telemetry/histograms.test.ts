import { ValueType, type Attributes } from '@opentelemetry/api';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, type HistogramMetricData } from '@opentelemetry/sdk-metrics';
import { aggregateHistograms, createSeriesHistogram, HistogramProducer, SeriesCache, type HistogramOptions, type SeriesHistogram } from '../../src/telemetry/histograms';

const resource = resourceFromAttributes({ 'service.name': 'histograms-test' });
const SECONDS: HistogramOptions = { description: 'Some seconds.', unit: 's', boundaries: [0.005, 0.01, 0.1, 1] };
const TOKENS: HistogramOptions = { description: 'Some tokens.', unit: '{token}', valueType: ValueType.INT, boundaries: [1, 16, 256] };

/** A meter provider read as the gateway reads it (Prometheus text), its histograms aggregated by the SDK or by a producer. */
function setup(aggregated: boolean): { histogram(name: string, options: HistogramOptions): SeriesHistogram; scrape(): Promise<string>; data(): Promise<HistogramMetricData[]> } {
  const producer = new HistogramProducer(resource);
  const reader = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true, metricProducers: aggregated ? [producer] : [] });
  const meter = new MeterProvider({ resource, readers: [reader] }).getMeter('test');
  if (aggregated) aggregateHistograms(meter, producer);
  const serializer = new PrometheusSerializer(undefined, false, undefined, false, true);
  const collect = async () => (await reader.collect()).resourceMetrics;
  return {
    histogram: (name, options) => createSeriesHistogram(meter, name, options),
    scrape: async () => serializer.serialize(await collect()),
    data: async () => (await collect()).scopeMetrics.flatMap((scope) => scope.metrics) as HistogramMetricData[],
  };
}

/** Runs the same measurements through both and returns both. */
async function both(record: (histogram: (name: string, options: HistogramOptions) => SeriesHistogram) => void) {
  const sdk = setup(false);
  const aggregated = setup(true);
  record(sdk.histogram);
  record(aggregated.histogram);
  return { sdk, aggregated };
}

describe('histograms with bound series', () => {
  it('expose exactly what the SDK exposes for the same measurements, and the same data points', async () => {
    const { sdk, aggregated } = await both((histogram) => {
      const seconds = histogram('test.duration', SECONDS);
      const tokens = histogram('test.tokens', TOKENS);
      const ok = seconds.series({ 'http.request.method': 'POST', outcome: 'ok' });
      // The same attributes in another key order are the same series.
      const okAgain = seconds.series({ outcome: 'ok', 'http.request.method': 'POST' });
      const failed = seconds.series({ 'http.request.method': 'POST', outcome: 'error', 'http.response.status_code': 503 });
      seconds.series({ outcome: 'never recorded' });
      // On a boundary (upper bounds are inclusive), between, above the last, zero; dropped: negative, NaN.
      for (const value of [0.005, 0.0051, 0.5, 1, 7.25, 0, -1, Number.NaN]) ok.record(value);
      for (const value of [0.02, 0.03]) okAgain.record(value);
      failed.record(2);
      const input = tokens.series({ 'gen_ai.token.type': 'input' });
      // An INT histogram truncates fractions and drops what is not finite.
      for (const value of [1, 1.9, 16, 17, 300, 0, Number.POSITIVE_INFINITY]) input.record(value);
    });

    const expected = await sdk.scrape();
    expect(expected).toContain('test_duration_bucket{http_request_method="POST",outcome="ok",le="0.005"} 2');
    expect(await aggregated.scrape()).toBe(expected);
    const points = (metrics: HistogramMetricData[]) =>
      metrics.map((metric) => ({ descriptor: metric.descriptor.name, points: metric.dataPoints.map(({ attributes, value }) => ({ attributes, value })) }));
    expect(points(await aggregated.data())).toEqual(points(await sdk.data()));
  });

  it('put measurements past 1,999 series into one overflow series, as the SDK does', async () => {
    const { sdk, aggregated } = await both((histogram) => {
      const seconds = histogram('test.duration', SECONDS);
      for (let index = 0; index < 2100; index += 1) seconds.series({ route: `/r${index}` }).record(index / 1000);
    });

    const expected = await sdk.scrape();
    expect(expected).toContain('test_duration_count{otel_metric_overflow="true"} 101');
    expect(await aggregated.scrape()).toBe(expected);
  });

  it('keep series under a caller key, and past the cache size still record into the right series', async () => {
    const { sdk, aggregated } = await both((histogram) => {
      const cache = new SeriesCache(histogram('test.duration', SECONDS), 2);
      for (const [key, value] of [['a', 0.001], ['b', 0.02], ['c', 0.3], ['c', 0.4], ['a', 5]] as const) {
        const attributes: Attributes = { key };
        (cache.get(key) ?? cache.bind(key, attributes)).record(value);
      }
      expect(cache.get('a')).toBeDefined();
      expect(cache.get('c')).toBeUndefined();
    });

    const expected = await sdk.scrape();
    expect(expected).toContain('test_duration_count{key="c"} 2');
    expect(await aggregated.scrape()).toBe(expected);
  });
});
