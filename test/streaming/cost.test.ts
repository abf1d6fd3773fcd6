import { cacheKey, completionId } from '../../src/cache/key';
import { DEFAULT_PRICES } from '../../src/config';
import { estimateCostUsd } from '../../src/telemetry/cost';
import { RequestLedger } from '../../src/telemetry/ledger';
import { silentLogger } from '../../src/telemetry/logger';
import { StreamHub } from '../../src/streaming/stream-hub';
import { chatRequest, RecordingCache, settle } from '../batching/fakes';
import { FakeStreamingUpstream, reader, result } from './fakes';

/** A clock the test moves by hand, so upstream wait is exact without sleeping. */
function manualClock(): { now: () => number; advance(ms: number): void } {
  let at = 1000;
  return { now: () => at, advance: (ms) => void (at += ms) };
}

describe('StreamHub cost ledger', () => {
  let upstream: FakeStreamingUpstream;
  let cache: RecordingCache;
  let hub: StreamHub;
  let clock: ReturnType<typeof manualClock>;
  const ledger = (): RequestLedger => new RequestLedger(DEFAULT_PRICES, clock.now);

  beforeEach(() => {
    upstream = new FakeStreamingUpstream();
    cache = new RecordingCache();
    hub = new StreamHub({ cache, upstream, logger: silentLogger() });
    clock = manualClock();
  });
  afterEach(async () => {
    await hub.close();
    await cache.close();
  });

  it('records a started stream as an upstream call with its usage, and a joiner as a joined call that costs nothing', async () => {
    const request = chatRequest('paid');
    const starter = ledger();
    const joiner = ledger();
    const a = reader(hub.subscribe(request, 'USE', { ledger: starter }));
    await settle();
    clock.advance(10);
    const b = reader(hub.subscribe(request, 'USE', { ledger: joiner }));
    upstream.last.delta('paid ');
    clock.advance(30);
    const answer = result('paid for');
    upstream.last.finish(answer);
    await Promise.all([a.done, b.done]);
    clock.advance(5); // reading after the answer is complete is not upstream time

    const expectedUsd = estimateCostUsd(DEFAULT_PRICES, answer.model, answer.usage)!.usd;
    expect(starter.finish()).toMatchObject({ upstreamCalls: 1, joinedInFlight: 0, cacheHits: 0, upstreamMs: 40, totalMs: 45 });
    expect(starter.finish().estimatedCostUsd).toBeCloseTo(expectedUsd, 10);
    expect(joiner.finish()).toMatchObject({ upstreamCalls: 0, joinedInFlight: 1, cacheHits: 0, upstreamMs: 30, estimatedCostUsd: 0 });
  });

  it('records a replay of a stored answer as a cache hit with no upstream time', async () => {
    const request = chatRequest('stored');
    await cache.setMany([{ id: completionId(request), value: result('kept') }]);
    const hit = ledger();
    const r = reader(hub.subscribe(request, 'USE', { ledger: hit }));
    await r.done;
    expect(hit.finish()).toMatchObject({ upstreamCalls: 0, joinedInFlight: 0, cacheHits: 1, upstreamMs: 0, estimatedCostUsd: 0 });
  });

  it('ends the upstream wait when the subscriber leaves, and records no usage for a stream that never finished', async () => {
    const request = chatRequest('left');
    const gone = ledger();
    const iterator = hub.subscribe(request, 'BYPASS', { ledger: gone });
    await settle();
    clock.advance(20);
    await iterator.return!();
    clock.advance(100);
    expect(upstream.last.aborted).toBe(true);
    expect(gone.finish()).toMatchObject({ upstreamCalls: 1, upstreamMs: 20, totalMs: 120, estimatedCostUsd: 0 });
  });

  it('ends the upstream wait when the stream fails', async () => {
    const failed = ledger();
    const r = reader(hub.subscribe(chatRequest('fails'), 'BYPASS', { ledger: failed }));
    await settle();
    clock.advance(15);
    upstream.last.fail(new Error('cut'));
    await r.done;
    clock.advance(50);
    expect(r.error?.message).toBe('cut');
    expect(failed.finish()).toMatchObject({ upstreamCalls: 1, upstreamMs: 15, estimatedCostUsd: 0 });
  });

  it('takes the cache scope in the options: streams of different scopes are never shared', async () => {
    const request = chatRequest('scoped');
    const a = reader(hub.subscribe(request, 'USE', { cacheScope: 'tenant-a' }));
    const b = reader(hub.subscribe(request, 'USE', { cacheScope: 'tenant-b' }));
    await settle();
    // Different scopes never share a stream.
    expect(upstream.streams).toHaveLength(2);
    for (const stream of upstream.streams) stream.finish(result('x'));
    await Promise.all([a.done, b.done]);
    expect(cache.setManyCalls).toEqual([[cacheKey(completionId(request), 'tenant-a')], [cacheKey(completionId(request), 'tenant-b')]]);
  });
});
