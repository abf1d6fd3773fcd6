import { CompletionService } from '../../src/batching/completion-service';
import { completionId } from '../../src/cache/key';
import type { FimRequest } from '../../src/deepseek/types';
import { StreamHub } from '../../src/streaming/stream-hub';
import { silentLogger } from '../../src/telemetry/logger';
import { RecordingCache, settle } from '../batching/fakes';
import { startHarness, type Harness } from '../deepseek/harness';
import { FakeStreamingUpstream, reader, result } from './fakes';

let counter = 0;

function fimRequest(overrides: Partial<FimRequest> = {}): FimRequest {
  counter += 1;
  return { kind: 'fim', model: 'deepseek-flash', prompt: `def hub_${counter}(x):\n    `, suffix: '\n    return y', ...overrides };
}

describe('StreamHub with FIM requests', () => {
  let cache: RecordingCache;
  let hub: StreamHub;
  afterEach(async () => {
    await hub.close();
    await cache.close();
  });

  it('fans one FIM upstream stream out to identical subscriptions', async () => {
    const upstream = new FakeStreamingUpstream();
    cache = new RecordingCache();
    hub = new StreamHub({ cache, upstream, logger: silentLogger() });
    const request = fimRequest();

    const readers = [reader(hub.subscribe(request, 'USE')), reader(hub.subscribe(request, 'USE'))];
    await settle();
    expect(upstream.streams).toHaveLength(1);
    expect(upstream.last.request).toEqual(request);
    upstream.last.delta('y = ');
    upstream.last.delta('x * 2');
    upstream.last.finish(result('y = x * 2'));
    await Promise.all(readers.map((r) => r.done));

    for (const r of readers) {
      expect(r.text()).toBe('y = x * 2');
      expect(r.chunks.every((c) => c.reasoningDelta === null && c.id === completionId(request))).toBe(true);
    }
    expect(cache.setManyCalls).toEqual([[completionId(request)]]);
  });

  describe('against the simulator', () => {
    let h: Harness;
    afterEach(async () => {
      await h.close();
    });

    it('streams what the fimCompletion query answers, under the same key, and replays it from the cache', async () => {
      h = await startHarness();
      cache = new RecordingCache();
      hub = new StreamHub({ cache, upstream: h.client, logger: silentLogger() });
      const request = fimRequest({ maxTokens: 64 });

      const streamed = reader(hub.subscribe(request, 'USE'));
      await streamed.done;
      const plain = await h.client.fim(request);

      expect(streamed.error).toBeUndefined();
      expect(streamed.chunks.length).toBeGreaterThan(3);
      expect(streamed.text()).toBe(plain.content);
      expect(streamed.chunks.at(-1)!.finish).toMatchObject({ reason: 'stop', usage: { completionTokens: plain.usage.completionTokens } });
      expect(h.sim.requests[0].body).toMatchObject({ stream: true, prompt: request.prompt });

      // Stored under the id a `fimCompletion` query uses: the query is a cache hit.
      const query = await new CompletionService({ cache, upstream: h.client, logger: silentLogger(), batching: { windowMs: 0, maxSize: 10 } })
        .createLoaders()
        .completion.load({ request, policy: 'USE' });
      expect(query).toMatchObject({ id: completionId(request), cached: true, content: plain.content });

      const replay = reader(hub.subscribe(request, 'USE'));
      await replay.done;
      expect(replay.text()).toBe(plain.content);
      expect(replay.chunks.every((c) => c.cached)).toBe(true);
      expect(h.sim.counters.byPath).toEqual({ '/beta/completions': 2 }); // the stream and the comparison call
    });
  });
});
