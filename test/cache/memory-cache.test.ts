import { createCompletionCache, type CompletionCache } from '../../src/cache/completion-cache';
import { frozenCopy } from '../../src/cache/memory-store';
import { silentLogger } from '../../src/telemetry/logger';
import { cacheConfig, completionResult } from './fixtures';

describe('memory completion cache', () => {
  let cache: CompletionCache;

  afterEach(async () => {
    await cache.close();
  });

  it('round-trips many entries in one call, in id order, with misses as undefined', async () => {
    cache = createCompletionCache({ config: cacheConfig(), logger: silentLogger() });
    await cache.setMany([
      { id: 'a', value: completionResult('A') },
      { id: 'b', value: completionResult('B', 'length') },
    ]);

    const found = await cache.getMany(['b', 'missing', 'a']);

    expect(found).toEqual([completionResult('B', 'length'), undefined, completionResult('A')]);
    expect(await cache.getMany([])).toEqual([]);
  });

  it('returns copies: changing an answer after storing or reading it does not change the entry', async () => {
    cache = createCompletionCache({ config: cacheConfig(), logger: silentLogger() });
    const value = completionResult('original');
    await cache.setMany([{ id: 'a', value }]);
    value.content = 'changed after write';
    const [first] = await cache.getMany(['a']);
    first!.content = 'changed after read';

    expect((await cache.getMany(['a']))[0]?.content).toBe('original');
  });

  it('keeps a deep copy: changing a nested field of a stored or read answer changes nothing stored', async () => {
    cache = createCompletionCache({ config: cacheConfig(), logger: silentLogger() });
    const value = completionResult('original');
    const promptTokens = value.usage.promptTokens;
    await cache.setMany([{ id: 'a', value }]);
    value.usage.promptTokens += 1000;
    const [first] = await cache.getMany(['a']);

    expect(first?.usage.promptTokens).toBe(promptTokens);
    // A read shares the stored nested objects, which are frozen: no caller can change them.
    expect(() => {
      first!.usage.promptTokens = 0;
    }).toThrow(TypeError);
    expect((await cache.getMany(['a']))[0]?.usage.promptTokens).toBe(promptTokens);
  });

  it("stores an own __proto__ key as data, not as the copy's prototype", () => {
    const value = JSON.parse('{"__proto__": {"polluted": true}, "a": [1, {"b": 2}]}') as Record<string, unknown>;
    const copy = frozenCopy(value);

    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect(Object.keys(copy)).toEqual(['__proto__', 'a']);
    expect((copy as { polluted?: boolean }).polluted).toBeUndefined();
    expect(Object.isFrozen((copy.a as unknown[])[1])).toBe(true);
    expect(copy).not.toBe(value);
  });

  describe('on a fake clock', () => {
    // Both expiry checks run on jest's clock: keyv's `expires` stamp is read with Date.now
    // (faked), and the LRU is handed a clock that reads it too.
    beforeEach(() => jest.useFakeTimers());
    afterEach(() => jest.useRealTimers());

    it('does not return entries older than the TTL', async () => {
      cache = createCompletionCache({ config: cacheConfig({ ttlSeconds: 1 }), logger: silentLogger(), now: () => Date.now() });
      await cache.setMany([{ id: 'a', value: completionResult('A') }]);
      expect(await cache.getMany(['a'])).toEqual([completionResult('A')]);

      jest.advanceTimersByTime(999);
      expect(await cache.getMany(['a'])).toEqual([completionResult('A')]);
      jest.advanceTimersByTime(2);

      expect(await cache.getMany(['a'])).toEqual([undefined]);
    });
  });

  it('evicts the least recently used entry beyond maxEntries', async () => {
    cache = createCompletionCache({ config: cacheConfig({ maxEntries: 2 }), logger: silentLogger() });
    await cache.setMany([
      { id: 'a', value: completionResult('A') },
      { id: 'b', value: completionResult('B') },
    ]);
    await cache.getMany(['a']); // a is now more recently used than b

    await cache.setMany([{ id: 'c', value: completionResult('C') }]);

    expect(await cache.getMany(['a', 'b', 'c'])).toEqual([completionResult('A'), undefined, completionResult('C')]);
    expect(cache.stats().entries).toBe(2);
  });

  it('deletes an entry and says whether there was one', async () => {
    cache = createCompletionCache({ config: cacheConfig(), logger: silentLogger() });
    await cache.setMany([{ id: 'a', value: completionResult('A') }]);

    expect(await cache.delete('a')).toBe(true);
    expect(await cache.delete('a')).toBe(false);
    expect(await cache.getMany(['a'])).toEqual([undefined]);
  });

  it('counts hits, misses, writes and entries', async () => {
    cache = createCompletionCache({ config: cacheConfig(), logger: silentLogger() });
    expect(cache.stats()).toEqual({
      kind: 'memory',
      hits: 0,
      misses: 0,
      writes: 0,
      errors: 0,
      timeouts: 0,
      entries: 0,
      available: true,
      circuit: 'CLOSED',
      skipped: 0,
    });

    await cache.setMany([
      { id: 'a', value: completionResult('A') },
      { id: 'b', value: completionResult('B') },
    ]);
    await cache.getMany(['a', 'b', 'c']);

    expect(cache.stats()).toMatchObject({ kind: 'memory', hits: 2, misses: 1, writes: 2, errors: 0, entries: 2, available: true });
  });
});
