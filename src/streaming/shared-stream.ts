import type { JoinedCompletion } from '../batching/types';
import type { CompletionResult } from '../deepseek/types';
import { ErrorCode, GatewayError } from '../errors';
import { LightAbortController } from '../lib/abort';
import type { Cursor } from './cursor';
import type { StreamChunk } from './types';

const ADMITTED = Promise.resolve(true);

/** What a buffered chunk is taken to cost: see `BufferCost`. */
function costOf(chunk: StreamChunk, cost: BufferCost): number {
  return 2 * (chunk.delta.length + (chunk.reasoningDelta?.length ?? 0)) + cost.chunkOverheadBytes;
}

/**
 * How buffered chunks are counted against the cap: an estimate in bytes of two per UTF-16
 * code unit of text (V8's wide strings; ASCII takes less) plus a fixed overhead per chunk
 * object (its fields and the buffer slot), so many tiny chunks are not free.
 */
export interface BufferCost {
  maxBufferedBytes: number;
  chunkOverheadBytes: number;
}

/** The default per-chunk overhead of `BufferCost`. */
export const CHUNK_OVERHEAD_BYTES = 96;

/**
 * Where a shared stream is:
 * - `streaming`: the upstream response is being read; when the last subscriber leaves, it is aborted;
 * - `storing`: the upstream finished; its answer is being written to the cache before the
 *   last chunk goes out (so a query sent after the last chunk finds it). Paid for: never aborted;
 * - `finished` / `failed`: every chunk (and the error) is in the buffer; nothing more comes.
 */
export type Phase = { name: 'streaming' } | { name: 'storing' } | { name: 'finished' } | { name: 'failed'; error: Error };

/** A buffered chunk with the text count before it, so a cursor's lag is one subtraction. */
interface Entry {
  chunk: StreamChunk;
  bytesBefore: number;
}

/**
 * ONE upstream stream (or one cached answer being replayed), SHARED by its subscribers.
 * Shared: the buffer of chunks (from the first chunk while the stream is joinable, else from
 * the slowest subscriber's position), the phase and the upstream abort controller.
 * Per subscriber: only a `Cursor` (a position in this buffer and its pending `next()`).
 * Nothing here waits for a subscriber: chunks are appended as they arrive, and each cursor
 * reads at its own pace (graphql-ws asks for the next chunk only after the previous one was
 * written to the socket), so a slow subscriber costs buffer, bounded by `maxBufferedBytes`.
 */
export class SharedStream {
  readonly controller = new LightAbortController();
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
  private pushedBytes = 0;
  /** Most subscribers attached at once (for the span). */
  peakSubscribers = 0;
  /**
   * The quota account that pays for the upstream stream (its starter's; src/quotas), and
   * whether its reservation passed: `admitted` settles with true once the stream may call
   * upstream, false when the quota refused it. Without a payer it is admitted from the start.
   */
  payer: string | undefined;
  admitted: Promise<boolean> = ADMITTED;
  /** True once `admitted` has settled. */
  admissionSettled = true;
  /** Settles `admitted` (set by the hub when a quota account pays for the stream). */
  admit: ((admitted: boolean) => void) | undefined;
  /**
   * Across replicas (src/cluster): `remote` when the chunks come from another replica (its
   * stream, followed through Redis, or its call's answer): nothing was paid for here;
   * `mirrored` when this replica produces the stream for other replicas' followers too.
   */
  remote = false;
  mirrored = false;
  /**
   * Queries waiting for this stream's answer (`hold`), not reading its chunks. They keep the
   * upstream running like subscribers do: it is aborted only when neither is left.
   */
  private holders = 0;

  /** Subscribers and queries still reading (what `onEmpty` waits for to reach 0). */
  get readers(): number {
    return this.cursors.size + this.holders;
  }
  /**
   * Settles when the stream does: with the finished completion (after its cache write, as
   * the last chunk goes out) or with the stream's failure. Nobody has to read it.
   */
  readonly result: Promise<CompletionResult>;
  private settleResult!: { resolve(result: CompletionResult): void; reject(error: Error): void };

  constructor(
    readonly id: string,
    readonly model: string,
    readonly cached: boolean,
    private readonly cost: BufferCost,
    private readonly events: { onSpill(stream: SharedStream): void; onEmpty(stream: SharedStream): void; onDropSlow(): void },
  ) {
    this.result = new Promise<CompletionResult>((resolve, reject) => {
      this.settleResult = { resolve, reject };
    });
    // A failure nobody waits for is not an unhandled rejection.
    this.result.catch(() => undefined);
  }

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
    this.leftOne();
  }

  /** A query waits for the answer: it counts as one more reader until it leaves. */
  hold(): JoinedCompletion {
    this.holders += 1;
    let left = false;
    return {
      result: this.result,
      leave: () => {
        if (left) return;
        left = true;
        this.holders -= 1;
        this.leftOne();
      },
    };
  }

  private leftOne(): void {
    if (this.cursors.size === 0 && this.holders === 0) this.events.onEmpty(this);
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
    this.entries.push({ chunk, bytesBefore: this.pushedBytes });
    this.pushedBytes += costOf(chunk, this.cost);
    this.bound();
    this.wake();
  }

  /** Every chunk is in: `result` is what the stream produced (its last chunk carries it too). */
  finish(result: CompletionResult): void {
    if (this.settled) return;
    this.phase = { name: 'finished' };
    this.settleResult.resolve(result);
    this.wake();
  }

  fail(error: Error): void {
    if (this.settled) return;
    this.phase = { name: 'failed', error };
    this.settleResult.reject(error);
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
    return entry ? this.pushedBytes - entry.bytesBefore : 0;
  }

  /** Keeps the buffer within `maxBufferedBytes` once the completion outgrows it (see the options). */
  private bound(): void {
    if (this.lag(this.base) <= this.cost.maxBufferedBytes) return;
    if (this.joinable) {
      this.joinable = false;
      this.events.onSpill(this);
    }
    for (const cursor of [...this.cursors]) {
      if (this.lag(cursor.position) > this.cost.maxBufferedBytes) {
        this.events.onDropSlow();
        cursor.fail(
          new GatewayError(
            ErrorCode.OVERLOADED,
            `This subscription fell more than ${this.cost.maxBufferedBytes} bytes behind its stream (STREAM_MAX_BUFFERED_BYTES) and was ended; read faster or subscribe again.`,
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
