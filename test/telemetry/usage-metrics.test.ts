import { MeterProvider, MetricReader, type SumMetricData } from '@opentelemetry/sdk-metrics';
import { DEFAULT_PRICES } from '../../src/config';
import { usageMetrics } from '../../src/telemetry/metrics';

class CollectingReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

const usage = { promptTokens: 10, completionTokens: 5, cacheHitTokens: 4, cacheMissTokens: 6, reasoningTokens: 0, totalTokens: 15 };

describe('usage metrics: the model label comes from DeepSeek and is bounded', () => {
  it('keeps the real model names, and folds a flood of made-up or huge ones into (other) and (too long) without losing tokens', async () => {
    const reader = new CollectingReader();
    const provider = new MeterProvider({ readers: [reader] });
    const metrics = usageMetrics(DEFAULT_PRICES, provider.getMeter('test'));
    metrics.record({ operation: 'chat', model: 'deepseek-flash', usage });
    for (let i = 0; i < 2_000; i += 1) metrics.record({ operation: 'chat', model: `made-up-${i}`, usage });
    metrics.record({ operation: 'chat', model: 'x'.repeat(10_000), usage });

    const { resourceMetrics } = await reader.collect();
    const tokens = resourceMetrics.scopeMetrics
      .flatMap((scope) => scope.metrics)
      .find((metric) => metric.descriptor.name === 'gateway.upstream.tokens') as SumMetricData;
    const prompt = tokens.dataPoints.filter((point) => point.attributes['token.type'] === 'prompt');
    const models = new Set(prompt.map((point) => point.attributes['gen_ai.response.model']));
    expect(models.has('deepseek-flash')).toBe(true);
    expect(models.has('(other)')).toBe(true);
    expect(models.has('(too long)')).toBe(true);
    expect(models.size).toBeLessThanOrEqual(32 + 2);
    // Every call's tokens are still counted, under some label.
    expect(prompt.reduce((total, point) => total + point.value, 0)).toBe(10 * 2_002);
    await provider.shutdown();
  });
});
