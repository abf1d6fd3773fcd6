import { createNoopMeter } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { CompletionService } from '../../src/batching/completion-service';
import { silentLogger } from '../../src/telemetry/logger';
import { chatRequest, FakeUpstream, RecordingCache, settle } from './fakes';

describe('coalescer and cache spans', () => {
  const exporter = new InMemorySpanExporter();

  const instruments = {
    tracer: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer('test'),
    meter: createNoopMeter(),
  };

  it('records one span per coalescer batch and per cache round trip', async () => {
    const cache = new RecordingCache(instruments);
    const service = new CompletionService({ cache, upstream: new FakeUpstream(), logger: silentLogger(), batching: { windowMs: 0, maxSize: 100 }, instruments });
    const cachedRequest = chatRequest('cached');
    await service.createLoaders().completion.load({ request: cachedRequest, policy: 'USE' });
    // Answers go out as soon as a call ends; the batch (and its span) ends after the write.
    await settle();
    exporter.reset();

    const loaders = [service.createLoaders(), service.createLoaders()];
    await Promise.all([
      loaders[0].completion.load({ request: cachedRequest, policy: 'USE' }),
      loaders[0].completion.load({ request: chatRequest('new'), policy: 'USE' }),
      loaders[1].completion.load({ request: chatRequest('new'), policy: 'USE' }),
    ]);
    await settle();

    const spans = exporter.getFinishedSpans();
    const batch = spans.filter((span) => span.name === 'coalescer batch');
    expect(batch).toHaveLength(1);
    expect(batch[0].attributes).toMatchObject({
      'coalescer.batch_size': 3,
      'coalescer.cache_hits': 1,
      'coalescer.joined_in_flight': 1,
      'coalescer.upstream_calls': 1,
      'coalescer.stored': 1,
    });
    expect(spans.filter((span) => span.name === 'cache getMany').map((span) => span.attributes)).toEqual([
      { 'cache.store': 'memory', 'cache.operation': 'getMany', 'cache.keys': 2, 'cache.hits': 1 },
    ]);
    expect(spans.filter((span) => span.name === 'cache setMany')).toHaveLength(1);
  });
});
