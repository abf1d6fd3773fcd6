import type { Keyv } from 'keyv';

export type CacheStoreKind = 'memory' | 'redis';

/**
 * A keyv instance plus what the completion cache needs to know about the store behind it.
 * Keys given to `keyv` are completion ids; the store adds its own namespace (exactly one).
 */
export interface CacheStore {
  readonly kind: CacheStoreKind;
  readonly keyv: Keyv;
  /**
   * Settles once the store has made its first connection attempt, either way. Calls made
   * during start-up wait for it (within the store deadline) instead of failing as offline.
   */
  readonly ready: Promise<void>;
  /** Number of entries held, when the store can tell cheaply (memory); otherwise null. */
  entries(): number | null;
  /** Releases connections and timers; safe to call twice. */
  close(): Promise<void>;
}
