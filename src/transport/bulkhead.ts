import { abortReason, type AbortSignalLike } from '../lib/abort';
import { chain } from '../lib/chain';
import { TransportError } from './errors';
import type { TransportCounters } from './status';
import { wrapHandler, type Interceptor } from './types';

export type Release = () => void;

interface Waiter {
  grant(release: Release): void;
  signal?: AbortSignalLike;
  onAbort?: () => void;
}

/**
 * At most `capacity` holders at once and a FIFO queue of at most `queueCapacity` waiters;
 * beyond that `acquire` fails at once with an `overloaded` TransportError. A waiter whose
 * signal aborts leaves the queue immediately. (cockatiel's bulkhead keeps aborted waiters
 * queued until their turn, which is why this one is hand-written.)
 */
export class Bulkhead {
  #active = 0;
  // A Set keeps insertion order (FIFO) and deletes in O(1) when a waiter aborts.
  readonly #queue = new Set<Waiter>();

  constructor(
    readonly capacity: number,
    readonly queueCapacity: number,
  ) {}

  get inFlight(): number {
    return this.#active;
  }

  get queued(): number {
    return this.#queue.size;
  }

  /** Resolves with a release function once a slot is free. */
  acquire(signal?: AbortSignalLike): Promise<Release> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (this.#active < this.capacity) {
      this.#active += 1;
      return Promise.resolve(this.#releaser());
    }
    if (this.#queue.size >= this.queueCapacity) return Promise.reject(new TransportError({ kind: 'overloaded' }));
    return new Promise<Release>((resolve, reject) => {
      const waiter: Waiter = { grant: resolve, signal };
      if (signal) {
        waiter.onAbort = () => {
          this.#queue.delete(waiter);
          reject(abortReason(signal));
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#queue.add(waiter);
    });
  }

  #releaser(): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#active -= 1;
      this.#next();
    };
  }

  #next(): void {
    if (this.#active >= this.capacity) return;
    const waiter = this.#queue.values().next().value;
    if (!waiter) return;
    this.#queue.delete(waiter);
    if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
    this.#active += 1;
    waiter.grant(this.#releaser());
  }
}

/**
 * Holds one slot per *attempt*, from sending the request until its exchange is over (the
 * body read, or for a stream closed: `onResponseEnd`). Backoff waits between attempts hold
 * no slot, so a retrying call never blocks fresh calls while it sleeps.
 */
export function bulkheadInterceptor(bulkhead: Bulkhead, counters: TransportCounters): Interceptor {
  return (next) => (request, handler) =>
    chain(
      () => bulkhead.acquire(request.signal),
      (release) =>
        chain(
          () =>
            next(
              request,
              wrapHandler(handler, {
                onResponseEnd(error) {
                  release();
                  handler.onResponseEnd?.(error);
                },
              }),
            ),
          undefined,
          (error) => {
            release();
            throw error;
          },
        ),
      (error) => {
        if (error instanceof TransportError && error.kind === 'overloaded') counters.rejectedOverloaded += 1;
        throw error;
      },
    );
}
