import { completionId } from '../../src/cache/key';
import { ErrorCode } from '../../src/errors';
import { silentLogger } from '../../src/telemetry/logger';
import { DEFAULT_MAX_STREAMS, StreamHub } from '../../src/streaming/stream-hub';
import { chatRequest, RecordingCache, settle } from '../batching/fakes';
import { FakeStreamingUpstream, reader, result } from './fakes';

describe('StreamHub maxStreams (MAX_STREAMS)', () => {
  let upstream: FakeStreamingUpstream;
  let cache: RecordingCache;
  let hub: StreamHub;

  beforeEach(() => {
    upstream = new FakeStreamingUpstream();
    cache = new RecordingCache();
  });
  afterEach(async () => {
    await hub.close();
    await cache.close();
  });

  it('refuses a subscription beyond the cap at once with OVERLOADED, without upstream work, and counts it', async () => {
    hub = new StreamHub({ cache, upstream, logger: silentLogger(), maxStreams: 2 });
    const request = chatRequest('capped');
    // Two subscribers of ONE shared upstream stream still count as two.
    const open = [hub.subscribe(request, 'USE'), hub.subscribe(request, 'USE')];
    await settle();
    expect(upstream.streams).toHaveLength(1);

    const refused = hub.subscribe(chatRequest('other'), 'USE');
    await expect(refused.next()).rejects.toMatchObject({
      code: ErrorCode.OVERLOADED,
      message: expect.stringMatching(/maximum of 2 subscriptions/) as string,
      extensions: { limit: 'MAX_STREAMS' },
    });
    await settle();
    expect(upstream.streams).toHaveLength(1);
    expect(cache.getManyCalls).toHaveLength(1); // the refused one read nothing
    expect(hub.stats()).toMatchObject({ openSubscriptions: 2, refusedOverloaded: 1 });

    // A subscriber that leaves frees its place.
    await open[0].return!();
    expect(hub.stats().openSubscriptions).toBe(1);
    const admitted = reader(hub.subscribe(request, 'USE'));
    upstream.last.finish(result('done'));
    await admitted.done;
    expect(admitted.error).toBeUndefined();
    await open[1].return!();
    expect(hub.stats()).toMatchObject({ openSubscriptions: 0, refusedOverloaded: 1 });
  });

  it('counts a cache replay until its last chunk is read, and a failed subscription no longer', async () => {
    hub = new StreamHub({ cache, upstream, logger: silentLogger(), maxStreams: 1 });
    const request = chatRequest('replayed');
    await cache.setMany([{ id: completionId(request), value: result('from the cache') }]);

    const replay = hub.subscribe(request, 'USE');
    await settle();
    expect((await replay.next()).done).toBe(false);
    expect(hub.stats().openSubscriptions).toBe(1);
    await expect(hub.subscribe(request, 'USE').next()).rejects.toMatchObject({ code: ErrorCode.OVERLOADED });
    for (let next = await replay.next(); !next.done; next = await replay.next());
    expect(hub.stats().openSubscriptions).toBe(0);

    const failing = reader(hub.subscribe(chatRequest('fails'), 'BYPASS'));
    await settle();
    upstream.last.fail(new Error('cut'));
    await failing.done;
    expect(hub.stats().openSubscriptions).toBe(0);
    expect(hub.stats().refusedOverloaded).toBe(1);
  });

  it(`defaults to ${DEFAULT_MAX_STREAMS} open subscriptions`, async () => {
    hub = new StreamHub({ cache, upstream, logger: silentLogger() });
    const request = chatRequest('many');
    const open = Array.from({ length: DEFAULT_MAX_STREAMS }, () => hub.subscribe(request, 'USE'));
    await expect(hub.subscribe(request, 'USE').next()).rejects.toMatchObject({ code: ErrorCode.OVERLOADED });
    await settle();
    expect(upstream.streams).toHaveLength(1);
    expect(hub.stats()).toMatchObject({ openSubscriptions: DEFAULT_MAX_STREAMS, subscribers: DEFAULT_MAX_STREAMS, refusedOverloaded: 1 });
    await Promise.all(open.map((iterator) => iterator.return!()));
    expect(upstream.last.aborted).toBe(true);
  });
});
