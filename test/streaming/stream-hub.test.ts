import { StreamHub } from '../../src/streaming/stream-hub';
import { completionId } from '../../src/cache/key';
import { ErrorCode, QuotaExceededError, UpstreamError } from '../../src/errors';
import { silentLogger } from '../../src/telemetry/logger';
import { chatRequest, RecordingCache, settle } from '../batching/fakes';
import { FakeStreamingUpstream, reader, result } from './fakes';

describe('StreamHub', () => {
  let upstream: FakeStreamingUpstream;
  let cache: RecordingCache;
  let hub: StreamHub;

  function makeHub(options: { maxBufferedBytes?: number; chunkOverheadBytes?: number; replayChunkChars?: number } = {}): StreamHub {
    return new StreamHub({ cache, upstream, logger: silentLogger(), ...options });
  }

  beforeEach(() => {
    upstream = new FakeStreamingUpstream();
    cache = new RecordingCache();
    hub = makeHub();
  });
  afterEach(async () => {
    await hub.close();
    await cache.close();
  });

  it('streams deltas, then a last chunk with finish reason and usage, and stores the answer under the query id', async () => {
    const request = chatRequest('hello');
    const r = reader(hub.subscribe(request, 'USE'));
    await settle();
    upstream.last.delta('Hel');
    upstream.last.delta('lo');
    upstream.last.finish(result('Hello'));
    await r.done;

    expect(r.error).toBeUndefined();
    expect(r.text()).toBe('Hello');
    expect(r.chunks.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(r.chunks.every((c) => c.id === completionId(request) && !c.cached && c.model === 'deepseek-flash')).toBe(true);
    expect(r.chunks.slice(0, 2).every((c) => c.finish === undefined)).toBe(true);
    expect(r.chunks[2]).toMatchObject({ delta: '', reasoningDelta: null, finish: { reason: 'stop', usage: { totalTokens: 12 } } });
    // ...and the whole finished completion, as a query would get it.
    expect(r.chunks[2].finish?.result).toEqual(await cache.peek(completionId(request)));
    expect(r.chunks[2].finish?.result).toMatchObject({ content: 'Hello', upstreamId: result('Hello').upstreamId });
    // Stored before the last chunk went out, so a query sent after it finds the answer.
    expect(cache.setManyCalls).toEqual([[completionId(request)]]);
    expect((await cache.peek(completionId(request)))?.content).toBe('Hello');
    expect(hub.stats()).toMatchObject({ activeStreams: 0, subscribers: 0, upstreamStreams: 1 });
  });

  it('shares one upstream stream between identical subscriptions and replays the start to a late joiner', async () => {
    const request = chatRequest('shared');
    const early = [reader(hub.subscribe(request, 'USE')), reader(hub.subscribe(request, 'USE'))];
    await settle();
    upstream.last.delta('one ');
    upstream.last.delta('two ');
    await settle();
    expect(early[0].text()).toBe('one two ');

    const late = reader(hub.subscribe(request, 'USE'));
    await settle();
    expect(late.text()).toBe('one two ');
    upstream.last.delta('three');
    upstream.last.finish(result('one two three'));
    await Promise.all([...early, late].map((r) => r.done));

    expect(upstream.streams).toHaveLength(1);
    for (const r of [...early, late]) {
      expect(r.text()).toBe('one two three');
      expect(r.chunks.map((c) => c.index)).toEqual([0, 1, 2, 3]);
    }
    expect(hub.stats()).toMatchObject({ upstreamStreams: 1, joined: 2 });
    // Identical subscriptions arriving together read the cache once.
    expect(cache.getManyCalls).toHaveLength(1);
  });

  it('aborts the upstream only when the last subscriber leaves, and answers a pending next() at once', async () => {
    const request = chatRequest('leave');
    const a = hub.subscribe(request, 'USE');
    const b = hub.subscribe(request, 'USE');
    await settle();
    const stream = upstream.last;

    const pending = a.next(); // the upstream is silent: this waits
    await a.return!();
    await expect(pending).resolves.toEqual({ value: undefined, done: true });
    expect(stream.aborted).toBe(false);

    await b.return!();
    expect(stream.aborted).toBe(true);
    await settle();
    expect(stream.closed).toBe(true);
    expect(hub.stats()).toMatchObject({ activeStreams: 0, abandoned: 1 });
    expect(cache.setManyCalls).toHaveLength(0);

    // An identical subscription afterwards starts afresh rather than joining the torn-down stream.
    const again = reader(hub.subscribe(request, 'USE'));
    await settle();
    expect(upstream.streams).toHaveLength(2);
    upstream.last.finish(result(''));
    await again.done;
  });

  it('replays a cached answer as chunks with cached: true, reasoning first, without an upstream call', async () => {
    hub = makeHub({ replayChunkChars: 4 });
    const request = chatRequest('cached');
    const stored = result('abcdefghij', { reasoningContent: 'think' });
    await cache.setMany([{ id: completionId(request), value: stored }]);

    const r = reader(hub.subscribe(request, 'USE'));
    await r.done;

    expect(upstream.streams).toHaveLength(0);
    expect(r.chunks.every((c) => c.cached)).toBe(true);
    expect(r.chunks.map((c) => [c.delta, c.reasoningDelta])).toEqual([
      ['', 'thin'],
      ['', 'k'],
      ['abcd', null],
      ['efgh', null],
      ['ij', null],
      ['', null],
    ]);
    // The last chunk also carries the whole stored answer (for a client cache).
    expect(r.chunks.at(-1)!.finish).toEqual({ reason: 'stop', usage: result('').usage, result: stored });
    expect(hub.stats().cacheReplays).toBe(1);
  });

  it('REFRESH skips the read and stores; BYPASS neither reads nor stores', async () => {
    const request = chatRequest('policies');
    await cache.setMany([{ id: completionId(request), value: result('old') }]);
    cache.getManyCalls.length = 0;
    cache.setManyCalls.length = 0;

    const refresh = reader(hub.subscribe(request, 'REFRESH'));
    await settle();
    upstream.last.delta('new');
    upstream.last.finish(result('new'));
    await refresh.done;
    expect(refresh.text()).toBe('new');
    expect(refresh.chunks.every((c) => !c.cached)).toBe(true);
    expect(cache.getManyCalls).toHaveLength(0);
    expect((await cache.peek(completionId(request)))?.content).toBe('new');

    const bypass = reader(hub.subscribe(request, 'BYPASS'));
    await settle();
    upstream.last.delta('newer');
    upstream.last.finish(result('newer'));
    await bypass.done;
    expect(bypass.text()).toBe('newer');
    expect(cache.getManyCalls).toHaveLength(0);
    expect(cache.setManyCalls).toHaveLength(1); // only REFRESH's
    expect((await cache.peek(completionId(request)))?.content).toBe('new');
  });

  it('stores a BYPASS stream that a USE subscriber joined', async () => {
    const request = chatRequest('mixed');
    const bypass = reader(hub.subscribe(request, 'BYPASS'));
    const use = reader(hub.subscribe(request, 'USE'));
    await settle();
    upstream.last.finish(result('kept'));
    await Promise.all([bypass.done, use.done]);
    expect(upstream.streams).toHaveLength(1);
    expect((await cache.peek(completionId(request)))?.content).toBe('kept');
  });

  it('gives every subscriber a failure before the first token, stores nothing, and retries on the next subscription', async () => {
    const request = chatRequest('402');
    const failure = new UpstreamError(ErrorCode.UPSTREAM_INSUFFICIENT_BALANCE, 'insufficient balance', { status: 402, retryable: false });
    const readers = [reader(hub.subscribe(request, 'USE')), reader(hub.subscribe(request, 'USE'))];
    await settle();
    upstream.last.fail(failure);
    await Promise.all(readers.map((r) => r.done));
    for (const r of readers) {
      expect(r.chunks).toHaveLength(0);
      expect(r.error).toBe(failure);
    }
    expect(cache.setManyCalls).toHaveLength(0);

    const retry = reader(hub.subscribe(request, 'USE'));
    await settle();
    expect(upstream.streams).toHaveLength(2);
    upstream.last.finish(result('ok'));
    await retry.done;
    expect(retry.error).toBeUndefined();
  });

  it('delivers the chunks buffered before a mid-stream failure, then the failure', async () => {
    const r = reader(hub.subscribe(chatRequest('mid'), 'USE'));
    await settle();
    upstream.last.delta('part');
    upstream.last.fail(new UpstreamError(ErrorCode.UPSTREAM_UNAVAILABLE, 'truncated', { status: 200, retryable: false }));
    await r.done;
    expect(r.text()).toBe('part');
    expect(r.error).toMatchObject({ code: ErrorCode.UPSTREAM_UNAVAILABLE });
    expect(cache.setManyCalls).toHaveLength(0);
  });

  it('streams but never stores insufficient_system_resource', async () => {
    const r = reader(hub.subscribe(chatRequest('isr'), 'USE'));
    await settle();
    upstream.last.delta('cut');
    upstream.last.finish(result('cut', { finishReason: 'insufficient_system_resource' }));
    await r.done;
    expect(r.chunks.at(-1)!.finish?.reason).toBe('insufficient_system_resource');
    expect(cache.setManyCalls).toHaveLength(0);
  });

  it('joins reasoning deltas into reasoningDelta chunks and leaves reasoningDelta null on answer chunks', async () => {
    const r = reader(hub.subscribe(chatRequest('think', { thinking: true }), 'BYPASS'));
    await settle();
    upstream.last.delta('', 'Let me ');
    upstream.last.delta('', 'think.');
    upstream.last.delta('Answer.');
    upstream.last.finish(result('Answer.', { reasoningContent: 'Let me think.' }));
    await r.done;
    expect(r.reasoning()).toBe('Let me think.');
    expect(r.text()).toBe('Answer.');
    expect(r.chunks[2].reasoningDelta).toBeNull();
  });

  it('bounds the shared buffer: past the cap it takes no joiners and ends a subscriber that falls too far behind', async () => {
    // 10 characters: two bytes each, no per-chunk overhead.
    hub = makeHub({ maxBufferedBytes: 20, chunkOverheadBytes: 0 });
    const request = chatRequest('bounded');
    const fast = reader(hub.subscribe(request, 'USE'));
    const slow = hub.subscribe(request, 'USE'); // never reads
    await settle();
    const stream = upstream.last;

    stream.delta('12345');
    stream.delta('67890');
    await settle();
    expect(hub.stats().droppedSlow).toBe(0);
    stream.delta('abc'); // 13 characters unread by `slow`
    await settle();
    expect(hub.stats()).toMatchObject({ droppedSlow: 1, subscribers: 1 });
    await expect(slow.next()).rejects.toMatchObject({ code: ErrorCode.OVERLOADED });
    expect(stream.aborted).toBe(false); // `fast` still reads it

    // The start is gone from the buffer: an identical subscription cannot be replayed, so it starts its own.
    const joiner = reader(hub.subscribe(request, 'BYPASS'));
    await settle();
    expect(upstream.streams).toHaveLength(2);
    upstream.last.finish(result('x'));
    await joiner.done;

    stream.finish(result('1234567890abc'));
    await fast.done;
    expect(fast.text()).toBe('1234567890abc');
  });

  it('serves a stream far longer than the cap to subscribers that keep up', async () => {
    // 10 characters: two bytes each, no per-chunk overhead.
    hub = makeHub({ maxBufferedBytes: 20, chunkOverheadBytes: 0 });
    const request = chatRequest('long');
    const readers = [reader(hub.subscribe(request, 'USE')), reader(hub.subscribe(request, 'USE'))];
    await settle();
    const text = Array.from({ length: 500 }, (_, i) => String(i % 10)).join('');
    for (const char of text) {
      upstream.last.delta(char);
      await settle(); // both readers keep up
    }
    upstream.last.finish(result(text));
    await Promise.all(readers.map((r) => r.done));
    for (const r of readers) {
      expect(r.error).toBeUndefined();
      expect(r.text()).toBe(text);
    }
    expect(hub.stats().droppedSlow).toBe(0);
  });

  it('fails open when the cache read throws', async () => {
    cache.getMany = () => Promise.reject(new Error('store down'));
    const r = reader(hub.subscribe(chatRequest('store down'), 'USE'));
    await settle();
    upstream.last.finish(result('still answered'));
    await r.done;
    expect(r.error).toBeUndefined();
    expect(upstream.streams).toHaveLength(1);
  });

  it('on close aborts open streams, ends their subscribers with an error, and refuses new subscriptions', async () => {
    const r = reader(hub.subscribe(chatRequest('closing'), 'BYPASS'));
    await settle();
    const stream = upstream.last;
    await hub.close();
    await r.done;
    expect(r.error).toMatchObject({ code: ErrorCode.OVERLOADED });
    expect(stream.aborted).toBe(true);

    const refused = reader(hub.subscribe(chatRequest('after close'), 'BYPASS'));
    await refused.done;
    expect(refused.error).toMatchObject({ code: ErrorCode.OVERLOADED });
    expect(upstream.streams).toHaveLength(1);
  });

  describe('the set-up of a subscription that may start the upstream stream (Cursor.setUp)', () => {
    /** Whether `promise` has settled by now (after pending microtasks). */
    async function isSettled(promise: Promise<unknown>): Promise<boolean> {
      let settled = false;
      void promise.then(() => {
        settled = true;
      });
      await Promise.resolve();
      await Promise.resolve();
      return settled;
    }

    it('is held until the stream it starts has handed its request over, then two check phases more', async () => {
      const request = chatRequest('held');
      const cursor = hub.subscribe(request, 'BYPASS');
      expect(cursor.setUp).toBeDefined();
      expect(await isSettled(cursor.setUp!)).toBe(false);
      // The upstream call is started, its request handed over this turn: still held...
      expect(upstream.streams).toHaveLength(1);
      await new Promise((resolve) => setImmediate(resolve));
      expect(await isSettled(cursor.setUp!)).toBe(false);
      // ...until the check phase after the one where undici writes an idle socket's request.
      await cursor.setUp;
      const r = reader(cursor);
      upstream.last.delta('held');
      upstream.last.finish(result('held'));
      await r.done;
      expect(r.text()).toBe('held');
    });

    it('holds a USE subscription through its cache read, then as long as the stream it starts', async () => {
      const cursor = hub.subscribe(chatRequest('use'), 'USE');
      expect(cursor.setUp).toBeDefined();
      // The read (the memory store) is answered within this turn and the stream started:
      // still held a check phase later, for the stream's request.
      await new Promise((resolve) => setImmediate(resolve));
      expect(await isSettled(cursor.setUp!)).toBe(false);
      await cursor.setUp;
      expect(upstream.streams).toHaveLength(1);
      void cursor.return();
    });

    it('lets the set-up go on while a cache read waits on I/O, past the turn it started in', async () => {
      let answer: (values: undefined[]) => void = () => undefined;
      const slowRead = new Promise<undefined[]>((resolve) => {
        answer = resolve;
      });
      jest.spyOn(cache, 'getMany').mockReturnValueOnce(slowRead);
      const cursor = hub.subscribe(chatRequest('slow read'), 'USE');
      expect(cursor.setUp).toBeDefined();
      await cursor.setUp;
      // Released with the read still out: nothing started yet.
      expect(upstream.streams).toHaveLength(0);
      answer([undefined]);
      await settle();
      expect(upstream.streams).toHaveLength(1);
      void cursor.return();
    });

    it('holds nothing for a subscription that joins a running stream', async () => {
      const request = chatRequest('joined');
      const first = hub.subscribe(request, 'BYPASS');
      const joiner = hub.subscribe(request, 'BYPASS');
      expect(joiner.setUp).toBeUndefined();
      await first.setUp;
      expect(upstream.streams).toHaveLength(1);
      void first.return();
      void joiner.return();
    });

    it('lets a replayed answer go at once after the cache read, with no upstream call', async () => {
      const request = chatRequest('stored');
      await cache.setMany([{ id: completionId(request), value: result('stored') }]);
      const cursor = hub.subscribe(request, 'USE');
      await cursor.setUp;
      expect(upstream.streams).toHaveLength(0);
      const r = reader(cursor);
      await r.done;
      expect(r.text()).toBe('stored');
    });

    it('lets go of a stream that ends before any upstream request: a quota refusal, which the subscriber then reads', async () => {
      const refusal = new QuotaExceededError('tokensPerDay', 'Token quota used up', 30_000, 'acct');
      const quota = { key: 'acct', reserve: () => Promise.reject(refusal) };
      const cursor = hub.subscribe(chatRequest('refused'), 'BYPASS', { quota });
      await cursor.setUp;
      expect(upstream.streams).toHaveLength(0);
      const r = reader(cursor);
      await r.done;
      expect(r.error).toBe(refusal);
    });

    it('lets go when the subscriber leaves before its stream starts', async () => {
      const cursor = hub.subscribe(chatRequest('gone'), 'USE');
      void cursor.return();
      await cursor.setUp;
      expect(cursor.isClosed).toBe(true);
    });
  });
});
