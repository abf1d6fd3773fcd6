import type { Context } from '@opentelemetry/api';
import type { ClusterLeases } from '../cluster/leases';
import type { CompletionResult, DeepSeekApi } from '../deepseek/types';
import { QuotaExceededError } from '../errors';
import { abortError, abortReason, LightAbortController, toError } from '../lib/abort';
import { chain } from '../lib/chain';
import { Singleflight } from '../lib/singleflight';
import type { Flight, Waiter } from './request-scope';
import { completionView, type JoinedCompletion, type JoinRunning, type QuotaHold } from './types';

/**
 * How often one load may be sent back after joining calls other callers' quotas refused;
 * past it, the refusal is its answer (it would take that many callers over their budgets
 * at the same moment, on the same prompt).
 */
const MAX_REQUEUES = 4;

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

  /** Loads sent back to the batch window because the call they joined was refused by its starter's quota. */
  requeued = 0;

  constructor(
    private readonly upstream: Pick<DeepSeekApi, 'complete'>,
    private readonly joinStream?: JoinRunning,
    /** Sends a load back to be placed again (the coalescer's batch window). */
    private readonly requeue?: (waiter: Waiter) => void,
    /** Leases shared with the other replicas: one call per store key across all of them. */
    private readonly cluster?: ClusterLeases,
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
      (result) => waiter.resolve(completionView(result, waiter.id, false)),
      (error: unknown) => this.fail(waiter, error),
    );
    return true;
  }

  /**
   * Starts the upstream call for `waiter`, its spans under `traceContext`. The call is
   * registered at once (identical loads join it from now on); when the waiter's operation
   * has a quota account, the call first reserves its worst case there, and a refusal fails
   * the call before anything is sent upstream. The reservation is settled with the call's
   * usage, or released if it fails.
   */
  start(waiter: Waiter, traceContext: Context): Flight {
    const controller = new LightAbortController();
    const upstream = this.upstream;
    const payer = waiter.scope.operation.quota;
    const cluster = this.cluster;
    const across: Flight['cluster'] = { remote: false };
    // Promise chains, not an async frame held for the whole call (see `chain`); a
    // synchronous throw anywhere becomes this call's rejection.
    const callUpstream = (hold: QuotaHold | undefined): Promise<CompletionResult> =>
      chain(
        () => {
          // Every waiter may have left while the lease and the reservation were taken.
          if (controller.signal.aborted) throw abortReason(controller.signal);
          return upstream.complete(waiter.request, { signal: controller.signal, traceContext });
        },
        (result) => {
          hold?.settle(result);
          return result;
        },
        (error) => {
          hold?.release();
          across.lease?.finish({ error: true });
          throw error;
        },
      );
    const reserveThenCall = (): Promise<CompletionResult> => {
      if (!payer) return callUpstream(undefined);
      // The reservation's refusal is handled here; the call's own failure in callUpstream.
      return chain(() => payer.reserve(waiter.request)).then(callUpstream, (error: unknown) => {
        waiter.scope.ledger?.recordRefusedCall();
        across.lease?.finish({ error: true });
        throw error;
      });
    };
    // Across replicas first: another replica may already be making this very call.
    const call = cluster
      ? chain(
          () => cluster.claim(waiter.key, { signal: controller.signal, readCache: waiter.policy === 'USE' }),
          (claim) => {
            if (claim.kind === 'remote') {
              across.remote = true;
              return claim.result;
            }
            if (claim.kind === 'owner') across.lease = claim;
            return reserveThenCall();
          },
        )
      : reserveThenCall();
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
      payer: payer?.key,
      cluster: across,
    };
    // Every waiter may have gone before the call settles: nobody else handles it then.
    flight.done.catch(() => undefined);
    // The request that started the call pays for it (joined requests ride along).
    // (Unless another replica made the call: then this request joined it, for free.)
    const ledger = waiter.scope.ledger;
    if (ledger) {
      void call.then(
        (result) => (across.remote ? ledger.recordRemoteJoin() : ledger.recordUsage(result.model, result.usage)),
        () => undefined,
      );
    }
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
      (result) => waiter.resolve(completionView(result, waiter.id, false)),
      (error: unknown) => this.fail(waiter, error),
    );
  }

  /**
   * The work `waiter` waited on failed. A call is charged once, to the caller that started
   * it: when that caller's quota refused it, a waiter paid for by another account (or by
   * none) was not refused, and goes back to be placed again (it joins or starts a call of
   * its own). Anything else is the waiter's failure too.
   */
  private fail(waiter: Waiter, error: unknown): void {
    if (
      !waiter.settled &&
      this.requeue &&
      error instanceof QuotaExceededError &&
      error.payer !== waiter.scope.operation.quota?.key &&
      waiter.requeued < MAX_REQUEUES
    ) {
      waiter.requeued += 1;
      this.requeued += 1;
      waiter.flight = undefined;
      waiter.joined = undefined;
      waiter.endWait?.();
      waiter.endWait = undefined;
      this.requeue(waiter);
      return;
    }
    waiter.reject(toError(error));
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
