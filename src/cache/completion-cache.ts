import { SpanStatusCode, type Span, type Tracer } from '@opentelemetry/api';
import type { Config } from '../config';
import type { CompletionResult } from '../deepseek/types';
import { noopInstruments, type Instruments } from '../telemetry/instruments';
import type { Logger } from '../telemetry/logger';
import { SKIPPED, StoreBreaker, StoreTimeout, type StoreCircuit } from '../lib/store-breaker';
import { createMemoryStore } from './memory-store';
import { createRedisStore } from './redis-store';
import type { CacheStore, CacheStoreKind } from './store';

export type { CacheStoreKind } from './store';

export interface CacheStats {
  kind: CacheStoreKind;
  /** Ids found (per id asked for, not per round trip). */
  hits: number;
  misses: number;
  /** Entries written successfully. */
  writes: number;
  /** Store calls that failed (timeouts are counted apart). */
  errors: number;
  /** Store calls abandoned after `storeTimeoutMs`. */
  timeouts: number;
  /** Known for memory; null for Redis (counting would cost a round trip). */
  entries: number | null;
  /** False after a failure or timeout, until a store call succeeds again. */
  available: boolean;
  /** The store's own circuit breaker: OPEN while store calls are skipped. */
  circuit: StoreCircuit;
  /** Store calls skipped because the store's circuit was open (or a probe was running). */
  skipped: number;
}

/**
 * The completion cache: one process-wide instance in front of keyv. Every method fails
 * open: a broken or slow store turns into misses and skipped writes, never into an error
 * for the client, because the cache only ever saves upstream calls.
 */
export interface CompletionCache {
  /** One store round trip for all ids; results in id order. Never throws. */
  getMany(ids: readonly string[]): Promise<Array<CompletionResult | undefined>>;
  /** One store round trip; every key gets the configured TTL. Never throws. */
  setMany(entries: ReadonlyArray<{ id: string; value: CompletionResult }>): Promise<void>;
  /** True when an entry was removed; false when there was none or the store failed (logged). */
  delete(id: string): Promise<boolean>;
  /**
   * Apollo's persisted-query (APQ) store on the same backend, under the `apq:` keys Apollo
   * uses, failing open like the rest. Documents over `maxDocumentBytes` are not kept (a
   * document may hold a whole prompt; the store is not for megabytes of it).
   */
  documents(options: { ttlSeconds: number; maxDocumentBytes: number }): DocumentStore;
  stats(): CacheStats;
  close(): Promise<void>;
}

/** Apollo's `KeyValueCache<string>` (the APQ store's contract). */
export interface DocumentStore {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, options?: { ttl?: number | null }): Promise<void>;
  delete(key: string): Promise<boolean>;
}

/** What is stored under a completion id. `v` lets a later format read old entries as misses. */
interface Envelope {
  v: 1;
  result: CompletionResult;
}

function isEnvelope(value: unknown): value is Envelope {
  if (typeof value !== 'object' || value === null) return false;
  const envelope = value as Partial<Envelope>;
  return envelope.v === 1 && typeof envelope.result === 'object' && envelope.result !== null;
}

type Operation = 'getMany' | 'setMany' | 'delete';

const SPAN_NAMES: Record<Operation, string> = { getMany: 'cache getMany', setMany: 'cache setMany', delete: 'cache delete' };

type Outcome<T> = { ok: true; value: T } | { ok: false };

class KeyvCompletionCache implements CompletionCache {
  private hits = 0;
  private misses = 0;
  private writes = 0;
  private errors = 0;
  private timeouts = 0;
  private skipped = 0;
  private available = true;

  constructor(
    private readonly store: CacheStore,
    private readonly ttlMs: number,
    private readonly breaker: StoreBreaker,
    private readonly logger: Logger,
    private readonly tracer: Tracer,
  ) {}

  async getMany(ids: readonly string[]): Promise<Array<CompletionResult | undefined>> {
    if (ids.length === 0) return [];
    const span = this.startSpan('getMany', ids.length);
    const answer = await this.roundTrip('getMany', span, async () => {
      await this.store.ready;
      // One id (most batches): keyv's get, one round trip as its getMany is, at about half
      // its cost in memory (keyv answers getMany with a get per key and Promise.allSettled).
      return ids.length === 1 ? [await this.store.keyv.get<unknown>(ids[0]!)] : this.store.keyv.getMany<unknown>([...ids]);
    });
    const results = ids.map((_, index) => {
      const value = answer.ok ? answer.value[index] : undefined;
      // A copy of the top level: the memory store's entries are frozen, and a caller may
      // set fields on its answer (the nested `usage` stays shared, read-only).
      return isEnvelope(value) ? { ...value.result } : undefined;
    });
    if (answer.ok) {
      const hits = results.filter((result) => result !== undefined).length;
      this.hits += hits;
      this.misses += ids.length - hits;
      span.setAttribute('cache.hits', hits);
    }
    span.end();
    return results;
  }

  async setMany(entries: ReadonlyArray<{ id: string; value: CompletionResult }>): Promise<void> {
    if (entries.length === 0) return;
    const span = this.startSpan('setMany', entries.length);
    const envelopes = entries.map(({ id, value }) => ({ key: id, value: { v: 1, result: value } satisfies Envelope, ttl: this.ttlMs }));
    const answer = await this.roundTrip('setMany', span, async (): Promise<unknown> => {
      await this.store.ready;
      // One entry: keyv's set (see getMany), its boolean answered as setMany's list.
      if (envelopes.length === 1) {
        const [only] = envelopes as [(typeof envelopes)[number]];
        return [await this.store.keyv.set(only.key, only.value, only.ttl)];
      }
      return this.store.keyv.setMany(envelopes);
    });
    if (answer.ok) {
      // keyv answers a boolean per entry when it writes them one by one (memory) but passes
      // on the adapter's `undefined` for a batch write (Redis), which throws on failure.
      const written = answer.value;
      this.writes += Array.isArray(written) ? written.filter(Boolean).length : entries.length;
    }
    span.end();
  }

  async delete(id: string): Promise<boolean> {
    const span = this.startSpan('delete', 1);
    const answer = await this.roundTrip('delete', span, async () => {
      await this.store.ready;
      return this.store.keyv.delete(id);
    });
    span.end();
    return answer.ok && answer.value;
  }

  documents(options: { ttlSeconds: number; maxDocumentBytes: number }): DocumentStore {
    return {
      get: async (key) => {
        const span = this.startSpan('getMany', 1);
        const answer = await this.roundTrip('getMany', span, async () => {
          await this.store.ready;
          return this.store.keyv.get<unknown>(key);
        });
        span.end();
        return answer.ok && typeof answer.value === 'string' ? answer.value : undefined;
      },
      set: async (key, value, setOptions) => {
        if (Buffer.byteLength(value) > options.maxDocumentBytes) return;
        const ttlMs = (setOptions?.ttl ?? options.ttlSeconds) * 1000;
        const span = this.startSpan('setMany', 1);
        await this.roundTrip('setMany', span, async () => {
          await this.store.ready;
          return this.store.keyv.set(key, value, ttlMs);
        });
        span.end();
      },
      delete: (key) => this.delete(key),
    };
  }

  stats(): CacheStats {
    return {
      kind: this.store.kind,
      hits: this.hits,
      misses: this.misses,
      writes: this.writes,
      errors: this.errors,
      timeouts: this.timeouts,
      entries: this.store.entries(),
      available: this.available,
      circuit: this.breaker.state,
      skipped: this.skipped,
    };
  }

  async close(): Promise<void> {
    await this.store.close();
  }

  private startSpan(operation: Operation, keys: number): Span {
    const span = this.tracer.startSpan(SPAN_NAMES[operation]);
    // Attributes only for a span that records: with traces off (the default) each read and
    // write would make and drop them.
    if (span.isRecording()) span.setAttributes({ 'cache.store': this.store.kind, 'cache.operation': operation, 'cache.keys': keys });
    return span;
  }

  /**
   * Runs one store call under the store deadline, through the store's breaker. A failure
   * or timeout is counted, logged and recorded on the span, and answered with
   * `{ ok: false }`: callers never see store errors. While the breaker is open the call is
   * skipped at once. A call that answers after its deadline changes nothing (not even the
   * figures).
   */
  private async roundTrip<T>(operation: Operation, span: Span, work: () => Promise<T>): Promise<Outcome<T>> {
    try {
      // The in-process LRU cannot be slow or unreachable: a deadline and a breaker around
      // it would only cost a timer and a policy per call (3% of a hot answer's CPU).
      const outcome = this.store.kind === 'memory' ? await work() : await this.breaker.run(work);
      if (outcome === SKIPPED) {
        this.skipped += 1;
        span.setAttribute('cache.skipped', true);
        return { ok: false };
      }
      this.markAvailable();
      return { ok: true, value: outcome };
    } catch (error) {
      if (error instanceof StoreTimeout) {
        this.timeouts += 1;
        this.markFailed(operation, new Error(`cache ${operation} timed out after ${error.timeoutMs} ms`));
        span.setStatus({ code: SpanStatusCode.ERROR, message: 'timeout' });
        return { ok: false };
      }
      this.errors += 1;
      this.markFailed(operation, error);
      span.recordException(error instanceof Error ? error : String(error));
      span.setStatus({ code: SpanStatusCode.ERROR });
      return { ok: false };
    }
  }

  private markFailed(operation: Operation, error: unknown): void {
    // One warning per outage; the rest at debug so a dead Redis cannot flood the logs.
    if (this.available) {
      this.logger.warn({ err: error, operation, store: this.store.kind }, 'cache store failed; serving misses until it answers again');
    } else {
      this.logger.debug({ err: error, operation, store: this.store.kind }, 'cache store still failing');
    }
    this.available = false;
  }

  private markAvailable(): void {
    if (!this.available) this.logger.info({ store: this.store.kind }, 'cache store answering again');
    this.available = true;
  }
}

/**
 * Builds the process-wide completion cache: Redis when `redisUrl` is set (shared by
 * replicas), otherwise a bounded in-memory LRU. Both expire entries after `ttlSeconds`.
 * `now` is the clock the in-memory store ages entries with (default `performance.now`);
 * Redis keeps time itself.
 */
export function createCompletionCache(options: {
  config: Config['cache'];
  logger: Logger;
  instruments?: Instruments;
  now?: () => number;
}): CompletionCache {
  const { config, logger } = options;
  const store = config.redisUrl
    ? createRedisStore({ url: config.redisUrl, namespace: config.namespace, logger })
    : createMemoryStore({ maxEntries: config.maxEntries, ttlSeconds: config.ttlSeconds, now: options.now });
  const tracer = (options.instruments ?? noopInstruments()).tracer;
  const breaker = new StoreBreaker({
    threshold: config.breakerThreshold,
    cooldownMs: config.breakerCooldownMs,
    timeoutMs: config.storeTimeoutMs,
    onStateChange: (state) => logger.warn({ store: store.kind, circuit: state }, `cache store circuit ${state}`),
  });
  return new KeyvCompletionCache(store, config.ttlSeconds * 1000, breaker, logger, tracer);
}
