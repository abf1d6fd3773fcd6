import { connectRedisClient, type OwnedRedisClient } from '../../src/lib/redis-client';
import { CounterStore } from '../../src/quotas/counters';
import { silentLogger } from '../../src/telemetry/logger';
import { RedisServer } from '../cache/redis-server';
import { waitFor } from '../helpers/wait';

function localStore(now?: () => number): CounterStore {
  return new CounterStore({ replicas: 1, timeoutMs: 250, keyPrefix: 'test', openTtlSec: 120, logger: silentLogger(), now });
}

describe('quota counters in this process', () => {
  it('answers a count at once, without a promise, when it is counted in this process', () => {
    const counter = localStore().counter('tokensPerDay', 10, 'day');
    const taken = counter.take('acct', 6, true);
    expect(taken).not.toBeInstanceOf(Promise);
    expect(taken).toMatchObject({ ok: true, backend: 'local', points: 6 });
    expect(counter.take('acct', 6, true)).toMatchObject({ ok: false });
    // The refused count was given back at once: 4 points are still free.
    expect(counter.take('acct', 4, true)).toMatchObject({ ok: true });
  });

  it('admits exactly the limit per window, and a refused count says when the window renews', async () => {
    const counter = localStore().counter('requestsPerMinute', 3, 'minute');
    const outcomes = await Promise.all(Array.from({ length: 5 }, () => counter.take('acct', 1, false)));
    expect(outcomes.filter((o) => o.ok)).toHaveLength(3);
    const refused = outcomes.find((o) => !o.ok);
    expect(refused && !refused.ok && refused.retryAfterMs).toBeGreaterThan(50_000);
    expect(refused && !refused.ok && refused.retryAfterMs).toBeLessThanOrEqual(60_000);
    // Another account has its own count.
    expect((await counter.take('other', 1, false)).ok).toBe(true);
  });

  it('gives a refused reservation back, so a smaller one still fits', async () => {
    const counter = localStore().counter('tokensPerDay', 1000, 'day');
    expect((await counter.take('acct', 600, true)).ok).toBe(true);
    expect((await counter.take('acct', 600, true)).ok).toBe(false);
    expect((await counter.read('acct')).used).toBe(600);
    expect((await counter.take('acct', 400, true)).ok).toBe(true);
    expect((await counter.take('acct', 1, true)).ok).toBe(false);
  });

  it('counts a budget per UTC calendar day and renews it at midnight', async () => {
    let now = Date.UTC(2026, 10, 30, 23, 59, 0);
    const counter = localStore(() => now).counter('tokensPerDay', 10, 'day');
    const taken = await counter.take('acct', 10, true);
    expect(taken.ok).toBe(true);
    const refused = await counter.take('acct', 1, true);
    expect(refused).toEqual({ ok: false, retryAfterMs: 60_000 });
    now = Date.UTC(2026, 11, 1, 0, 0, 1);
    expect((await counter.take('acct', 10, true)).ok).toBe(true);
    // A correction of yesterday's count is dropped: it must not credit today's.
    if (taken.ok) await counter.correct(taken, -10);
    expect((await counter.take('acct', 1, true)).ok).toBe(false);
  });

  it('keys each count by the day of its own moment, whichever order the moments come in', async () => {
    let now = Date.UTC(2026, 11, 1, 0, 0, 0);
    const counter = localStore(() => now).counter('tokensPerDay', 10, 'day');
    expect((await counter.take('acct', 10, true)).ok).toBe(true);
    // The last millisecond of the day before (another replica's clock, say) is another day.
    now = Date.UTC(2026, 11, 1) - 1;
    expect(await counter.take('acct', 10, true)).toMatchObject({ ok: true, windowEndsAt: Date.UTC(2026, 11, 1) });
    expect(await counter.take('acct', 1, true)).toEqual({ ok: false, retryAfterMs: 1 });
    now = Date.UTC(2026, 11, 1, 23, 59, 59, 999);
    expect(await counter.take('acct', 1, true)).toEqual({ ok: false, retryAfterMs: 1 });
    now = Date.UTC(2027, 0, 1, 0, 0, 0);
    expect(await counter.take('acct', 10, true)).toMatchObject({ ok: true, windowEndsAt: Date.UTC(2027, 0, 2) });
  });

  it('renews a month budget on the first of the next month', async () => {
    const now = Date.UTC(2026, 10, 30, 12, 0, 0);
    const counter = localStore(() => now).counter('usdPerMonth', 5, 'month');
    await counter.take('acct', 5, true);
    expect(await counter.take('acct', 1, true)).toEqual({ ok: false, retryAfterMs: 12 * 3_600_000 });
  });

  it('keeps a month count in memory for the whole month (beyond what a Node timer can hold)', async () => {
    jest.useFakeTimers({ now: Date.UTC(2026, 10, 1, 0, 0, 0) });
    try {
      const counter = localStore().counter('usdPerMonth', 5, 'month');
      expect((await counter.take('acct', 5, true)).ok).toBe(true);
      jest.advanceTimersByTime(29 * 86_400_000);
      expect((await counter.take('acct', 1, true)).ok).toBe(false);
      jest.advanceTimersByTime(2 * 86_400_000);
      expect((await counter.take('acct', 5, true)).ok).toBe(true);
    } finally {
      jest.useRealTimers();
    }
  });
});

describe('quota counters shared through Redis', () => {
  let redis: RedisServer;
  const clients: OwnedRedisClient[] = [];

  /** One replica's counters, once its client has connected. */
  async function replica(replicas = 2, timeoutMs = 250): Promise<CounterStore> {
    const owned = connectRedisClient({ url: redis.url, logger: silentLogger(), name: 'test' });
    clients.push(owned);
    await owned.ready;
    return new CounterStore({ redis: owned.client, replicas, timeoutMs, keyPrefix: 'test', openTtlSec: 120, logger: silentLogger() });
  }

  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    redis.resume();
    await redis.start().catch(() => undefined);
    await redis.cli('FLUSHALL');
  });
  afterAll(async () => {
    await redis.stop();
  });

  it('two replicas admit exactly the limit between them, whatever the interleaving', async () => {
    const [a, b] = await Promise.all([replica(), replica()]);
    const limit = 25;
    const counters = [a.counter('requestsPerMinute', limit, 'minute'), b.counter('requestsPerMinute', limit, 'minute')];
    const outcomes = await Promise.all(Array.from({ length: 80 }, (_, i) => counters[i % 2].take('tenant-x', 1, false)));
    expect(outcomes.filter((o) => o.ok)).toHaveLength(limit);
    expect(a.fallbacks + b.fallbacks).toBe(0);
    // The count is in Redis under a hashed-looking key, not in either process.
    expect(await redis.cli('GET', 'test:requestsPerMinute:tenant-x')).toBe('80');
  });

  it('falls back to this replica\'s share while Redis is down, then rejoins the shared count', async () => {
    const store = await replica(4);
    const counter = store.counter('requestsPerMinute', 10, 'minute');
    await redis.stop();
    const outcomes = [];
    for (let i = 0; i < 6; i += 1) outcomes.push(await counter.take('acct', 1, false));
    // ceil(10 / 4) = 3: never unlimited, never refusing everything.
    expect(outcomes.map((o) => o.ok)).toEqual([true, true, true, false, false, false]);
    expect(store.fallbacks).toBe(6);
    expect(store.circuit).not.toBe('CLOSED');
    await redis.start();
    await waitFor(async () => {
      await counter.read('acct');
      return store.circuit === 'CLOSED';
    }, { intervalMs: 200, what: 'the counters to use Redis again' });
    expect((await counter.take('acct', 1, false)).ok).toBe(true);
    expect(await redis.cli('GET', 'test:requestsPerMinute:acct')).toBe('1');
  });

  it('a Redis that stops answering costs a bounded wait, then the local share answers', async () => {
    const store = await replica(1, 200);
    const counter = store.counter('upstreamCallsPerMinute', 2, 'minute');
    expect((await counter.take('warm', 1, false)).ok).toBe(true);
    expect(store.fallbacks).toBe(0);
    redis.pause();
    const outcomes = await Promise.all([counter.take('acct', 1, false), counter.take('acct', 1, false), counter.take('acct', 1, false)]);
    expect(outcomes.map((o) => o.ok).sort()).toEqual([false, true, true]);
    expect(store.fallbacks).toBe(3);
  });
});
