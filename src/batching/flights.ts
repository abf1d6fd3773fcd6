import type { Context } from '@opentelemetry/api';
import type { DeepSeekApi } from '../deepseek/types';
import { abortError, abortReason, toError } from '../lib/abort';
import { Singleflight } from '../lib/singleflight';
import type { Flight, Waiter } from './request-scope';
import type { JoinedCompletion, JoinRunning } from './types';

/**
 * The upstream calls running now in this process, keyed by store key (singleflight), and
 * the waiters on each: a call is shared by every identical load, answers each as soon as
 * it ends, and is aborted when its last waiter goes away. Owned by the coalescer.
 *
 * Streams are the other kind of upstream work: a load whose key has a stream running (and
 * no call) waits for the stream's answer through `joinStream` instead of calling, and a
 * stream subscription may wait on a call here through `hold`. Either joiner counts as a
 * waiter of the work it joined, so the last one of either kind to leave aborts it.
 */
export class Flights {
  private readonly inFlight = new Singleflight<string, Flight>();
  /** Calls started since start. */
  started = 0;
  /** Loads that waited on a running stream. */
  joinedStreams = 0;

  constructor(
    private readonly upstream: Pick<DeepSeekApi, 'complete'>,
    private readonly joinStream?: JoinRunning,
  ) {}

  get size(): number {
    return this.inFlight.size;
  }

  /** The call running for `key`, if any. */
  get(key: string): Flight | undefined {
    return this.inFlight.get(key);
  }

  /**
   * Joins `waiter` to the upstream work running for its key: the call, else a stream (which
   * answers it with `cached: false` when it finishes, or fails it with its error). Records
   * the join in the waiter's ledger. False when nothing runs for the key.
   */
  joinRunning(waiter: Waiter): boolean {
    const flight = this.inFlight.get(waiter.key);
    if (flight) {
      waiter.endWait = waiter.scope.ledger?.recordJoined();
      this.join(flight, waiter);
      return true;
    }
    const stream = this.joinStream?.(waiter.key, { store: waiter.policy !== 'BYPASS' });
    if (!stream) return false;
    waiter.endWait = waiter.scope.ledger?.recordJoined();
    waiter.joined = stream;
    this.joinedStreams += 1;
    stream.result.then(
      (result) => waiter.resolve({ ...result, id: waiter.id, cached: false }),
      (error: unknown) => waiter.reject(toError(error)),
    );
    return true;
  }

  /** Starts the upstream call for `waiter`, its spans under `traceContext`. */
  start(waiter: Waiter, traceContext: Context): Flight {
    const controller = new AbortController();
    const upstream = this.upstream;
    // async wrapper: a synchronous throw from the client becomes this call's rejection.
    const call = (async () => upstream.complete(waiter.request, { signal: controller.signal, traceContext }))();
    const flight: Flight = {
      key: waiter.key,
      controller,
      call,
      done: call.then(
        (result) => {
          flight.answered = true;
          return result;
        },
        (error: unknown) => {
          flight.answered = true;
          // Failures are never kept: the next identical load must start a new call.
          this.forget(flight);
          throw toError(error);
        },
      ),
      waiters: 0,
      store: false,
      answered: false,
    };
    // Every waiter may have gone before the call settles: nobody else handles it then.
    flight.done.catch(() => undefined);
    // The request that started the call pays for it (joined requests ride along).
    const ledger = waiter.scope.ledger;
    if (ledger) void call.then((result) => ledger.recordUsage(result.model, result.usage), () => undefined);
    this.inFlight.set(waiter.key, flight);
    this.started += 1;
    return flight;
  }

  join(flight: Flight, waiter: Waiter): void {
    flight.waiters += 1;
    if (waiter.policy !== 'BYPASS') flight.store = true;
    waiter.flight = flight;
    // cached: false even for a joiner: an upstream call was made for this answer.
    flight.done.then(
      (result) => waiter.resolve({ ...result, id: waiter.id, cached: false }),
      (error: unknown) => waiter.reject(toError(error)),
    );
  }

  /**
   * A stream subscription joins the call running for `key` (see `JoinRunning`): it counts as
   * one more waiter until it leaves or the call ends. A call that has ended but is still
   * registered (its batch is storing answers) gives its answer at once.
   */
  hold(key: string, options: { store: boolean }): JoinedCompletion | undefined {
    const flight = this.inFlight.get(key);
    if (!flight) return undefined;
    if (options.store) flight.store = true;
    if (flight.answered) return { result: flight.done, leave: () => undefined };
    flight.waiters += 1;
    let left = false;
    return {
      result: flight.done,
      leave: () => {
        if (left) return;
        left = true;
        this.release(flight);
      },
    };
  }

  /** Removes a call from the in-flight map (unless a newer call for the id replaced it). */
  forget(flight: Flight): void {
    this.inFlight.forget(flight.key, flight);
  }

  /** A waiter's request went away: answer its slot now; stop what it waited on if it was the last. */
  abandon(waiter: Waiter): void {
    if (waiter.settled) return;
    waiter.reject(abortReason(waiter.scope.signal));
    waiter.joined?.leave();
    if (waiter.flight) this.release(waiter.flight);
  }

  /** One waiter fewer on `flight`; the last one out aborts the call unless it has ended. */
  private release(flight: Flight): void {
    if (flight.answered) return;
    flight.waiters -= 1;
    if (flight.waiters > 0) return;
    // Nobody is left to read the answer. Forget the call first, so an identical load that
    // arrives now starts afresh instead of joining a call that is being torn down.
    this.forget(flight);
    flight.controller.abort(abortError('Every caller waiting for this completion has gone'));
  }
}
