import type { CompletionRequest, CompletionResult } from '../deepseek/types';

/** USE: read and write the cache; BYPASS: neither; REFRESH: no read, write the new answer. */
export type CachePolicy = 'USE' | 'BYPASS' | 'REFRESH';

export const CACHE_POLICIES: readonly CachePolicy[] = ['USE', 'BYPASS', 'REFRESH'];

/** A completion as a field resolves it. */
export interface CompletionView extends CompletionResult {
  /** Content address of the request (see `completionId`). */
  id: string;
  /** True exactly when no upstream call was made for this field (a cache hit). */
  cached: boolean;
}

export interface CompletionLoadKey {
  request: CompletionRequest;
  policy: CachePolicy;
}

export interface CoalescingStats {
  /** Upstream calls started. */
  upstreamCalls: number;
  /** Loads that joined an upstream call already in flight instead of starting one. */
  joinedInFlight: number;
  /** Coalescer batches run (each makes at most one cache read and one cache write). */
  batches: number;
  /** Loads per batch, on average since start. */
  meanBatchSize: number;
  /** Upstream calls in flight now. */
  inFlight: number;
  /** Loads answered from the cache (per load, including entity lookups by id). */
  cacheHits: number;
  /** Loads that read the cache and found nothing. */
  cacheMisses: number;
}
