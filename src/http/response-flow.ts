import type { ServerResponse } from 'node:http';

/** What `ResponseFlow` needs of a response: Node's `ServerResponse` in production, a plain Writable in tests. */
export interface FlowResponse {
  write(chunk: string, callback: (error?: Error | null) => void): boolean;
  destroy(): unknown;
  once(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
  readonly destroyed: boolean;
  readonly writableEnded: boolean;
}

export interface ResponseFlowOptions {
  /**
   * A response whose written bytes the socket has not taken for this long (the client
   * stopped reading: its receive window and our send buffer are full) is destroyed,
   * which ends its subscription like a disconnect would. STREAM_STALL_TIMEOUT_MS.
   */
  stallTimeoutMs: number;
  /** Called once, just before a stalled response is destroyed. */
  onStall?: () => void;
  /** The clock (tests inject one). */
  now?: () => number;
}

/**
 * Flow control for one streaming HTTP response (a multipart subscription, GraphQL over
 * SSE). It counts the writes the socket has not taken yet (their callbacks are pending),
 * so that:
 * - a writer can wait for them (`flushed`) before it pulls the next event from its
 *   subscription: a client that reads slowly then leaves its events in the stream hub,
 *   whose per-subscriber cap (STREAM_MAX_BUFFERED_BYTES) ends it without slowing the
 *   upstream or the other subscribers down, instead of growing this process's buffers;
 * - a client that stops reading altogether is cut after `stallTimeoutMs` without progress,
 *   which frees its connection, its subscription and its share of the upstream stream.
 */
export class ResponseFlow {
  readonly #response: FlowResponse;
  readonly #options: ResponseFlowOptions;
  readonly #now: () => number;
  #pending = 0;
  /** When the socket last took a write, or when a write started waiting. */
  #progressAt: number;
  #waiters: (() => void)[] = [];
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(response: FlowResponse, options: ResponseFlowOptions) {
    this.#response = response;
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#progressAt = this.#now();
    response.once('close', this.close);
    this.#timer = setInterval(() => this.check(), Math.max(1, Math.min(1000, Math.floor(options.stallTimeoutMs / 4))));
    this.#timer.unref();
  }

  /** Writes the socket has not taken yet. */
  get pending(): number {
    return this.#pending;
  }

  /** Writes `chunk` (nothing once the response is closed or ended). */
  write(chunk: string): void {
    if (this.#closed || this.#response.destroyed || this.#response.writableEnded) return;
    if (this.#pending === 0) this.#progressAt = this.#now();
    this.#pending += 1;
    this.#response.write(chunk, () => this.#taken());
  }

  /**
   * Routes every later `response.write` through this flow (for a library that writes the
   * response itself, as graphql-sse does), keeping the caller's callback.
   */
  adopt(response: ServerResponse): void {
    const write = response.write.bind(response) as (chunk: unknown, encoding?: unknown, callback?: unknown) => boolean;
    response.write = ((chunk: unknown, encoding?: unknown, callback?: unknown): boolean => {
      const done = typeof encoding === 'function' ? encoding : callback;
      if (this.#pending === 0) this.#progressAt = this.#now();
      this.#pending += 1;
      return write(chunk, typeof encoding === 'string' ? encoding : 'utf8', (error?: Error | null) => {
        this.#taken();
        if (typeof done === 'function') (done as (error?: Error | null) => void)(error);
      });
    }) as ServerResponse['write'];
  }

  /** Resolves once the socket has taken every write so far, or the response has closed. */
  flushed(): Promise<void> {
    if (this.#pending === 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /**
   * `source`, pulled only once the socket has taken everything written so far: the next
   * event is asked for when the client has read the last one. `return()` goes straight
   * through, so a disconnect releases the subscription at once.
   */
  paced<T>(source: AsyncIterator<T>): AsyncIterableIterator<T> {
    const paced: AsyncIterableIterator<T> = {
      next: async () => {
        await this.flushed();
        return source.next();
      },
      return: async (value?: unknown) => (source.return ? source.return(value) : { value: undefined as T, done: true }),
      [Symbol.asyncIterator]: () => paced,
    };
    return paced;
  }

  /** Stops watching (the response ended or closed); wakes whoever waits. Idempotent. */
  readonly close = (): void => {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#response.off('close', this.close);
    this.#wake();
  };

  /** Cuts the response if the socket has taken nothing for `stallTimeoutMs` while writes wait. */
  check(): void {
    if (this.#closed || this.#pending === 0) return;
    if (this.#now() - this.#progressAt < this.#options.stallTimeoutMs) return;
    this.#options.onStall?.();
    this.close();
    this.#response.destroy();
  }

  #taken(): void {
    this.#pending = Math.max(0, this.#pending - 1);
    this.#progressAt = this.#now();
    if (this.#pending === 0) this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve();
  }
}
