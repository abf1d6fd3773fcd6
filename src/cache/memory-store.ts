import { Keyv } from 'keyv';
import { LRUCache } from 'lru-cache';
import type { CacheStore } from './store';

/**
 * The default store: keyv over an LRU bounded by `maxEntries`. Expiry is enforced twice:
 * the LRU drops entries older than their TTL on read, and keyv checks the `expires` stamp
 * it writes into every value. Values are keyv's serialised strings, so a caller can never
 * change a stored answer through a shared reference.
 *
 * `now` is the clock (in ms) the LRU measures ages with; it defaults to `performance.now`,
 * which the LRU captures when its module loads, out of reach of jest's fake timers. keyv
 * reads `Date.now` for its own check.
 */
export function createMemoryStore(options: { maxEntries: number; ttlSeconds: number; now?: () => number }): CacheStore {
  const { now } = options;
  const lru = new LRUCache<string, string>({
    max: options.maxEntries,
    ttl: options.ttlSeconds * 1000,
    ...(now ? { perf: { now } } : {}),
  });
  // keyv calls `store.set(key, value, ttlMs)`, but LRUCache takes `{ ttl }` as its third
  // argument (and throws on a number), so it gets this small Map-like adapter.
  const adapter = {
    get: (key: string): string | undefined => lru.get(key),
    set: (key: string, value: string, ttl?: number): boolean => {
      lru.set(key, value, { ttl });
      return true;
    },
    delete: (key: string): boolean => lru.delete(key),
    clear: (): void => lru.clear(),
  };
  // No namespace: the LRU belongs to this cache alone, so a prefix would only cost memory.
  const keyv = new Keyv({
    store: adapter,
    namespace: undefined,
    useKeyPrefix: false,
    ttl: options.ttlSeconds * 1000,
    throwOnErrors: true,
  });
  keyv.on('error', () => undefined);
  return {
    kind: 'memory',
    keyv,
    ready: Promise.resolve(),
    entries: () => lru.size,
    close: async () => {
      lru.clear();
    },
  };
}
