import { ROOT_CONTEXT, SpanStatusCode, trace, type Context, type Tracer } from '@opentelemetry/api';
import type { CompletionCache } from '../cache/completion-cache';
import { isStorable } from '../deepseek/provider';
import { cacheKey, completionId } from '../cache/key';
import type { CompletionRequest, CompletionResult, DeepSeekApi } from '../deepseek/types';
import { ErrorCode, GatewayError } from '../errors';
import { noopInstruments } from '../telemetry/instruments';
import type { Logger } from '../telemetry/logger';
import { abortError, toError } from '../lib/abort';
import { dedupe, Singleflight } from '../lib/singleflight';
import type { CachePolicy } from '../batching/types';
import { Cursor } from './cursor';
import { replayStream } from './replay';
import { CHUNK_OVERHEAD_BYTES, SharedStream, type BufferCost } from './shared-stream';
import type { StreamChunk, StreamHubOptions, StreamHubStats } from './types';

export type { StreamChunk, StreamHubOptions, StreamHubStats } from './types';

const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024;
const DEFAULT_REPLAY_CHUNK_CHARS = 4096;

/**
 * Process-wide fan-out of streamed completions (ONE instance per process, SHARED by every
 * subscription). Subscriptions to the same completion id share ONE upstream stream: a
 * joiner is replayed the buffered chunks first, then follows live. The upstream is aborted
 * when its last subscriber leaves. A finished stream is stored in the completion cache under
 * the id a query uses, and a cached answer is replayed as a stream. Per subscriber there is
 * only a cursor; see `SharedStream` for what is shared and how the buffer is bounded.
 *
 * `streams` holds the joinable streams by id; an entry goes when its stream settles (after
 * the cache write), is abandoned, or outgrows its buffer, so a later subscription either
 * joins a running stream or finds the stored answer.
 */
export class StreamHub {
  private readonly streams = new Singleflight<string, SharedStream>();
  /** Every stream whose upstream is open, joinable or not (for `close`). */
  private readonly open = new Set<SharedStream>();
  /** Cache reads in flight by id, so a burst of identical subscriptions reads once. */
  private readonly lookups = new Singleflight<string, Promise<CompletionResult | undefined>>();
  /** The store key (`cacheKey`: id in its cache scope) of each stream this hub started. */
  private readonly keys = new WeakMap<SharedStream, string>();
  private readonly cache: CompletionCache;
  private readonly upstream: Pick<DeepSeekApi, 'completeStream'>;
  private readonly logger: Logger;
  private readonly bufferCost: BufferCost;
  private readonly replayChunkChars: number;
  private readonly tracer: Tracer;
  private closed = false;
  private upstreamStreams = 0;
  private joined = 0;
  private cacheReplays = 0;
  private abandoned = 0;
  private droppedSlow = 0;

  constructor(options: StreamHubOptions) {
    this.cache = options.cache;
    this.upstream = options.upstream;
    this.logger = options.logger;
    this.bufferCost = {
      maxBufferedBytes: options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES,
      chunkOverheadBytes: options.chunkOverheadBytes ?? CHUNK_OVERHEAD_BYTES,
    };
    this.replayChunkChars = Math.max(1, options.replayChunkChars ?? DEFAULT_REPLAY_CHUNK_CHARS);
    this.tracer = (options.instruments ?? noopInstruments()).tracer;
  }

  /**
   * The chunks of `request`'s completion (chat or FIM) for one subscriber. USE: a running identical stream
   * is joined, else a stored answer is replayed, else a stream is started and its answer
   * stored. REFRESH: never reads the cache, stores the answer. BYPASS: neither. A failure
   * rejects `next()` after the chunks buffered before it; `return()` unsubscribes at once.
   * `traceContext` (the subscription's operation span) parents an upstream stream it starts.
   * `cacheScope` (the caller's tenant with CACHE_SCOPE=tenant) keeps streams and stored
   * answers apart between scopes.
   */
  subscribe(request: CompletionRequest, policy: CachePolicy, traceContext?: Context, cacheScope?: string): AsyncIterableIterator<StreamChunk> {
    const id = completionId(request);
    const key = cacheKey(id, cacheScope);
    const cursor = new Cursor();
    if (this.closed) {
      cursor.fail(new GatewayError(ErrorCode.OVERLOADED, 'The gateway is shutting down; subscribe again shortly.'));
      return cursor;
    }
    const running = this.streams.get(key);
    if (running) {
      this.join(running, cursor, policy);
    } else if (policy !== 'USE') {
      this.join(this.start(key, id, request, traceContext), cursor, policy);
    } else {
      void this.lookup(key).then((hit) => {
        if (cursor.isClosed) return;
        if (this.closed) {
          cursor.fail(new GatewayError(ErrorCode.OVERLOADED, 'The gateway is shutting down; subscribe again shortly.'));
          return;
        }
        if (hit) {
          this.cacheReplays += 1;
          cursor.attach(replayStream(id, hit, this.replayChunkChars));
          return;
        }
        // Checked again after the read: an identical subscription may have started meanwhile.
        this.join(this.streams.get(key) ?? this.start(key, id, request, traceContext), cursor, policy);
      });
    }
    return cursor;
  }

  stats(): StreamHubStats {
    let subscribers = 0;
    for (const stream of this.open) subscribers += stream.cursors.size;
    return {
      activeStreams: this.open.size,
      subscribers,
      upstreamStreams: this.upstreamStreams,
      joined: this.joined,
      cacheReplays: this.cacheReplays,
      abandoned: this.abandoned,
      droppedSlow: this.droppedSlow,
    };
  }

  /** Refuses new subscriptions and aborts every open upstream stream; subscribers get the error. */
  close(): Promise<void> {
    this.closed = true;
    const error = new GatewayError(ErrorCode.OVERLOADED, 'The gateway is shutting down; subscribe again shortly.');
    for (const stream of [...this.open]) {
      this.forget(stream);
      stream.fail(error);
      stream.controller.abort(error);
    }
    return Promise.resolve();
  }

  private join(stream: SharedStream, cursor: Cursor, policy: CachePolicy): void {
    if (stream.peakSubscribers > 0) this.joined += 1;
    if (policy !== 'BYPASS') stream.store = true;
    cursor.attach(stream);
  }

  private start(key: string, id: string, request: CompletionRequest, traceContext: Context | undefined): SharedStream {
    const stream = new SharedStream(id, request.model, false, this.bufferCost, {
      onSpill: (s) => this.forget(s),
      onEmpty: (s) => this.abandon(s),
      onDropSlow: () => {
        this.droppedSlow += 1;
      },
    });
    this.streams.set(key, stream);
    this.keys.set(stream, key);
    this.open.add(stream);
    this.upstreamStreams += 1;
    void this.pump(stream, request, traceContext);
    return stream;
  }

  /** Reads the upstream into the shared buffer; stores a finished answer before the last chunk. */
  private async pump(stream: SharedStream, request: CompletionRequest, traceContext: Context | undefined): Promise<void> {
    const parent = traceContext ?? ROOT_CONTEXT;
    const span = this.tracer.startSpan('stream hub upstream', {}, parent);
    let result: CompletionResult | undefined;
    try {
      const options = { signal: stream.controller.signal, traceContext: trace.setSpan(parent, span) };
      for await (const event of this.upstream.completeStream(request, options)) {
        if (event.type === 'delta') {
          stream.push({ delta: event.content, reasoningDelta: event.reasoningContent === '' ? null : event.reasoningContent });
        } else {
          result = event.result;
        }
      }
      // The client ends every stream with a finish event or an error; guard against a break.
      if (!result) throw new Error('upstream stream ended without a result');
      if (stream.settled) return; // failed by `close` meanwhile
      stream.phase = { name: 'storing' };
      if (stream.store && isStorable(result)) await this.write(this.keyOf(stream), result);
      stream.push({
        model: result.model,
        delta: '',
        reasoningDelta: null,
        finish: { reason: result.finishReason, usage: result.usage, result },
      });
      stream.finish();
      span.setAttribute('stream.outcome', 'finished');
    } catch (error) {
      const failure = toError(error);
      stream.fail(failure);
      span.setAttribute('stream.outcome', stream.controller.signal.aborted ? 'aborted' : 'failed');
      if (!stream.controller.signal.aborted) span.setStatus({ code: SpanStatusCode.ERROR });
    } finally {
      this.forget(stream);
      this.open.delete(stream);
      span.setAttributes({ 'stream.chunks': stream.head, 'stream.subscribers_peak': stream.peakSubscribers });
      span.end();
    }
  }

  /** Stops taking joiners for `stream` (it keeps serving the subscribers it has). */
  private forget(stream: SharedStream): void {
    this.streams.forget(this.keyOf(stream), stream);
  }

  /** The last subscriber left: abort the upstream unless the answer is already paid for. */
  private abandon(stream: SharedStream): void {
    if (stream.phase.name !== 'streaming' || stream.controller.signal.aborted) return;
    // Forget first, so an identical subscription arriving now starts afresh instead of
    // joining a stream that is being torn down.
    this.forget(stream);
    this.abandoned += 1;
    stream.controller.abort(abortError('Every subscriber of this stream has gone'));
  }

  private keyOf(stream: SharedStream): string {
    return this.keys.get(stream) ?? stream.id;
  }

  /** One cache read per key at a time, however many identical subscriptions arrive. */
  private lookup(id: string): Promise<CompletionResult | undefined> {
    return dedupe(this.lookups, id, () => this.read(id));
  }

  /** The cache promises never to throw; this guards against one that does (fail open). */
  private async read(id: string): Promise<CompletionResult | undefined> {
    try {
      const [value] = await this.cache.getMany([id]);
      return value;
    } catch (error) {
      this.logger.warn({ err: error }, 'cache read failed; streaming from upstream');
      return undefined;
    }
  }

  private async write(id: string, value: CompletionResult): Promise<void> {
    try {
      await this.cache.setMany([{ id, value }]);
    } catch (error) {
      this.logger.warn({ err: error }, 'cache write failed; the streamed answer is not kept');
    }
  }
}
