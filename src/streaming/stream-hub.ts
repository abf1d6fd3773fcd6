import { ROOT_CONTEXT, SpanStatusCode, trace, type Context, type Tracer } from '@opentelemetry/api';
import type { CompletionCache } from '../cache/completion-cache';
import { isStorable } from '../deepseek/provider';
import { completionId } from '../cache/key';
import type { ChatRequest, CompletionResult, DeepSeekApi, FinishReason, Usage } from '../deepseek/types';
import { ErrorCode, GatewayError } from '../errors';
import { noopInstruments, type Instruments } from '../telemetry/instruments';
import type { Logger } from '../telemetry/logger';
import { abortError, toError } from '../lib/abort';
import type { CachePolicy } from '../batching/types';

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
  /** On the last chunk only. */
  finish?: { reason: FinishReason; usage: Usage };
  /** True when the chunks are replayed from the cache (no upstream call for this stream). */
  cached: boolean;
}

export interface StreamHubOptions {
  cache: CompletionCache;
  upstream: Pick<DeepSeekApi, 'chatStream'>;
  logger: Logger;
  /**
   * Most text (characters of delta + reasoning) one shared stream keeps. Below it the whole
   * completion so far is kept, so a late joiner can be replayed from the start. Above it the
   * stream stops taking joiners (an identical subscription starts its own upstream stream),
   * chunks every subscriber has passed are released, and a subscriber more than this far
   * behind is ended with OVERLOADED. Default 1 Mi characters.
   */
  maxBufferedChars?: number;
  /** Largest text of one chunk when a cached answer is replayed. Default 4096. */
  replayChunkChars?: number;
  /** Tracer for the `stream hub upstream` spans (default: record nothing). */
  instruments?: Instruments;
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
  /** Subscriptions answered by replaying a cached completion. */
  cacheReplays: number;
  /** Upstream streams aborted because every subscriber had gone. */
  abandoned: number;
  /** Subscribers ended because they fell more than `maxBufferedChars` behind. */
  droppedSlow: number;
}

const DEFAULT_MAX_BUFFERED_CHARS = 1024 * 1024;
const DEFAULT_REPLAY_CHUNK_CHARS = 4096;


function textLength(chunk: StreamChunk): number {
  return chunk.delta.length + (chunk.reasoningDelta?.length ?? 0);
}

/**
 * Where a shared stream is:
 * - `streaming`: the upstream response is being read; when the last subscriber leaves, it is aborted;
 * - `storing`: the upstream finished; its answer is being written to the cache before the
 *   last chunk goes out (so a query sent after the last chunk finds it). Paid for: never aborted;
 * - `finished` / `failed`: every chunk (and the error) is in the buffer; nothing more comes.
 */
type Phase = { name: 'streaming' } | { name: 'storing' } | { name: 'finished' } | { name: 'failed'; error: Error };

/** A buffered chunk with the text count before it, so a cursor's lag is one subtraction. */
interface Entry {
  chunk: StreamChunk;
  charsBefore: number;
}

/**
 * ONE upstream stream (or one cached answer being replayed), SHARED by its subscribers.
 * Shared: the buffer of chunks (from the first chunk while the stream is joinable, else from
 * the slowest subscriber's position), the phase and the upstream abort controller.
 * Per subscriber: only a `Cursor` (a position in this buffer and its pending `next()`).
 * Nothing here waits for a subscriber: chunks are appended as they arrive, and each cursor
 * reads at its own pace (graphql-ws asks for the next chunk only after the previous one was
 * written to the socket), so a slow subscriber costs buffer, bounded by `maxBufferedChars`.
 */
class SharedStream {
  readonly controller = new AbortController();
  readonly cursors = new Set<Cursor>();
  phase: Phase = { name: 'streaming' };
  /** Whether any subscriber's policy keeps the answer (USE or REFRESH; BYPASS does not). */
  store = false;
  /** False once the buffer no longer starts at chunk 0: a joiner could not be replayed. */
  joinable = true;
  /**
   * The buffer. Released chunks leave holes before `first` (so releasing costs nothing per
   * chunk); the array is compacted once the holes are half of it.
   */
  private entries: Array<Entry | undefined> = [];
  private first = 0;
  /** Stream index of `entries[first]`. */
  private base = 0;
  /** Text characters pushed since the start. */
  private pushedChars = 0;
  /** Most subscribers attached at once (for the span). */
  peakSubscribers = 0;

  constructor(
    readonly id: string,
    readonly model: string,
    readonly cached: boolean,
    private readonly maxBufferedChars: number,
    private readonly events: { onSpill(stream: SharedStream): void; onEmpty(stream: SharedStream): void; onDropSlow(): void },
  ) {}

  get head(): number {
    return this.base + this.entries.length - this.first;
  }

  get settled(): boolean {
    return this.phase.name === 'finished' || this.phase.name === 'failed';
  }

  /** The chunk at `index`, when it is buffered. */
  at(index: number): StreamChunk | undefined {
    return this.entry(index)?.chunk;
  }

  attach(cursor: Cursor): void {
    this.cursors.add(cursor);
    this.peakSubscribers = Math.max(this.peakSubscribers, this.cursors.size);
  }

  /** A subscriber left (unsubscribed, disconnected, or dropped): the last one out stops the stream. */
  detach(cursor: Cursor): void {
    if (!this.cursors.delete(cursor)) return;
    if (this.cursors.size === 0) this.events.onEmpty(this);
  }

  push(parts: Omit<StreamChunk, 'id' | 'index' | 'model' | 'cached'> & { model?: string }): void {
    if (this.settled) return;
    const chunk: StreamChunk = {
      id: this.id,
      index: this.head,
      model: parts.model ?? this.model,
      delta: parts.delta,
      reasoningDelta: parts.reasoningDelta,
      cached: this.cached,
      ...(parts.finish ? { finish: parts.finish } : {}),
    };
    this.entries.push({ chunk, charsBefore: this.pushedChars });
    this.pushedChars += textLength(chunk);
    this.bound();
    this.wake();
  }

  finish(): void {
    if (this.settled) return;
    this.phase = { name: 'finished' };
    this.wake();
  }

  fail(error: Error): void {
    if (this.settled) return;
    this.phase = { name: 'failed', error };
    this.wake();
  }

  private wake(): void {
    for (const cursor of [...this.cursors]) cursor.pull();
  }

  private entry(index: number): Entry | undefined {
    return index < this.base ? undefined : this.entries[this.first + index - this.base];
  }

  /** Text a cursor at `position` has yet to read. */
  private lag(position: number): number {
    const entry = this.entry(position);
    return entry ? this.pushedChars - entry.charsBefore : 0;
  }

  /** Keeps the buffer within `maxBufferedChars` once the completion outgrows it (see the options). */
  private bound(): void {
    if (this.lag(this.base) <= this.maxBufferedChars) return;
    if (this.joinable) {
      this.joinable = false;
      this.events.onSpill(this);
    }
    for (const cursor of [...this.cursors]) {
      if (this.lag(cursor.position) > this.maxBufferedChars) {
        this.events.onDropSlow();
        cursor.fail(
          new GatewayError(
            ErrorCode.OVERLOADED,
            `This subscription fell more than ${this.maxBufferedChars} characters behind its stream and was ended; subscribe again.`,
          ),
        );
      }
    }
    let slowest = this.head;
    for (const cursor of this.cursors) slowest = Math.min(slowest, cursor.position);
    // Release what every remaining subscriber has read.
    for (; this.base < slowest; this.base += 1) this.entries[this.first++] = undefined;
    if (this.first > 64 && this.first * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.first);
      this.first = 0;
    }
  }
}

type Waiter = { resolve(result: IteratorResult<StreamChunk>): void; reject(error: Error): void };

const DONE: IteratorResult<StreamChunk> = { value: undefined, done: true };

/**
 * ONE subscriber's view of a shared stream: its position and its pending `next()`. A plain
 * iterator rather than an async generator on purpose: a generator's `return()` waits for a
 * pending `next()` to settle, so unsubscribing from a silent upstream would hang until the
 * next token; here `return()` detaches at once and answers the pending `next()` with done.
 */
class Cursor implements AsyncIterableIterator<StreamChunk> {
  position = 0;
  private source: SharedStream | undefined;
  private readonly waiters: Waiter[] = [];
  private closed = false;
  private failure: Error | undefined;

  get isClosed(): boolean {
    return this.closed;
  }

  /** Starts reading `source` from its first chunk. */
  attach(source: SharedStream): void {
    if (this.closed || this.failure) return;
    this.source = source;
    source.attach(this);
    this.pull();
  }

  /** Ends this subscriber with `error`; chunks it has not read yet are skipped. */
  fail(error: Error): void {
    if (this.closed || this.failure) return;
    this.failure = error;
    this.source?.detach(this);
    this.pull();
  }

  next(): Promise<IteratorResult<StreamChunk>> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.pull();
    });
  }

  return(): Promise<IteratorResult<StreamChunk>> {
    this.stop();
    this.pull();
    return Promise.resolve(DONE);
  }

  throw(error?: unknown): Promise<IteratorResult<StreamChunk>> {
    this.stop();
    this.pull();
    return Promise.reject(toError(error));
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Answers pending `next()` calls from what the source holds now. */
  pull(): void {
    while (this.waiters.length > 0) {
      const answer = this.take();
      if (answer === undefined) return; // nothing new yet: wait
      const waiter = this.waiters.shift()!;
      if (answer instanceof Error) waiter.reject(answer);
      else waiter.resolve(answer);
    }
  }

  /** The answer to the next `next()`, or undefined when it has to wait. */
  private take(): IteratorResult<StreamChunk> | Error | undefined {
    if (this.closed) return DONE;
    if (this.failure) {
      this.stop();
      return this.failure;
    }
    const source = this.source;
    if (!source) return undefined; // still looking up the cache
    const chunk = source.at(this.position);
    if (chunk) {
      this.position += 1;
      return { value: chunk, done: false };
    }
    switch (source.phase.name) {
      case 'finished':
        this.stop();
        return DONE;
      case 'failed':
        this.stop();
        return source.phase.error;
      default:
        return undefined;
    }
  }

  /** No more chunks for this subscriber; leaves the stream (the last one out aborts it). */
  private stop(): void {
    if (this.closed) return;
    this.closed = true;
    this.source?.detach(this);
  }
}

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
  private readonly streams = new Map<string, SharedStream>();
  /** Every stream whose upstream is open, joinable or not (for `close`). */
  private readonly open = new Set<SharedStream>();
  /** Cache reads in flight by id, so a burst of identical subscriptions reads once. */
  private readonly lookups = new Map<string, Promise<CompletionResult | undefined>>();
  private readonly cache: CompletionCache;
  private readonly upstream: Pick<DeepSeekApi, 'chatStream'>;
  private readonly logger: Logger;
  private readonly maxBufferedChars: number;
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
    this.maxBufferedChars = options.maxBufferedChars ?? DEFAULT_MAX_BUFFERED_CHARS;
    this.replayChunkChars = Math.max(1, options.replayChunkChars ?? DEFAULT_REPLAY_CHUNK_CHARS);
    this.tracer = (options.instruments ?? noopInstruments()).tracer;
  }

  /**
   * The chunks of `request`'s completion for one subscriber. USE: a running identical stream
   * is joined, else a stored answer is replayed, else a stream is started and its answer
   * stored. REFRESH: never reads the cache, stores the answer. BYPASS: neither. A failure
   * rejects `next()` after the chunks buffered before it; `return()` unsubscribes at once.
   * `traceContext` (the subscription's operation span) parents an upstream stream it starts.
   */
  subscribe(request: ChatRequest, policy: CachePolicy, traceContext?: Context): AsyncIterableIterator<StreamChunk> {
    const id = completionId(request);
    const cursor = new Cursor();
    if (this.closed) {
      cursor.fail(new GatewayError(ErrorCode.OVERLOADED, 'The gateway is shutting down; subscribe again shortly.'));
      return cursor;
    }
    const running = this.streams.get(id);
    if (running) {
      this.join(running, cursor, policy);
    } else if (policy !== 'USE') {
      this.join(this.start(id, request, traceContext), cursor, policy);
    } else {
      void this.lookup(id).then((hit) => {
        if (cursor.isClosed) return;
        if (this.closed) {
          cursor.fail(new GatewayError(ErrorCode.OVERLOADED, 'The gateway is shutting down; subscribe again shortly.'));
          return;
        }
        if (hit) {
          this.cacheReplays += 1;
          cursor.attach(this.replay(id, hit));
          return;
        }
        // Checked again after the read: an identical subscription may have started meanwhile.
        this.join(this.streams.get(id) ?? this.start(id, request, traceContext), cursor, policy);
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

  private start(id: string, request: ChatRequest, traceContext: Context | undefined): SharedStream {
    const stream = new SharedStream(id, request.model, false, this.maxBufferedChars, {
      onSpill: (s) => this.forget(s),
      onEmpty: (s) => this.abandon(s),
      onDropSlow: () => {
        this.droppedSlow += 1;
      },
    });
    this.streams.set(id, stream);
    this.open.add(stream);
    this.upstreamStreams += 1;
    void this.pump(stream, request, traceContext);
    return stream;
  }

  /** Reads the upstream into the shared buffer; stores a finished answer before the last chunk. */
  private async pump(stream: SharedStream, request: ChatRequest, traceContext: Context | undefined): Promise<void> {
    const parent = traceContext ?? ROOT_CONTEXT;
    const span = this.tracer.startSpan('stream hub upstream', {}, parent);
    let result: CompletionResult | undefined;
    try {
      const options = { signal: stream.controller.signal, traceContext: trace.setSpan(parent, span) };
      for await (const event of this.upstream.chatStream(request, options)) {
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
      if (stream.store && isStorable(result)) await this.write(stream.id, result);
      stream.push({
        model: result.model,
        delta: '',
        reasoningDelta: null,
        finish: { reason: result.finishReason, usage: result.usage },
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
    if (this.streams.get(stream.id) === stream) this.streams.delete(stream.id);
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

  /** A settled stream holding `result` split into chunks: reasoning first, then the answer, then the finish. */
  private replay(id: string, result: CompletionResult): SharedStream {
    const stream = new SharedStream(id, result.model, true, Number.POSITIVE_INFINITY, {
      onSpill: () => undefined,
      onEmpty: () => undefined,
      onDropSlow: () => undefined,
    });
    for (const piece of split(result.reasoningContent ?? '', this.replayChunkChars)) {
      stream.push({ delta: '', reasoningDelta: piece });
    }
    for (const piece of split(result.content, this.replayChunkChars)) stream.push({ delta: piece, reasoningDelta: null });
    stream.push({ delta: '', reasoningDelta: null, finish: { reason: result.finishReason, usage: result.usage } });
    stream.finish();
    return stream;
  }

  private lookup(id: string): Promise<CompletionResult | undefined> {
    let pending = this.lookups.get(id);
    if (!pending) {
      pending = this.read(id).finally(() => this.lookups.delete(id));
      this.lookups.set(id, pending);
    }
    return pending;
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

/** `text` in pieces of at most `size` UTF-16 units, never splitting a surrogate pair. */
function split(text: string, size: number): string[] {
  const pieces: string[] = [];
  for (let start = 0; start < text.length; ) {
    let end = Math.min(start + size, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && end - start > 1 && last >= 0xd800 && last <= 0xdbff) end -= 1;
    pieces.push(text.slice(start, end));
    start = end;
  }
  return pieces;
}
