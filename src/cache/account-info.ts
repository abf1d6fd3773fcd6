import type { Context } from '@opentelemetry/api';
import type { Balance, DeepSeekApi, ModelInfo } from '../deepseek/types';
import { dedupe, Singleflight } from '../lib/singleflight';

interface Entry<T> {
  value: T;
  expiresAt: number;
}

/**
 * The account's model list and balance, kept for `ttlMs` (ONE instance per process).
 * Both are read live from DeepSeek and change rarely; without this, 20 aliased `models`
 * fields in one operation made 21 upstream calls. Concurrent reads share one call, which
 * runs without any one caller's abort signal (its own deadline bounds it). A failure is
 * never kept.
 */
export class AccountInfoCache {
  readonly #upstream: Pick<DeepSeekApi, 'models' | 'balance'>;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #kept = new Map<'models' | 'balance', Entry<unknown>>();
  readonly #calls = new Singleflight<'models' | 'balance', Promise<unknown>>();

  constructor(options: { upstream: Pick<DeepSeekApi, 'models' | 'balance'>; ttlMs: number; now?: () => number }) {
    this.#upstream = options.upstream;
    this.#ttlMs = options.ttlMs;
    this.#now = options.now ?? Date.now;
  }

  models(traceContext?: Context): Promise<ModelInfo[]> {
    return this.#read('models', () => this.#upstream.models({ traceContext }));
  }

  balance(traceContext?: Context): Promise<Balance> {
    return this.#read('balance', () => this.#upstream.balance({ traceContext }));
  }

  #read<T>(key: 'models' | 'balance', fetch: () => Promise<T>): Promise<T> {
    const kept = this.#kept.get(key);
    if (kept && kept.expiresAt > this.#now()) return Promise.resolve(kept.value as T);
    return dedupe(this.#calls, key, async () => {
      const value = await fetch();
      if (this.#ttlMs > 0) this.#kept.set(key, { value, expiresAt: this.#now() + this.#ttlMs });
      return value;
    }) as Promise<T>;
  }
}
