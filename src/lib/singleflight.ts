/**
 * In-flight work by key, so identical work running at the same time is done once. It
 * keeps nothing after the work: an entry is removed when its owner says so (`forget`), or
 * when its promise settles (`run`). `forget` only removes the entry it is given, so a
 * stale owner can never remove a newer entry registered under the same key.
 *
 * Used for the coalescer's upstream calls, the stream hub's shared streams and its cache
 * lookups: one instance per use, owned by the object that holds the work.
 */
export class Singleflight<K, V> {
  readonly #entries = new Map<K, V>();

  /** The entry running under `key`, if any. */
  get(key: K): V | undefined {
    return this.#entries.get(key);
  }

  /** Registers `value` as the work under `key` (replacing a finished one the owner kept). */
  set(key: K, value: V): V {
    this.#entries.set(key, value);
    return value;
  }

  /** The running entry under `key`, or the one `start` makes, registered before it returns. */
  join(key: K, start: () => V): V {
    const running = this.#entries.get(key);
    return running === undefined ? this.set(key, start()) : running;
  }

  /** Removes `value` from `key` unless a newer entry replaced it. True when it was removed. */
  forget(key: K, value: V): boolean {
    if (this.#entries.get(key) !== value) return false;
    this.#entries.delete(key);
    return true;
  }

  get size(): number {
    return this.#entries.size;
  }

  values(): IterableIterator<V> {
    return this.#entries.values();
  }
}

/**
 * Runs `work` once per key at a time: a call while the key's promise is pending gets that
 * promise; the entry is removed as soon as it settles, so a later call runs afresh.
 */
export function dedupe<K, T>(flights: Singleflight<K, Promise<T>>, key: K, work: () => Promise<T>): Promise<T> {
  const running = flights.get(key);
  if (running) return running;
  const promise = work().finally(() => flights.forget(key, promise));
  return flights.set(key, promise);
}
