import { toError } from '../lib/abort';
import type { SharedStream } from './shared-stream';
import type { StreamChunk } from './types';

type Waiter = { resolve(result: IteratorResult<StreamChunk>): void; reject(error: Error): void };

const DONE: IteratorResult<StreamChunk> = { value: undefined, done: true };

/**
 * ONE subscriber's view of a shared stream: its position and its pending `next()`. A plain
 * iterator rather than an async generator on purpose: a generator's `return()` waits for a
 * pending `next()` to settle, so unsubscribing from a silent upstream would hang until the
 * next token; here `return()` detaches at once and answers the pending `next()` with done.
 */
export class Cursor implements AsyncIterableIterator<StreamChunk> {
  position = 0;
  private source: SharedStream | undefined;
  private readonly waiters: Waiter[] = [];
  private closed = false;
  private failure: Error | undefined;
  private readonly endHooks: Array<() => void> = [];
  private ended = false;
  /**
   * Pending while the hub holds this subscription's set-up (`holdSetUp`): the caller waits
   * for it before the rest of its work, so the upstream request of a stream this
   * subscription starts is written first. Undefined when nothing is held.
   */
  setUp: Promise<void> | undefined;
  private releaseHeld: (() => void) | undefined;

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Runs `hook` once when this subscriber ends: failed, or closed (its last chunk read, or
   * `return()`); at once when it has ended already. The hub counts open subscribers and
   * ends their ledger waits with it.
   */
  onEnd(hook: () => void): void {
    if (this.ended) hook();
    else this.endHooks.push(hook);
  }

  /** Holds this subscription's set-up until `releaseSetUp` (or its end); see `setUp`. */
  holdSetUp(): void {
    if (this.setUp || this.ended) return;
    this.setUp = new Promise((resolve) => {
      this.releaseHeld = resolve;
    });
  }

  /** Lets a held set-up go on; any number of times. */
  releaseSetUp(): void {
    this.releaseHeld?.();
    this.releaseHeld = undefined;
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
    this.end();
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
    this.end();
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.releaseSetUp();
    for (const hook of this.endHooks.splice(0)) hook();
  }
}
