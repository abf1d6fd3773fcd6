import type { Context, Tracer } from '@opentelemetry/api';
import { isStorable } from '../deepseek/provider';
import { cacheKey, completionId } from '../cache/key';
import type { CompletionRequest, DeepSeekApi } from '../deepseek/types';
import { ErrorCode, GatewayError, QuotaExceededError } from '../errors';
import { noopInstruments } from '../telemetry/instruments';
import type { EndWait, RequestLedger } from '../telemetry/ledger';
import { abortError, toError } from '../lib/abort';
import { afterRequestsWritten } from '../lib/after-writes';
import { Singleflight } from '../lib/singleflight';
import type { CachePolicy, JoinedCompletion, JoinRunning, QuotaHold, QuotaPayer } from '../batching/types';
import type { ClusterLeases } from '../cluster/leases';
import { Cursor } from './cursor';
import { pump } from './pump';
import { replayStream } from './replay';
import { CHUNK_OVERHEAD_BYTES, SharedStream, type BufferCost } from './shared-stream';
import { StreamCache } from './stream-cache';
import type { StreamHubOptions, StreamHubStats, SubscribeOptions } from './types';

export type { StreamChunk, StreamHubOptions, StreamHubStats, SubscribeOptions } from './types';

const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024;
const DEFAULT_REPLAY_CHUNK_CHARS = 4096;
/** How often a mirrored stream nobody here reads checks whether another replica still follows it. */
const FOLLOWER_CHECK_MS = 1_000;
/** Open subscriptions per replica unless `maxStreams` says otherwise (see `StreamHubOptions`). */
export const DEFAULT_MAX_STREAMS = 1000;

/** One subscription, as the hub places it: on a running stream or call, a replay, or a new stream. */
interface Subscriber {
  readonly id: string;
  readonly key: string;
  readonly request: CompletionRequest;
  readonly policy: CachePolicy;
  readonly cursor: Cursor;
  readonly traceContext: Context | undefined;
  readonly ledger: RequestLedger | undefined;
  readonly quota: QuotaPayer | undefined;
  /** Set when this subscription starts the upstream stream (its set-up is then held for it). */
  started: boolean;
}

function shuttingDown(): GatewayError {
  return new GatewayError(ErrorCode.OVERLOADED, 'The gateway is shutting down; subscribe again shortly.');
}

/** A quota refusal of work another account started (so not `sub`'s own refusal). */
function foreignRefusal(error: unknown, sub: Subscriber): boolean {
  return error instanceof QuotaExceededError && error.payer !== sub.quota?.key;
}

/** Ends `endWait` when `settled` settles or the subscriber ends, whichever comes first. */
function waitUntil(endWait: EndWait | undefined, cursor: Cursor, settled: Promise<unknown>): void {
  if (!endWait) return;
  cursor.onEnd(endWait);
  settled.then(endWait, endWait);
}

/**
 * Process-wide fan-out of streamed completions (ONE instance per process, SHARED by every
 * subscription). Subscriptions to the same completion id share ONE upstream stream: a
 * joiner is replayed the buffered chunks first, then follows live. The upstream is aborted
 * when its last subscriber (or query waiting on it) leaves. A finished stream is stored in
 * the completion cache under the id a query uses, and a cached answer is replayed as a
 * stream. Per subscriber there is only a cursor; see `SharedStream` for what is shared and
 * how the buffer is bounded.
 *
 * Queries and streams share upstream work both ways, by store key: a subscription whose key
 * has a query's call running waits for that call and is replayed its answer (`joinCall`,
 * injected), and a query waits for a running stream's answer through `joinStream`.
 *
 * `streams` holds the joinable streams by key; an entry goes when its stream settles (after
 * the cache write), is abandoned, or outgrows its buffer, so a later subscription either
 * joins a running stream or finds the stored answer. `upstreams` holds every stream still
 * streaming, joinable or not: a query needs only the answer, never the buffer.
 */
export class StreamHub {
  private readonly streams = new Singleflight<string, SharedStream>();
  private readonly upstreams = new Singleflight<string, SharedStream>();
  /** Every stream whose upstream is open, joinable or not (for `close`). */
  private readonly open = new Set<SharedStream>();
  /** The store key (`cacheKey`: id in its cache scope) of each stream this hub started. */
  private readonly keys = new WeakMap<SharedStream, string>();
  private readonly cache: StreamCache;
  private readonly upstream: Pick<DeepSeekApi, 'completeStream'>;
  private readonly joinCall: JoinRunning | undefined;
  private readonly bufferCost: BufferCost;
  private readonly replayChunkChars: number;
  private readonly tracer: Tracer;
  private readonly maxStreams: number;
  private readonly cluster: ClusterLeases | undefined;
  private closed = false;
  /** Subscriptions from `subscribe` until they end, whatever they read (the `maxStreams` count). */
  private openSubscriptions = 0;
  private refusedOverloaded = 0;
  private upstreamStreams = 0;
  private joined = 0;
  private joinedCalls = 0;
  private joinedByQueries = 0;
  private cacheReplays = 0;
  private abandoned = 0;
  private droppedSlow = 0;

  constructor(options: StreamHubOptions) {
    this.cache = new StreamCache(options.cache, options.logger);
    this.upstream = options.upstream;
    this.joinCall = options.joinCall;
    this.bufferCost = {
      maxBufferedBytes: options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES,
      chunkOverheadBytes: options.chunkOverheadBytes ?? CHUNK_OVERHEAD_BYTES,
    };
    this.replayChunkChars = Math.max(1, options.replayChunkChars ?? DEFAULT_REPLAY_CHUNK_CHARS);
    this.tracer = (options.instruments ?? noopInstruments()).tracer;
    this.maxStreams = options.maxStreams ?? DEFAULT_MAX_STREAMS;
    this.cluster = options.cluster;
  }

  /**
   * The chunks of `request`'s completion (chat or FIM) for one subscriber. Any policy joins
   * a running identical stream, else a query's running call (replayed when it ends). USE:
   * then a stored answer is replayed, else a stream is started and its answer stored.
   * REFRESH: never reads the cache, stores the answer. BYPASS: neither. A failure rejects
   * `next()` after the chunks buffered before it; `return()` unsubscribes at once. See
   * `SubscribeOptions` for the trace context, the cache scope and the cost ledger (recorded
   * like a query's: a replay is a cache hit, a joined stream or call a joined call, a
   * started stream an upstream call with its usage; the wait is upstream time).
   *
   * The subscriber's `setUp` is pending while this subscription may start the upstream
   * stream itself (its cache read if answered within this turn, then the start): its caller
   * waits for it before the rest of its set-up (for the transports, the response's headers
   * and their own bookkeeping), which then runs while the upstream works, instead of before
   * the upstream request is written (see `afterRequestsWritten`). A subscription that joins
   * or replays holds nothing, nor does one whose cache read waits on I/O, past this turn.
   */
  subscribe(request: CompletionRequest, policy: CachePolicy, options: SubscribeOptions = {}): Cursor {
    const id = completionId(request);
    const cursor = new Cursor();
    if (this.closed) {
      cursor.fail(shuttingDown());
      return cursor;
    }
    if (this.openSubscriptions >= this.maxStreams) {
      this.refusedOverloaded += 1;
      cursor.fail(
        new GatewayError(
          ErrorCode.OVERLOADED,
          `This replica streams its maximum of ${this.maxStreams} subscriptions (MAX_STREAMS); retry shortly.`,
          { limit: 'MAX_STREAMS' },
        ),
      );
      return cursor;
    }
    this.openSubscriptions += 1;
    cursor.onEnd(() => {
      this.openSubscriptions -= 1;
    });
    const sub: Subscriber = {
      id,
      key: cacheKey(id, options.cacheScope),
      request,
      policy,
      cursor,
      traceContext: options.traceContext,
      ledger: options.ledger,
      quota: options.quota,
      started: false,
    };
    if (this.joinRunning(sub)) return cursor;
    if (policy !== 'USE') {
      this.start(sub);
      return cursor;
    }
    cursor.holdSetUp();
    // Held through a cache read answered within this turn (the memory store), for the stream
    // it may start; a read that waits on I/O (Redis) lets the set-up go on meanwhile.
    setImmediate(() => {
      if (!sub.started) cursor.releaseSetUp();
    });
    void this.cache.lookup(sub.key).then((hit) => {
      if (cursor.isClosed) return;
      if (this.closed) {
        cursor.fail(shuttingDown());
        return;
      }
      if (hit) {
        this.cacheReplays += 1;
        sub.ledger?.recordCacheHits();
        cursor.attach(replayStream(id, hit, this.replayChunkChars));
        cursor.releaseSetUp();
        return;
      }
      // Checked again after the read: a stream or a query's call may have started meanwhile.
      if (this.joinRunning(sub)) cursor.releaseSetUp();
      else this.start(sub);
    }).catch((error: unknown) => cursor.fail(toError(error)));
    return cursor;
  }

  /**
   * For the coalescer (wired in `app.ts` as its `joinStream`): the stream running for store
   * key `key`, joined by one query that waits for its answer. The query counts as a reader
   * of the stream: the upstream is aborted only when no subscriber and no such query is
   * left. Undefined when no stream for the key is still streaming.
   */
  joinStream(key: string, options: { store: boolean }): JoinedCompletion | undefined {
    const stream = this.upstreams.get(key);
    if (!stream || stream.settled || stream.controller.signal.aborted) return undefined;
    if (options.store) stream.store = true;
    this.joinedByQueries += 1;
    return stream.hold();
  }

  stats(): StreamHubStats {
    let subscribers = 0;
    for (const stream of this.open) subscribers += stream.cursors.size;
    return {
      activeStreams: this.open.size,
      subscribers,
      upstreamStreams: this.upstreamStreams,
      joined: this.joined,
      joinedCalls: this.joinedCalls,
      joinedByQueries: this.joinedByQueries,
      cacheReplays: this.cacheReplays,
      abandoned: this.abandoned,
      droppedSlow: this.droppedSlow,
      openSubscriptions: this.openSubscriptions,
      refusedOverloaded: this.refusedOverloaded,
    };
  }

  /** Refuses new subscriptions and aborts every open upstream stream; its readers get the error. */
  close(): Promise<void> {
    this.closed = true;
    const error = shuttingDown();
    for (const stream of [...this.open]) {
      this.forget(stream);
      this.upstreams.forget(this.keyOf(stream), stream);
      stream.fail(error);
      stream.controller.abort(error);
    }
    return Promise.resolve();
  }

  /** Joins the running stream for `sub`'s key, else a query's running call; false when neither runs. */
  private joinRunning(sub: Subscriber): boolean {
    const running = this.streams.get(sub.key);
    if (running && !running.admissionSettled && running.payer !== sub.quota?.key) {
      // Started by another account whose quota has not yet admitted it: a refusal of that
      // account must not end this subscription, so it waits for the verdict, then joins
      // the stream or is placed again.
      void running.admitted.then((admitted) => {
        if (sub.cursor.isClosed) return;
        if (admitted && this.streams.get(sub.key) === running) this.joinStreaming(running, sub);
        else if (!this.joinRunning(sub)) this.start(sub);
      });
      return true;
    }
    if (running) {
      this.joinStreaming(running, sub);
      return true;
    }
    const call = this.joinCall?.(sub.key, { store: sub.policy !== 'BYPASS' });
    if (!call) return false;
    this.replayCall(sub, call);
    return true;
  }

  /** `sub` joins a stream running for its key: replayed what was streamed, then live. */
  private joinStreaming(running: SharedStream, sub: Subscriber): void {
    if (running.peakSubscribers > 0) this.joined += 1;
    waitUntil(sub.ledger?.recordJoined(), sub.cursor, running.result);
    this.attach(running, sub);
  }

  /**
   * `sub` waits on a query's upstream call (a plain call has no chunks to follow): its answer
   * is replayed as a stream with `cached: false` when the call ends, or its error ends the
   * subscription. Until then `sub` counts as a waiter of the call; leaving releases it.
   */
  private replayCall(sub: Subscriber, call: JoinedCompletion): void {
    this.joinedCalls += 1;
    waitUntil(sub.ledger?.recordJoined(), sub.cursor, call.result);
    sub.cursor.onEnd(() => call.leave());
    call.result.then(
      (result) => sub.cursor.attach(replayStream(sub.id, result, this.replayChunkChars, false)),
      (error: unknown) => {
        // The call's starter was refused by its own quota: this subscription was not.
        if (foreignRefusal(error, sub) && !sub.cursor.isClosed) {
          if (!this.joinRunning(sub)) this.start(sub);
          return;
        }
        sub.cursor.fail(toError(error));
      },
    );
  }

  /**
   * Starts the upstream stream for `sub`, which pays for it; `sub`'s set-up is held until
   * the upstream request is written (or the stream is over first: refused, failed).
   */
  private start(sub: Subscriber): void {
    sub.started = true;
    sub.cursor.holdSetUp();
    const stream = new SharedStream(sub.id, sub.request.model, false, this.bufferCost, {
      onSpill: (s) => this.forget(s),
      onEmpty: (s) => this.abandon(s),
      onDropSlow: () => {
        this.droppedSlow += 1;
      },
    });
    this.streams.set(sub.key, stream);
    this.upstreams.set(sub.key, stream);
    this.keys.set(stream, sub.key);
    this.open.add(stream);
    this.upstreamStreams += 1;
    const ledger = sub.ledger;
    if (ledger) {
      waitUntil(ledger.recordUpstreamCall(), sub.cursor, stream.result);
      stream.result.then(
        // Followed from (or answered by) another replica: a remote join, paid for there.
        (result) => (stream.remote ? ledger.recordRemoteJoin() : ledger.recordUsage(result.model, result.usage)),
        (error: unknown) => {
          if (error instanceof QuotaExceededError) ledger.recordRefusedCall();
        },
      );
    }
    const quota = sub.quota;
    let reserve: (() => Promise<QuotaHold | undefined>) | undefined;
    if (quota) {
      let admit: (admitted: boolean) => void = () => undefined;
      stream.payer = quota.key;
      stream.admissionSettled = false;
      stream.admitted = new Promise<boolean>((resolve) => {
        admit = (admitted) => {
          stream.admissionSettled = true;
          resolve(admitted);
        };
      });
      stream.admit = admit;
      reserve = async () => {
        try {
          const hold = await quota.reserve(sub.request);
          admit(true);
          return hold;
        } catch (error) {
          // Forgotten first, so the subscriptions that waited for the verdict start afresh.
          this.forget(stream);
          admit(false);
          throw error;
        }
      };
    }
    const cluster = this.cluster;
    void pump(stream, sub.request, {
      reserve,
      claim: cluster ? (signal) => cluster.claimStream(sub.key, { signal, readCache: sub.policy === 'USE' }) : undefined,
      replayChunkChars: this.replayChunkChars,
      upstream: this.upstream,
      tracer: this.tracer,
      traceContext: sub.traceContext,
      store: async (result) => {
        if (stream.store && isStorable(result)) await this.cache.write(this.keyOf(stream), result);
      },
      opened: () => afterRequestsWritten(() => sub.cursor.releaseSetUp()),
      over: () => {
        this.forget(stream);
        this.upstreams.forget(sub.key, stream);
        this.open.delete(stream);
        sub.cursor.releaseSetUp();
      },
    });
    this.attach(stream, sub);
  }

  private attach(stream: SharedStream, sub: Subscriber): void {
    if (sub.policy !== 'BYPASS') stream.store = true;
    sub.cursor.attach(stream);
  }

  /** Stops taking joiners for `stream` (it keeps serving the subscribers and queries it has). */
  private forget(stream: SharedStream): void {
    this.streams.forget(this.keyOf(stream), stream);
  }

  /**
   * The last reader here left: abort the upstream unless the answer is already paid for,
   * or (a stream mirrored for other replicas) while another replica still follows it.
   */
  private abandon(stream: SharedStream): void {
    if (stream.phase.name !== 'streaming' || stream.controller.signal.aborted) return;
    if (stream.mirrored && this.cluster) {
      void this.abandonWhenUnfollowed(stream, this.cluster);
      return;
    }
    this.abort(stream);
  }

  /** Keeps a mirrored stream running while a follower anywhere reads it; checks every second. */
  private async abandonWhenUnfollowed(stream: SharedStream, cluster: ClusterLeases): Promise<void> {
    const key = this.keyOf(stream);
    while (stream.phase.name === 'streaming' && !stream.controller.signal.aborted && stream.readers === 0) {
      if (!(await cluster.hasFollowers(key))) {
        if (stream.readers === 0) this.abort(stream);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, FOLLOWER_CHECK_MS).unref());
    }
  }

  private abort(stream: SharedStream): void {
    if (stream.phase.name !== 'streaming' || stream.controller.signal.aborted) return;
    // Forget first, so an identical subscription or query arriving now starts afresh
    // instead of joining a stream that is being torn down.
    this.forget(stream);
    this.upstreams.forget(this.keyOf(stream), stream);
    this.abandoned += 1;
    stream.controller.abort(abortError('Every subscriber of this stream has gone'));
  }

  private keyOf(stream: SharedStream): string {
    return this.keys.get(stream) ?? stream.id;
  }
}
