import { createCompletionCache, type CompletionCache } from '../../src/cache/completion-cache';
import { completionId } from '../../src/cache/key';
import type { ChatRequest } from '../../src/deepseek/types';
import { silentLogger } from '../../src/telemetry/logger';
import { cacheConfig, completionResult } from './fixtures';
import { freePort, RedisServer } from './redis-server';
import { waitFor } from '../helpers/wait';

function idFor(prompt: string): string {
  const request: ChatRequest = { kind: 'chat', model: 'deepseek-flash', messages: [{ role: 'user', content: prompt }] };
  return completionId(request);
}

/** Retries `probe` until it returns true (the client reconnects with backoff up to ~2 s). */
function eventually(probe: () => Promise<boolean>): Promise<void> {
  return waitFor(probe, { intervalMs: 100, what: 'the cache to use Redis again' });
}

/**
 * An upper bound on calls that must end by their own `storeTimeoutMs` deadline. It is
 * generous on purpose (a loaded machine cannot stretch a few hundred ms into 5 s), so it
 * fails only when a call waits for Redis itself, which does not answer until the test
 * brings it back: the timeout and error counters are the exact evidence.
 */
const NO_HANG_MS = 5_000;

describe('redis completion cache', () => {
  let redis: RedisServer;
  const caches: CompletionCache[] = [];

  function redisCache(overrides: Parameters<typeof cacheConfig>[0] = {}): CompletionCache {
    const cache = createCompletionCache({
      config: cacheConfig({ redisUrl: redis.url, namespace: 'dsgw', ...overrides }),
      logger: silentLogger(),
    });
    caches.push(cache);
    return cache;
  }

  beforeAll(async () => {
    redis = await RedisServer.start();
  });

  afterEach(async () => {
    await Promise.all(caches.splice(0).map((cache) => cache.close()));
    redis.resume();
    await redis.stop();
    await redis.start(); // each test starts from an empty server on the same port
  });

  afterAll(async () => {
    await redis.stop();
  });

  it('lets two replicas sharing one Redis see each other’s entries', async () => {
    const replicaA = redisCache();
    const replicaB = redisCache();
    const [a, b] = [idFor('a'), idFor('b')];

    await replicaA.setMany([{ id: a, value: completionResult('from A') }]);
    await replicaB.setMany([{ id: b, value: completionResult('from B') }]);

    expect(await replicaB.getMany([a, b, idFor('none')])).toEqual([completionResult('from A'), completionResult('from B'), undefined]);
    expect(await replicaA.delete(b)).toBe(true);
    expect(await replicaB.getMany([b])).toEqual([undefined]);
    expect(replicaB.stats()).toMatchObject({ kind: 'redis', hits: 2, misses: 2, writes: 1, errors: 0, entries: null, available: true });
  });

  it('keys every entry once under the namespace and gives each a TTL', async () => {
    const cache = redisCache({ ttlSeconds: 120 });
    const ids = [idFor('a'), idFor('b'), idFor('c')];

    await cache.setMany(ids.map((id) => ({ id, value: completionResult(id) })));

    const keys = (await redis.cli('KEYS', '*')).split('\n').sort();
    expect(keys).toEqual(ids.map((id) => `dsgw:${id}`).sort());
    for (const key of keys) {
      const ttl = Number(await redis.cli('TTL', key));
      expect(ttl).toBeGreaterThan(100);
      expect(ttl).toBeLessThanOrEqual(120);
    }
    // The stored value is JSON of the result in a versioned envelope.
    const raw = JSON.parse(await redis.cli('GET', keys[0])) as { value: { v: number; result: { content: string } } };
    expect(raw.value.v).toBe(1);
    expect(ids).toContain(raw.value.result.content);
  });

  it('fails open while Redis is down and uses it again by itself once it is back', async () => {
    const cache = redisCache({ storeTimeoutMs: 300 });
    const id = idFor('outage');
    await cache.setMany([{ id, value: completionResult('before') }]);
    expect(await cache.getMany([id])).toEqual([completionResult('before')]);

    await redis.stop();

    const started = Date.now();
    await expect(cache.getMany([id, idFor('other')])).resolves.toEqual([undefined, undefined]);
    await expect(cache.setMany([{ id, value: completionResult('during') }])).resolves.toBeUndefined();
    await expect(cache.delete(id)).resolves.toBe(false);
    expect(Date.now() - started).toBeLessThan(NO_HANG_MS); // each call ends by its 300 ms deadline or fails at once
    expect(cache.stats()).toMatchObject({ available: false });
    expect(cache.stats().errors + cache.stats().timeouts).toBeGreaterThanOrEqual(3);

    await redis.start(); // same port, empty (no persistence)

    await eventually(async () => {
      await cache.setMany([{ id, value: completionResult('after') }]);
      const [found] = await cache.getMany([id]);
      return found?.content === 'after';
    });
    expect(cache.stats().available).toBe(true);
    expect(await redis.cli('EXISTS', `dsgw:${id}`)).toBe('1');
  });

  it('answers misses within storeTimeoutMs when Redis stops answering, and recovers', async () => {
    const cache = redisCache({ storeTimeoutMs: 200 });
    const id = idFor('paused');
    await cache.setMany([{ id, value: completionResult('kept') }]);

    redis.pause();
    const started = Date.now();
    const during = await cache.getMany([id]);
    const elapsed = Date.now() - started;
    await cache.setMany([{ id: idFor('late'), value: completionResult('late') }]);
    redis.resume();

    expect(during).toEqual([undefined]);
    // It waited out its deadline (a lower bound: a slower machine only waits longer), and
    // the deadline, not Redis, ended it: the paused server answers nothing until resume().
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(NO_HANG_MS);
    expect(cache.stats()).toMatchObject({ timeouts: 2, available: false });

    await eventually(async () => (await cache.getMany([id]))[0]?.content === 'kept');
    expect(cache.stats().available).toBe(true);
  });

  it('skips a hung Redis after CACHE_BREAKER_THRESHOLD timeouts in a row: one timeout per cool-down, not one per call', async () => {
    const cache = redisCache({ storeTimeoutMs: 100, breakerThreshold: 3, breakerCooldownMs: 60_000 });
    const id = idFor('breaker');
    await cache.setMany([{ id, value: completionResult('kept') }]);

    redis.pause();
    try {
      for (let i = 0; i < 3; i++) expect(await cache.getMany([id])).toEqual([undefined]);
      expect(cache.stats()).toMatchObject({ timeouts: 3, circuit: 'OPEN', skipped: 0 });
      // While open, store calls are skipped at once: no more timeouts, however many calls.
      await Promise.all(Array.from({ length: 50 }, () => cache.getMany([id])));
      await cache.setMany([{ id: idFor('skipped write'), value: completionResult('x') }]);
      expect(cache.stats()).toMatchObject({ timeouts: 3, circuit: 'OPEN', skipped: 51, available: false });
    } finally {
      redis.resume();
    }
  });

  it('probes the store after the cool-down and uses it again once it answers', async () => {
    const cache = redisCache({ storeTimeoutMs: 100, breakerThreshold: 1, breakerCooldownMs: 300 });
    const id = idFor('probe');
    await cache.setMany([{ id, value: completionResult('kept') }]);
    redis.pause();
    try {
      await cache.getMany([id]);
      expect(cache.stats().circuit).toBe('OPEN');
    } finally {
      redis.resume();
    }
    await eventually(async () => (await cache.getMany([id]))[0]?.content === 'kept');
    expect(cache.stats()).toMatchObject({ circuit: 'CLOSED', available: true });
  });

  it('starts without Redis (misses, no hang) and connects once Redis appears', async () => {
    const port = await freePort();
    const cache = createCompletionCache({
      config: cacheConfig({ redisUrl: `redis://127.0.0.1:${port}`, storeTimeoutMs: 200 }),
      logger: silentLogger(),
    });
    caches.push(cache);
    const id = idFor('late start');

    const started = Date.now();
    expect(await cache.getMany([id])).toEqual([undefined]);
    expect(Date.now() - started).toBeLessThan(NO_HANG_MS); // no wait for a connection that never comes
    expect(cache.stats().available).toBe(false);

    const late = await RedisServer.start(port);
    try {
      await eventually(async () => {
        await cache.setMany([{ id, value: completionResult('late') }]);
        return (await cache.getMany([id]))[0]?.content === 'late';
      });
      expect(cache.stats().available).toBe(true);
    } finally {
      await cache.close();
      await late.stop();
    }
  });
});
