import type { ClusterStats } from '../cluster/leases';
import type { CompletionRequest, CompletionResult, Usage } from '../deepseek/types';

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

/**
 * A result as one field's view. Written field by field, not `{ ...result, id, cached }`:
 * on Node 20's V8 that spread costs about 30 times a literal and gives every view a hidden
 * class of its own (see `withRequest` in src/transport/types.ts). The mapped type makes a
 * field added to `CompletionResult` a compile error here until it is copied too.
 */
export function completionView(result: CompletionResult, id: string, cached: boolean): CompletionView {
  const view: { [K in keyof Required<CompletionView>]: CompletionView[K] } = {
    model: result.model,
    content: result.content,
    reasoningContent: result.reasoningContent,
    finishReason: result.finishReason,
    usage: result.usage,
    createdAt: result.createdAt,
    upstreamId: result.upstreamId,
    traceId: result.traceId,
    id,
    cached,
  };
  return view;
}

/**
 * Upstream work another part of the process runs right now (the coalescer's call for a
 * query, the stream hub's upstream stream), joined by ONE waiter of the other part, so a
 * query and a stream for the same store key make one upstream call whichever starts first.
 * The joiner counts as a waiter of that work until the work settles or the joiner leaves:
 * the upstream is aborted only when its last waiter of either kind has gone.
 */
export interface JoinedCompletion {
  /** Settles with the finished completion, or with the call's or stream's failure. */
  readonly result: Promise<CompletionResult>;
  /** This joiner no longer wants the answer (idempotent; a no-op once `result` settled). */
  leave(): void;
}

/**
 * Looks up the work running for a store key (`cacheKey`) and joins it; undefined when none
 * runs. `store`: the joiner's policy keeps the answer (USE, REFRESH), so the work stores it
 * even if its own waiters all said BYPASS. Injected across layers (wired in `app.ts`), so
 * neither batching nor streaming imports the other.
 */
export type JoinRunning = (key: string, options: { store: boolean }) => JoinedCompletion | undefined;

export interface CompletionLoadKey {
  request: CompletionRequest;
  policy: CachePolicy;
}

export interface CoalescingStats {
  /** Upstream calls started. */
  upstreamCalls: number;
  /** Loads that joined an upstream call (or stream) already in flight instead of starting one. */
  joinedInFlight: number;
  /** Of those, loads that waited for a running stream's answer (`joinStream`). */
  joinedStreams: number;
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
  /** Coalescing across replicas (REDIS_URL); undefined when this replica coalesces alone. */
  cluster?: ClusterStats;
}

/** A reserved upstream call (src/quotas `Reservation`): settled with its usage, or released. */
export interface QuotaHold {
  settle(result: { model: string; usage: Usage }): void;
  /** The call failed or was cut after `outputBytes` of output. */
  release(outputBytes?: number): void;
}

/**
 * The quota account that pays for the upstream calls an operation starts (src/quotas
 * `QuotaAccount`, seen from the layers that make calls): `reserve` is called before each
 * call and throws a `QuotaExceededError` when the call would cross a limit.
 */
export interface QuotaPayer {
  /** Hashed account id: a refusal names it, so callers who only joined are not refused by it. */
  readonly key: string;
  reserve(request: CompletionRequest): Promise<QuotaHold | undefined>;
}
