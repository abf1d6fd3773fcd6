import { CompletionService, type CachePolicy } from '../../src/batching/completion-service';
import { completionId } from '../../src/cache/key';
import { ErrorCode, UpstreamError } from '../../src/errors';
import { RequestLedger } from '../../src/telemetry/ledger';
import { silentLogger } from '../../src/telemetry/logger';
import { StreamHub } from '../../src/streaming/stream-hub';
import { chatRequest, FakeUpstream, RecordingCache, settle } from '../batching/fakes';
import { FakeStreamingUpstream, reader, result } from './fakes';

/**
 * The coalescer and the hub wired to each other as `app.ts` does: a query and a stream for
 * the same key share one upstream call, whichever starts first.
 */
function setup() {
  const cache = new RecordingCache();
  const calls = new FakeUpstream();
  const streamed = new FakeStreamingUpstream();
  const service: CompletionService = new CompletionService({
    cache,
    upstream: calls,
    logger: silentLogger(),
    batching: { windowMs: 0, maxSize: 100 },
    joinStream: (key, options) => hub.joinStream(key, options),
  });
  const hub: StreamHub = new StreamHub({ cache, upstream: streamed, logger: silentLogger(), joinCall: (key, options) => service.joinCall(key, options) });
  /** One query operation's load; `abort` is the client going away. */
  const query = (prompt: string, policy: CachePolicy = 'USE') => {
    const controller = new AbortController();
    const ledger = new RequestLedger();
    const view = service.createLoaders({ signal: controller.signal, ledger }).completion.load({ request: chatRequest(prompt), policy });
    view.catch(() => undefined);
    return { view, ledger, abort: () => controller.abort() };
  };
  return { cache, calls, streamed, service, hub, query };
}

describe('a query and a stream for the same completion share one upstream call', () => {
  let t: ReturnType<typeof setup>;
  beforeEach(() => {
    t = setup();
  });
  afterEach(async () => {
    t.calls.release();
    await t.hub.close();
    await t.cache.close();
  });

  it('query then stream: the stream waits for the query\'s call and is replayed its answer', async () => {
    t.calls.hold();
    const q = t.query('q-first');
    await settle();
    expect(t.calls.calls).toHaveLength(1);

    const ledger = new RequestLedger();
    const s = reader(t.hub.subscribe(chatRequest('q-first'), 'USE', { ledger }));
    await settle();
    expect(t.streamed.streams).toHaveLength(0);
    expect(s.chunks).toHaveLength(0); // a plain call has no chunks to follow

    t.calls.release();
    const view = await q.view;
    await s.done;

    expect(t.calls.calls).toHaveLength(1);
    expect(t.streamed.streams).toHaveLength(0);
    expect(view).toMatchObject({ content: 'answer #1 to q-first', cached: false });
    expect(s.error).toBeUndefined();
    expect(s.text()).toBe(view.content);
    expect(s.chunks.every((c) => !c.cached && c.id === view.id)).toBe(true);
    expect(s.chunks.at(-1)!.finish?.result).toMatchObject({ content: view.content, upstreamId: view.upstreamId });
    expect(q.ledger.finish()).toMatchObject({ upstreamCalls: 1, joinedInFlight: 0 });
    expect(ledger.finish()).toMatchObject({ upstreamCalls: 0, joinedInFlight: 1, cacheHits: 0, estimatedCostUsd: 0 });
    expect(t.hub.stats()).toMatchObject({ joinedCalls: 1, upstreamStreams: 0 });
  });

  it('stream then query: the query waits for the stream\'s finished answer', async () => {
    const s = reader(t.hub.subscribe(chatRequest('s-first'), 'USE'));
    await settle();
    expect(t.streamed.streams).toHaveLength(1);

    const q = t.query('s-first');
    await settle();
    expect(t.calls.calls).toHaveLength(0);
    t.streamed.last.delta('streamed ');
    await settle();
    t.streamed.last.delta('answer');
    t.streamed.last.finish(result('streamed answer'));
    const view = await q.view;
    await s.done;

    expect(t.calls.calls).toHaveLength(0);
    expect(t.streamed.streams).toHaveLength(1);
    expect(view).toMatchObject({ id: completionId(chatRequest('s-first')), content: 'streamed answer', cached: false });
    expect(s.text()).toBe(view.content);
    expect(q.ledger.finish()).toMatchObject({ upstreamCalls: 0, joinedInFlight: 1, cacheHits: 0, estimatedCostUsd: 0 });
    expect(t.service.stats()).toMatchObject({ upstreamCalls: 0, joinedInFlight: 1, joinedStreams: 1 });
    expect(t.hub.stats()).toMatchObject({ upstreamStreams: 1, joinedByQueries: 1 });
    // Stored once, by the stream.
    expect(t.cache.setManyCalls).toEqual([[completionId(chatRequest('s-first'))]]);
  });

  it('arriving in the same tick (both reading the cache), they still make one upstream call', async () => {
    t.calls.hold();
    const q = t.query('together');
    const s = reader(t.hub.subscribe(chatRequest('together'), 'USE'));
    await settle();
    expect(t.calls.calls.length + t.streamed.streams.length).toBe(1);
    if (t.streamed.streams.length === 1) {
      t.streamed.last.delta('answer #1 to together');
      t.streamed.last.finish(result('answer #1 to together'));
    } else {
      t.calls.release();
    }
    const view = await q.view;
    await s.done;
    expect(s.text()).toBe(view.content);
    expect(t.calls.calls.length + t.streamed.streams.length).toBe(1);
  });

  it('a stream failure fails the query waiting on it, and nothing is stored', async () => {
    const s = reader(t.hub.subscribe(chatRequest('s-fails'), 'USE'));
    await settle();
    const q = t.query('s-fails');
    await settle();
    const failure = new UpstreamError(ErrorCode.UPSTREAM_UNAVAILABLE, 'stream cut', { status: 200, retryable: false });
    t.streamed.last.fail(failure);
    await expect(q.view).rejects.toBe(failure);
    await s.done;
    expect(s.error).toBe(failure);
    expect(t.cache.setManyCalls).toHaveLength(0);
    expect(t.calls.calls).toHaveLength(0);
  });

  it('a call failure ends the stream waiting on it with the same error', async () => {
    const failure = new UpstreamError(ErrorCode.UPSTREAM_INSUFFICIENT_BALANCE, 'insufficient balance', { status: 402, retryable: false });
    t.calls.failFor.set('q-fails', failure);
    t.calls.hold();
    const q = t.query('q-fails');
    await settle();
    const s = reader(t.hub.subscribe(chatRequest('q-fails'), 'USE'));
    await settle();
    t.calls.release();
    await expect(q.view).rejects.toBe(failure);
    await s.done;
    expect(s.error).toBe(failure);
    expect(s.chunks).toHaveLength(0);
    expect(t.streamed.streams).toHaveLength(0);
  });

  it('stores the answer when a USE joiner shares work started with BYPASS, either way round', async () => {
    const s = reader(t.hub.subscribe(chatRequest('bypass stream'), 'BYPASS'));
    await settle();
    const q = t.query('bypass stream', 'USE');
    await settle();
    t.streamed.last.finish(result('kept from the stream'));
    await Promise.all([q.view, s.done]);
    expect((await t.cache.peek(completionId(chatRequest('bypass stream'))))?.content).toBe('kept from the stream');

    t.calls.hold();
    const q2 = t.query('bypass call', 'BYPASS');
    await settle();
    const s2 = reader(t.hub.subscribe(chatRequest('bypass call'), 'USE'));
    await settle();
    t.calls.release();
    await Promise.all([q2.view, s2.done]);
    await settle();
    expect((await t.cache.peek(completionId(chatRequest('bypass call'))))?.content).toBe('answer #1 to bypass call');
  });

  describe('the last leaver rules', () => {
    it('a query waiting on a stream keeps it running after its subscribers leave; the query leaving last aborts it', async () => {
      const subscription = t.hub.subscribe(chatRequest('held by a query'), 'USE');
      await settle();
      const q = t.query('held by a query');
      await settle();
      const upstream = t.streamed.last;

      await subscription.return!();
      expect(upstream.aborted).toBe(false);
      q.abort();
      await expect(q.view).rejects.toMatchObject({ name: 'AbortError' });
      expect(upstream.aborted).toBe(true);
      expect(t.hub.stats().abandoned).toBe(1);
    });

    it('a subscriber keeps a stream running after the query waiting on it leaves', async () => {
      const subscription = t.hub.subscribe(chatRequest('query leaves'), 'USE');
      await settle();
      const q = t.query('query leaves');
      await settle();
      const upstream = t.streamed.last;

      q.abort();
      await expect(q.view).rejects.toMatchObject({ name: 'AbortError' });
      expect(upstream.aborted).toBe(false);
      await subscription.return!();
      expect(upstream.aborted).toBe(true);
    });

    it('a stream waiting on a query\'s call keeps it running after the query leaves; the stream leaving last aborts it', async () => {
      t.calls.hold();
      const q = t.query('held by a stream');
      await settle();
      const subscription = t.hub.subscribe(chatRequest('held by a stream'), 'USE');
      await settle();
      const signal = t.calls.calls[0].signal!;

      q.abort();
      await expect(q.view).rejects.toMatchObject({ name: 'AbortError' });
      expect(signal.aborted).toBe(false);
      await subscription.return!();
      expect(signal.aborted).toBe(true);
      // Torn down: an identical query now starts afresh.
      t.calls.release();
      await t.query('held by a stream').view;
      expect(t.calls.calls).toHaveLength(2);
    });

    it('a query keeps its call running after the stream waiting on it leaves', async () => {
      t.calls.hold();
      const q = t.query('stream leaves');
      await settle();
      const subscription = t.hub.subscribe(chatRequest('stream leaves'), 'USE');
      await settle();
      const signal = t.calls.calls[0].signal!;

      await subscription.return!();
      expect(signal.aborted).toBe(false);
      t.calls.release();
      await expect(q.view).resolves.toMatchObject({ content: 'answer #1 to stream leaves' });
    });
  });
});
