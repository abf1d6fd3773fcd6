import { getEventListeners } from 'node:events';
import { CompletionService, type CachePolicy, type CompletionLoadKey } from '../../src/batching/completion-service';
import { completionId } from '../../src/cache/key';
import type { CompletionCache } from '../../src/cache/completion-cache';
import type { Config } from '../../src/config';
import { ErrorCode, UpstreamError } from '../../src/errors';
import type { ClusterLeases, OwnerClaim } from '../../src/cluster/leases';
import { createLogger, silentLogger } from '../../src/telemetry/logger';
import { completionResult } from '../cache/fixtures';
import { chatRequest, FakeUpstream, RecordingCache, settle } from './fakes';

function setup(batching: Config['batching'] = { windowMs: 0, maxSize: 100 }) {
  const cache = new RecordingCache();
  const upstream = new FakeUpstream();
  const service = new CompletionService({ cache, upstream, logger: silentLogger(), batching });
  return { cache, upstream, service };
}

function key(prompt: string, policy: CachePolicy = 'USE'): CompletionLoadKey {
  return { request: chatRequest(prompt), policy };
}

function idOf(prompt: string): string {
  return completionId(chatRequest(prompt));
}

/**
 * Fakes the timers the batch window uses (setTimeout, Date) but leaves the job queues
 * real: DataLoader dispatches and a zero window closes on `process.nextTick`, and
 * `settle()` waits on `setImmediate`.
 */
function useWindowClock(): void {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] }));
  afterEach(() => jest.useRealTimers());
}

describe('CompletionService coalescing', () => {
  it('makes one upstream call for 200 concurrent identical loads from 200 operations', async () => {
    const { upstream, service, cache } = setup({ windowMs: 0, maxSize: 1000 });
    upstream.hold();

    const loads = Array.from({ length: 200 }, () => service.createLoaders().completion.load(key('same')));
    await settle();

    expect(upstream.calls).toHaveLength(1);
    // All 200 per-request dispatches land in one coalescer batch: one cache read.
    expect(service.stats()).toMatchObject({ upstreamCalls: 1, joinedInFlight: 199, inFlight: 1, batches: 1, meanBatchSize: 200 });
    expect(cache.getManyCalls).toEqual([[idOf('same')]]);

    upstream.release();
    const views = await Promise.all(loads);
    expect(new Set(views.map((view) => view.content))).toEqual(new Set(['answer #1 to same']));
    expect(views.every((view) => view.id === idOf('same') && view.cached === false)).toBe(true);
    await settle(); // the in-flight entry goes once the batch's cache write is done
    expect(service.stats().inFlight).toBe(0);
  });

  it('starts one call when two batches read the cache at the same time (maxSize split)', async () => {
    const { upstream, service, cache } = setup({ windowMs: 0, maxSize: 100 });

    const views = await Promise.all(Array.from({ length: 200 }, () => service.createLoaders().completion.load(key('same'))));

    expect(cache.getManyCalls).toEqual([[idOf('same')], [idOf('same')]]);
    expect(upstream.calls).toHaveLength(1);
    expect(service.stats()).toMatchObject({ batches: 2, upstreamCalls: 1, joinedInFlight: 199 });
    expect(new Set(views.map((view) => view.content)).size).toBe(1);
  });

  it('lets loads arriving in later ticks join the call an earlier operation started', async () => {
    const { upstream, service, cache } = setup();
    upstream.hold();

    const first = service.createLoaders().completion.load(key('q'));
    await settle();
    const later: Array<Promise<unknown>> = [];
    for (let i = 0; i < 5; i += 1) {
      later.push(service.createLoaders().completion.load(key('q', i % 2 === 0 ? 'USE' : 'REFRESH')));
      await settle();
    }
    upstream.release();
    const views = await Promise.all([first, ...later]);

    expect(upstream.calls).toHaveLength(1);
    await settle();
    expect(service.stats()).toMatchObject({ upstreamCalls: 1, joinedInFlight: 5, inFlight: 0 });
    expect(views).toEqual(Array(6).fill(expect.objectContaining({ content: 'answer #1 to q', cached: false })));
    // Joiners skip the cache read: only the first operation looked.
    expect(cache.getManyCalls).toEqual([[idOf('q')]]);
  });

  it('dedupes identical keys inside one operation before they reach the coalescer', async () => {
    const { upstream, service } = setup();
    const { completion } = service.createLoaders();
    const reordered = { policy: 'USE', request: { messages: [{ content: 'x', role: 'user' }], model: 'deepseek-flash', kind: 'chat', thinking: undefined } } as CompletionLoadKey;

    const [a, b, c] = await Promise.all([completion.load(key('x')), completion.load(reordered), completion.load(key('x'))]);

    expect(upstream.calls).toHaveLength(1);
    expect(b).toBe(a);
    expect(c).toBe(a);
    expect(service.stats()).toMatchObject({ upstreamCalls: 1, joinedInFlight: 0, batches: 1, meanBatchSize: 1 });
  });

  it('serves a batch of N distinct prompts with one getMany, one setMany and N concurrent upstream calls', async () => {
    const { upstream, service, cache } = setup();
    const prompts = ['p1', 'p2', 'p3', 'p4', 'p5'];
    upstream.hold();

    const pending = service.createLoaders().completion.loadMany(prompts.map((prompt) => key(prompt)));
    await settle();
    expect(upstream.active).toBe(5);
    upstream.release();
    const views = await pending;

    expect(upstream.calls).toHaveLength(5);
    expect(cache.getManyCalls).toEqual([prompts.map(idOf)]);
    expect(cache.setManyCalls).toEqual([prompts.map(idOf)]);
    expect(views.map((view) => (view instanceof Error ? view : view.id))).toEqual(prompts.map(idOf));
    expect(service.stats()).toMatchObject({ upstreamCalls: 5, batches: 1, meanBatchSize: 5, cacheMisses: 5, cacheHits: 0 });
  });

  it('answers a cache hit without an upstream call and marks it cached', async () => {
    const { upstream, service } = setup();
    const fresh = await service.createLoaders().completion.load(key('q'));

    const hit = await service.createLoaders().completion.load(key('q'));

    expect(upstream.calls).toHaveLength(1);
    expect(fresh.cached).toBe(false);
    expect(hit).toEqual({ ...fresh, cached: true });
    expect(service.stats()).toMatchObject({ cacheHits: 1, cacheMisses: 1 });
  });

  it('keeps results in key order with an Error only in the failed slot, stores nothing for it, and retries it next time', async () => {
    const { upstream, service, cache } = setup();
    const failure = new UpstreamError(ErrorCode.UPSTREAM_UNAVAILABLE, 'DeepSeek answered 503', { status: 503, retryable: true });
    upstream.failFor.set('bad', failure);
    const { completion } = service.createLoaders();

    const results = await completion.loadMany([key('good'), key('bad'), key('also good')]);

    expect(results[0]).toMatchObject({ content: 'answer #1 to good' });
    expect(results[1]).toBe(failure);
    expect(results[2]).toMatchObject({ content: 'answer #3 to also good' });
    expect(cache.setManyCalls).toEqual([[idOf('good'), idOf('also good')]]);
    expect(await cache.peek(idOf('bad'))).toBeUndefined();
    await settle(); // the in-flight entry goes once the batch's cache write is done
    expect(service.stats().inFlight).toBe(0);

    upstream.failFor.clear();
    // Same operation: the failure was not memoised.
    await expect(completion.load(key('bad'))).resolves.toMatchObject({ content: 'answer #4 to bad', cached: false });
    // Another operation: served from the cache now.
    await expect(service.createLoaders().completion.load(key('bad'))).resolves.toMatchObject({ cached: true });
    expect(upstream.calls).toHaveLength(4);
  });

  it('passes one failure to every waiter of the shared call', async () => {
    const { upstream, service } = setup();
    const failure = new Error('boom');
    upstream.failFor.set('q', failure);

    const results = await Promise.allSettled([1, 2, 3].map(() => service.createLoaders().completion.load(key('q'))));

    expect(upstream.calls).toHaveLength(1);
    expect(results).toEqual(Array(3).fill({ status: 'rejected', reason: failure }));
  });

  it('returns but never stores an answer that finished with insufficient_system_resource', async () => {
    const { upstream, service, cache } = setup();
    upstream.finishReason = 'insufficient_system_resource';

    const view = await service.createLoaders().completion.load(key('q'));
    const again = await service.createLoaders().completion.load(key('q'));

    expect(view).toMatchObject({ finishReason: 'insufficient_system_resource', cached: false });
    expect(again.cached).toBe(false);
    expect(upstream.calls).toHaveLength(2);
    expect(cache.setManyCalls).toEqual([]);
    expect(await cache.peek(idOf('q'))).toBeUndefined();
  });

  it('turns a synchronous throw of the client into that slot’s error', async () => {
    const failure = new Error('bad request shape');
    const upstream = {
      complete: (): never => {
        throw failure;
      },
    };
    const service = new CompletionService({ cache: new RecordingCache(), upstream, logger: silentLogger(), batching: { windowMs: 0, maxSize: 10 } });

    await expect(service.createLoaders().completion.load(key('q'))).rejects.toBe(failure);
    await settle(); // the in-flight entry goes once the batch's cache write is done
    expect(service.stats().inFlight).toBe(0);
  });

  it('fails open when the cache itself throws', async () => {
    const upstream = new FakeUpstream();
    const broken: CompletionCache = {
      getMany: () => Promise.reject(new Error('store down')),
      setMany: () => Promise.reject(new Error('store down')),
      delete: () => Promise.reject(new Error('store down')),
      documents: () => ({ get: async () => undefined, set: async () => undefined, delete: async () => false }),
      stats: () => ({ kind: 'memory', hits: 0, misses: 0, writes: 0, errors: 0, timeouts: 0, entries: null, available: false, circuit: 'OPEN', skipped: 0 }),
      close: async () => undefined,
    };
    const service = new CompletionService({ cache: broken, upstream, logger: silentLogger(), batching: { windowMs: 0, maxSize: 10 } });

    await expect(service.createLoaders().completion.load(key('q'))).resolves.toMatchObject({ content: 'answer #1 to q' });
  });
});

describe('CompletionService cache policies', () => {
  it('USE reads and writes', async () => {
    const { service, cache, upstream } = setup();

    await service.createLoaders().completion.load(key('q', 'USE'));
    const second = await service.createLoaders().completion.load(key('q', 'USE'));

    expect(cache.getManyCalls).toHaveLength(2);
    expect(cache.setManyCalls).toEqual([[idOf('q')]]);
    expect(second.cached).toBe(true);
    expect(upstream.calls).toHaveLength(1);
  });

  it('BYPASS neither reads nor writes', async () => {
    const { service, cache, upstream } = setup();
    await cache.inner.setMany([{ id: idOf('q'), value: completionResult('old') }]);

    const view = await service.createLoaders().completion.load(key('q', 'BYPASS'));
    await service.createLoaders().completion.load(key('new', 'BYPASS'));

    expect(view).toMatchObject({ content: 'answer #1 to q', cached: false });
    expect(upstream.calls).toHaveLength(2);
    expect(cache.getManyCalls).toEqual([]);
    expect(cache.setManyCalls).toEqual([]);
    expect((await cache.peek(idOf('q')))?.content).toBe('old');
    expect(await cache.peek(idOf('new'))).toBeUndefined();
  });

  it('REFRESH does not read but writes the new answer', async () => {
    const { service, cache, upstream } = setup();
    await cache.inner.setMany([{ id: idOf('q'), value: completionResult('old') }]);

    const view = await service.createLoaders().completion.load(key('q', 'REFRESH'));
    const next = await service.createLoaders().completion.load(key('q', 'USE'));

    expect(view).toMatchObject({ content: 'answer #1 to q', cached: false });
    expect(cache.setManyCalls).toEqual([[idOf('q')]]);
    expect(cache.getManyCalls).toEqual([[idOf('q')]]); // only the USE load read
    expect(next).toMatchObject({ content: 'answer #1 to q', cached: true });
    expect(upstream.calls).toHaveLength(1);
  });

  it('shares one call between USE and REFRESH of one input in one operation', async () => {
    const { service, upstream } = setup();
    const { completion } = service.createLoaders();

    const [use, refresh] = await Promise.all([completion.load(key('q', 'USE')), completion.load(key('q', 'REFRESH'))]);

    expect(upstream.calls).toHaveLength(1);
    expect(use).toEqual(refresh);
    expect(use.cached).toBe(false);
  });

  it('stores a call shared by BYPASS and USE, because USE asked for it', async () => {
    const { service, cache, upstream } = setup();
    upstream.hold();
    const bypass = service.createLoaders().completion.load(key('q', 'BYPASS'));
    await settle();
    const use = service.createLoaders().completion.load(key('q', 'USE'));
    await settle();
    upstream.release();
    await Promise.all([bypass, use]);

    expect(upstream.calls).toHaveLength(1);
    expect(cache.setManyCalls).toEqual([[idOf('q')]]);
  });
});

describe('CompletionService entity lookup and eviction', () => {
  it('byId answers hits from the cache, null for unknown and malformed ids, and never calls upstream', async () => {
    const { service, cache, upstream } = setup();
    const stored = await service.createLoaders().completion.load(key('q'));
    const { byId } = service.createLoaders();

    const [hit, unknown, malformed] = await byId.loadMany([idOf('q'), idOf('never asked'), 'not-an-id']);

    expect(hit).toEqual({ ...stored, cached: true });
    expect(unknown).toBeNull();
    expect(malformed).toBeNull();
    expect(upstream.calls).toHaveLength(1);
    expect(cache.getManyCalls.at(-1)).toEqual([idOf('q'), idOf('never asked')]);
  });

  it('byId makes no store call for malformed ids only', async () => {
    const { service, cache } = setup();

    await expect(service.createLoaders().byId.loadMany(['', 'cmpl_v1_short', 'dsgw:*'])).resolves.toEqual([null, null, null]);

    expect(cache.getManyCalls).toEqual([]);
  });

  it('evict removes the entry, clears this operation’s memo, and says whether there was one', async () => {
    const { service, cache, upstream } = setup();
    const loaders = service.createLoaders();
    const first = await loaders.completion.load(key('q'));
    // One lookup loader per operation (made on first use), so its memo is the operation's.
    expect(loaders.byId).toBe(loaders.byId);
    expect(await loaders.byId.load(idOf('q'))).not.toBeNull();

    expect(await loaders.evict(idOf('q'))).toBe(true);

    expect(await cache.peek(idOf('q'))).toBeUndefined();
    expect(await loaders.byId.load(idOf('q'))).toBeNull();
    const second = await loaders.completion.load(key('q'));
    expect(second).toMatchObject({ content: 'answer #2 to q', cached: false });
    expect(first.content).toBe('answer #1 to q');
    expect(upstream.calls).toHaveLength(2);

    expect(await loaders.evict(idOf('never stored'))).toBe(false);
    expect(await loaders.evict('garbage')).toBe(false);
    expect(cache.deleteCalls).toEqual([idOf('q'), idOf('never stored')]);
  });
});

describe('CompletionService cancellation', () => {
  it('aborts the shared upstream call only when every waiter has gone', async () => {
    const { service, upstream, cache } = setup();
    upstream.hold();
    const first = new AbortController();
    const second = new AbortController();
    const p1 = service.createLoaders({ signal: first.signal }).completion.load(key('q'));
    const p2 = service.createLoaders({ signal: second.signal }).completion.load(key('q'));
    await settle();
    expect(upstream.calls).toHaveLength(1);
    const upstreamSignal = upstream.calls[0].signal;

    const reason = new Error('client went away');
    first.abort(reason);
    await expect(p1).rejects.toBe(reason);
    expect(upstreamSignal?.aborted).toBe(false);

    second.abort();
    await expect(p2).rejects.toMatchObject({ name: 'AbortError' });
    expect(upstreamSignal?.aborted).toBe(true);
    await settle(); // the in-flight entry goes once the batch's cache write is done
    expect(service.stats().inFlight).toBe(0);

    // The abandoned call is not joined by a newcomer, and its failure is not stored.
    upstream.release();
    const fresh = await service.createLoaders().completion.load(key('q'));
    expect(fresh).toMatchObject({ content: 'answer #2 to q', cached: false });
    expect(upstream.calls).toHaveLength(2);
    expect(cache.setManyCalls).toEqual([[idOf('q')]]);
  });

  it('keeps the shared call running while one waiter remains', async () => {
    const { service, upstream, cache } = setup();
    upstream.hold();
    const leaving = new AbortController();
    const staying = new AbortController();
    const gone = service.createLoaders({ signal: leaving.signal }).completion.load(key('q'));
    const kept = service.createLoaders({ signal: staying.signal }).completion.load(key('q'));
    await settle();

    leaving.abort();
    await expect(gone).rejects.toMatchObject({ name: 'AbortError' });
    upstream.release();

    await expect(kept).resolves.toMatchObject({ content: 'answer #1 to q', cached: false });
    expect(upstream.calls[0].signal?.aborted).toBe(false);
    expect(await cache.peek(idOf('q'))).toBeDefined();
  });

  it('a waiter without a signal keeps the call alive', async () => {
    const { service, upstream } = setup();
    upstream.hold();
    const controller = new AbortController();
    const aborting = service.createLoaders({ signal: controller.signal }).completion.load(key('q'));
    const plain = service.createLoaders().completion.load(key('q'));
    await settle();

    controller.abort();
    await expect(aborting).rejects.toMatchObject({ name: 'AbortError' });
    upstream.release();

    await expect(plain).resolves.toMatchObject({ content: 'answer #1 to q' });
    expect(upstream.calls[0].signal?.aborted).toBe(false);
  });

  describe('with a batch window (fake timers)', () => {
    useWindowClock();

    it('drops loads of an operation that went away before its batch ran: no cache read, no upstream call', async () => {
      const { service, upstream, cache } = setup({ windowMs: 20, maxSize: 100 });
      const controller = new AbortController();

      const gone = service.createLoaders({ signal: controller.signal }).completion.load(key('q'));
      await settle(); // the load is in the open window
      jest.advanceTimersByTime(5);
      controller.abort();
      await expect(gone).rejects.toMatchObject({ name: 'AbortError' });
      jest.advanceTimersByTime(15); // the window closes
      await settle();

      expect(cache.getManyCalls).toEqual([]);
      expect(upstream.calls).toHaveLength(0);
    });
  });

  it('holds one abort listener per operation however many loads wait, and none once they are answered', async () => {
    const { service, upstream } = setup();
    const warnings = jest.spyOn(process, 'emitWarning');
    const controller = new AbortController();
    upstream.hold();

    const pending = service
      .createLoaders({ signal: controller.signal })
      .completion.loadMany(Array.from({ length: 50 }, (_, i) => key(`p${i}`)));
    await settle();
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    upstream.release();
    await pending;

    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    expect(warnings).not.toHaveBeenCalled();
    warnings.mockRestore();
  });

  it('rejects a load whose operation was already aborted without touching cache or upstream', async () => {
    const { service, upstream, cache } = setup();
    const controller = new AbortController();
    controller.abort();

    await expect(service.createLoaders({ signal: controller.signal }).completion.load(key('q'))).rejects.toMatchObject({ name: 'AbortError' });

    expect(upstream.calls).toHaveLength(0);
    expect(cache.getManyCalls).toHaveLength(0);
  });
});

describe('CompletionService batch window', () => {
  describe('with a window (fake timers)', () => {
    useWindowClock();

    it('gathers loads from separate operations within windowMs into one cache round trip', async () => {
      const { service, cache, upstream } = setup({ windowMs: 20, maxSize: 100 });

      const a = service.createLoaders().completion.load(key('a'));
      await settle();
      jest.advanceTimersByTime(5);
      const b = service.createLoaders().completion.load(key('b'));
      await settle();
      expect(cache.getManyCalls).toEqual([]); // the window is still open
      jest.advanceTimersByTime(15);
      await Promise.all([a, b]);

      expect(cache.getManyCalls).toEqual([[idOf('a'), idOf('b')]]);
      expect(cache.setManyCalls).toEqual([[idOf('a'), idOf('b')]]);
      expect(upstream.calls).toHaveLength(2);
      expect(service.stats()).toMatchObject({ batches: 1, meanBatchSize: 2 });
    });

    it('splits batches at maxSize', async () => {
      const { service, cache, upstream } = setup({ windowMs: 20, maxSize: 2 });
      const prompts = ['p1', 'p2', 'p3', 'p4', 'p5'];

      const pending = service.createLoaders().completion.loadMany(prompts.map((prompt) => key(prompt)));
      // Full batches leave at once: they read the cache before the clock moves at all;
      // only the last partial one waits for the window.
      await settle();
      expect(cache.getManyCalls).toEqual([
        [idOf('p1'), idOf('p2')],
        [idOf('p3'), idOf('p4')],
      ]);
      jest.advanceTimersByTime(19);
      await settle();
      expect(cache.getManyCalls).toHaveLength(2);
      jest.advanceTimersByTime(1);
      await pending;

      expect(cache.getManyCalls).toEqual([
        [idOf('p1'), idOf('p2')],
        [idOf('p3'), idOf('p4')],
        [idOf('p5')],
      ]);
      expect(cache.setManyCalls).toHaveLength(3);
      expect(upstream.calls).toHaveLength(5);
      expect(service.stats()).toMatchObject({ batches: 3, meanBatchSize: 5 / 3 });
    });
  });

  it('without a window, loads from different ticks are separate batches', async () => {
    const { service, cache } = setup({ windowMs: 0, maxSize: 100 });

    const a = service.createLoaders().completion.load(key('a'));
    await settle(); // a later tick: the zero window has closed behind `a`
    const b = service.createLoaders().completion.load(key('b'));
    await Promise.all([a, b]);

    expect(cache.getManyCalls).toEqual([[idOf('a')], [idOf('b')]]);
  });
});

describe('CompletionService latency isolation', () => {
  it('answers a quick call without waiting for a slow one in the same batch, and stores both', async () => {
    let releaseSlow: () => void = () => undefined;
    const slowGate = new Promise<void>((resolve) => (releaseSlow = resolve));
    const upstream = {
      complete: async (request: Parameters<FakeUpstream['complete']>[0]) => {
        if (JSON.stringify(request).includes('slow')) await slowGate;
        return completionResult(`answer to ${JSON.stringify(request).length}`);
      },
    };
    const cache = new RecordingCache();
    const service = new CompletionService({ cache, upstream, logger: silentLogger(), batching: { windowMs: 0, maxSize: 100 } });
    const [a, b] = [service.createLoaders(), service.createLoaders()];
    const slow = a.completion.load({ request: chatRequest('slow'), policy: 'USE' });
    const fast = await b.completion.load({ request: chatRequest('fast'), policy: 'USE' });
    expect(fast.cached).toBe(false);
    // The fast answer is out while the slow call still runs; a load arriving now joins it.
    const again = await service.createLoaders().completion.load({ request: chatRequest('fast'), policy: 'USE' });
    expect(again.content).toBe(fast.content);
    releaseSlow();
    await slow;
    await settle();
    expect(await cache.peek(completionId(chatRequest('fast')))).toBeDefined();
    expect(await cache.peek(completionId(chatRequest('slow')))).toBeDefined();
    expect(service.stats()).toMatchObject({ upstreamCalls: 2, inFlight: 0 });
  });
});

describe('CompletionService cache scopes (CACHE_SCOPE=tenant)', () => {
  it('shares neither stored answers nor in-flight calls between scopes, and looks up and evicts in the caller scope only', async () => {
    const { upstream, service, cache } = setup();
    upstream.hold();
    const a = service.createLoaders({ cacheScope: 'acme' });
    const b = service.createLoaders({ cacheScope: 'globex' });
    const pending = [a.completion.load(key('same prompt')), b.completion.load(key('same prompt'))];
    await settle();
    // The same prompt in two scopes: two calls, not one joined call.
    expect(upstream.calls).toHaveLength(2);
    upstream.release();
    const [fromA, fromB] = await Promise.all(pending);
    expect(fromA.id).toBe(fromB.id); // the same content address…
    await settle();
    expect(cache.setManyCalls.flat().sort()).toEqual([`acme/${fromA.id}`, `globex/${fromA.id}`]); // …stored apart

    // Knowing the id does not let another scope read or evict it.
    await cache.delete(`globex/${fromA.id}`);
    expect(await service.createLoaders({ cacheScope: 'globex' }).byId.load(fromA.id)).toBeNull();
    expect(await service.createLoaders({ cacheScope: 'globex' }).evict(fromA.id)).toBe(false);
    expect(await service.createLoaders({ cacheScope: 'acme' }).byId.load(fromA.id)).toMatchObject({ id: fromA.id, cached: true });
    expect(await service.createLoaders({ cacheScope: 'acme' }).evict(fromA.id)).toBe(true);
  });
});

describe('CompletionService when a batch itself fails (a bug, not an upstream failure)', () => {
  /** A service logging to `lines`, with `joinStream` or `cluster` as given. */
  function loggingService(options: { joinStream?: () => never; cluster?: ClusterLeases }) {
    const lines: string[] = [];
    const upstream = new FakeUpstream();
    const service = new CompletionService({
      cache: new RecordingCache(),
      upstream,
      logger: createLogger('info', { write: (line: string) => void lines.push(line) }),
      batching: { windowMs: 0, maxSize: 100 },
      ...options,
    });
    const loggedErrors = () =>
      lines.map((line) => JSON.parse(line) as { level: string; msg: string }).filter((entry) => entry.level === 'error').map((entry) => entry.msg);
    return { service, upstream, loggedErrors };
  }

  it('rejects the loads of a batch that fails before its calls start, instead of leaving them waiting', async () => {
    const { service, upstream, loggedErrors } = loggingService({
      joinStream: () => {
        throw new Error('joinStream bug');
      },
    });
    await expect(service.createLoaders().completion.load(key('before calls'))).rejects.toThrow('joinStream bug');
    expect(upstream.calls).toHaveLength(0);
    expect(service.stats().inFlight).toBe(0);
    expect(loggedErrors()).toEqual(['coalescer batch failed']);
  });

  it('keeps the answers of a batch that fails after its calls, forgets the calls and finishes their leases as failed', async () => {
    const outcomes: unknown[] = [];
    const lease: OwnerClaim = {
      kind: 'owner',
      takeover: false,
      mirror: () => undefined,
      finish: (outcome) => {
        outcomes.push(outcome);
        if (outcomes.length === 1) throw new Error('lease bug');
      },
    };
    const cluster = { claim: () => Promise.resolve(lease), stats: () => undefined } as unknown as ClusterLeases;
    const { service, upstream, loggedErrors } = loggingService({ cluster });
    const view = await service.createLoaders().completion.load(key('after calls'));
    expect(view.content).toBe('answer #1 to after calls');
    await settle();
    expect(outcomes).toEqual([{ result: expect.objectContaining({ content: 'answer #1 to after calls' }) }, { error: true }]);
    expect(loggedErrors()).toEqual(['coalescer batch failed']);
    expect(service.stats().inFlight).toBe(0);
    // Forgotten: the next identical load makes a new call instead of joining the old one.
    await service.createLoaders().completion.load(key('after calls', 'REFRESH'));
    expect(upstream.calls).toHaveLength(2);
  });
});
