import { context } from '@opentelemetry/api';
import DataLoader from 'dataloader';
import type { Config } from '../config';
import type { CompletionCache } from '../cache/completion-cache';
import { cacheKey, completionId, isCompletionId } from '../cache/key';
import type { DeepSeekApi } from '../deepseek/types';
import type { Instruments } from '../telemetry/instruments';
import type { Logger } from '../telemetry/logger';
import type { ClusterLeases } from '../cluster/leases';
import { Coalescer } from './coalescer';
import type { OperationScope } from './request-scope';
import { toError } from '../lib/abort';
import {
  CACHE_POLICIES,
  completionView,
  type CoalescingStats,
  type CompletionLoadKey,
  type CompletionView,
  type JoinedCompletion,
  type JoinRunning,
} from './types';

export type { CachePolicy, CoalescingStats, CompletionLoadKey, CompletionView, JoinedCompletion, JoinRunning, QuotaHold, QuotaPayer } from './types';

/** The loaders of ONE GraphQL operation (see `CompletionService.createLoaders`). */
export interface RequestLoaders {
  /**
   * Per-request DataLoader: dedupes identical (id, policy) keys inside one operation
   * (aliases, `completions` lists, entity representations). Results in key order, an
   * Error in the slot of a failed key; failures are never memoised.
   */
  completion: DataLoader<CompletionLoadKey, CompletionView, string>;
  /** Cache-only lookup by id (federation entity resolution): unknown or malformed id → null, never an upstream call. */
  byId: DataLoader<string, CompletionView | null>;
  /** Removes an entry; true if one existed. Also clears this operation's memo for it. */
  evict(id: string): Promise<boolean>;
}

function memoKey(key: CompletionLoadKey): string {
  return `${key.policy}:${completionId(key.request)}`;
}

/**
 * The read-through path from resolvers to DeepSeek. ONE instance per process, shared by
 * every request: it owns the shared coalescer (in-flight singleflight + batch window).
 * Each operation gets its own loaders from `createLoaders`.
 */
export class CompletionService {
  private readonly coalescer: Coalescer;
  private readonly cache: CompletionCache;

  constructor(options: {
    cache: CompletionCache;
    upstream: Pick<DeepSeekApi, 'complete'>;
    logger: Logger;
    batching: Config['batching'];
    /** Tracer and meter for the coalescer's spans and batch metrics (default: record nothing). */
    instruments?: Instruments;
    /**
     * The stream hub's lookup (`StreamHub.joinStream`): a load whose key has a stream running
     * waits for its answer instead of making a second upstream call. Optional: without it
     * queries never wait on streams.
     */
    joinStream?: JoinRunning;
    /** Leases shared with the other replicas (src/cluster): one upstream call per question across them all. */
    cluster?: ClusterLeases;
  }) {
    this.cache = options.cache;
    this.coalescer = new Coalescer(options);
  }

  /**
   * Builds the PER-REQUEST loaders: call once per GraphQL operation, when its context is
   * built, with the operation's abort signal, cost ledger and trace context (the parent of
   * the upstream calls its loads start).
   *
   * Their memo lives exactly as long as the operation. It must not outlive it: a later
   * operation would otherwise keep seeing an answer that has since been refreshed or
   * evicted. Everything shared across operations is in the coalescer, which memoises
   * nothing but the calls running now.
   */
  createLoaders(operation: OperationScope = {}): RequestLoaders {
    return new OperationLoaders(this.coalescer, this.cache, operation);
  }

  /**
   * For the stream hub (wired in `app.ts` as its `joinCall`): the query call running for
   * store key `key`, joined by one subscription that will replay its answer as a stream.
   */
  joinCall(key: string, options: { store: boolean }): JoinedCompletion | undefined {
    return this.coalescer.joinCall(key, options);
  }

  stats(): CoalescingStats {
    return this.coalescer.stats();
  }
}

/**
 * The loaders of one operation (see `CompletionService.createLoaders`). A class, so that
 * `byId`, which only entity resolution (a router's `_entities`) uses, is made on first use
 * without a closure per operation: every operation builds one of these.
 */
class OperationLoaders implements RequestLoaders {
  readonly completion: DataLoader<CompletionLoadKey, CompletionView, string>;
  /** An explicit memo map, so `evict` can drop an id under every policy at once. */
  readonly #memo = new Map<string, Promise<CompletionView>>();
  readonly #operation: OperationScope;
  readonly #coalescer: Coalescer;
  readonly #cache: CompletionCache;
  #byId: DataLoader<string, CompletionView | null> | undefined;

  constructor(coalescer: Coalescer, cache: CompletionCache, operation: OperationScope) {
    this.#coalescer = coalescer;
    this.#cache = cache;
    this.#operation = operation;
    const scope = coalescer.scope(operation);
    const completion: DataLoader<CompletionLoadKey, CompletionView, string> = new DataLoader(
      (keys: readonly CompletionLoadKey[]) => {
        // The whole batch goes to the shared coalescer, which batches it again with the
        // loads of concurrent operations. A promise chain, not an async frame held until
        // the answers are in; one key (most operations) without Promise.all's machinery.
        // DataLoader memoises rejected slots too; a failure must be retried next time.
        if (keys.length === 1) {
          const key = keys[0]!;
          return scope.load(key.request, key.policy).then(
            (view) => [view],
            (error: unknown) => {
              completion.clear(key);
              return [toError(error)];
            },
          );
        }
        return Promise.all(keys.map((key) => scope.load(key.request, key.policy).catch(toError))).then((results) => {
          results.forEach((result, index) => {
            if (result instanceof Error) completion.clear(keys[index]!);
          });
          return results;
        });
      },
      { cacheKeyFn: memoKey, cacheMap: this.#memo, name: 'completion' },
    );
    this.completion = completion;
  }

  get byId(): DataLoader<string, CompletionView | null> {
    return (this.#byId ??= this.#createById());
  }

  async evict(id: string): Promise<boolean> {
    this.#forget(id);
    if (!isCompletionId(id)) return false;
    const removed = await this.#cache.delete(cacheKey(id, this.#operation.cacheScope));
    // A load of this id started while the delete was on its way may have memoised
    // the old answer: forget again.
    this.#forget(id);
    return removed;
  }

  #createById(): DataLoader<string, CompletionView | null> {
    const { ledger, traceContext, cacheScope } = this.#operation;
    const coalescer = this.#coalescer;
    return new DataLoader<string, CompletionView | null>(
      async (ids: readonly string[]) => {
        // A malformed id cannot be in the store: answer null without a round trip. Only the
        // operation's own cache scope is looked in (another tenant's answer stays unseen).
        const wellFormed = [...new Set(ids.filter(isCompletionId))];
        // The cache span belongs to this operation's trace.
        const found = await context.with(traceContext ?? context.active(), () =>
          coalescer.lookup(wellFormed.map((id) => cacheKey(id, cacheScope))),
        );
        ledger?.recordCacheHits(found.size);
        return ids.map((id) => {
          const result = found.get(cacheKey(id, cacheScope));
          return result ? completionView(result, id, true) : null;
        });
      },
      { name: 'completionById' },
    );
  }

  #forget(id: string): void {
    for (const policy of CACHE_POLICIES) this.#memo.delete(`${policy}:${id}`);
    this.#byId?.clear(id);
  }
}
