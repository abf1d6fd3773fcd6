import type { Context } from '@opentelemetry/api';
import type { Instruments } from '../telemetry/instruments';
import type { RequestLedger } from '../telemetry/ledger';
import type { CompletionCache } from '../cache/completion-cache';
import type { CompletionResult, DeepSeekApi, FinishReason, Usage } from '../deepseek/types';
import type { Logger } from '../telemetry/logger';
import type { JoinRunning, QuotaPayer } from '../batching/types';
import type { ClusterLeases } from '../cluster/leases';

/** One piece of a streamed completion, as every subscriber of a stream receives it. */
export interface StreamChunk {
  /** Content address of the request: the cache key and the `Completion.id` a query returns. */
  id: string;
  /** Position in the stream, from 0. */
  index: number;
  model: string;
  /** Answer text this chunk adds ('' on reasoning chunks and on the last chunk). */
  delta: string;
  /** Reasoning text this chunk adds (thinking mode); null when it adds none. */
  reasoningDelta: string | null;
  /**
   * On the last chunk only: why the completion ended, its usage, and the whole finished
   * completion (live or replayed from the cache), so a client cache can keep the answer
   * as the `Completion` a query returns (with `id`). The result is one object shared by
   * every subscriber of the stream; it is not counted against the buffer cap.
   */
  finish?: { reason: FinishReason; usage: Usage; result: CompletionResult };
  /** True when the chunks are replayed from the cache (no upstream call for this stream). */
  cached: boolean;
}

/** What a subscription hands the hub besides its request and cache policy (all optional). */
export interface SubscribeOptions {
  /** The subscription's operation span: parent of an upstream stream it starts. */
  traceContext?: Context;
  /**
   * Whose streams and stored answers the subscription may share (the caller's tenant with
   * CACHE_SCOPE=tenant); undefined = the global scope.
   */
  cacheScope?: string;
  /**
   * The operation's cost ledger, recorded into like a query's: a cache replay is a cache
   * hit, joining a running stream (or a query's call) a joined call, starting one an upstream
   * call whose usage is this subscription's cost when it finishes; the time until the
   * upstream answer is complete (or the subscriber leaves) is upstream wait.
   */
  ledger?: RequestLedger;
  /**
   * The caller's quota account: an upstream stream the subscription starts first reserves
   * its worst case there (a refusal fails the subscription before anything is sent), and
   * settles it with the stream's usage, or with the output streamed so far if it fails.
   */
  quota?: QuotaPayer;
}

export interface StreamHubOptions {
  cache: CompletionCache;
  /** Streams chat and FIM alike (`completeStream` dispatches on the request's kind). */
  upstream: Pick<DeepSeekApi, 'completeStream'>;
  logger: Logger;
  /**
   * The coalescer's lookup (`CompletionService.joinCall`): a subscription whose key has a
   * query's upstream call running waits for it and is replayed its answer, instead of
   * making a second upstream call. Optional: without it streams never wait on queries.
   */
  joinCall?: JoinRunning;
  /**
   * Most a shared stream keeps, in estimated bytes (see `BufferCost`). Below it the whole
   * completion so far is kept, so a late joiner can be replayed from the start. Above it
   * the stream stops taking joiners (an identical subscription starts its own upstream
   * stream), chunks every subscriber has passed are released, and a subscriber more than
   * this far behind is ended with OVERLOADED. Default 1 MiB (STREAM_MAX_BUFFERED_BYTES).
   */
  maxBufferedBytes?: number;
  /** Overhead counted per buffered chunk (default `CHUNK_OVERHEAD_BYTES`). */
  chunkOverheadBytes?: number;
  /** Largest text of one chunk when a cached answer is replayed. Default 4096. */
  replayChunkChars?: number;
  /**
   * Most subscriptions this replica serves at once (MAX_STREAMS); default 1000
   * (`DEFAULT_MAX_STREAMS`). Counted per subscriber, not per upstream stream: a replica's
   * memory and sockets follow its subscribers (a thousand subscribers of one shared stream
   * cost a thousand cursors and socket buffers), and every subscription counts from
   * `subscribe` until it ends, whether it follows a live stream, replays the cache or waits
   * on a query's call. Queries waiting on a stream are not counted. A subscription beyond it
   * fails at once with OVERLOADED (`extensions.limit: 'MAX_STREAMS'`), counted in
   * `refusedOverloaded`.
   */
  maxStreams?: number;
  /** Tracer for the `stream hub upstream` spans (default: record nothing). */
  instruments?: Instruments;
  /**
   * Streams shared with the other replicas through Redis (src/cluster): a stream started
   * here first claims the key; another replica's running stream is followed from its first
   * chunk instead of started again, and a stream other replicas follow is aborted only
   * when nobody anywhere reads it.
   */
  cluster?: ClusterLeases;
}

export interface StreamHubStats {
  /** Shared upstream streams open now (streaming, or storing their answer). */
  activeStreams: number;
  /** Subscribers attached to those streams. */
  subscribers: number;
  /** Upstream streams started since start. */
  upstreamStreams: number;
  /** Subscriptions that joined a stream another subscription had started. */
  joined: number;
  /** Subscriptions that waited on a query's upstream call and were replayed its answer. */
  joinedCalls: number;
  /** Query loads that waited on a running stream's answer (`joinStream`). */
  joinedByQueries: number;
  /** Subscriptions answered by replaying a cached completion. */
  cacheReplays: number;
  /** Upstream streams aborted because every subscriber had gone. */
  abandoned: number;
  /** Subscribers ended because they fell more than `maxBufferedBytes` behind. */
  droppedSlow: number;
  /** Subscriptions open now, whatever they read (what `maxStreams` caps). */
  openSubscriptions: number;
  /** Subscriptions refused with OVERLOADED because `maxStreams` were open. */
  refusedOverloaded: number;
}

