import type { Context } from '@opentelemetry/api';
import type { DeepSeekApi } from '../deepseek/types';
import { abortError, abortReason, toError } from '../lib/abort';
import { Singleflight } from '../lib/singleflight';
import type { Flight, Waiter } from './request-scope';

/**
 * The upstream calls running now in this process, keyed by store key (singleflight), and
 * the waiters on each: a call is shared by every identical load, answers each as soon as
 * it ends, and is aborted when its last waiter goes away. Owned by the coalescer.
 */
export class Flights {
  private readonly inFlight = new Singleflight<string, Flight>();
  /** Calls started since start. */
  started = 0;

  constructor(private readonly upstream: Pick<DeepSeekApi, 'complete'>) {}

  get size(): number {
    return this.inFlight.size;
  }

  /** The call running for `key`, if any. */
  get(key: string): Flight | undefined {
    return this.inFlight.get(key);
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

  /** Removes a call from the in-flight map (unless a newer call for the id replaced it). */
  forget(flight: Flight): void {
    this.inFlight.forget(flight.key, flight);
  }

  /** A waiter's request went away: answer its slot now; stop the call if it was the last. */
  abandon(waiter: Waiter): void {
    if (waiter.settled) return;
    waiter.reject(abortReason(waiter.scope.signal));
    const flight = waiter.flight;
    if (!flight || flight.answered) return;
    flight.waiters -= 1;
    if (flight.waiters > 0) return;
    // Nobody is left to read the answer. Forget the call first, so an identical load that
    // arrives now starts afresh instead of joining a call that is being torn down.
    this.forget(flight);
    flight.controller.abort(abortError('Every caller waiting for this completion has gone'));
  }
}
